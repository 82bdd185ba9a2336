//! Admission in this process's memory: one set of counters per level, each behind its own lock.
//! A request locks the levels of its chain in one global order (kind, then id), checks them all
//! and reserves on all of them before it lets go, so concurrent requests see each other's
//! reservations and no two can deadlock.

use super::{
    admission::{Admission, Denial, Estimate, Grant, Level, LevelId, RateInfo, Settled},
    clock::Clock,
    window::{RateKind, Window},
};
use crate::money::Nanos;
use async_trait::async_trait;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, RwLock},
};

#[derive(Debug, Default)]
struct Counters {
    /// Settled spend in the current window.
    spend: Nanos,
    /// Reservations of requests admitted and not yet settled.
    reserved: Nanos,
    /// Tokens of requests admitted and not yet settled.
    tokens_reserved: u64,
    /// Requests admitted and not yet settled.
    in_flight: u64,
    requests: Window,
    tokens: Window,
    /// The budget window `spend` belongs to: a settlement from another window is not added.
    window: i64,
    /// Whether `spend` has been set from storage or by a request (a level seen first by a
    /// request starts at zero).
    loaded: bool,
}

impl Counters {
    /// Moves to `window` when it is newer than the one counted: spend from zero.
    fn enter(&mut self, window: i64) {
        if window > self.window {
            self.window = window;
            self.spend = Nanos::ZERO;
        }
        self.loaded = true;
    }
}

pub struct LocalAdmission {
    levels: RwLock<HashMap<LevelId, Arc<Mutex<Counters>>>>,
    clock: Clock,
}

fn lock(counters: &Mutex<Counters>) -> MutexGuard<'_, Counters> {
    // A panic while holding the lock leaves plain counters behind: keep serving.
    counters
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LocalAdmission {
    pub fn new(clock: Clock) -> Self {
        Self {
            levels: RwLock::new(HashMap::new()),
            clock,
        }
    }

    fn counters(&self, level: &LevelId) -> Arc<Mutex<Counters>> {
        let found = self
            .levels
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(level)
            .cloned();
        found.unwrap_or_else(|| {
            self.levels
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(level.clone())
                .or_default()
                .clone()
        })
    }

    fn existing(&self, level: &LevelId) -> Option<Arc<Mutex<Counters>>> {
        self.levels
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(level)
            .cloned()
    }
}

#[async_trait]
impl Admission for LocalAdmission {
    async fn admit(&self, chain: &[Level], estimate: &Estimate) -> Result<Grant, Denial> {
        let now = self.clock.now_secs();
        let cells: Vec<_> = chain.iter().map(|level| self.counters(&level.id)).collect();
        let mut order: Vec<usize> = (0..chain.len()).collect();
        order.sort_by(|a, b| chain[*a].id.cmp(&chain[*b].id));
        order.dedup_by(|a, b| chain[*a].id == chain[*b].id);
        let mut guards: Vec<Option<MutexGuard<'_, Counters>>> =
            (0..chain.len()).map(|_| None).collect();
        for i in order {
            guards[i] = Some(lock(&cells[i]));
        }
        // A level listed twice is locked once: both positions read the same guard.
        let counters_at =
            |i: usize| -> usize { chain.iter().position(|l| l.id == chain[i].id).unwrap_or(i) };

        // Budgets: the output every level can afford, and the level that affords least.
        let wanted = estimate.output_tokens;
        let mut granted = wanted;
        let mut tightest: Option<(usize, Option<u64>)> = None;
        for (i, level) in chain.iter().enumerate() {
            let Some(max) = level.limits.max_budget else {
                continue;
            };
            let c = guards[counters_at(i)].as_ref().expect("locked");
            let left = max.saturating_sub(c.spend).saturating_sub(c.reserved);
            let affordable = estimate.affordable(left);
            let short = affordable.is_none_or(|out| out < wanted);
            if short && tightest.is_none_or(|(_, t)| affordable < t) {
                tightest = Some((i, affordable));
            }
            granted = granted.min(affordable.unwrap_or(0));
        }
        if let Some((i, affordable)) = tightest {
            let lowerable = estimate.lowerable && affordable.is_some_and(|out| out >= 1);
            if !lowerable {
                let c = guards[counters_at(i)].as_ref().expect("locked");
                let max = chain[i].limits.max_budget.unwrap_or(Nanos::ZERO);
                return Err(Denial::OverBudget {
                    level: chain[i].id.clone(),
                    spend: c.spend,
                    max,
                    left: max
                        .saturating_sub(c.spend)
                        .saturating_sub(c.reserved)
                        .max(Nanos::ZERO),
                    request_cost: estimate.cost(wanted),
                });
            }
        }

        // Rate limits, after budgets (LiteLLM's order); refused requests count for nothing.
        let mut rate = RateInfo::default();
        let tokens = estimate.tokens(granted);
        for (i, level) in chain.iter().enumerate() {
            let c = guards[counters_at(i)].as_ref().expect("locked");
            if let Some(limit) = level.limits.max_parallel.filter(|l| c.in_flight >= *l) {
                return Err(Denial::RateLimited {
                    level: level.id.clone(),
                    kind: RateKind::Parallel,
                    limit,
                    retry_after: 1,
                });
            }
            let requests = c.requests.total(now);
            if let Some(limit) = level.limits.rpm_limit.filter(|l| requests >= *l) {
                return Err(Denial::RateLimited {
                    level: level.id.clone(),
                    kind: RateKind::Requests,
                    limit,
                    retry_after: c.requests.retry_after(now, limit, 0),
                });
            }
            let used = c.tokens.total(now).saturating_add(c.tokens_reserved);
            if let Some(limit) = level.limits.tpm_limit.filter(|l| used >= *l) {
                return Err(Denial::RateLimited {
                    level: level.id.clone(),
                    kind: RateKind::Tokens,
                    limit,
                    retry_after: c.tokens.retry_after(now, limit, c.tokens_reserved),
                });
            }
            rate.tighten(level.limits.rpm_limit, requests + 1, RateKind::Requests);
            rate.tighten(level.limits.tpm_limit, used, RateKind::Tokens);
        }

        let cost = estimate.cost(granted);
        let mut levels = Vec::with_capacity(chain.len());
        for (i, level) in chain.iter().enumerate() {
            if counters_at(i) == i {
                let c = guards[i].as_mut().expect("locked");
                c.reserved = c.reserved.saturating_add(cost);
                c.tokens_reserved = c.tokens_reserved.saturating_add(tokens);
                c.in_flight = c.in_flight.saturating_add(1);
                c.requests.add(now, 1);
            }
            let window = guards[counters_at(i)].as_ref().expect("locked").window;
            levels.push((level.id.clone(), window));
        }
        Ok(Grant {
            levels,
            cost,
            tokens,
            output_tokens: granted,
            lowered: granted < wanted,
            rate,
            lease: 0,
        })
    }

    async fn settle(&self, grant: &Grant, cost: Nanos, tokens: u64) -> Settled {
        let now = self.clock.now_secs();
        let cost = cost.clamp(Nanos::ZERO, grant.cost);
        let mut spend = Vec::with_capacity(grant.levels.len());
        let mut seen: Vec<&LevelId> = Vec::with_capacity(grant.levels.len());
        for (level, window) in &grant.levels {
            let cell = self.counters(level);
            let mut c = lock(&cell);
            if !seen.contains(&level) {
                seen.push(level);
                c.reserved = c.reserved.saturating_sub(grant.cost).max(Nanos::ZERO);
                c.tokens_reserved = c.tokens_reserved.saturating_sub(grant.tokens);
                c.in_flight = c.in_flight.saturating_sub(1);
                c.tokens.add(now, tokens);
                if c.window == *window {
                    c.spend = c.spend.saturating_add(cost);
                }
            }
            spend.push(c.spend);
        }
        Settled { spend }
    }

    async fn release(&self, grant: &Grant) {
        let mut seen: Vec<&LevelId> = Vec::with_capacity(grant.levels.len());
        for (level, _) in &grant.levels {
            if seen.contains(&level) {
                continue;
            }
            seen.push(level);
            if let Some(cell) = self.existing(level) {
                let mut c = lock(&cell);
                c.reserved = c.reserved.saturating_sub(grant.cost).max(Nanos::ZERO);
                c.tokens_reserved = c.tokens_reserved.saturating_sub(grant.tokens);
                c.in_flight = c.in_flight.saturating_sub(1);
            }
        }
    }

    async fn reset(&self, level: &LevelId, window: i64) {
        let cell = self.counters(level);
        lock(&cell).enter(window);
    }

    async fn load(&self, level: &LevelId, spend: Nanos, window: i64) {
        let cell = self.counters(level);
        let mut c = lock(&cell);
        if !c.loaded || window > c.window {
            c.window = window;
            c.spend = spend;
            c.loaded = true;
        }
    }

    async fn forget(&self, level: &LevelId) {
        self.levels
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(level);
    }

    async fn spend(&self, level: &LevelId) -> Option<Nanos> {
        self.existing(level).map(|cell| lock(&cell).spend)
    }
}
