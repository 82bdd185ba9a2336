//! The request path's view of keys and teams: each one's models, block, expiry, limits and
//! budget period, in memory. The admin API updates it before it answers, so a block, unblock,
//! update or delete holds from the very next request. It answers "may this key use this
//! model?" and hands admission the chain of levels whose budgets and limits it checks; the
//! counters themselves live behind [`admission::Admission`].

pub mod admission;
pub mod clock;
pub mod local;
pub mod redis;
pub mod window;

use crate::{
    notices::{Change, Notices},
    service::duration::Period,
    storage::{Aliases, BudgetOwner, BudgetRow, KeyRow, TeamRow, UserRow},
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
    aliases: Aliases,
    blocked: bool,
    limits: Limits,
    period: Option<Period>,
    reset_at: Option<i64>,
    window: i64,
}

impl LevelConfig {
    fn new(models: &[String], aliases: &Aliases, blocked: bool, budget: &BudgetRow) -> Self {
        let limit = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
        Self {
            models: models.to_vec(),
            aliases: aliases.clone(),
            blocked,
            limits: Limits {
                max_budget: budget.max_budget,
                rpm_limit: limit(budget.rpm_limit),
                tpm_limit: limit(budget.tpm_limit),
                max_parallel: limit(budget.max_parallel_requests),
            },
            period: budget
                .budget_duration
                .as_deref()
                .and_then(|d| Period::parse("budget_duration", d).ok()),
            reset_at: budget.budget_reset_at,
            window: budget.budget_window,
        }
    }

    fn allows_model(&self, model: &str) -> bool {
        crate::service::model_list::allows(&self.models, model)
    }

    /// The reset due by `now_secs`: when the window ended and when the next one ends.
    fn due(&self, now_secs: i64) -> Option<(i64, i64)> {
        match (self.reset_at, self.period) {
            (Some(at), Some(period)) if at <= now_secs => {
                let now = chrono::DateTime::from_timestamp(now_secs, 0).unwrap_or_default();
                Some((at, period.next_reset(now).timestamp()))
            }
            _ => None,
        }
    }

    fn level(&self, id: &LevelId) -> Level {
        Level {
            id: id.clone(),
            limits: self.limits,
            window: self.window,
        }
    }
}

/// What the console follows live of a team or key (money in nano-USD, times in Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub spend: i64,
    pub max_budget: Option<i64>,
    pub reset_at: Option<i64>,
    pub blocked: bool,
}

/// A budget whose window has ended: storage resets it, once for the whole fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReset {
    pub owner: BudgetOwner,
    pub id: String,
    /// When the window ended (the row's `budget_reset_at`).
    pub due_at: i64,
    /// When the next one ends.
    pub next: i64,
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

/// A user: the budget, limits and models over all of the user's keys.
pub struct UserEntry {
    pub user_id: String,
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
    users: HashMap<String, Arc<UserEntry>>,
    keys_by_hash: HashMap<String, Arc<KeyEntry>>,
    keys_by_id: HashMap<String, Arc<KeyEntry>>,
}

/// Unknown keys remembered at most this long, and at most this many.
const UNKNOWN_KEY_MS: i64 = 10_000;
const UNKNOWN_KEYS: usize = 10_000;

pub struct Gate {
    index: RwLock<Index>,
    pub admission: Arc<dyn Admission>,
    pub clock: Clock,
    notices: Arc<dyn Notices>,
    /// Hashes of keys the database did not have, and until when that is believed: a flood of
    /// bogus keys costs one query each, not one per request.
    unknown: Mutex<HashMap<String, i64>>,
}

impl Gate {
    pub fn new(clock: Clock, admission: Arc<dyn Admission>, notices: Arc<dyn Notices>) -> Self {
        Self {
            index: RwLock::new(Index::default()),
            admission,
            clock,
            notices,
            unknown: Mutex::new(HashMap::new()),
        }
    }

    /// Tells the other instances that a team or key changed (after storage and this gate).
    pub async fn changed(&self, owner: BudgetOwner, id: &str) {
        if owner == BudgetOwner::Key {
            self.forget_unknown_keys();
        }
        self.notices
            .publish(&Change {
                owner,
                id: id.to_string(),
            })
            .await;
    }

    fn unknown(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.unknown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the database recently had no key with this hash.
    pub fn known_unknown(&self, hash: &str) -> bool {
        let now = self.clock.now_ms();
        self.unknown().get(hash).is_some_and(|until| *until > now)
    }

    pub fn remember_unknown(&self, hash: &str) {
        let now = self.clock.now_ms();
        let mut unknown = self.unknown();
        if unknown.len() >= UNKNOWN_KEYS {
            unknown.retain(|_, until| *until > now);
            if unknown.len() >= UNKNOWN_KEYS {
                unknown.clear();
            }
        }
        unknown.insert(hash.to_string(), now + UNKNOWN_KEY_MS);
    }

    /// A key was created somewhere: any hash may now be known.
    pub fn forget_unknown_keys(&self) {
        self.unknown().clear();
    }

    /// The ids of every team, user and key held.
    pub fn ids(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let index = read(&self.index);
        (
            index.teams.keys().cloned().collect(),
            index.users.keys().cloned().collect(),
            index.keys_by_id.keys().cloned().collect(),
        )
    }

    pub fn has_team(&self, team_id: &str) -> bool {
        read(&self.index).teams.contains_key(team_id)
    }

    pub fn has_user(&self, user_id: &str) -> bool {
        read(&self.index).users.contains_key(user_id)
    }

    /// Loads everything from storage at start, spend included.
    pub async fn load(&self, teams: &[TeamRow], users: &[UserRow], keys: &[KeyRow]) {
        for team in teams {
            self.put_team(team, true).await;
        }
        for user in users {
            self.put_user(user, true).await;
        }
        for key in keys {
            self.put_key(key, true).await;
        }
    }

    /// Creates or reconfigures a team. Spend is taken from the row only when `with_spend`
    /// (a new team, or the first load): the live counters are ahead of the database.
    pub async fn put_team(&self, row: &TeamRow, with_spend: bool) {
        let config = LevelConfig::new(&row.models, &row.aliases, row.blocked, &row.budget);
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
            let b = &row.budget;
            self.admission
                .load(&team.level, b.spend, b.budget_window)
                .await;
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

    /// Creates or reconfigures a user, as [`Self::put_team`] does a team.
    pub async fn put_user(&self, row: &UserRow, with_spend: bool) {
        let config = LevelConfig::new(&row.models, &Aliases::new(), false, &row.budget);
        let user = {
            let mut index = write(&self.index);
            index
                .users
                .entry(row.user_id.clone())
                .or_insert_with(|| {
                    Arc::new(UserEntry {
                        user_id: row.user_id.clone(),
                        level: LevelId::new(LevelKind::User, &row.user_id),
                        config: RwLock::new(LevelConfig::default()),
                    })
                })
                .clone()
        };
        *write(&user.config) = config;
        if with_spend {
            let b = &row.budget;
            self.admission
                .load(&user.level, b.spend, b.budget_window)
                .await;
        }
    }

    /// Drops a user and the user's keys.
    pub async fn remove_user(&self, user_id: &str) {
        let removed: Vec<LevelId> = {
            let mut index = write(&self.index);
            let owned = |k: &Arc<KeyEntry>| read(&k.config).user_id.as_deref() == Some(user_id);
            let mut removed: Vec<LevelId> = index
                .keys_by_id
                .values()
                .filter(|k| owned(k))
                .map(|k| k.level.clone())
                .collect();
            index.keys_by_hash.retain(|_, k| !owned(k));
            index.keys_by_id.retain(|_, k| !owned(k));
            if let Some(user) = index.users.remove(user_id) {
                removed.push(user.level.clone());
            }
            removed
        };
        for level in &removed {
            self.admission.forget(level).await;
        }
    }

    pub async fn put_key(&self, row: &KeyRow, with_spend: bool) {
        let config = KeyConfig {
            level: LevelConfig::new(&row.models, &row.aliases, row.blocked, &row.budget),
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
            let b = &row.budget;
            self.admission
                .load(&key.level, b.spend, b.budget_window)
                .await;
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

    /// The user a key belongs to, if any. (The key's lock is let go before the index is read:
    /// elsewhere the index is locked first.)
    fn user_of(&self, key: &KeyEntry) -> Option<Arc<UserEntry>> {
        let user_id = read(&key.config).user_id.clone()?;
        read(&self.index).users.get(&user_id).cloned()
    }

    /// The model served for the name a caller asked for: the key's alias for it, else its
    /// team's, else the name itself. Aliases never widen access: [`Self::authorize`] checks the
    /// model they resolve to.
    pub fn resolve_model(&self, key: &KeyEntry, model: &str) -> String {
        if let Some(served) = read(&key.config).level.aliases.get(model) {
            return served.clone();
        }
        if let Some(served) = read(&key.team.config).aliases.get(model) {
            return served.clone();
        }
        model.to_string()
    }

    /// The checks that need no counters, in the README's order: the key's block and expiry,
    /// the key's and the team's models (when a model is named), the team's block. Answers the
    /// chain of levels admission then checks: the key, then its team.
    pub fn authorize(&self, key: &KeyEntry, model: Option<&str>) -> Result<Vec<Level>, Denial> {
        let now_ms = self.clock.now_ms();
        let user = self.user_of(key);
        let k = read(&key.config);
        let team = read(&key.team.config);
        let user_config = user.as_ref().map(|u| read(&u.config));
        if k.level.blocked {
            return Err(Denial::KeyBlocked);
        }
        if k.expires_at
            .is_some_and(|at| at.saturating_mul(1000) <= now_ms)
        {
            return Err(Denial::KeyExpired);
        }
        if let Some(model) = model {
            let levels = [(&key.level, &k.level), (&key.team.level, &*team)];
            let user_level = user
                .as_ref()
                .zip(user_config.as_deref())
                .map(|(u, c)| (&u.level, c));
            for (level, config) in levels.into_iter().chain(user_level) {
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
        let mut chain = vec![k.level.level(&key.level), team.level(&key.team.level)];
        if let (Some(user), Some(config)) = (&user, &user_config) {
            chain.push(config.level(&user.level));
        }
        Ok(chain)
    }

    /// Models a key may use among `served`: its list within its team's and its user's.
    pub fn allowed_models(&self, key: &KeyEntry, served: &[String]) -> Vec<String> {
        let user = self.user_of(key);
        let k = read(&key.config);
        let team = read(&key.team.config);
        let user = user.as_ref().map(|u| read(&u.config));
        served
            .iter()
            .filter(|m| {
                k.level.allows_model(m)
                    && team.allows_model(m)
                    && user.as_ref().is_none_or(|u| u.allows_model(m))
            })
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
                LevelKind::User => {
                    let user = index.users.get(id)?;
                    (user.level.clone(), read(&user.config).reset_at)
                }
            }
        };
        // Without the counters (Redis unreachable), the caller shows the database's figure.
        let spend = self.admission.spend(&level).await?;
        Some((spend, reset_at))
    }

    /// A team's or key's figures as the console shows them live: spend in the current window
    /// (from the shared counters, so every instance's requests count), budget, next reset and
    /// block. `None` for an unknown level, or while the counters cannot be read.
    pub async fn figures(&self, level: &LevelId) -> Option<Figures> {
        let config = {
            let index = read(&self.index);
            let config = match level.kind {
                LevelKind::Team => read(&index.teams.get(&*level.id)?.config).clone(),
                LevelKind::Key => read(&index.keys_by_id.get(&*level.id)?.config)
                    .level
                    .clone(),
                LevelKind::User => read(&index.users.get(&*level.id)?.config).clone(),
            };
            config
        };
        let spend = self.admission.spend(level).await?;
        Some(Figures {
            spend,
            max_budget: config.limits.max_budget,
            reset_at: config.reset_at,
            blocked: config.blocked,
        })
    }

    /// Every team, key and user budget whose window has ended by now.
    pub fn due_resets(&self) -> Vec<DueReset> {
        let now = self.clock.now_secs();
        let index = read(&self.index);
        let teams = index.teams.values().filter_map(|team| {
            let (due_at, next) = read(&team.config).due(now)?;
            Some(DueReset {
                owner: BudgetOwner::Team,
                id: team.team_id.clone(),
                due_at,
                next,
            })
        });
        let keys = index.keys_by_id.values().filter_map(|key| {
            let (due_at, next) = read(&key.config).level.due(now)?;
            Some(DueReset {
                owner: BudgetOwner::Key,
                id: key.key_id.clone(),
                due_at,
                next,
            })
        });
        let users = index.users.values().filter_map(|user| {
            let (due_at, next) = read(&user.config).due(now)?;
            Some(DueReset {
                owner: BudgetOwner::User,
                id: user.user_id.clone(),
                due_at,
                next,
            })
        });
        teams.chain(keys).chain(users).collect()
    }

    /// A reset storage has made: the level's next window, spend from zero.
    pub async fn apply_reset(&self, reset: &DueReset, window: i64) {
        let level = {
            let index = read(&self.index);
            let found = match reset.owner {
                BudgetOwner::Team => index.teams.get(&reset.id).map(|team| {
                    let mut config = write(&team.config);
                    config.reset_at = Some(reset.next);
                    config.window = config.window.max(window);
                    team.level.clone()
                }),
                BudgetOwner::Key => index.keys_by_id.get(&reset.id).map(|key| {
                    let mut config = write(&key.config);
                    config.level.reset_at = Some(reset.next);
                    config.level.window = config.level.window.max(window);
                    key.level.clone()
                }),
                BudgetOwner::User => index.users.get(&reset.id).map(|user| {
                    let mut config = write(&user.config);
                    config.reset_at = Some(reset.next);
                    config.window = config.window.max(window);
                    user.level.clone()
                }),
            };
            match found {
                Some(level) => level,
                None => return,
            }
        };
        self.admission.reset(&level, window).await;
    }
}
