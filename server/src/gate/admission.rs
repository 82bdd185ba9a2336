//! Admission: may this request go, given the budgets and rate limits of every level on its
//! chain (its key, its team, and the levels to come)? One interface, picked at start like
//! storage: [`super::local::LocalAdmission`] keeps the counters in this process,
//! [`super::redis::RedisAdmission`] in Redis, shared by a fleet.
//!
//! The contract every backend keeps, for every level `L` of the chain, atomically for all of
//! them: `spend(L) + reserved(L) + cost ≤ max_budget(L)`, where `cost` is the request's
//! reservation, a true upper bound of what it can cost. Settling moves at most the reservation
//! into spend, so spend never passes a budget.

use super::window::RateKind;
use crate::{
    money::{Nanos, Picos},
    storage::BudgetOwner,
};
use async_trait::async_trait;
use std::sync::Arc;

/// What kind of budget holder a level is. The order is the order levels are locked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LevelKind {
    Key,
    Member,
    Team,
    Organization,
    User,
    /// One deployment of a model: its `rpm`/`tpm` only (see `providers::router`).
    Deployment,
}

impl LevelKind {
    /// How messages name it (LiteLLM's `Key=…`, `Team=…`, `User=…`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Key => "Key",
            Self::Member => "Member",
            Self::Team => "Team",
            Self::Organization => "Organization",
            Self::User => "User",
            Self::Deployment => "Deployment",
        }
    }

    /// The stored rows that hold this level's budget (a deployment has none).
    pub fn owner(self) -> Option<BudgetOwner> {
        Some(match self {
            Self::Key => BudgetOwner::Key,
            Self::Member => BudgetOwner::Member,
            Self::Team => BudgetOwner::Team,
            Self::Organization => BudgetOwner::Organization,
            Self::User => BudgetOwner::User,
            Self::Deployment => return None,
        })
    }

    pub fn of(owner: BudgetOwner) -> Self {
        match owner {
            BudgetOwner::Key => Self::Key,
            BudgetOwner::Member => Self::Member,
            BudgetOwner::Team => Self::Team,
            BudgetOwner::Organization => Self::Organization,
            BudgetOwner::User => Self::User,
        }
    }

    /// Its lowercase name, as metrics and Redis keys use it.
    pub fn name(self) -> &'static str {
        self.owner().map_or("deployment", BudgetOwner::name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LevelId {
    pub kind: LevelKind,
    pub id: Arc<str>,
}

impl LevelId {
    pub fn new(kind: LevelKind, id: &str) -> Self {
        Self {
            kind,
            id: Arc::from(id),
        }
    }
}

impl std::fmt::Display for LevelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.kind.label(), self.id)
    }
}

/// The budget and rate limits of one level: the same shape for every level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Per budget window.
    pub max_budget: Option<Nanos>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    /// Requests in flight at once.
    pub max_parallel: Option<u64>,
}

/// One level of a request's chain, with the limits it has now and the budget window it is in
/// (counted by resets; a backend that still counts an older window starts the new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub id: LevelId,
    pub limits: Limits,
    pub window: i64,
}

/// The most a request can cost and use, before it runs (see `service::estimate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub prompt_tokens: u64,
    /// The prompt at the dearest prompt price.
    pub prompt_picos: Picos,
    /// One more output token in every choice at the dearest output price.
    pub output_picos: Picos,
    /// Choices: each output token per choice counts this many times.
    pub choices: u64,
    /// Output tokens per choice the request may write: its own limit or the model's.
    pub output_tokens: u64,
    /// Output tokens per choice that come on top and cannot be lowered.
    pub extra_output_tokens: u64,
    /// Whether admission may lower `output_tokens` to fit what is left of a budget.
    pub lowerable: bool,
}

impl Estimate {
    fn picos(&self, output: u64) -> Picos {
        let per_choice = output.saturating_add(self.extra_output_tokens);
        self.prompt_picos
            .saturating_add(self.output_picos.times(per_choice))
    }

    /// The reservation (rounded up to a nano-dollar), with `output` tokens per choice.
    pub fn cost(&self, output: u64) -> Nanos {
        self.picos(output).to_nanos()
    }

    /// Tokens reserved against TPM limits, with `output` tokens per choice.
    pub fn tokens(&self, output: u64) -> u64 {
        let per_choice = output.saturating_add(self.extra_output_tokens);
        self.prompt_tokens
            .saturating_add(self.choices.saturating_mul(per_choice))
    }

    /// The most output tokens per choice whose reservation fits in `left`; `None` when not
    /// even the prompt fits.
    pub fn affordable(&self, left: Nanos) -> Option<u64> {
        let room = left.to_picos()?.checked_sub(self.picos(0))?;
        match room.fits(self.output_picos) {
            None => Some(u64::MAX),
            Some(tokens) => Some(u64::try_from(tokens).unwrap_or(u64::MAX)),
        }
    }
}

/// The rate limits a request ran into or stayed within, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateInfo {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
}

impl RateInfo {
    /// Keeps the tightest of the levels for each header.
    pub fn tighten(&mut self, limit: Option<u64>, used: u64, kind: RateKind) {
        let Some(limit) = limit else { return };
        let remaining = limit.saturating_sub(used);
        let (l, r) = match kind {
            RateKind::Tokens => (&mut self.limit_tokens, &mut self.remaining_tokens),
            RateKind::Requests => (&mut self.limit_requests, &mut self.remaining_requests),
            RateKind::Parallel => return,
        };
        if r.is_none_or(|current| remaining < current) {
            *l = Some(limit);
            *r = Some(remaining);
        }
    }
}

/// An admitted request's hold on every level of its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The chain's levels, each with the budget window the request was admitted in.
    pub levels: Vec<(LevelId, i64)>,
    /// Reserved at every level.
    pub cost: Nanos,
    /// Tokens reserved against every level's TPM limit.
    pub tokens: u64,
    /// Output tokens per choice the request may write.
    pub output_tokens: u64,
    /// Whether `output_tokens` is below what the request could have written (the tail of a
    /// budget): the gateway sends it upstream as the request's limit.
    pub lowered: bool,
    pub rate: RateInfo,
    /// The backend's handle on the reservation (Redis' lease id; 0 in process).
    pub lease: u64,
}

/// Why a request may not go: the directory's checks (block, expiry, models), then
/// admission's (budget, rate limits). The HTTP layer maps each to a status and `error.type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    KeyBlocked,
    KeyExpired,
    ModelNotAllowed {
        level: LevelId,
        model: String,
        allowed: Vec<String>,
    },
    Blocked {
        level: LevelId,
    },
    OverBudget {
        level: LevelId,
        spend: Nanos,
        max: Nanos,
        /// What the budget has left after the requests in flight.
        left: Nanos,
        /// The request's reservation with the output it asked for (or the model's limit).
        request_cost: Nanos,
    },
    RateLimited {
        level: LevelId,
        kind: RateKind,
        limit: u64,
        retry_after: u64,
    },
    /// Something admission needs could not be reached: nothing was checked, nothing reserved.
    Unavailable(Unreachable),
}

/// What could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// Redis, which holds a fleet's budgets, limits and reservations.
    SharedCounters,
    /// The database: it did not answer a key lookup, or (with strict durability) it cannot
    /// commit spend.
    Database,
}

/// A backend's account of the counters of the levels a request was charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Spend of each level of the grant, in its order, in the current window.
    pub spend: Vec<Nanos>,
}

#[async_trait]
pub trait Admission: Send + Sync {
    /// Checks every level's budget and rate limits and, only when all pass, reserves the
    /// request's cost and tokens and counts it at every level.
    async fn admit(&self, chain: &[Level], estimate: &Estimate) -> Result<Grant, Denial>;

    /// Moves the reservation into spend as `cost` (at most the reservation) and `tokens`.
    /// A level whose window was reset since admission is not charged in its new window.
    async fn settle(&self, grant: &Grant, cost: Nanos, tokens: u64) -> Settled;

    /// Gives the reservation back: the request cost nothing.
    async fn release(&self, grant: &Grant);

    /// Starts budget window `window` for `level` (spend from zero), unless it is there already.
    async fn reset(&self, level: &LevelId, window: i64);

    /// Storage's spend of a level in window `window` (at start, or for a new level). A backend
    /// that already counts that window keeps its own count: it is ahead of storage.
    async fn load(&self, level: &LevelId, spend: Nanos, window: i64);

    /// Drops a deleted level's counters.
    async fn forget(&self, level: &LevelId);

    /// A level's spend in its current window, when the backend has it.
    async fn spend(&self, level: &LevelId) -> Option<Nanos>;
}

/// A grant that is released if nobody settles it (a panic, a dropped task): the explicit
/// settle or release is the rule, this is the fallback.
pub struct Reservation {
    grant: Option<Grant>,
    admission: Arc<dyn Admission>,
}

impl Reservation {
    pub fn new(grant: Grant, admission: Arc<dyn Admission>) -> Self {
        Self {
            grant: Some(grant),
            admission,
        }
    }

    pub fn grant(&self) -> &Grant {
        self.grant
            .as_ref()
            .expect("a reservation holds its grant until settled")
    }

    pub async fn settle(mut self, cost: Nanos, tokens: u64) -> Settled {
        let grant = self.grant.take().expect("settled once");
        self.admission
            .settle(&grant, cost.min(grant.cost), tokens)
            .await
    }

    pub async fn release(mut self) {
        if let Some(grant) = self.grant.take() {
            self.admission.release(&grant).await;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(grant) = self.grant.take() {
            let admission = self.admission.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { admission.release(&grant).await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(prompt_picos: u128, output_picos: u128, output: u64) -> Estimate {
        Estimate {
            prompt_tokens: 10,
            prompt_picos: Picos(prompt_picos),
            output_picos: Picos(output_picos),
            choices: 1,
            output_tokens: output,
            extra_output_tokens: 0,
            lowerable: true,
        }
    }

    #[test]
    fn costs_round_up_and_never_wrap() {
        let e = estimate(1_500, 2_000, 3);
        assert_eq!(e.cost(3), Nanos(8)); // 7.5 nano-dollars, rounded up
        let huge = Estimate {
            output_picos: Picos(u128::MAX),
            choices: u64::MAX,
            ..estimate(u128::MAX, 1, u64::MAX)
        };
        assert_eq!(huge.cost(u64::MAX), Nanos::MAX);
        assert_eq!(huge.tokens(u64::MAX), u64::MAX);
    }

    #[test]
    fn affordable_output_fits_what_is_left() {
        let e = estimate(10_000, 3_000, 1000);
        // 10 nano-dollars of prompt, 3 an output token: (100 - 10) / 3 = 30 tokens.
        assert_eq!(e.affordable(Nanos(100)), Some(30));
        assert!(e.cost(30) <= Nanos(100) && e.cost(31) > Nanos(100));
        assert_eq!(e.affordable(Nanos(10)), Some(0));
        assert_eq!(e.affordable(Nanos(9)), None);
        assert_eq!(e.affordable(Nanos(-5)), None);
        assert_eq!(estimate(0, 0, 5).affordable(Nanos::ZERO), Some(u64::MAX));
    }
}
