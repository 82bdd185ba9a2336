//! Persistence behind one small trait, so each database has its own implementation picked once at
//! start from the URL scheme. Rows here are storage shapes (money in nano-dollars, times in unix
//! seconds), kept apart from the API types.

mod sqlite;

use async_trait::async_trait;
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("a row with that id already exists")]
    AlreadyExists,
    #[error("a row it refers to does not exist")]
    MissingReference,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL: {0}")]
    Unsupported(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

#[derive(Debug, Clone, PartialEq)]
pub struct TeamRow {
    pub team_id: String,
    pub team_alias: Option<String>,
    pub models: Vec<String>,
    pub max_budget: Option<i64>,
    pub spend: i64,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a team to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TeamPatch {
    pub team_alias: Option<Option<String>>,
    pub models: Option<Vec<String>>,
    pub max_budget: Option<Option<i64>>,
    pub tpm_limit: Option<Option<i64>>,
    pub rpm_limit: Option<Option<i64>>,
    pub budget_duration: Option<Option<String>>,
    pub budget_reset_at: Option<Option<i64>>,
    pub metadata: Option<Map<String, Value>>,
    pub blocked: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    /// Public id, shown as `token`.
    pub key_id: String,
    /// Hex SHA-256 of the whole secret key; the secret itself is never stored.
    pub key_hash: String,
    /// The secret's last four characters, for the masked form.
    pub key_hint: String,
    pub team_id: String,
    pub user_id: Option<String>,
    pub key_alias: Option<String>,
    pub models: Vec<String>,
    pub max_budget: Option<i64>,
    pub spend: i64,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a key to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    pub user_id: Option<Option<String>>,
    pub key_alias: Option<Option<String>>,
    pub models: Option<Vec<String>>,
    pub max_budget: Option<Option<i64>>,
    pub tpm_limit: Option<Option<i64>>,
    pub rpm_limit: Option<Option<i64>>,
    pub budget_duration: Option<Option<String>>,
    pub budget_reset_at: Option<Option<i64>>,
    pub metadata: Option<Map<String, Value>>,
    pub blocked: Option<bool>,
    pub expires_at: Option<Option<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub team_id: Option<String>,
    pub user_id: Option<String>,
}

/// What a delete of several rows did: all of them, or none because one was missing.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    Deleted,
    Missing(String),
}

/// One proxied request, as the spend log keeps it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SpendLog {
    pub request_id: String,
    pub ts_ms: i64,
    pub key_id: String,
    pub team_id: String,
    pub user_id: Option<String>,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Nano-dollars.
    pub cost: i64,
    pub latency_ms: i64,
    /// The HTTP status the caller got.
    pub status: i64,
}

/// A row's live spend and next budget reset, written as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendState {
    pub id: String,
    pub spend: i64,
    pub reset_at: Option<i64>,
}

/// What the spend writer commits at once.
#[derive(Debug, Clone, Default)]
pub struct SpendBatch {
    pub logs: Vec<SpendLog>,
    pub teams: Vec<SpendState>,
    pub keys: Vec<SpendState>,
}

#[derive(Debug, Clone, Default)]
pub struct SpendFilter {
    pub team_id: Option<String>,
    pub key_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// One UTC day of a team's spend.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DailySpend {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub spend: i64,
    pub requests: i64,
    pub tokens: i64,
}

/// What [`Storage::spend_by`] groups spend by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGrouping {
    Team,
    Model,
    Key,
}

/// Spend of one group over a range.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct GroupSpend {
    pub id: String,
    pub spend: i64,
    pub requests: i64,
    pub tokens: i64,
}

#[async_trait]
pub trait Storage: Send + Sync {
    async fn insert_team(&self, team: &TeamRow) -> StorageResult<()>;
    async fn team(&self, team_id: &str) -> StorageResult<Option<TeamRow>>;
    async fn teams(&self) -> StorageResult<Vec<TeamRow>>;
    /// Applies `patch` in one statement and returns the new row, `None` for an unknown team.
    async fn update_team(
        &self,
        team_id: &str,
        patch: &TeamPatch,
        now: i64,
    ) -> StorageResult<Option<TeamRow>>;
    /// Deletes the teams and their keys in one transaction, or nothing.
    async fn delete_teams(&self, team_ids: &[String]) -> StorageResult<DeleteOutcome>;

    /// Fails with [`StorageError::MissingReference`] when the key's team does not exist.
    async fn insert_key(&self, key: &KeyRow) -> StorageResult<()>;
    async fn key(&self, key_id: &str) -> StorageResult<Option<KeyRow>>;
    async fn key_by_hash(&self, key_hash: &str) -> StorageResult<Option<KeyRow>>;
    /// One page of keys, oldest first, and the number of keys matching the filter.
    async fn keys(
        &self,
        filter: &KeyFilter,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<KeyRow>, u64)>;
    async fn update_key(
        &self,
        key_id: &str,
        patch: &KeyPatch,
        now: i64,
    ) -> StorageResult<Option<KeyRow>>;
    /// Deletes the keys in one transaction, or nothing.
    async fn delete_keys(&self, key_ids: &[String]) -> StorageResult<DeleteOutcome>;

    async fn all_keys(&self) -> StorageResult<Vec<KeyRow>>;

    /// Commits logs and spend in one transaction, or nothing.
    async fn record_spend(&self, batch: &SpendBatch) -> StorageResult<()>;
    /// One page of the spend log, newest first, and the number of rows matching.
    async fn spend_logs(
        &self,
        filter: &SpendFilter,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<SpendLog>, u64)>;
    /// A team's spend per UTC day in `[from_ms, to_ms)`, days without requests left out.
    async fn daily_spend(
        &self,
        team_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> StorageResult<Vec<DailySpend>>;

    /// Spend in `[from_ms, to_ms)` per team, model or key, most spent first, `limit` groups.
    async fn spend_by(
        &self,
        grouping: SpendGrouping,
        from_ms: i64,
        to_ms: i64,
        limit: u64,
    ) -> StorageResult<Vec<GroupSpend>>;

    async fn insert_session(&self, token_hash: &str, expires_at: i64) -> StorageResult<()>;
    /// Whether the session exists and is still valid at `now`.
    async fn session_valid(&self, token_hash: &str, now: i64) -> StorageResult<bool>;
    async fn delete_session(&self, token_hash: &str) -> StorageResult<()>;
    async fn delete_expired_sessions(&self, now: i64) -> StorageResult<()>;

    async fn close(&self);
}

/// Opens the database named by `url` and brings its schema up to date.
pub async fn connect(url: &str) -> StorageResult<Arc<dyn Storage>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStorage::connect(url).await?))
    } else {
        Err(StorageError::Unsupported(format!(
            "{} (this version stores data in SQLite: use sqlite://PATH)",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
