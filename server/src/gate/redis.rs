//! Admission shared by every instance of a fleet, in Redis: each check-and-reserve is one Lua
//! script, so it is atomic across instances and costs one round trip. The scripts live in
//! `redis.lua`; this side names the keys, lowers a request to the tail of a budget, loads a
//! level Redis does not have from storage, and keeps this instance's leases alive.
//!
//! Keys, under a prefix (`GATEHOUSE_REDIS_PREFIX`, default `gatehouse`):
//! - `<p>:<kind>:<id>`: a level's hash: budget window `w`, `spend` and `reserved`
//!   (nano-dollars), `tres` (tokens reserved), and its requests and tokens per second over the
//!   last 61 seconds (with their running sums);
//! - `<p>:leases`: the reservations held, a sorted set scored by expiry (Redis milliseconds)
//!   whose members say what each holds (its id, cost, tokens and levels).
//!
//! A lease lives 30 s past its last renewal; this instance renews its own every 10 s, and
//! every instance sweeps expired ones, so a crashed instance's reservations come back.
//! Settling after a lease expired still charges; a lease is released once, by whoever deletes
//! it first.

use super::admission::{
    Admission, Denial, Estimate, Grant, Level, LevelId, LevelKind, RateInfo, Settled, Unreachable,
};
use super::window::RateKind;
use crate::{money::Nanos, storage::Storage};
use anyhow::Context;
use async_trait::async_trait;
use redis::{aio::ConnectionManager, Script, Value};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, Weak,
    },
    time::Duration,
};

/// How long a lease lives without renewal.
const LEASE_MS: u64 = 30_000;
/// How often this instance renews the leases it holds.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often this instance releases leases nobody renewed (one cheap range query).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Tries of one admission: a level loaded from storage, or the tail of a budget that moved.
const ATTEMPTS: usize = 6;

const LUA: &str = include_str!("redis.lua");

/// One operation's script: the helpers, then its section of `redis.lua`.
fn script(name: &str) -> Script {
    let (helpers, sections) = LUA.split_once("-- @@").expect("redis.lua has sections");
    let body = format!("-- @@{sections}")
        .split("-- @@")
        .find_map(|section| section.strip_prefix(name))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("redis.lua has no section {name}"));
    Script::new(&format!("{helpers}{body}"))
}

struct Scripts {
    admit: Script,
    settle: Script,
    release: Script,
    sweep: Script,
    renew: Script,
    reset: Script,
    load: Script,
}

pub struct RedisAdmission {
    con: ConnectionManager,
    prefix: String,
    scripts: Scripts,
    /// Where a level's spend is read when Redis does not have it.
    storage: Arc<dyn Storage>,
    /// Leases this instance holds (their members), renewed until settled or released.
    held: Mutex<HashMap<u64, String>>,
    next_lease: AtomicU64,
}

/// What the admit script answered.
enum Outcome {
    Admitted {
        windows: Vec<i64>,
        usage: Vec<(u64, u64)>,
    },
    Missing(usize),
    Budget {
        level: usize,
        spend: Nanos,
        reserved: Nanos,
    },
    Rate {
        level: usize,
        kind: RateKind,
        limit: u64,
        retry_after: u64,
    },
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn unsigned(value: &Value) -> u64 {
    int(value).and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

fn parse_outcome(reply: &[Value], levels: usize) -> Option<Outcome> {
    let index = |v: &Value| int(v).and_then(|i| usize::try_from(i - 1).ok());
    Some(match text(reply.first()?)? {
        "ok" => {
            let mut windows = Vec::with_capacity(levels);
            let mut usage = Vec::with_capacity(levels);
            for i in 0..levels {
                let at = 1 + 3 * i;
                windows.push(int(reply.get(at)?)?);
                usage.push((unsigned(reply.get(at + 1)?), unsigned(reply.get(at + 2)?)));
            }
            Outcome::Admitted { windows, usage }
        }
        "missing" => Outcome::Missing(index(reply.get(1)?)?),
        "budget" => Outcome::Budget {
            level: index(reply.get(1)?)?,
            spend: Nanos(int(reply.get(2)?)?),
            reserved: Nanos(int(reply.get(3)?)?),
        },
        kind @ ("requests" | "tokens" | "parallel") => Outcome::Rate {
            level: index(reply.get(1)?)?,
            kind: match kind {
                "requests" => RateKind::Requests,
                "tokens" => RateKind::Tokens,
                _ => RateKind::Parallel,
            },
            limit: unsigned(reply.get(2)?),
            retry_after: unsigned(reply.get(3)?),
        },
        _ => return None,
    })
}

fn optional(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

impl RedisAdmission {
    /// Connects (failing when Redis cannot be reached) and starts renewing and sweeping leases.
    pub async fn connect(
        url: &str,
        prefix: &str,
        storage: Arc<dyn Storage>,
    ) -> anyhow::Result<Arc<Self>> {
        let client = redis::Client::open(url).context("invalid REDIS_URL")?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let mut con = client
            .get_connection_manager_with_config(config)
            .await
            .context("cannot reach Redis")?;
        let _: String = redis::cmd("PING")
            .query_async(&mut con)
            .await
            .context("Redis does not answer PING")?;
        let admission = Arc::new(Self {
            con,
            prefix: prefix.to_string(),
            scripts: Scripts {
                admit: script("admit"),
                settle: script("settle"),
                release: script("release"),
                sweep: script("sweep"),
                renew: script("renew"),
                reset: script("reset"),
                load: script("load"),
            },
            storage,
            held: Mutex::new(HashMap::new()),
            next_lease: AtomicU64::new(getrandom::u64().unwrap_or_default()),
        });
        tokio::spawn(keep_leases(Arc::downgrade(&admission)));
        Ok(admission)
    }

    fn state_key(&self, level: &LevelId) -> String {
        format!("{}:{}:{}", self.prefix, level.kind.name(), level.id)
    }

    fn leases_key(&self) -> String {
        format!("{}:leases", self.prefix)
    }

    /// A lease's member in the lease set: what the scripts give back when it is released.
    fn member<'a>(
        &self,
        lease: u64,
        cost: Nanos,
        tokens: u64,
        levels: impl Iterator<Item = &'a LevelId>,
    ) -> String {
        let mut member = format!("{lease}\n{}\n{tokens}", cost.0);
        for level in levels {
            member.push('\n');
            member.push_str(&self.state_key(level));
        }
        member
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<u64, String>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn try_admit(
        &self,
        chain: &[Level],
        cost: Nanos,
        tokens: u64,
        member: &str,
    ) -> redis::RedisResult<Option<Outcome>> {
        let mut call = self.scripts.admit.prepare_invoke();
        for level in chain {
            call.key(self.state_key(&level.id));
        }
        call.key(self.leases_key());
        call.arg(chain.len())
            .arg(cost.0)
            .arg(tokens)
            .arg(member)
            .arg(LEASE_MS);
        for level in chain {
            call.arg(level.window)
                .arg(optional(level.limits.max_budget.map(|max| max.0)))
                .arg(optional(level.limits.rpm_limit))
                .arg(optional(level.limits.tpm_limit))
                .arg(optional(level.limits.max_parallel));
        }
        let reply: Vec<Value> = call.invoke_async(&mut self.con.clone()).await?;
        Ok(parse_outcome(&reply, chain.len()))
    }

    /// Puts a level Redis does not have (new, or lost with Redis) there, from storage.
    async fn load_from_storage(&self, level: &Level) -> Result<(), Denial> {
        let row = match level.id.kind {
            LevelKind::Team => self
                .storage
                .team(&level.id.id)
                .await
                .map(|r| r.map(|t| t.budget)),
            LevelKind::Key => self
                .storage
                .key(&level.id.id)
                .await
                .map(|r| r.map(|k| k.budget)),
            LevelKind::User => self
                .storage
                .user(&level.id.id)
                .await
                .map(|r| r.map(|u| u.budget)),
            LevelKind::Member => self
                .storage
                .member(&level.id.id)
                .await
                .map(|r| r.map(|m| m.budget)),
            LevelKind::Organization => self
                .storage
                .organization(&level.id.id)
                .await
                .map(|r| r.map(|o| o.budget)),
            LevelKind::Deployment => Ok(None),
        }
        .map_err(|err| {
            tracing::warn!(level = %level.id, %err, "cannot read a level's spend from storage");
            Denial::Unavailable(Unreachable::Database)
        })?;
        let (spend, window) =
            row.map_or((Nanos::ZERO, level.window), |b| (b.spend, b.budget_window));
        self.load_spend(&level.id, spend, window)
            .await
            .map_err(|err| unavailable(&err))
    }

    async fn load_spend(
        &self,
        level: &LevelId,
        spend: Nanos,
        window: i64,
    ) -> redis::RedisResult<()> {
        self.scripts
            .load
            .key(self.state_key(level))
            .arg(spend.0)
            .arg(window)
            .invoke_async::<()>(&mut self.con.clone())
            .await
    }

    async fn release_lease(&self, lease: u64, member: &str) -> redis::RedisResult<()> {
        self.held().remove(&lease);
        self.scripts
            .release
            .key(self.leases_key())
            .arg(member)
            .invoke_async::<()>(&mut self.con.clone())
            .await
    }

    async fn renew(&self) -> redis::RedisResult<()> {
        let members: Vec<String> = self.held().values().cloned().collect();
        for chunk in members.chunks(1000) {
            let mut call = self.scripts.renew.prepare_invoke();
            call.key(self.leases_key()).arg(LEASE_MS);
            for member in chunk {
                call.arg(member);
            }
            call.invoke_async::<()>(&mut self.con.clone()).await?;
        }
        Ok(())
    }

    async fn sweep(&self) -> redis::RedisResult<u64> {
        self.scripts
            .sweep
            .key(self.leases_key())
            .invoke_async(&mut self.con.clone())
            .await
    }
}

fn unavailable(err: &redis::RedisError) -> Denial {
    tracing::warn!(%err, "Redis is unavailable: refusing requests until it is back");
    Denial::Unavailable(Unreachable::SharedCounters)
}

/// Renews this instance's leases and sweeps expired ones, for as long as the admission lives.
async fn keep_leases(admission: Weak<RedisAdmission>) {
    let mut renew = tokio::time::interval(RENEW_EVERY);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = renew.tick() => {
                let Some(admission) = admission.upgrade() else { return };
                if let Err(err) = admission.renew().await {
                    tracing::warn!(%err, "cannot renew this instance's leases in Redis");
                }
            }
            _ = sweep.tick() => {
                let Some(admission) = admission.upgrade() else { return };
                match admission.sweep().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(leases = n, "released expired leases"),
                    Err(err) => tracing::warn!(%err, "cannot sweep expired leases in Redis"),
                }
            }
        }
    }
}

/// Each level once, in order: a level listed twice is reserved and charged once.
fn distinct<T>(items: &[T], id: impl Fn(&T) -> &LevelId) -> Vec<&T> {
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.iter().any(|seen| id(seen) == id(item)) {
            out.push(item);
        }
    }
    out
}

#[async_trait]
impl Admission for RedisAdmission {
    async fn admit(&self, chain: &[Level], estimate: &Estimate) -> Result<Grant, Denial> {
        let levels: Vec<Level> = distinct(chain, |level| &level.id)
            .into_iter()
            .cloned()
            .collect();
        let wanted = estimate.output_tokens;
        let mut output = wanted;
        let mut refusal = None;
        for _ in 0..ATTEMPTS {
            let cost = estimate.cost(output);
            let tokens = estimate.tokens(output);
            let lease = self.next_lease.fetch_add(1, Ordering::Relaxed);
            let member = self.member(lease, cost, tokens, levels.iter().map(|l| &l.id));
            // Held before the script runs, so a renewal never misses it.
            self.held().insert(lease, member.clone());
            let outcome = self.try_admit(&levels, cost, tokens, &member).await;
            if !matches!(outcome, Ok(Some(Outcome::Admitted { .. }))) {
                self.held().remove(&lease);
            }
            match outcome.map_err(|err| unavailable(&err))? {
                Some(Outcome::Admitted { windows, usage }) => {
                    let mut rate = RateInfo::default();
                    for (level, (requests, used)) in levels.iter().zip(&usage) {
                        rate.tighten(level.limits.rpm_limit, requests + 1, RateKind::Requests);
                        rate.tighten(level.limits.tpm_limit, *used, RateKind::Tokens);
                    }
                    let levels = chain
                        .iter()
                        .map(|level| {
                            let at = levels.iter().position(|l| l.id == level.id).unwrap_or(0);
                            (level.id.clone(), windows[at])
                        })
                        .collect();
                    return Ok(Grant {
                        levels,
                        cost,
                        tokens,
                        output_tokens: output,
                        lowered: output < wanted,
                        rate,
                        lease,
                    });
                }
                Some(Outcome::Missing(i)) => self.load_from_storage(&levels[i]).await?,
                Some(Outcome::Budget {
                    level,
                    spend,
                    reserved,
                }) => {
                    let max = levels[level].limits.max_budget.unwrap_or(Nanos::ZERO);
                    let left = max.saturating_sub(spend).saturating_sub(reserved);
                    let denial = Denial::OverBudget {
                        level: levels[level].id.clone(),
                        spend,
                        max,
                        left: left.max(Nanos::ZERO),
                        request_cost: estimate.cost(wanted),
                    };
                    match estimate.affordable(left) {
                        Some(out) if estimate.lowerable && out >= 1 => {
                            output = output.min(out);
                            refusal = Some(denial);
                        }
                        _ => return Err(denial),
                    }
                }
                Some(Outcome::Rate {
                    level,
                    kind,
                    limit,
                    retry_after,
                }) => {
                    return Err(Denial::RateLimited {
                        level: levels[level].id.clone(),
                        kind,
                        limit,
                        retry_after,
                    })
                }
                None => {
                    tracing::error!("Redis' admit script answered something unexpected");
                    return Err(Denial::Unavailable(Unreachable::SharedCounters));
                }
            }
        }
        // Others kept taking what was left: refuse rather than wait.
        Err(refusal.unwrap_or(Denial::Unavailable(Unreachable::SharedCounters)))
    }

    async fn settle(&self, grant: &Grant, cost: Nanos, tokens: u64) -> Settled {
        let levels = distinct(&grant.levels, |(level, _)| level);
        let member = self.held().remove(&grant.lease).unwrap_or_else(|| {
            self.member(
                grant.lease,
                grant.cost,
                grant.tokens,
                levels.iter().map(|l| &l.0),
            )
        });
        let mut call = self.scripts.settle.prepare_invoke();
        for (level, _) in &levels {
            call.key(self.state_key(level));
        }
        call.key(self.leases_key())
            .arg(levels.len())
            .arg(cost.clamp(Nanos::ZERO, grant.cost).0)
            .arg(tokens)
            .arg(member)
            .arg(grant.cost.0)
            .arg(grant.tokens);
        for (_, window) in &levels {
            call.arg(*window);
        }
        match call.invoke_async::<Vec<Value>>(&mut self.con.clone()).await {
            Ok(spends) => Settled {
                spend: grant
                    .levels
                    .iter()
                    .map(|(level, _)| {
                        levels
                            .iter()
                            .position(|l| &l.0 == level)
                            .and_then(|at| spends.get(at))
                            .and_then(int)
                            .map_or(Nanos::ZERO, Nanos)
                    })
                    .collect(),
            },
            Err(err) => {
                // The spend log still has it, and storage adds it up; the lease expires.
                tracing::warn!(%err, "cannot settle a request in Redis");
                Settled { spend: Vec::new() }
            }
        }
    }

    async fn release(&self, grant: &Grant) {
        let member = self.held().get(&grant.lease).cloned().unwrap_or_else(|| {
            let levels = distinct(&grant.levels, |(level, _)| level);
            self.member(
                grant.lease,
                grant.cost,
                grant.tokens,
                levels.into_iter().map(|l| &l.0),
            )
        });
        if let Err(err) = self.release_lease(grant.lease, &member).await {
            tracing::warn!(%err, "cannot release a reservation in Redis; its lease will expire");
        }
    }

    async fn reset(&self, level: &LevelId, window: i64) {
        let done = self
            .scripts
            .reset
            .key(self.state_key(level))
            .arg(window)
            .invoke_async::<()>(&mut self.con.clone())
            .await;
        if let Err(err) = done {
            tracing::warn!(%level, %err, "cannot start a budget window in Redis");
        }
    }

    async fn load(&self, level: &LevelId, spend: Nanos, window: i64) {
        if let Err(err) = self.load_spend(level, spend, window).await {
            tracing::warn!(%level, %err, "cannot load a level's spend into Redis");
        }
    }

    async fn forget(&self, level: &LevelId) {
        let state = self.state_key(level);
        let done = redis::cmd("DEL")
            .arg(&state)
            .query_async::<()>(&mut self.con.clone())
            .await;
        if let Err(err) = done {
            tracing::warn!(%level, %err, "cannot drop a level's counters in Redis");
        }
    }

    async fn spend(&self, level: &LevelId) -> Option<Nanos> {
        redis::cmd("HGET")
            .arg(self.state_key(level))
            .arg("spend")
            .query_async::<Option<i64>>(&mut self.con.clone())
            .await
            .ok()
            .flatten()
            .map(Nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The machine's Redis (`TEST_REDIS_URL`), or `None` outside CI when it cannot be reached.
    async fn redis() -> Option<ConnectionManager> {
        let url = std::env::var("TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
        let con = match redis::Client::open(url.as_str()) {
            Ok(client) => client.get_connection_manager().await.ok(),
            Err(_) => None,
        };
        if con.is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Redis at {url} cannot be reached, and CI=true"
            );
            eprintln!("SKIPPED: Redis at {url} cannot be reached");
        }
        con
    }

    /// The scripts' window on a clock the test sets: `(second, added)` steps, each answering the
    /// window's total at that second after the addition.
    async fn window_totals(con: &mut ConnectionManager, steps: &[(i64, u64)]) -> Vec<u64> {
        let (helpers, _) = LUA.split_once("-- @@").expect("sections");
        let script = Script::new(&format!(
            "{helpers}\nlocal out = {{}}\nfor k = 1, #ARGV, 2 do\n  local secs, by = tonumber(ARGV[k]), ARGV[k + 1]\n  local h = redis.call('HMGET', KEYS[1], 'rn', 'rlo')\n  local sum = total(KEYS[1], 'r', secs, h[1], h[2])\n  if by ~= '0' then\n    bump(KEYS[1], 'r', secs, by)\n    sum = sum + tonumber(by)\n  end\n  out[#out + 1] = sum\nend\nreturn out"
        ));
        let key = format!("gatehouse-test-{}:window", uuid::Uuid::new_v4().simple());
        let mut call = script.key(&key);
        for (second, added) in steps {
            call.arg(second).arg(added);
        }
        call.invoke_async(con).await.expect("script runs")
    }

    #[tokio::test]
    async fn a_window_holds_exactly_the_last_61_seconds() {
        let Some(mut con) = redis().await else { return };
        let totals = window_totals(
            &mut con,
            &[
                (1_000, 5),
                (1_010, 3),
                (1_060, 0), // 1000..=1060: both buckets
                (1_061, 0), // the bucket of 1000 has left
                (1_070, 1),
                (1_071, 0), // and the one of 1010
                (1_130, 0), // 1070 is still in
                (1_131, 0),
                (1_131, 4),
                (1_400, 0), // long idle: everything has left
                (1_400, 2),
            ],
        )
        .await;
        assert_eq!(totals, vec![5, 8, 8, 3, 4, 1, 1, 0, 4, 0, 2]);
    }
}
