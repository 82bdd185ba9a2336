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
    money::Nanos,
    notices::{Change, Notices},
    service::duration::Period,
    storage::{
        member_id, Aliases, BudgetOwner, BudgetRow, KeyRow, MemberRow, OrganizationRow, TeamRow,
        UserRow,
    },
};
use admission::{Admission, Denial, Level, LevelId, LevelKind, Limits};
use clock::Clock;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock, RwLockReadGuard},
};

/// What any level holds: the models it allows, its block, its budget and limits.
#[derive(Debug, Default, Clone)]
pub struct LevelConfig {
    models: Vec<String>,
    aliases: Aliases,
    blocked: bool,
    limits: Limits,
    period: Option<Period>,
    reset_at: Option<i64>,
    window: i64,
    /// The level above this one that is not a key's own: a team's organization.
    parent: Option<LevelId>,
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
            parent: None,
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

/// What the console follows live of a team or key (times in Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub spend: Nanos,
    pub max_budget: Option<Nanos>,
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

/// A level of the chain in memory: a team, user, member or key's own budget and limits.
pub struct LevelEntry {
    pub level: LevelId,
    config: RwLock<LevelConfig>,
}

/// A stored row that is a level of the chain (keys, which carry more, have their own).
pub trait LevelRow {
    fn level_id(&self) -> LevelId;
    fn level_config(&self) -> LevelConfig;
    fn budget(&self) -> &BudgetRow;
}

impl LevelRow for TeamRow {
    fn level_id(&self) -> LevelId {
        LevelId::new(LevelKind::Team, &self.team_id)
    }
    fn level_config(&self) -> LevelConfig {
        LevelConfig {
            parent: self
                .organization_id
                .as_deref()
                .map(|id| LevelId::new(LevelKind::Organization, id)),
            ..LevelConfig::new(&self.models, &self.aliases, self.blocked, &self.budget)
        }
    }
    fn budget(&self) -> &BudgetRow {
        &self.budget
    }
}

impl LevelRow for UserRow {
    fn level_id(&self) -> LevelId {
        LevelId::new(LevelKind::User, &self.user_id)
    }
    fn level_config(&self) -> LevelConfig {
        LevelConfig::new(&self.models, &Aliases::new(), false, &self.budget)
    }
    fn budget(&self) -> &BudgetRow {
        &self.budget
    }
}

impl LevelRow for OrganizationRow {
    fn level_id(&self) -> LevelId {
        LevelId::new(LevelKind::Organization, &self.organization_id)
    }
    fn level_config(&self) -> LevelConfig {
        LevelConfig::new(&self.models, &Aliases::new(), false, &self.budget)
    }
    fn budget(&self) -> &BudgetRow {
        &self.budget
    }
}

impl LevelRow for MemberRow {
    fn level_id(&self) -> LevelId {
        LevelId::new(LevelKind::Member, &self.member_id())
    }
    fn level_config(&self) -> LevelConfig {
        LevelConfig::new(&self.models, &Aliases::new(), false, &self.budget)
    }
    fn budget(&self) -> &BudgetRow {
        &self.budget
    }
}

/// What a key holds beyond its level: whose it is, until when, and the hashes of its secrets.
#[derive(Debug)]
struct KeyLinks {
    user_id: Option<String>,
    expires_at: Option<i64>,
    /// The hash of the key's secret.
    hash: String,
    /// The secret it had before it was rotated, and until when (Unix seconds) it still works.
    previous: Option<(String, i64)>,
}

impl KeyLinks {
    fn of(row: &KeyRow) -> Self {
        Self {
            user_id: row.user_id.clone(),
            expires_at: row.expires_at,
            hash: row.key_hash.clone(),
            previous: row.previous_key.clone(),
        }
    }

    fn hashes(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.hash).chain(self.previous.as_ref().map(|(hash, _)| hash))
    }
}

pub struct KeyEntry {
    pub key_id: String,
    /// The key's own level (also in the index, with every other level).
    entry: Arc<LevelEntry>,
    pub team: Arc<LevelEntry>,
    links: RwLock<KeyLinks>,
}

impl KeyEntry {
    pub fn level(&self) -> &LevelId {
        &self.entry.level
    }

    pub fn team_id(&self) -> &str {
        &self.team.level.id
    }

    pub fn user_id(&self) -> Option<String> {
        read(&self.links).user_id.clone()
    }

    /// Whether the key lives on `level`: its own, its team's, its user's or its membership's.
    /// (An organization's keys go with its teams.)
    fn rests_on(&self, level: &LevelId) -> bool {
        match level.kind {
            LevelKind::Key => *self.level() == *level,
            LevelKind::Team => self.team.level == *level,
            LevelKind::Organization | LevelKind::Deployment => false,
            LevelKind::User => read(&self.links).user_id.as_deref() == Some(&*level.id),
            LevelKind::Member => read(&self.links)
                .user_id
                .as_deref()
                .is_some_and(|user| member_id(self.team_id(), user) == *level.id),
        }
    }
}

#[derive(Default)]
struct Index {
    /// Every level: teams, users, members and keys.
    levels: HashMap<LevelId, Arc<LevelEntry>>,
    keys_by_hash: HashMap<String, Arc<KeyEntry>>,
    keys_by_id: HashMap<String, Arc<KeyEntry>>,
}

/// Everything the request path holds, as read from storage.
#[derive(Debug, Default)]
pub struct Stored {
    pub organizations: Vec<OrganizationRow>,
    pub teams: Vec<TeamRow>,
    pub users: Vec<UserRow>,
    pub members: Vec<MemberRow>,
    pub keys: Vec<KeyRow>,
}

impl Stored {
    pub fn ids(&self) -> std::collections::HashSet<LevelId> {
        let organizations = self.organizations.iter().map(LevelRow::level_id);
        let teams = self.teams.iter().map(LevelRow::level_id);
        let users = self.users.iter().map(LevelRow::level_id);
        let members = self.members.iter().map(LevelRow::level_id);
        let keys = self
            .keys
            .iter()
            .map(|k| LevelId::new(LevelKind::Key, &k.key_id));
        organizations
            .chain(teams)
            .chain(users)
            .chain(members)
            .chain(keys)
            .collect()
    }
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
    /// Held while a level read from the database goes in: what is read later goes in later.
    reading: tokio::sync::Mutex<()>,
}

impl Gate {
    pub fn new(clock: Clock, admission: Arc<dyn Admission>, notices: Arc<dyn Notices>) -> Self {
        Self {
            index: RwLock::new(Index::default()),
            admission,
            clock,
            notices,
            unknown: Mutex::new(HashMap::new()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// Taken around reading levels from the database and putting them here, so that two reads
    /// of one row go in in the order they were read (the later one holds).
    pub async fn in_order(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.reading.lock().await
    }

    /// Tells the other instances of changes committed (this one has followed them).
    pub async fn publish(&self, changes: &[Change]) {
        for change in changes {
            self.notices.publish(change).await;
        }
    }

    fn unknown(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.unknown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the database recently had no key with this hash.
    /// Neither held here nor found in the database when looked up lately: a caller that failed
    /// too often may be refused this one without a database read.
    pub fn surely_unknown(&self, hash: &str) -> bool {
        self.key_by_hash(hash).is_none() && self.known_unknown(hash)
    }

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

    /// Every level held.
    pub fn ids(&self) -> Vec<LevelId> {
        read(&self.index).levels.keys().cloned().collect()
    }

    /// What this gate holds of each level and key, in words, ordered: two gates that hold the
    /// same answer the same (for comparing instances with each other and with the database).
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, String> {
        let index = read(&self.index);
        let levels = index
            .levels
            .iter()
            .map(|(id, entry)| (id.to_string(), format!("{:?}", *read(&entry.config))));
        let keys = index.keys_by_id.values().map(|key| {
            let links = read(&key.links);
            (
                format!("links of {}", key.key_id),
                format!("team {} {links:?}", key.team_id()),
            )
        });
        let hashes = index
            .keys_by_hash
            .iter()
            .map(|(hash, key)| (format!("hash {hash}"), key.key_id.clone()));
        levels.chain(keys).chain(hashes).collect()
    }

    pub fn has(&self, level: &LevelId) -> bool {
        read(&self.index).levels.contains_key(level)
    }

    /// Loads everything from storage at start, spend included.
    pub async fn load(&self, stored: &Stored) {
        for organization in &stored.organizations {
            self.put_level(organization, true).await;
        }
        for team in &stored.teams {
            self.put_level(team, true).await;
        }
        for user in &stored.users {
            self.put_level(user, true).await;
        }
        for member in &stored.members {
            self.put_level(member, true).await;
        }
        for key in &stored.keys {
            self.put_key(key, true).await;
        }
    }

    /// Creates or reconfigures a team, user or member. Spend is taken from the row only for a
    /// level new here, or when `with_spend` (the first load): the live counters are ahead of
    /// storage.
    pub async fn put_level(&self, row: &impl LevelRow, with_spend: bool) {
        let id = row.level_id();
        let config = row.level_config();
        let (entry, fresh) = {
            let mut index = write(&self.index);
            let fresh = !index.levels.contains_key(&id);
            let entry = index
                .levels
                .entry(id.clone())
                .or_insert_with(|| {
                    Arc::new(LevelEntry {
                        level: id,
                        config: RwLock::new(LevelConfig::default()),
                    })
                })
                .clone();
            (entry, fresh)
        };
        *write(&entry.config) = config;
        if with_spend || fresh {
            let b = row.budget();
            self.admission
                .load(&entry.level, b.spend, b.budget_window)
                .await;
        }
    }

    /// Drops a level, the memberships that name it (a team's or a user's) and every key that
    /// rests on it (a team's keys, a user's, a member's).
    pub async fn remove_level(&self, level: &LevelId) {
        let removed: Vec<LevelId> = {
            let mut index = write(&self.index);
            let keys: Vec<Arc<KeyEntry>> = index
                .keys_by_id
                .values()
                .filter(|k| k.rests_on(level))
                .cloned()
                .collect();
            let mut removed = Vec::with_capacity(keys.len() + 1);
            for key in keys {
                index.keys_by_id.remove(&key.key_id);
                for hash in read(&key.links).hashes() {
                    index.keys_by_hash.remove(hash);
                }
                index.levels.remove(key.level());
                removed.push(key.level().clone());
            }
            if let Some(entry) = index.levels.remove(level) {
                removed.push(entry.level.clone());
            }
            let named = |member: &LevelId| {
                let (team, user) = member.id.split_once('/').unwrap_or_default();
                member.kind == LevelKind::Member
                    && match level.kind {
                        LevelKind::Team => team == &*level.id,
                        LevelKind::User => user == &*level.id,
                        _ => false,
                    }
            };
            let memberships: Vec<LevelId> =
                index.levels.keys().filter(|l| named(l)).cloned().collect();
            for member in memberships {
                index.levels.remove(&member);
                removed.push(member);
            }
            removed
        };
        for level in &removed {
            self.admission.forget(level).await;
        }
    }

    pub async fn put_key(&self, row: &KeyRow, with_spend: bool) {
        let config = LevelConfig::new(&row.models, &row.aliases, row.blocked, &row.budget);
        let links = KeyLinks::of(row);
        let (key, fresh) = {
            let mut index = write(&self.index);
            let key = match index.keys_by_id.get(&row.key_id).cloned() {
                Some(key) => {
                    // A rotated key: its old secret goes, or stays for its grace period.
                    let mut old = write(&key.links);
                    for hash in old.hashes() {
                        index.keys_by_hash.remove(hash);
                    }
                    for hash in links.hashes() {
                        index.keys_by_hash.insert(hash.clone(), key.clone());
                    }
                    *old = links;
                    drop(old);
                    (key, false)
                }
                None => {
                    let team_level = LevelId::new(LevelKind::Team, &row.team_id);
                    let Some(team) = index.levels.get(&team_level).cloned() else {
                        tracing::error!(key_id = %row.key_id, "key without a team in memory");
                        return;
                    };
                    let entry = Arc::new(LevelEntry {
                        level: LevelId::new(LevelKind::Key, &row.key_id),
                        config: RwLock::new(LevelConfig::default()),
                    });
                    let key = Arc::new(KeyEntry {
                        key_id: row.key_id.clone(),
                        entry: entry.clone(),
                        team,
                        links: RwLock::new(links),
                    });
                    index.levels.insert(entry.level.clone(), entry);
                    for hash in read(&key.links).hashes() {
                        index.keys_by_hash.insert(hash.clone(), key.clone());
                    }
                    index.keys_by_id.insert(row.key_id.clone(), key.clone());
                    (key, true)
                }
            };
            key
        };
        *write(&key.entry.config) = config;
        if with_spend || fresh {
            let b = &row.budget;
            self.admission
                .load(key.level(), b.spend, b.budget_window)
                .await;
        }
    }

    pub async fn remove_key(&self, key_id: &str) {
        self.remove_level(&LevelId::new(LevelKind::Key, key_id))
            .await;
    }

    /// The key whose secret hashes to `hash`: its current secret, or the one it had before it
    /// was rotated until the grace period ends.
    pub fn key_by_hash(&self, hash: &str) -> Option<Arc<KeyEntry>> {
        let key = read(&self.index).keys_by_hash.get(hash).cloned()?;
        let valid = {
            let links = read(&key.links);
            links.hash == hash
                || links
                    .previous
                    .as_ref()
                    .is_some_and(|(old, until)| old == hash && self.clock.now_secs() < *until)
        };
        valid.then_some(key)
    }

    /// The levels a key's requests are checked against, in the order they are checked and
    /// locked: the key, its membership in its team (when it has a user), its team, the team's
    /// organization (when it has one), its user.
    /// (The key's links are let go before the index is read: elsewhere the index is locked
    /// first.)
    fn chain_of(&self, key: &KeyEntry) -> Vec<Arc<LevelEntry>> {
        let user_id = key.user_id();
        let organization = read(&key.team.config).parent.clone();
        let mut chain = Vec::with_capacity(5);
        chain.push(key.entry.clone());
        let index = read(&self.index);
        let find = |kind: LevelKind, id: &str| index.levels.get(&LevelId::new(kind, id)).cloned();
        if let Some(user_id) = &user_id {
            chain.extend(find(LevelKind::Member, &member_id(key.team_id(), user_id)));
        }
        chain.push(key.team.clone());
        if let Some(organization) = &organization {
            chain.extend(index.levels.get(organization).cloned());
        }
        if let Some(user_id) = &user_id {
            chain.extend(find(LevelKind::User, user_id));
        }
        chain
    }

    /// The model served for the name a caller asked for: the key's alias for it, else its
    /// team's, else the name itself. Aliases never widen access: [`Self::authorize`] checks the
    /// model they resolve to.
    pub fn resolve_model(&self, key: &KeyEntry, model: &str) -> String {
        if let Some(served) = read(&key.entry.config).aliases.get(model) {
            return served.clone();
        }
        if let Some(served) = read(&key.team.config).aliases.get(model) {
            return served.clone();
        }
        model.to_string()
    }

    /// The checks that need no counters, in the README's order: the key's block and expiry,
    /// every level's models (when a model is named), the other levels' blocks. Answers the
    /// chain of levels admission then checks (see [`Self::chain_of`]).
    pub fn authorize(&self, key: &KeyEntry, model: Option<&str>) -> Result<Vec<Level>, Denial> {
        let now_ms = self.clock.now_ms();
        let expires_at = read(&key.links).expires_at;
        let chain = self.chain_of(key);
        let configs: Vec<_> = chain.iter().map(|entry| read(&entry.config)).collect();
        if configs[0].blocked {
            return Err(Denial::KeyBlocked);
        }
        if expires_at.is_some_and(|at| at.saturating_mul(1000) <= now_ms) {
            return Err(Denial::KeyExpired);
        }
        if let Some(model) = model {
            for (entry, config) in chain.iter().zip(&configs) {
                if !config.allows_model(model) {
                    return Err(Denial::ModelNotAllowed {
                        level: entry.level.clone(),
                        model: model.to_string(),
                        allowed: config.models.clone(),
                    });
                }
            }
        }
        for (entry, config) in chain.iter().zip(&configs).skip(1) {
            if config.blocked {
                return Err(Denial::Blocked {
                    level: entry.level.clone(),
                });
            }
        }
        Ok(chain
            .iter()
            .zip(&configs)
            .map(|(entry, config)| config.level(&entry.level))
            .collect())
    }

    /// Models a key may use among `served`: those every level of its chain allows.
    pub fn allowed_models(&self, key: &KeyEntry, served: &[String]) -> Vec<String> {
        let chain = self.chain_of(key);
        let configs: Vec<_> = chain.iter().map(|entry| read(&entry.config)).collect();
        served
            .iter()
            .filter(|m| configs.iter().all(|config| config.allows_model(m)))
            .cloned()
            .collect()
    }

    fn entry(&self, level: &LevelId) -> Option<Arc<LevelEntry>> {
        read(&self.index).levels.get(level).cloned()
    }

    /// A level's live spend: ahead of the database by up to one flush. (Its next reset is the
    /// database's: a window starts there first.)
    pub async fn budget(&self, kind: LevelKind, id: &str) -> Option<Nanos> {
        let entry = self.entry(&LevelId::new(kind, id))?;
        // Without the counters (Redis unreachable), the caller shows the database's figure.
        self.admission.spend(&entry.level).await
    }

    /// A level's figures as the console shows them live: spend in the current window (from
    /// the shared counters, so every instance's requests count), budget, next reset and block.
    /// `None` for an unknown level, or while the counters cannot be read.
    pub async fn figures(&self, level: &LevelId) -> Option<Figures> {
        let config = read(&self.entry(level)?.config).clone();
        let spend = self.admission.spend(level).await?;
        Some(Figures {
            spend,
            max_budget: config.limits.max_budget,
            reset_at: config.reset_at,
            blocked: config.blocked,
        })
    }

    /// Every budget whose window has ended by now.
    pub fn due_resets(&self) -> Vec<DueReset> {
        let now = self.clock.now_secs();
        let index = read(&self.index);
        index
            .levels
            .values()
            .filter_map(|entry| {
                let (due_at, next) = read(&entry.config).due(now)?;
                Some(DueReset {
                    owner: entry.level.kind.owner()?,
                    id: entry.level.id.to_string(),
                    due_at,
                    next,
                })
            })
            .collect()
    }

    /// A reset storage has made: the level's next window, spend from zero.
    pub async fn apply_reset(&self, reset: &DueReset, window: i64) {
        let Some(entry) = self.entry(&LevelId::new(LevelKind::of(reset.owner), &reset.id)) else {
            return;
        };
        {
            let mut config = write(&entry.config);
            config.reset_at = Some(reset.next);
            config.window = config.window.max(window);
        }
        self.admission.reset(&entry.level, window).await;
    }
}
