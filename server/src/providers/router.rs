//! Which deployment of a group answers a request, as LiteLLM's router picks: by the configured
//! strategy among those not cooling down, each deployment's `rpm`/`tpm` held by admission (so
//! a fleet shares them), failures counted per minute and a deployment that fails more than
//! `allowed_fails` times (or is refused by its provider's rate limit, key or route) skipped for
//! `cooldown_time` — by every instance of a fleet, told through the change notices.
//! A group of one deployment is never cooled down: skipping it would only turn failures into
//! refusals.

use super::{call::UpstreamError, Deployment, Group, Models, Strategy};
use crate::{
    gate::{
        admission::{Admission, Denial, Estimate, Level, LevelId, LevelKind, Limits, Reservation},
        clock::Clock,
    },
    money::{Nanos, Picos},
    notices::Notices,
};
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

/// Errors remembered per deployment, for `/health/deployments`.
const RECENT_ERRORS: usize = 10;

/// Weight of a new latency in the running average (of 8).
const LATENCY_WEIGHT: u64 = 2;

/// One remembered failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentError {
    pub at_ms: i64,
    /// The status the failure stands for (502 when there was none).
    pub status: u16,
    pub message: String,
}

#[derive(Default)]
struct Fails {
    /// The minute counted (ms since the epoch / 60,000) and its failures.
    minute: i64,
    count: u32,
    recent: VecDeque<RecentError>,
}

#[derive(Default)]
struct Usage {
    minute: i64,
    requests: u64,
    tokens: u64,
}

/// What one instance knows of a deployment's health and load.
#[derive(Default)]
struct Health {
    in_flight: AtomicU64,
    /// Running average in microseconds; 0 until the first answer.
    latency_us: AtomicU64,
    cooling_until_ms: AtomicI64,
    fails: Mutex<Fails>,
    usage: Mutex<Usage>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why no deployment of a group could take a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// Every deployment is cooling down; seconds until the first is back.
    Cooling { retry_after: u64 },
    /// Every deployment is at its `rpm`/`tpm`; seconds until one has room.
    AtLimit { retry_after: u64 },
    /// Admission's counters could not be reached.
    Unreachable(Denial),
}

/// A deployment picked for one try: counted as busy, and holding its share of the
/// deployment's `rpm`/`tpm` until settled or dropped.
pub struct Pick {
    pub deployment: Arc<Deployment>,
    slot: Option<Reservation>,
    router: Arc<Router>,
}

impl Pick {
    /// The try is over: `tokens` used (0 when it failed).
    pub async fn settle(mut self, tokens: u64) {
        self.router.used(&self.deployment, tokens);
        if let Some(slot) = self.slot.take() {
            if tokens == 0 {
                slot.release().await;
            } else {
                slot.settle(Nanos::ZERO, tokens).await;
            }
        }
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        self.router.health[self.deployment.index]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// A deployment's state, as `/health/deployments` shows it.
#[derive(Debug, Clone)]
pub struct DeploymentState {
    pub deployment: Arc<Deployment>,
    pub cooling_until_ms: Option<i64>,
    pub in_flight: u64,
    pub latency_ms: Option<f64>,
    pub recent_errors: Vec<RecentError>,
}

pub struct Router {
    models: Arc<Models>,
    health: Vec<Health>,
    clock: Clock,
    admission: Arc<dyn Admission>,
    fleet: Arc<dyn Notices>,
}

impl Router {
    pub fn new(
        models: Arc<Models>,
        clock: Clock,
        admission: Arc<dyn Admission>,
        fleet: Arc<dyn Notices>,
    ) -> Arc<Self> {
        let health = models
            .deployments()
            .iter()
            .map(|_| Health::default())
            .collect();
        Arc::new(Self {
            models,
            health,
            clock,
            admission,
            fleet,
        })
    }

    pub fn models(&self) -> &Arc<Models> {
        &self.models
    }

    fn cooling_until(&self, deployment: &Deployment, now_ms: i64) -> Option<i64> {
        let until = self.health[deployment.index]
            .cooling_until_ms
            .load(Ordering::Relaxed);
        (until > now_ms).then_some(until)
    }

    /// The group's deployments in the order the strategy tries them: those not cooling down,
    /// those this request already tried last.
    fn order(&self, group: &Group, tried: &[usize], now_ms: i64) -> Result<Vec<usize>, u64> {
        let all = &group.deployments;
        if all.len() == 1 {
            return Ok(vec![all[0].index]);
        }
        let mut ready: Vec<&Arc<Deployment>> = all
            .iter()
            .filter(|d| self.cooling_until(d, now_ms).is_none())
            .collect();
        if ready.is_empty() {
            let first_back = all
                .iter()
                .filter_map(|d| self.cooling_until(d, now_ms))
                .min()
                .unwrap_or(now_ms);
            return Err(seconds_until(first_back, now_ms));
        }
        let health = |d: &Deployment| &self.health[d.index];
        match self.models.settings.strategy {
            Strategy::SimpleShuffle => shuffle(&mut ready),
            Strategy::LeastBusy => {
                fastrand::shuffle(&mut ready);
                ready.sort_by_key(|d| health(d).in_flight.load(Ordering::Relaxed));
            }
            Strategy::LatencyBased => {
                fastrand::shuffle(&mut ready);
                ready.sort_by_key(|d| health(d).latency_us.load(Ordering::Relaxed));
            }
            Strategy::UsageBased => {
                fastrand::shuffle(&mut ready);
                let minute = now_ms.div_euclid(60_000);
                ready.sort_by_key(|d| {
                    let usage = lock(&health(d).usage);
                    if usage.minute == minute {
                        usage.tokens
                    } else {
                        0
                    }
                });
            }
            Strategy::CostBased => {
                fastrand::shuffle(&mut ready);
                ready.sort_by_key(|d| {
                    d.spec
                        .price
                        .dearest_input()
                        .saturating_add(d.spec.price.dearest_output())
                });
            }
        }
        // Stable: the strategy's order holds within the untried and the tried.
        ready.sort_by_key(|d| tried.contains(&d.index));
        Ok(ready.into_iter().map(|d| d.index).collect())
    }

    /// A deployment of `group` for the next try, with room under its `rpm`/`tpm`. `estimate`
    /// is the request's (its prices are not used here: a deployment has no budget).
    pub async fn pick(
        self: &Arc<Self>,
        group: &Group,
        tried: &[usize],
        estimate: &Estimate,
    ) -> Result<Pick, Unavailable> {
        let now_ms = self.clock.now_ms();
        let order = self
            .order(group, tried, now_ms)
            .map_err(|retry_after| Unavailable::Cooling { retry_after })?;
        let usage = Estimate {
            prompt_picos: Picos::ZERO,
            output_picos: Picos::ZERO,
            lowerable: false,
            ..*estimate
        };
        let mut soonest: Option<u64> = None;
        for index in order {
            let deployment = self.models.deployments()[index].clone();
            let slot = if deployment.rpm.is_some() || deployment.tpm.is_some() {
                let level = Level {
                    id: LevelId::new(LevelKind::Deployment, &deployment.id),
                    limits: Limits {
                        rpm_limit: deployment.rpm,
                        tpm_limit: deployment.tpm,
                        ..Limits::default()
                    },
                    window: 0,
                };
                match self.admission.admit(&[level], &usage).await {
                    Ok(grant) => Some(Reservation::new(grant, self.admission.clone())),
                    Err(Denial::RateLimited { retry_after, .. }) => {
                        soonest = Some(soonest.map_or(retry_after, |s| s.min(retry_after)));
                        continue;
                    }
                    Err(denial) => return Err(Unavailable::Unreachable(denial)),
                }
            } else {
                None
            };
            let health = &self.health[index];
            health.in_flight.fetch_add(1, Ordering::Relaxed);
            {
                let minute = now_ms.div_euclid(60_000);
                let mut usage = lock(&health.usage);
                if usage.minute != minute {
                    *usage = Usage {
                        minute,
                        ..Usage::default()
                    };
                }
                usage.requests += 1;
            }
            return Ok(Pick {
                deployment,
                slot,
                router: self.clone(),
            });
        }
        Err(Unavailable::AtLimit {
            retry_after: soonest.unwrap_or(1).max(1),
        })
    }

    fn used(&self, deployment: &Deployment, tokens: u64) {
        let mut usage = lock(&self.health[deployment.index].usage);
        if usage.minute == self.clock.now_ms().div_euclid(60_000) {
            usage.tokens = usage.tokens.saturating_add(tokens);
        }
    }

    /// A try answered after `latency`.
    pub fn succeeded(&self, deployment: &Deployment, latency: Duration) {
        let sample = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let cell = &self.health[deployment.index].latency_us;
        let old = cell.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old.saturating_mul(8 - LATENCY_WEIGHT))
                .saturating_add(sample.saturating_mul(LATENCY_WEIGHT))
                / 8
        };
        cell.store(new, Ordering::Relaxed);
    }

    /// A try failed: remembered, counted, and the deployment cooled down when it has failed
    /// too often (or its provider refused it for its rate, its key or its route).
    pub async fn failed(&self, deployment: &Deployment, err: &UpstreamError, status: u16) {
        if matches!(err, UpstreamError::Rejected { .. }) {
            return; // the request's fault, not the deployment's
        }
        let now_ms = self.clock.now_ms();
        let minute = now_ms.div_euclid(60_000);
        let count = {
            let mut fails = lock(&self.health[deployment.index].fails);
            if fails.minute != minute {
                fails.minute = minute;
                fails.count = 0;
            }
            fails.count = fails.count.saturating_add(1);
            if fails.recent.len() == RECENT_ERRORS {
                fails.recent.pop_front();
            }
            fails.recent.push_back(RecentError {
                at_ms: now_ms,
                status,
                message: super::call::describe(err),
            });
            fails.count
        };
        // As LiteLLM: the provider's rate limit, key or route refused cools at once; anything
        // else (timeouts too) counts toward `allowed_fails`.
        let immediate = matches!(
            err,
            UpstreamError::RateLimited { .. }
                | UpstreamError::Failed {
                    status: 401 | 404 | 408
                }
        );
        let settings = &self.models.settings;
        let alone = self
            .models
            .group(&deployment.model_name)
            .is_none_or(|g| g.deployments.len() < 2);
        if alone || !(immediate || count > settings.allowed_fails) {
            return;
        }
        let cooldown = i64::try_from(settings.cooldown_time.as_millis()).unwrap_or(i64::MAX);
        let until = now_ms.saturating_add(cooldown);
        self.cool(&deployment.id, until);
        tracing::warn!(
            model = %deployment.model_name,
            model_id = %deployment.id,
            failures = count,
            cooldown_ms = cooldown,
            "deployment cooling down"
        );
        self.fleet.cooldown(&deployment.id, until).await;
    }

    /// Cools a deployment down until `until_ms` (this instance's decision or the fleet's), at
    /// most `cooldown_time` from now whatever a notice says.
    pub fn cool(&self, deployment_id: &str, until_ms: i64) {
        let longest = i64::try_from(self.models.settings.cooldown_time.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_add(self.clock.now_ms());
        let until_ms = until_ms.min(longest);
        if let Some(d) = self
            .models
            .deployments()
            .iter()
            .find(|d| d.id == deployment_id)
        {
            self.health[d.index]
                .cooling_until_ms
                .fetch_max(until_ms, Ordering::Relaxed);
        }
    }

    /// Every deployment's state now.
    pub fn states(&self) -> Vec<DeploymentState> {
        let now_ms = self.clock.now_ms();
        self.models
            .deployments()
            .iter()
            .map(|d| {
                let health = &self.health[d.index];
                let latency = health.latency_us.load(Ordering::Relaxed);
                DeploymentState {
                    deployment: d.clone(),
                    cooling_until_ms: self.cooling_until(d, now_ms),
                    in_flight: health.in_flight.load(Ordering::Relaxed),
                    latency_ms: (latency > 0).then(|| latency as f64 / 1000.0),
                    recent_errors: lock(&health.fails).recent.iter().cloned().collect(),
                }
            })
            .collect()
    }
}

fn seconds_until(at_ms: i64, now_ms: i64) -> u64 {
    u64::try_from(at_ms.saturating_sub(now_ms).max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

/// Orders deployments at random, each first with a chance proportional to its weight (then
/// `rpm`, then `tpm`, as LiteLLM reads them; equal when none is set): weighted sampling without
/// replacement (Efraimidis–Spirakis).
fn shuffle(deployments: &mut Vec<&Arc<Deployment>>) {
    let weight: fn(&Deployment) -> Option<f64> = if deployments.iter().any(|d| d.weight.is_some()) {
        |d| d.weight
    } else if deployments.iter().any(|d| d.rpm.is_some()) {
        |d| d.rpm.map(|r| r as f64)
    } else if deployments.iter().any(|d| d.tpm.is_some()) {
        |d| d.tpm.map(|t| t as f64)
    } else {
        |_| Some(1.0)
    };
    let mut keyed: Vec<(f64, &Arc<Deployment>)> = deployments
        .drain(..)
        .map(|d| {
            let w = weight(d).unwrap_or(1.0).max(f64::MIN_POSITIVE);
            // u^(1/w), largest first; u in (0, 1].
            let u: f64 = 1.0 - fastrand::f64();
            (u.ln() / w, d)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    deployments.extend(keyed.into_iter().map(|(_, d)| d));
}
