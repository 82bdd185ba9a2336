//! The request path's view of keys and teams: each one's models, block, expiry, limits and
//! budget period, in memory. The admin API updates it before it answers, so a block, unblock,
//! update or delete holds from the very next request. It answers "may this key use this
//! model?" and hands admission the chain of levels whose budgets and limits it checks; the
//! counters themselves live behind [`admission::Admission`].

pub mod admission;
pub mod clock;
pub mod local;
pub mod window;

use crate::{
    service::duration::Period,
    storage::{KeyRow, TeamRow},
};
use admission::{Admission, Denial, Level, LevelId, LevelKind, Limits};
use clock::Clock;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock, RwLockReadGuard},
};

/// What any level holds: the models it allows, its block, its budget and limits.
#[derive(Debug, Default, Clone)]
struct LevelConfig {
    models: Vec<String>,
    blocked: bool,
    limits: Limits,
    period: Option<Period>,
    reset_at: Option<i64>,
}

impl LevelConfig {
    #[allow(clippy::too_many_arguments)]
    fn new(
        models: &[String],
        blocked: bool,
        max_budget: Option<i64>,
        rpm_limit: Option<i64>,
        tpm_limit: Option<i64>,
        budget_duration: Option<&str>,
        reset_at: Option<i64>,
    ) -> Self {
        Self {
            models: models.to_vec(),
            blocked,
            limits: Limits {
                max_budget,
                rpm_limit: rpm_limit.and_then(|v| u64::try_from(v).ok()),
                tpm_limit: tpm_limit.and_then(|v| u64::try_from(v).ok()),
            },
            period: budget_duration.and_then(|d| Period::parse("budget_duration", d).ok()),
            reset_at,
        }
    }

    fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }

    /// Moves to the next window when this one has ended; true when it did.
    fn reset_if_due(&mut self, now_secs: i64) -> bool {
        match (self.reset_at, self.period) {
            (Some(at), Some(period)) if at <= now_secs => {
                let now = chrono::DateTime::from_timestamp(now_secs, 0).unwrap_or_default();
                self.reset_at = Some(period.next_reset(now).timestamp());
                true
            }
            _ => false,
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding the lock leaves plain values behind: keep serving.
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct TeamEntry {
    pub team_id: String,
    pub level: LevelId,
    config: RwLock<LevelConfig>,
}

struct KeyConfig {
    level: LevelConfig,
    user_id: Option<String>,
    expires_at: Option<i64>,
}

pub struct KeyEntry {
    pub key_id: String,
    pub key_hash: String,
    pub level: LevelId,
    pub team: Arc<TeamEntry>,
    config: RwLock<KeyConfig>,
}

impl KeyEntry {
    pub fn user_id(&self) -> Option<String> {
        read(&self.config).user_id.clone()
    }
}

#[derive(Default)]
struct Index {
    teams: HashMap<String, Arc<TeamEntry>>,
    keys_by_hash: HashMap<String, Arc<KeyEntry>>,
    keys_by_id: HashMap<String, Arc<KeyEntry>>,
}

pub struct Gate {
    index: RwLock<Index>,
    /// Ids of teams and keys whose budget was reset since the spend writer last looked.
    resets: Mutex<(Vec<String>, Vec<String>)>,
    pub admission: Arc<dyn Admission>,
    pub clock: Clock,
}

impl Gate {
    pub fn new(clock: Clock, admission: Arc<dyn Admission>) -> Self {
        Self {
            index: RwLock::new(Index::default()),
            resets: Mutex::new((Vec::new(), Vec::new())),
            admission,
            clock,
        }
    }

    /// Loads everything from storage at start, spend included.
    pub async fn load(&self, teams: &[TeamRow], keys: &[KeyRow]) {
        for team in teams {
            self.put_team(team, true).await;
        }
        for key in keys {
            self.put_key(key, true).await;
        }
    }

    /// Creates or reconfigures a team. Spend is taken from the row only when `with_spend`
    /// (a new team, or the first load): the live counters are ahead of the database.
    pub async fn put_team(&self, row: &TeamRow, with_spend: bool) {
        let config = LevelConfig::new(
            &row.models,
            row.blocked,
            row.max_budget,
            row.rpm_limit,
            row.tpm_limit,
            row.budget_duration.as_deref(),
            row.budget_reset_at,
        );
        let team = {
            let mut index = write(&self.index);
            index
                .teams
                .entry(row.team_id.clone())
                .or_insert_with(|| {
                    Arc::new(TeamEntry {
                        team_id: row.team_id.clone(),
                        level: LevelId::new(LevelKind::Team, &row.team_id),
                        config: RwLock::new(LevelConfig::default()),
                    })
                })
                .clone()
        };
        *write(&team.config) = config;
        if with_spend {
            self.admission.load(&team.level, row.spend).await;
        }
    }

    pub async fn remove_team(&self, team_id: &str) {
        let removed: Vec<LevelId> = {
            let mut index = write(&self.index);
            let mut removed: Vec<LevelId> = index
                .keys_by_id
                .values()
                .filter(|k| k.team.team_id == team_id)
                .map(|k| k.level.clone())
                .collect();
            index.keys_by_hash.retain(|_, k| k.team.team_id != team_id);
            index.keys_by_id.retain(|_, k| k.team.team_id != team_id);
            if let Some(team) = index.teams.remove(team_id) {
                removed.push(team.level.clone());
            }
            removed
        };
        for level in &removed {
            self.admission.forget(level).await;
        }
    }

    pub async fn put_key(&self, row: &KeyRow, with_spend: bool) {
        let config = KeyConfig {
            level: LevelConfig::new(
                &row.models,
                row.blocked,
                row.max_budget,
                row.rpm_limit,
                row.tpm_limit,
                row.budget_duration.as_deref(),
                row.budget_reset_at,
            ),
            user_id: row.user_id.clone(),
            expires_at: row.expires_at,
        };
        let key = {
            let mut index = write(&self.index);
            match index.keys_by_id.get(&row.key_id).cloned() {
                Some(key) => key,
                None => {
                    let Some(team) = index.teams.get(&row.team_id).cloned() else {
                        tracing::error!(key_id = %row.key_id, "key without a team in memory");
                        return;
                    };
                    let key = Arc::new(KeyEntry {
                        key_id: row.key_id.clone(),
                        key_hash: row.key_hash.clone(),
                        level: LevelId::new(LevelKind::Key, &row.key_id),
                        team,
                        config: RwLock::new(KeyConfig {
                            level: LevelConfig::default(),
                            user_id: None,
                            expires_at: None,
                        }),
                    });
                    index.keys_by_hash.insert(row.key_hash.clone(), key.clone());
                    index.keys_by_id.insert(row.key_id.clone(), key.clone());
                    key
                }
            }
        };
        *write(&key.config) = config;
        if with_spend {
            self.admission.load(&key.level, row.spend).await;
        }
    }

    pub async fn remove_key(&self, key_id: &str) {
        let removed = {
            let mut index = write(&self.index);
            let key = index.keys_by_id.remove(key_id);
            if let Some(key) = &key {
                index.keys_by_hash.remove(&key.key_hash);
            }
            key
        };
        if let Some(key) = removed {
            self.admission.forget(&key.level).await;
        }
    }

    pub fn key_by_hash(&self, hash: &str) -> Option<Arc<KeyEntry>> {
        read(&self.index).keys_by_hash.get(hash).cloned()
    }

    /// The checks that need no counters, in the README's order: the key's block and expiry,
    /// the key's and the team's models (when a model is named), the team's block. Answers the
    /// chain of levels admission then checks: the key, then its team.
    pub fn authorize(&self, key: &KeyEntry, model: Option<&str>) -> Result<Vec<Level>, Denial> {
        let now_ms = self.clock.now_ms();
        let k = read(&key.config);
        let team = read(&key.team.config);
        if k.level.blocked {
            return Err(Denial::KeyBlocked);
        }
        if k.expires_at
            .is_some_and(|at| at.saturating_mul(1000) <= now_ms)
        {
            return Err(Denial::KeyExpired);
        }
        if let Some(model) = model {
            for (level, config) in [(&key.level, &k.level), (&key.team.level, &*team)] {
                if !config.allows_model(model) {
                    return Err(Denial::ModelNotAllowed {
                        level: level.clone(),
                        model: model.to_string(),
                        allowed: config.models.clone(),
                    });
                }
            }
        }
        if team.blocked {
            return Err(Denial::Blocked {
                level: key.team.level.clone(),
            });
        }
        Ok(vec![
            Level {
                id: key.level.clone(),
                limits: k.level.limits,
            },
            Level {
                id: key.team.level.clone(),
                limits: team.limits,
            },
        ])
    }

    /// Models a key may use among `served`: its list within its team's.
    pub fn allowed_models(&self, key: &KeyEntry, served: &[String]) -> Vec<String> {
        let k = read(&key.config);
        let team = read(&key.team.config);
        served
            .iter()
            .filter(|m| k.level.allows_model(m) && team.allows_model(m))
            .cloned()
            .collect()
    }

    /// A team's or key's live spend and next reset: ahead of the database by up to one flush.
    pub async fn budget(&self, kind: LevelKind, id: &str) -> Option<(i64, Option<i64>)> {
        let (level, reset_at) = {
            let index = read(&self.index);
            match kind {
                LevelKind::Team => {
                    let team = index.teams.get(id)?;
                    (team.level.clone(), read(&team.config).reset_at)
                }
                LevelKind::Key => {
                    let key = index.keys_by_id.get(id)?;
                    (key.level.clone(), read(&key.config).level.reset_at)
                }
            }
        };
        let spend = self.admission.spend(&level).await.unwrap_or(0);
        Some((spend, reset_at))
    }

    /// Starts a new window for every budget whose window has passed and notes it for the spend
    /// writer; returns how many teams and keys were reset. Running it again in the same second
    /// finds nothing due, so it never erases spend of the new window.
    pub async fn reset_due_budgets(&self) -> (usize, usize) {
        let now = self.clock.now_secs();
        let (teams, keys): (Vec<_>, Vec<_>) = {
            let index = read(&self.index);
            (
                index.teams.values().cloned().collect(),
                index.keys_by_id.values().cloned().collect(),
            )
        };
        let mut team_ids = Vec::new();
        for team in teams {
            if write(&team.config).reset_if_due(now) {
                self.admission.reset(&team.level).await;
                team_ids.push(team.team_id.clone());
            }
        }
        let mut key_ids = Vec::new();
        for key in keys {
            if write(&key.config).level.reset_if_due(now) {
                self.admission.reset(&key.level).await;
                key_ids.push(key.key_id.clone());
            }
        }
        let counts = (team_ids.len(), key_ids.len());
        let mut resets = self
            .resets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        resets.0.extend(team_ids);
        resets.1.extend(key_ids);
        counts
    }

    /// The team and key ids reset since the last call.
    pub fn take_resets(&self) -> (Vec<String>, Vec<String>) {
        std::mem::take(
            &mut *self
                .resets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}
