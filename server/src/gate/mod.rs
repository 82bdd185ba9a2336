//! The live state of the request path: every key and team in memory, with spend, in-flight
//! reservations and rate windows. It answers "may this request go?" without touching the
//! database, and is updated by the admin API before that API answers, so a block, unblock,
//! update or delete holds from the very next request.
//!
//! Locks are taken key first, then team, and never held across an await.

pub mod clock;
pub mod window;

use crate::{
    service::duration::Period,
    storage::{KeyRow, TeamRow},
};
use clock::Clock;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, RwLock},
};
use window::Window;

/// Budget, limits and counters that keys and teams share.
#[derive(Debug, Default)]
pub struct Allowance {
    pub models: Vec<String>,
    pub blocked: bool,
    pub max_budget: Option<i64>,
    /// Settled spend in the current budget window, nano-dollars.
    pub spend: i64,
    /// Maximum cost of requests admitted and not yet settled.
    pub reserved: i64,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub requests: Window,
    pub tokens: Window,
    /// Maximum tokens of requests admitted and not yet settled.
    pub tokens_reserved: u64,
    pub budget_period: Option<Period>,
    pub budget_reset_at: Option<i64>,
}

impl Allowance {
    /// Takes the configuration from storage; spend only when `with_spend` (first load).
    fn configure(&mut self, c: AllowanceConfig, spend: Option<i64>) {
        self.models = c.models;
        self.blocked = c.blocked;
        self.max_budget = c.max_budget;
        self.rpm_limit = c.rpm_limit.and_then(|v| u64::try_from(v).ok());
        self.tpm_limit = c.tpm_limit.and_then(|v| u64::try_from(v).ok());
        self.budget_period = c
            .budget_duration
            .as_deref()
            .and_then(|d| Period::parse("budget_duration", d).ok());
        self.budget_reset_at = c.budget_reset_at;
        if let Some(spend) = spend {
            self.spend = spend;
        }
    }

    fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }

    fn over_budget(&self) -> Option<(i64, i64)> {
        self.max_budget
            .filter(|max| self.spend + self.reserved >= *max)
            .map(|max| (self.spend, max))
    }

    /// Resets spend when the budget window has passed; true when it did.
    fn reset_if_due(&mut self, now_secs: i64) -> bool {
        match (self.budget_reset_at, self.budget_period) {
            (Some(at), Some(period)) if at <= now_secs => {
                self.spend = 0;
                let now = chrono::DateTime::from_timestamp(now_secs, 0).unwrap_or_default();
                self.budget_reset_at = Some(period.next_reset(now).timestamp());
                true
            }
            _ => false,
        }
    }
}

struct AllowanceConfig {
    models: Vec<String>,
    blocked: bool,
    max_budget: Option<i64>,
    rpm_limit: Option<i64>,
    tpm_limit: Option<i64>,
    budget_duration: Option<String>,
    budget_reset_at: Option<i64>,
}

impl From<&TeamRow> for AllowanceConfig {
    fn from(r: &TeamRow) -> Self {
        Self {
            models: r.models.clone(),
            blocked: r.blocked,
            max_budget: r.max_budget,
            rpm_limit: r.rpm_limit,
            tpm_limit: r.tpm_limit,
            budget_duration: r.budget_duration.clone(),
            budget_reset_at: r.budget_reset_at,
        }
    }
}

impl From<&KeyRow> for AllowanceConfig {
    fn from(r: &KeyRow) -> Self {
        Self {
            models: r.models.clone(),
            blocked: r.blocked,
            max_budget: r.max_budget,
            rpm_limit: r.rpm_limit,
            tpm_limit: r.tpm_limit,
            budget_duration: r.budget_duration.clone(),
            budget_reset_at: r.budget_reset_at,
        }
    }
}

pub struct TeamLive {
    pub team_id: String,
    state: Mutex<Allowance>,
}

pub struct KeyState {
    pub allowance: Allowance,
    pub user_id: Option<String>,
    pub expires_at: Option<i64>,
}

pub struct KeyLive {
    pub key_id: String,
    pub key_hash: String,
    pub team: Arc<TeamLive>,
    state: Mutex<KeyState>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters behind: keep serving.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TeamLive {
    pub fn lock(&self) -> MutexGuard<'_, Allowance> {
        lock(&self.state)
    }
}

impl KeyLive {
    pub fn lock(&self) -> MutexGuard<'_, KeyState> {
        lock(&self.state)
    }
}

/// Why a request was refused, in LiteLLM's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub rate: Option<Box<RateInfo>>,
}

/// The limits a request ran into or stayed within, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateInfo {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub retry_after: Option<u64>,
}

impl RateInfo {
    /// Keeps the tighter of two scopes (key and team) for each header.
    fn tighten(&mut self, limit: Option<u64>, used: u64, tokens: bool) {
        let Some(limit) = limit else { return };
        let remaining = limit.saturating_sub(used);
        let (l, r) = if tokens {
            (&mut self.limit_tokens, &mut self.remaining_tokens)
        } else {
            (&mut self.limit_requests, &mut self.remaining_requests)
        };
        if r.is_none_or(|current| remaining < current) {
            *l = Some(limit);
            *r = Some(remaining);
        }
    }
}

/// What a request may cost at most, reserved before it is forwarded.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    pub cost: i64,
    pub tokens: u64,
}

/// An admitted request's reservation. Settle it with the real usage; dropping it unsettled
/// releases the reservation (the request failed or the client went away).
pub struct Ticket {
    pub key: Arc<KeyLive>,
    estimate: Estimate,
    clock: Clock,
    pub rate: RateInfo,
    settled: bool,
}

/// Key and team spend after a settlement, nano-dollars.
#[derive(Debug, Clone, Copy)]
pub struct Settled {
    pub key_spend: i64,
    pub team_spend: i64,
}

impl Ticket {
    pub fn settle(mut self, cost: i64, tokens: u64) -> Settled {
        self.settled = true;
        self.apply(cost, tokens)
    }

    fn apply(&self, cost: i64, tokens: u64) -> Settled {
        let now = self.clock.now_secs();
        let mut key = self.key.lock();
        let mut team = self.key.team.lock();
        for a in [&mut key.allowance, &mut *team] {
            a.reserved -= self.estimate.cost;
            a.tokens_reserved = a.tokens_reserved.saturating_sub(self.estimate.tokens);
            a.spend += cost;
            a.tokens.add(now, tokens);
        }
        Settled {
            key_spend: key.allowance.spend,
            team_spend: team.spend,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.apply(0, 0);
        }
    }
}

#[derive(Default)]
struct Index {
    teams: HashMap<String, Arc<TeamLive>>,
    keys_by_hash: HashMap<String, Arc<KeyLive>>,
    keys_by_id: HashMap<String, Arc<KeyLive>>,
}

pub struct Gate {
    index: RwLock<Index>,
    /// Ids of teams and keys whose budget was reset since the spend writer last looked.
    resets: Mutex<(Vec<String>, Vec<String>)>,
    pub clock: Clock,
}

impl Gate {
    pub fn new(clock: Clock) -> Self {
        Self {
            index: RwLock::new(Index::default()),
            resets: Mutex::new((Vec::new(), Vec::new())),
            clock,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Loads everything from storage at start (spend included).
    pub fn load(&self, teams: &[TeamRow], keys: &[KeyRow]) {
        for team in teams {
            self.put_team(team, true);
        }
        for key in keys {
            self.put_key(key, true);
        }
    }

    /// Creates or reconfigures a team. Spend is taken from the row only on first load: in
    /// memory it is ahead of the database.
    pub fn put_team(&self, row: &TeamRow, with_spend: bool) {
        let mut index = self.write();
        let team = index
            .teams
            .entry(row.team_id.clone())
            .or_insert_with(|| {
                Arc::new(TeamLive {
                    team_id: row.team_id.clone(),
                    state: Mutex::new(Allowance::default()),
                })
            })
            .clone();
        drop(index);
        team.lock()
            .configure(row.into(), with_spend.then_some(row.spend));
    }

    pub fn remove_team(&self, team_id: &str) {
        let mut index = self.write();
        index.teams.remove(team_id);
        index.keys_by_hash.retain(|_, k| k.team.team_id != team_id);
        index.keys_by_id.retain(|_, k| k.team.team_id != team_id);
    }

    pub fn put_key(&self, row: &KeyRow, with_spend: bool) {
        let mut index = self.write();
        let existing = index.keys_by_id.get(&row.key_id).cloned();
        let key = match existing {
            Some(key) => key,
            None => {
                let Some(team) = index.teams.get(&row.team_id).cloned() else {
                    tracing::error!(key_id = %row.key_id, "key without a team in memory");
                    return;
                };
                let key = Arc::new(KeyLive {
                    key_id: row.key_id.clone(),
                    key_hash: row.key_hash.clone(),
                    team,
                    state: Mutex::new(KeyState {
                        allowance: Allowance::default(),
                        user_id: None,
                        expires_at: None,
                    }),
                });
                index.keys_by_hash.insert(row.key_hash.clone(), key.clone());
                index.keys_by_id.insert(row.key_id.clone(), key.clone());
                key
            }
        };
        drop(index);
        let mut state = key.lock();
        state
            .allowance
            .configure(row.into(), with_spend.then_some(row.spend));
        state.user_id = row.user_id.clone();
        state.expires_at = row.expires_at;
    }

    pub fn remove_key(&self, key_id: &str) {
        let mut index = self.write();
        if let Some(key) = index.keys_by_id.remove(key_id) {
            index.keys_by_hash.remove(&key.key_hash);
        }
    }

    pub fn key_by_hash(&self, hash: &str) -> Option<Arc<KeyLive>> {
        self.read().keys_by_hash.get(hash).cloned()
    }

    /// A team's live spend and next reset: ahead of the database by up to one flush.
    pub fn team_budget(&self, team_id: &str) -> Option<(i64, Option<i64>)> {
        let team = self.read().teams.get(team_id).cloned()?;
        let a = team.lock();
        Some((a.spend, a.budget_reset_at))
    }

    /// A key's live spend and next reset.
    pub fn key_budget(&self, key_id: &str) -> Option<(i64, Option<i64>)> {
        let key = self.read().keys_by_id.get(key_id).cloned()?;
        let s = key.lock();
        Some((s.allowance.spend, s.allowance.budget_reset_at))
    }

    /// The checks of the request path, in LiteLLM's order; on success the request's maximum
    /// cost and tokens are reserved and one request is counted.
    pub fn admit(
        &self,
        key: &Arc<KeyLive>,
        model: &str,
        estimate: Estimate,
    ) -> Result<Ticket, Box<Refusal>> {
        let now_ms = self.clock.now_ms();
        let now = now_ms.div_euclid(1000);
        let mut k = key.lock();
        let mut team = key.team.lock();
        let team_id = &key.team.team_id;
        let refuse = |status, kind, message: String| {
            Box::new(Refusal {
                status,
                kind,
                message,
                rate: None,
            })
        };
        if k.allowance.blocked {
            return Err(refuse(
                401,
                "auth_error",
                "This key is blocked; ask your admin to unblock it.".into(),
            ));
        }
        if k.expires_at.is_some_and(|at| at * 1000 <= now_ms) {
            return Err(refuse(
                401,
                "expired_key",
                "This key has expired; ask your admin for a new one.".into(),
            ));
        }
        if !k.allowance.allows_model(model) {
            return Err(refuse(
                401,
                "key_model_access_denied",
                format!(
                    "This key may not use model={model}. Allowed: {}",
                    k.allowance.models.join(", ")
                ),
            ));
        }
        if !team.allows_model(model) {
            return Err(refuse(
                401,
                "team_model_access_denied",
                format!(
                    "Team={team_id} may not use model={model}. Allowed: {}",
                    team.models.join(", ")
                ),
            ));
        }
        if team.blocked {
            return Err(refuse(
                401,
                "auth_error",
                format!("Team={team_id} is blocked; ask your admin to unblock it."),
            ));
        }
        let budget_message = |scope: &str, (spend, max): (i64, i64)| {
            format!(
                "Budget has been exceeded! {scope} Current cost: {}, Max budget: {}",
                crate::service::money::nanos_to_usd(spend),
                crate::service::money::nanos_to_usd(max)
            )
        };
        if let Some(over) = k.allowance.over_budget() {
            return Err(refuse(
                400,
                "budget_exceeded",
                budget_message(&format!("Key={}", key.key_id), over),
            ));
        }
        if let Some(over) = team.over_budget() {
            return Err(refuse(
                400,
                "budget_exceeded",
                budget_message(&format!("Team={team_id}"), over),
            ));
        }
        let mut rate = RateInfo::default();
        for (scope, a) in [
            (format!("key: {}", key.key_id), &k.allowance),
            (format!("team: {team_id}"), &*team),
        ] {
            let requests = a.requests.total(now);
            if let Some(limit) = a.rpm_limit.filter(|limit| requests >= *limit) {
                return Err(rate_limited(
                    &scope,
                    "requests",
                    limit,
                    requests,
                    a.requests.retry_after(now, limit, 0),
                ));
            }
            let tokens = a.tokens.total(now) + a.tokens_reserved;
            if let Some(limit) = a.tpm_limit.filter(|limit| tokens >= *limit) {
                let retry = a.tokens.retry_after(now, limit, a.tokens_reserved);
                return Err(rate_limited(&scope, "tokens", limit, tokens, retry));
            }
            rate.tighten(a.rpm_limit, requests + 1, false);
            rate.tighten(a.tpm_limit, tokens, true);
        }
        for a in [&mut k.allowance, &mut *team] {
            a.reserved += estimate.cost;
            a.tokens_reserved += estimate.tokens;
            a.requests.add(now, 1);
        }
        drop(team);
        drop(k);
        Ok(Ticket {
            key: key.clone(),
            estimate,
            clock: self.clock.clone(),
            rate,
            settled: false,
        })
    }

    /// Models a key may use among `served`: its list within its team's.
    pub fn allowed_models(&self, key: &KeyLive, served: &[String]) -> Vec<String> {
        let k = key.lock();
        let team = key.team.lock();
        served
            .iter()
            .filter(|m| k.allowance.allows_model(m) && team.allows_model(m))
            .cloned()
            .collect()
    }

    /// Resets every budget whose window has passed and notes it for the spend writer;
    /// returns how many teams and keys were reset. Running it again in the same second finds
    /// nothing due, so it never erases spend of the new window.
    pub fn reset_due_budgets(&self) -> (usize, usize) {
        let now = self.clock.now_secs();
        let (teams, keys): (Vec<_>, Vec<_>) = {
            let index = self.read();
            (
                index.teams.values().cloned().collect(),
                index.keys_by_id.values().cloned().collect(),
            )
        };
        let teams: Vec<String> = teams
            .iter()
            .filter(|t| t.lock().reset_if_due(now))
            .map(|t| t.team_id.clone())
            .collect();
        let keys: Vec<String> = keys
            .iter()
            .filter(|k| k.lock().allowance.reset_if_due(now))
            .map(|k| k.key_id.clone())
            .collect();
        let counts = (teams.len(), keys.len());
        let mut resets = lock(&self.resets);
        resets.0.extend(teams);
        resets.1.extend(keys);
        counts
    }

    /// The team and key ids reset since the last call.
    pub fn take_resets(&self) -> (Vec<String>, Vec<String>) {
        std::mem::take(&mut *lock(&self.resets))
    }
}

fn rate_limited(scope: &str, kind: &str, limit: u64, used: u64, retry_after: u64) -> Box<Refusal> {
    let mut rate = RateInfo {
        retry_after: Some(retry_after),
        ..RateInfo::default()
    };
    rate.tighten(Some(limit), used.max(limit), kind == "tokens");
    Box::new(Refusal {
        status: 429,
        kind: "rate_limit_error",
        message: format!(
            "Rate limit exceeded for {scope}. Limit type: {kind}. Current limit: {limit}, Remaining: 0. Retry after {retry_after} s."
        ),
        rate: Some(Box::new(rate)),
    })
}
