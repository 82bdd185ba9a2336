//! Persistence behind one small trait, so each database has its own implementation picked once at
//! start from the URL scheme. Rows here are storage shapes (money in nano-dollars, times in unix
//! seconds), kept apart from the API types.

mod postgres;
mod sql;
mod sqlite;

use crate::money::Nanos;
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

impl StorageError {
    /// Whether the database could not be reached (rather than refused the statement): no
    /// connection, or one that broke off mid-conversation.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// Model aliases: a name a caller may ask for, to the model served for it.
pub type Aliases = std::collections::BTreeMap<String, String>;

/// The budget and limits every level holds (teams, keys, and the levels to come), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct BudgetRow {
    /// Per window.
    pub max_budget: Option<Nanos>,
    /// Spend past which an alert is sent; nothing is refused for it.
    pub soft_budget: Option<Nanos>,
    /// Spend in the current window.
    pub spend: Nanos,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub budget_duration: Option<String>,
    /// When the window ends (unix seconds); `None` for a budget that never resets.
    pub budget_reset_at: Option<i64>,
    /// Counts the budget's resets: spend belongs to the window it was made in.
    pub budget_window: i64,
}

/// The budget fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct BudgetPatch {
    pub max_budget: Option<Option<Nanos>>,
    pub soft_budget: Option<Option<Nanos>>,
    pub tpm_limit: Option<Option<i64>>,
    pub rpm_limit: Option<Option<i64>>,
    pub max_parallel_requests: Option<Option<i64>>,
    pub budget_duration: Option<Option<String>>,
    pub budget_reset_at: Option<Option<i64>>,
}

/// The tables whose rows hold a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetOwner {
    Team,
    Key,
    User,
    Member,
    Organization,
}

impl BudgetOwner {
    pub const ALL: [Self; 5] = [
        Self::Team,
        Self::Key,
        Self::User,
        Self::Member,
        Self::Organization,
    ];

    /// Its name in logs, notices and Redis keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Key => "key",
            Self::User => "user",
            Self::Member => "member",
            Self::Organization => "organization",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|owner| owner.name() == name)
    }
}

/// A member's id: its team's (or organization's) and its user's (neither ever holds `/`).
pub fn member_id(team_id: &str, user_id: &str) -> String {
    format!("{team_id}/{user_id}")
}

#[derive(Debug, Clone, PartialEq)]
pub struct TeamRow {
    pub team_id: String,
    pub team_alias: Option<String>,
    /// The organization whose budget, limits and models bound the team's.
    pub organization_id: Option<String>,
    pub models: Vec<String>,
    /// LiteLLM's `model_aliases`: a requested name to the model served for it.
    pub aliases: Aliases,
    pub budget: BudgetRow,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    /// Where this team's budget alerts go, besides the operator's webhook.
    pub alert_webhook_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a team to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TeamPatch {
    pub alert_webhook_url: Option<Option<String>>,
    pub team_alias: Option<Option<String>>,
    pub organization_id: Option<Option<String>>,
    pub models: Option<Vec<String>>,
    pub aliases: Option<Aliases>,
    pub budget: BudgetPatch,
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
    /// LiteLLM's `aliases`: a requested name to the model served for it.
    pub aliases: Aliases,
    pub budget: BudgetRow,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    pub expires_at: Option<i64>,
    /// The hash of the secret the key had before it was rotated, and until when (Unix seconds)
    /// that secret still works.
    pub previous_key: Option<(String, i64)>,
    /// The most management authority the key carries (a `user_role`): the role of whoever
    /// issued it, rotated it or gave it to its user, at that time. `None`: its user's role.
    pub max_role: Option<String>,
    /// Whose management authority bounds the key besides its user's (see
    /// [`crate::service::access::Actor::bound_by`]): who gave out its secret when that was
    /// neither its user nor a proxy admin. `None`: its user's alone.
    pub issued_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl KeyRow {
    /// Whether a secret hashing to `hash` opens this key at `now`: its secret, or the one it
    /// had before a rotation, until the grace period ends.
    pub fn accepts(&self, hash: &str, now: i64) -> bool {
        self.key_hash == hash
            || self
                .previous_key
                .as_ref()
                .is_some_and(|(old, until)| old == hash && now < *until)
    }
}

/// A key's new secret (a rotation): its hash, its hint, and the old secret's grace.
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub key_hash: String,
    pub key_hint: String,
    pub previous_key: Option<(String, i64)>,
}

/// The fields of a key to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    pub secret: Option<NewSecret>,
    /// A new [`KeyRow::max_role`] and [`KeyRow::issued_by`] (set together).
    pub authority: Option<(String, Option<String>)>,
    pub user_id: Option<Option<String>>,
    pub key_alias: Option<Option<String>>,
    pub models: Option<Vec<String>>,
    pub aliases: Option<Aliases>,
    pub budget: BudgetPatch,
    pub metadata: Option<Map<String, Value>>,
    pub blocked: Option<bool>,
    pub expires_at: Option<Option<i64>>,
}

/// A user (LiteLLM's): a role, and a budget, limits and models over all of the user's keys.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub user_id: String,
    pub user_alias: Option<String>,
    pub user_email: Option<String>,
    pub user_role: String,
    pub models: Vec<String>,
    pub budget: BudgetRow,
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a user to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub user_alias: Option<Option<String>>,
    pub user_email: Option<Option<String>>,
    pub user_role: Option<String>,
    pub models: Option<Vec<String>>,
    pub budget: BudgetPatch,
    pub metadata: Option<Map<String, Value>>,
}

/// A user in a team (LiteLLM's team member): a role there, and a budget and limits over the
/// user's keys in that team.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub team_id: String,
    pub user_id: String,
    /// `admin` or `user`.
    pub role: String,
    /// The models the user may use in this team (LiteLLM's `allowed_models`); empty: all.
    pub models: Vec<String>,
    pub budget: BudgetRow,
    /// The user's, read with the member.
    pub user_email: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl MemberRow {
    pub fn member_id(&self) -> String {
        member_id(&self.team_id, &self.user_id)
    }
}

/// The fields of a member to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MemberPatch {
    pub role: Option<String>,
    pub models: Option<Vec<String>>,
    pub budget: BudgetPatch,
}

/// A level's budget as the alerts read it: its id, its team (keys, members, teams), its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetLevel {
    pub id: String,
    pub team_id: Option<String>,
    pub budget: BudgetRow,
}

/// One alert event on its way to one webhook (the outbox).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertRow {
    pub event_id: String,
    /// The webhook's URL; empty when none was configured.
    pub destination: String,
    /// `scope:id:window:threshold`: one event per crossing.
    pub dedup_key: String,
    pub event: String,
    pub scope: String,
    pub target_id: String,
    pub payload: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
}

/// Which alerts to read; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub scope: Option<String>,
    pub target_id: Option<String>,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Given by the database.
    pub id: i64,
    pub request_id: String,
    pub at_ms: i64,
    pub actor: String,
    pub changed_by: Option<String>,
    pub address: Option<String>,
    pub method: String,
    pub route: String,
    pub target_type: String,
    pub target_id: String,
    pub before_value: Option<Value>,
    pub after_value: Option<Value>,
}

/// Which audit rows to read; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub actor: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// A signed-in browser's session: whose it is (`None`: the admin key's).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub user_id: Option<String>,
    /// Whose authority bounds the session besides its user's: who made the link that set the
    /// password it was opened with, when that was not a proxy admin.
    pub bound_by: Option<String>,
    pub expires_at: i64,
}

/// A person's password (argon2id, PHC string) and whose link set it, when that was not a
/// proxy admin's ([`SessionRow::bound_by`] of the sessions it opens).
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordRow {
    pub hash: String,
    pub bound_by: Option<String>,
}

/// A one-time link that lets a person set their password.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InvitationRow {
    /// Hex SHA-256 of the link's id: the id itself is never stored.
    pub id_hash: String,
    pub user_id: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    /// Made by a proxy admin: it may replace a password that is set (a reset), for anyone.
    pub may_reset: bool,
}

/// An organization (LiteLLM's): a budget, limits and models over all of its teams.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationRow {
    pub organization_id: String,
    pub organization_alias: Option<String>,
    pub models: Vec<String>,
    pub budget: BudgetRow,
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of an organization to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrganizationPatch {
    pub organization_alias: Option<Option<String>>,
    pub models: Option<Vec<String>>,
    pub budget: BudgetPatch,
    pub metadata: Option<Map<String, Value>>,
}

/// A user in an organization, with a role there (`org_admin`, `internal_user`,
/// `internal_user_viewer`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrgMemberRow {
    pub organization_id: String,
    pub user_id: String,
    pub user_role: String,
    /// The user's, read with the member.
    pub user_email: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which users a page of `/user/list` holds (oldest first).
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub role: Option<String>,
    pub user_ids: Option<Vec<String>>,
    /// Lowercase text the e-mail must contain.
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub key_alias: Option<String>,
    pub key_hash: Option<String>,
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
    /// Unique: a row written twice (a retried commit) counts once.
    pub request_id: String,
    pub ts_ms: i64,
    pub key_id: String,
    pub team_id: String,
    pub user_id: Option<String>,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: Nanos,
    pub latency_ms: i64,
    /// The HTTP status the caller got.
    pub status: i64,
    /// The budget windows of the key, the team, the user and the member the request was
    /// admitted in: its cost counts toward their spend only while those windows last.
    pub key_window: i64,
    pub team_window: i64,
    pub user_window: i64,
    pub member_window: i64,
    /// The team's organization when the request was admitted, and its window.
    pub organization_id: Option<String>,
    pub organization_window: i64,
    /// The deployment that answered (none when none did), and the tries besides its own.
    pub model_id: Option<String>,
    pub retries: i64,
    pub fallbacks: i64,
}

#[derive(Debug, Clone, Default)]
pub struct SpendFilter {
    pub team_id: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub status: Option<i64>,
    pub request_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// The orders of a page of teams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamOrder {
    /// Alias, else id, ignoring ASCII case.
    Name,
    /// Committed spend (live spend differs by what the writer has not flushed yet).
    Spend,
    /// Committed spend over the budget; no budget counts as none used.
    Used,
    /// Next reset; budgets that never reset last.
    Reset,
    Created,
}

/// Which teams, in which order: a page of `/team/list`.
#[derive(Debug, Clone)]
pub struct TeamQuery {
    /// Lowercase text the id or alias must contain (ASCII letters compared without case).
    pub search: Option<String>,
    pub order: TeamOrder,
    pub descending: bool,
    /// Only these teams (what the caller may see); `None`: all.
    pub only: Option<Vec<String>>,
}

/// Refusals in one minute at one level for one reason.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusalCount {
    /// Unix seconds of the minute's start.
    pub minute: i64,
    pub level: String,
    pub reason: String,
    pub count: i64,
}

/// One UTC day of a team's spend.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DailySpend {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// The model or key of this part of the day, when split; empty otherwise.
    pub group_id: String,
    pub spend: Nanos,
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

impl SpendGrouping {
    /// The spend log's column of the grouping.
    pub fn column(self) -> &'static str {
        match self {
            Self::Team => "team_id",
            Self::Model => "model",
            Self::Key => "key_id",
        }
    }
}

/// Spend of one group over a range.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct GroupSpend {
    pub id: String,
    pub spend: Nanos,
    pub requests: i64,
    pub tokens: i64,
}

#[async_trait]
pub trait Storage: Send + Sync {
    async fn insert_team(&self, team: &TeamRow) -> StorageResult<()>;
    async fn team(&self, team_id: &str) -> StorageResult<Option<TeamRow>>;
    async fn teams(&self) -> StorageResult<Vec<TeamRow>>;
    /// One page of the teams `query` selects, in its order (ties by id), and how many it
    /// selects in all.
    async fn teams_page(
        &self,
        query: &TeamQuery,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<TeamRow>, u64)>;
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

    async fn insert_user(&self, user: &UserRow) -> StorageResult<()>;
    async fn user(&self, user_id: &str) -> StorageResult<Option<UserRow>>;
    async fn all_users(&self) -> StorageResult<Vec<UserRow>>;
    /// The users whose e-mail address is `address`, compared without case, oldest first (a
    /// few at most: more than one only where addresses were shared before they had to be one
    /// person's).
    async fn users_with_email(&self, address: &str) -> StorageResult<Vec<UserRow>>;
    /// The addresses (lower-cased) more than one user holds.
    async fn shared_emails(&self) -> StorageResult<Vec<String>>;
    /// One page of the users `query` selects, oldest first, each with how many keys it holds,
    /// and how many it selects in all.
    async fn users_page(
        &self,
        query: &UserQuery,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<(UserRow, u64)>, u64)>;
    async fn update_user(
        &self,
        user_id: &str,
        patch: &UserPatch,
        now: i64,
    ) -> StorageResult<Option<UserRow>>;
    /// Deletes the users and their keys in one transaction, or nothing.
    async fn delete_users(&self, user_ids: &[String]) -> StorageResult<DeleteOutcome>;

    /// Fails with [`StorageError::AlreadyExists`] for a user already in the team and
    /// [`StorageError::MissingReference`] when the team or the user does not exist.
    async fn insert_member(&self, member: &MemberRow) -> StorageResult<()>;
    async fn member(&self, member_id: &str) -> StorageResult<Option<MemberRow>>;
    /// The members of a team, or the teams of a user (both when both are given), oldest first.
    async fn members(
        &self,
        team_id: Option<&str>,
        user_id: Option<&str>,
    ) -> StorageResult<Vec<MemberRow>>;
    async fn update_member(
        &self,
        member_id: &str,
        patch: &MemberPatch,
        now: i64,
    ) -> StorageResult<Option<MemberRow>>;
    /// Deletes the member and the user's keys in that team, in one transaction; answers the
    /// ids of the keys deleted, `None` for an unknown member.
    async fn delete_member(&self, member_id: &str) -> StorageResult<Option<Vec<String>>>;

    async fn insert_organization(&self, organization: &OrganizationRow) -> StorageResult<()>;
    async fn organization(&self, organization_id: &str) -> StorageResult<Option<OrganizationRow>>;
    /// Every organization, oldest first.
    async fn organizations(&self) -> StorageResult<Vec<OrganizationRow>>;
    async fn update_organization(
        &self,
        organization_id: &str,
        patch: &OrganizationPatch,
        now: i64,
    ) -> StorageResult<Option<OrganizationRow>>;
    /// Deletes the organizations, their teams and those teams' keys in one transaction, or
    /// nothing.
    async fn delete_organizations(
        &self,
        organization_ids: &[String],
    ) -> StorageResult<DeleteOutcome>;
    /// Fails with [`StorageError::AlreadyExists`] for a user in the organization already.
    async fn insert_org_member(&self, member: &OrgMemberRow) -> StorageResult<()>;
    /// The members of an organization, or a user's memberships, oldest first.
    async fn org_members(
        &self,
        organization_id: Option<&str>,
        user_id: Option<&str>,
    ) -> StorageResult<Vec<OrgMemberRow>>;

    /// Writes the logs and adds the cost of those not written before to their key's and team's
    /// spend (in the window each was admitted in), in one transaction, or nothing.
    async fn record_spend(&self, logs: &[SpendLog]) -> StorageResult<()>;
    /// Starts the next budget window of a team or key whose window ended at `due_at`: spend to
    /// zero, the window counted on, the next reset at `next`. Only one caller wins (the row
    /// must still end at `due_at`); the winner gets the new window.
    async fn reset_budget(
        &self,
        owner: BudgetOwner,
        id: &str,
        due_at: i64,
        next: i64,
    ) -> StorageResult<Option<i64>>;
    /// One page of the spend log, newest first, and the number of rows matching.
    async fn spend_logs(
        &self,
        filter: &SpendFilter,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<SpendLog>, u64)>;
    /// A team's spend per UTC day in `[from_ms, to_ms)`, days without requests left out;
    /// with `split`, per day and model or key.
    async fn daily_spend(
        &self,
        team_id: &str,
        from_ms: i64,
        to_ms: i64,
        split: Option<SpendGrouping>,
    ) -> StorageResult<Vec<DailySpend>>;

    /// Spend in `[from_ms, to_ms)` per team, model or key, most spent first, `limit` groups.
    async fn spend_by(
        &self,
        grouping: SpendGrouping,
        from_ms: i64,
        to_ms: i64,
        limit: u64,
    ) -> StorageResult<Vec<GroupSpend>>;

    /// Adds these counts to those already recorded for their minute, level and reason, and
    /// forgets minutes before `keep_from`.
    async fn record_refusals(&self, counts: &[RefusalCount], keep_from: i64) -> StorageResult<()>;
    /// Every count from minute `from` on, oldest first.
    async fn refusals(&self, from: i64) -> StorageResult<Vec<RefusalCount>>;

    /// A session for `user_id` (`None`: opened with the admin key).
    async fn insert_session(
        &self,
        token_hash: &str,
        user_id: Option<&str>,
        bound_by: Option<&str>,
        expires_at: i64,
    ) -> StorageResult<()>;
    /// The session, if it exists and is still valid at `now`: whose it is.
    async fn session(&self, token_hash: &str, now: i64) -> StorageResult<Option<SessionRow>>;
    /// Ends every session of a user (a new password).
    async fn delete_user_sessions(&self, user_id: &str) -> StorageResult<()>;

    /// A user's password, if they set one.
    async fn password(&self, user_id: &str) -> StorageResult<Option<PasswordRow>>;
    /// Sets a user's password (bound by the link's maker unless it `may_reset`) and marks the
    /// invitation used, in one transaction; `false` when the invitation was used, expired or
    /// gone meanwhile.
    async fn accept_invitation(
        &self,
        id_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> StorageResult<bool>;
    async fn insert_invitation(&self, invitation: &InvitationRow) -> StorageResult<()>;

    /// Opens a transaction: every query made through the storage it answers runs in it, and
    /// nothing of it lands before [`Transaction::commit`] (dropped, it is rolled back).
    async fn begin(&self) -> StorageResult<Box<dyn Transaction>>;
    async fn insert_audit(&self, rows: &[AuditRow]) -> StorageResult<()>;

    /// Every level of `owner`'s kind with a max or soft budget.
    async fn budget_levels(&self, owner: BudgetOwner) -> StorageResult<Vec<BudgetLevel>>;
    /// Adds the alert events not made before (same dedup key and destination); answers how
    /// many were new.
    async fn insert_alerts(&self, rows: &[AlertRow]) -> StorageResult<u64>;
    /// Undelivered alerts due at `now` (ms), oldest first, that have a destination.
    async fn due_alerts(&self, now: i64, limit: u64) -> StorageResult<Vec<AlertRow>>;
    /// Takes an alert for delivery until `until` (ms), if no other instance took it since it
    /// was read (its next attempt is still `seen`).
    async fn claim_alert(&self, row: &AlertRow, until: i64) -> StorageResult<bool>;
    /// Records an attempt: delivered at a time, or the next attempt and why this one failed.
    async fn alert_attempted(
        &self,
        row: &AlertRow,
        delivered_at: Option<i64>,
        next_attempt_at: i64,
        error: Option<&str>,
    ) -> StorageResult<()>;
    /// A page of alerts, newest first, and how many match.
    async fn alerts(
        &self,
        filter: &AlertFilter,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<AlertRow>, u64)>;
    /// A page of the audit log, newest first, and how many rows match.
    async fn audit(
        &self,
        filter: &AuditFilter,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<AuditRow>, u64)>;
    async fn invitation(&self, id_hash: &str) -> StorageResult<Option<InvitationRow>>;
    async fn delete_session(&self, token_hash: &str) -> StorageResult<()>;
    async fn delete_expired_sessions(&self, now: i64) -> StorageResult<()>;

    async fn close(&self);
}

pub use postgres::PostgresStorage;

/// A storage whose every query runs in one open transaction (see [`Storage::begin`]).
#[async_trait]
pub trait Transaction: Storage {
    /// The transaction as a storage, for the services to run in.
    fn storage(&self) -> &dyn Storage;
    async fn commit(self: Box<Self>) -> StorageResult<()>;
}

/// Opens the database named by `url` and brings its schema up to date.
pub async fn connect(url: &str) -> StorageResult<Arc<dyn Storage>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStorage::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStorage::connect(url).await?))
    } else {
        Err(StorageError::Unsupported(format!(
            "{} (use sqlite://PATH or postgres://...)",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
