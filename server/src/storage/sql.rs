//! Every query, written once for the SQL databases Gatehouse runs on (SQLite, PostgreSQL):
//! [`sql_storage!`] writes the `Storage` implementation for one sqlx database. Values are always
//! bound — `QueryBuilder` writes each database's own placeholders — and what differs between the
//! databases (how to name a day, which column keeps insertion order) comes in as arguments.

use super::{
    Aliases, BudgetOwner, BudgetRow, KeyRow, MemberRow, OrgMemberRow, OrganizationRow,
    StorageError, TeamRow, UserRow,
};
use serde_json::{Map, Value};
use sqlx::{types::Json, FromRow};

/// A level's id, team and budget, as the alerts read them.
#[derive(FromRow)]
pub(super) struct LevelRecord {
    id: String,
    team_id: Option<String>,
    #[sqlx(flatten)]
    budget: BudgetRow,
}

impl From<LevelRecord> for super::BudgetLevel {
    fn from(r: LevelRecord) -> Self {
        Self {
            id: r.id,
            team_id: r.team_id,
            budget: r.budget,
        }
    }
}

#[derive(FromRow)]
pub(super) struct AuditRecord {
    id: i64,
    request_id: String,
    at_ms: i64,
    actor: String,
    changed_by: Option<String>,
    address: Option<String>,
    method: String,
    route: String,
    target_type: String,
    target_id: String,
    before_value: Option<Json<Value>>,
    after_value: Option<Json<Value>>,
}

impl From<AuditRecord> for super::AuditRow {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            request_id: r.request_id,
            at_ms: r.at_ms,
            actor: r.actor,
            changed_by: r.changed_by,
            address: r.address,
            method: r.method,
            route: r.route,
            target_type: r.target_type,
            target_id: r.target_id,
            before_value: r.before_value.map(|v| v.0),
            after_value: r.after_value.map(|v| v.0),
        }
    }
}

/// An open transaction, shared by the queries of the storage that runs in it.
pub(super) type Tx<Db> = std::sync::Arc<tokio::sync::Mutex<sqlx::Transaction<'static, Db>>>;

/// Who may hold a transaction open at once. SQLite takes one writer at a time: its
/// transactions wait their turn here, first come first served, instead of polling its lock
/// (measured with `scripts/bench` keys mode: without the queue, `/key/generate` at 16 callers
/// had a p99 of 650–830 ms against 24–27 ms with it). PostgreSQL's run side by side.
#[derive(Clone)]
pub(super) enum Writers {
    Many,
    One(std::sync::Arc<tokio::sync::Semaphore>),
}

impl Writers {
    pub(super) fn one() -> Self {
        Self::One(std::sync::Arc::new(tokio::sync::Semaphore::new(1)))
    }

    /// Waits for a turn to write, held until it is dropped (`None`: no turn to wait for).
    pub(super) async fn turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match self {
            Self::Many => None,
            Self::One(turn) => turn.clone().acquire_owned().await.ok(),
        }
    }
}

/// Maps constraint violations to the storage errors callers act on.
pub(super) fn classify(err: sqlx::Error) -> StorageError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return StorageError::AlreadyExists;
        }
        if db.is_foreign_key_violation() {
            return StorageError::MissingReference;
        }
    }
    StorageError::Database(err)
}

/// The columns of [`BudgetRow`], in the order [`sql_storage!`] binds them.
pub(super) const BUDGET_COLUMNS: &str =
    "max_budget, soft_budget, spend, tpm_limit, rpm_limit, max_parallel_requests, \
     budget_duration, budget_reset_at, budget_window";

#[derive(FromRow)]
pub(super) struct TeamRecord {
    team_id: String,
    team_alias: Option<String>,
    organization_id: Option<String>,
    models: Json<Vec<String>>,
    aliases: Json<Aliases>,
    #[sqlx(flatten)]
    budget: BudgetRow,
    metadata: Json<Map<String, Value>>,
    blocked: bool,
    alert_webhook_url: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<TeamRecord> for TeamRow {
    fn from(r: TeamRecord) -> Self {
        Self {
            team_id: r.team_id,
            team_alias: r.team_alias,
            organization_id: r.organization_id,
            models: r.models.0,
            aliases: r.aliases.0,
            budget: r.budget,
            metadata: r.metadata.0,
            blocked: r.blocked,
            alert_webhook_url: r.alert_webhook_url,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct KeyRecord {
    key_id: String,
    key_hash: String,
    key_hint: String,
    team_id: String,
    user_id: Option<String>,
    key_alias: Option<String>,
    models: Json<Vec<String>>,
    aliases: Json<Aliases>,
    #[sqlx(flatten)]
    budget: BudgetRow,
    metadata: Json<Map<String, Value>>,
    blocked: bool,
    expires_at: Option<i64>,
    previous_key_hash: Option<String>,
    previous_key_expires_at: Option<i64>,
    max_role: Option<String>,
    issued_by: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<KeyRecord> for KeyRow {
    fn from(r: KeyRecord) -> Self {
        Self {
            key_id: r.key_id,
            key_hash: r.key_hash,
            key_hint: r.key_hint,
            team_id: r.team_id,
            user_id: r.user_id,
            key_alias: r.key_alias,
            models: r.models.0,
            aliases: r.aliases.0,
            budget: r.budget,
            metadata: r.metadata.0,
            blocked: r.blocked,
            expires_at: r.expires_at,
            previous_key: r.previous_key_hash.zip(r.previous_key_expires_at),
            max_role: r.max_role,
            issued_by: r.issued_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct UserRecord {
    user_id: String,
    user_alias: Option<String>,
    user_email: Option<String>,
    user_role: String,
    models: Json<Vec<String>>,
    #[sqlx(flatten)]
    budget: BudgetRow,
    metadata: Json<Map<String, Value>>,
    created_at: i64,
    updated_at: i64,
}

impl From<UserRecord> for UserRow {
    fn from(r: UserRecord) -> Self {
        Self {
            user_id: r.user_id,
            user_alias: r.user_alias,
            user_email: r.user_email,
            user_role: r.user_role,
            models: r.models.0,
            budget: r.budget,
            metadata: r.metadata.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct MemberRecord {
    team_id: String,
    user_id: String,
    role: String,
    models: Json<Vec<String>>,
    #[sqlx(flatten)]
    budget: BudgetRow,
    user_email: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// Members with their user's e-mail.
pub(super) const MEMBERS: &str = "SELECT team_members.*, users.user_email FROM team_members \
     JOIN users ON users.user_id = team_members.user_id";

impl From<MemberRecord> for MemberRow {
    fn from(r: MemberRecord) -> Self {
        Self {
            team_id: r.team_id,
            user_id: r.user_id,
            role: r.role,
            models: r.models.0,
            budget: r.budget,
            user_email: r.user_email,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct OrganizationRecord {
    organization_id: String,
    organization_alias: Option<String>,
    models: Json<Vec<String>>,
    #[sqlx(flatten)]
    budget: BudgetRow,
    metadata: Json<Map<String, Value>>,
    created_at: i64,
    updated_at: i64,
}

impl From<OrganizationRecord> for OrganizationRow {
    fn from(r: OrganizationRecord) -> Self {
        Self {
            organization_id: r.organization_id,
            organization_alias: r.organization_alias,
            models: r.models.0,
            budget: r.budget,
            metadata: r.metadata.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct OrgMemberRecord {
    organization_id: String,
    user_id: String,
    user_role: String,
    user_email: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<OrgMemberRecord> for OrgMemberRow {
    fn from(r: OrgMemberRecord) -> Self {
        Self {
            organization_id: r.organization_id,
            user_id: r.user_id,
            user_role: r.user_role,
            user_email: r.user_email,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A user and how many keys it holds.
#[derive(FromRow)]
pub(super) struct UserKeys {
    #[sqlx(flatten)]
    pub user: UserRecord,
    pub key_count: i64,
}

/// A newly logged request's cost, to add to its key's, team's and user's spend.
#[derive(FromRow)]
pub(super) struct Charged {
    pub key_id: String,
    pub team_id: String,
    pub user_id: Option<String>,
    pub cost: i64,
    pub key_window: i64,
    pub team_window: i64,
    pub user_window: i64,
    pub member_window: i64,
    pub organization_id: Option<String>,
    pub organization_window: i64,
}

/// `%text%` for LIKE, with `\`, `%` and `_` in `text` matched as themselves.
pub(super) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub(super) fn owner_table(owner: BudgetOwner) -> (&'static str, &'static str) {
    match owner {
        BudgetOwner::Team => ("teams", "team_id"),
        BudgetOwner::Key => ("api_keys", "key_id"),
        BudgetOwner::User => ("users", "user_id"),
        BudgetOwner::Member => ("team_members", "member_id"),
        BudgetOwner::Organization => ("organizations", "organization_id"),
    }
}

/// Writes `impl Storage for $storage`, whose `pool` is a `Pool<$db>`. `$order` is the column
/// that keeps insertion order, `$day` an SQL expression for the UTC date of `ts_ms`, `$begin`
/// the statement that opens an `atomically` transaction (SQLite's takes the write lock at
/// once: a transaction that read first could not write after another connection did).
macro_rules! sql_storage {
    ($storage:ident, $db:ty, order = $order:literal, day = $day:literal, begin = $begin:literal) => {
        mod shared_queries {
            use super::$storage;
            use super::super::{
                sql::{
                    classify, like_pattern, owner_table, AuditRecord, Charged, KeyRecord,
                    LevelRecord,
                    MemberRecord,
                    OrgMemberRecord, OrganizationRecord, TeamRecord, UserKeys, UserRecord,
                    BUDGET_COLUMNS, MEMBERS,
                },
                AlertFilter, AlertRow, AuditFilter, AuditRow, BudgetLevel, BudgetOwner, BudgetPatch, BudgetRow, DailySpend,
                DeleteOutcome, GroupSpend, StorageError,
                InvitationRow, KeyFilter, KeyPatch, KeyRow, MemberPatch, MemberRow, OrgMemberRow,
                PasswordRow, SessionRow,
                OrganizationPatch, OrganizationRow, RefusalCount, SpendFilter, SpendGrouping,
                SpendLog, Storage, StorageResult, TeamOrder, Transaction, TeamPatch, TeamQuery, TeamRow,
                UserPatch, UserQuery, UserRow,
            };
            use async_trait::async_trait;
            use sqlx::{query_builder::Separated, types::Json, Encode, QueryBuilder, Type};
            use std::collections::BTreeMap;

            type Db = $db;

            /// Adds `, column = ?` to an UPDATE when the patch carries a value for it.
            fn set<'a, T>(q: &mut QueryBuilder<'a, Db>, column: &'static str, value: Option<T>)
            where
                T: 'a + Encode<'a, Db> + Type<Db> + Send,
            {
                if let Some(value) = value {
                    q.push(", ").push(column).push(" = ").push_bind(value);
                }
            }

            fn set_budget(q: &mut QueryBuilder<'_, Db>, p: &BudgetPatch) {
                set(q, "max_budget", p.max_budget);
                set(q, "soft_budget", p.soft_budget);
                set(q, "tpm_limit", p.tpm_limit);
                set(q, "rpm_limit", p.rpm_limit);
                set(q, "max_parallel_requests", p.max_parallel_requests);
                set(q, "budget_duration", p.budget_duration.clone());
                set(q, "budget_reset_at", p.budget_reset_at);
            }

            fn bind_budget<'a>(values: &mut Separated<'_, 'a, Db, &'static str>, b: &'a BudgetRow) {
                values
                    .push_bind(b.max_budget)
                    .push_bind(b.soft_budget)
                    .push_bind(b.spend)
                    .push_bind(b.tpm_limit)
                    .push_bind(b.rpm_limit)
                    .push_bind(b.max_parallel_requests)
                    .push_bind(&b.budget_duration)
                    .push_bind(b.budget_reset_at)
                    .push_bind(b.budget_window);
            }

            /// Where a query runs: a connection of the pool, or the task's transaction.
            enum Conn {
                Pool(sqlx::pool::PoolConnection<Db>),
                Tx(tokio::sync::OwnedMutexGuard<sqlx::Transaction<'static, Db>>),
            }

            impl std::ops::Deref for Conn {
                type Target = <Db as sqlx::Database>::Connection;
                fn deref(&self) -> &Self::Target {
                    match self {
                        Self::Pool(conn) => conn,
                        Self::Tx(tx) => tx,
                    }
                }
            }

            impl std::ops::DerefMut for Conn {
                fn deref_mut(&mut self) -> &mut Self::Target {
                    match self {
                        Self::Pool(conn) => conn,
                        Self::Tx(tx) => tx,
                    }
                }
            }

            #[async_trait]
            impl Transaction for $storage {
                fn storage(&self) -> &dyn Storage {
                    self
                }

                async fn commit(self: Box<Self>) -> StorageResult<()> {
                    let Some(tx) = self.tx else {
                        return Ok(());
                    };
                    // Every query has let go of it by the time the caller commits.
                    let tx = std::sync::Arc::try_unwrap(tx).map_err(|_| {
                        StorageError::Unsupported("a transaction still in use".to_string())
                    })?;
                    tx.into_inner().commit().await?;
                    Ok(())
                }
            }

            impl $storage {
                /// The transaction this storage runs in, else a pooled connection.
                async fn conn(&self) -> StorageResult<Conn> {
                    match &self.tx {
                        Some(tx) => Ok(Conn::Tx(tx.clone().lock_owned().await)),
                        None => Ok(Conn::Pool(self.pool.acquire().await?)),
                    }
                }

                /// Runs an INSERT on its own savepoint: a refused one (a row that exists, a row
                /// it names that does not) leaves the transaction around it usable (PostgreSQL
                /// aborts a whole transaction at its first error).
                async fn insert(&self, mut q: QueryBuilder<'_, Db>) -> StorageResult<()> {
                    let mut conn = self.conn().await?;
                    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
                    q.build().execute(&mut *savepoint).await.map_err(classify)?;
                    savepoint.commit().await?;
                    Ok(())
                }

                /// The row of `select` (a `SELECT ... FROM ...`) whose `column` is `value`.
                async fn one<R, T>(
                    &self,
                    select: &str,
                    column: &str,
                    value: &str,
                ) -> StorageResult<Option<T>>
                where
                    R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
                    T: From<R>,
                {
                    let mut q = QueryBuilder::<Db>::new(select);
                    q.push(" WHERE ").push(column).push(" = ").push_bind(value);
                    let row = q.build_query_as::<R>().fetch_optional(&mut *self.conn().await?).await?;
                    Ok(row.map(Into::into))
                }

                /// Finishes an UPDATE built in `q` (`UPDATE table SET ...`): only the row whose
                /// `column` is `value`; answers it as changed.
                async fn updated<'a, R, T>(
                    &self,
                    mut q: QueryBuilder<'a, Db>,
                    column: &str,
                    value: &'a str,
                ) -> StorageResult<Option<T>>
                where
                    R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
                    T: From<R>,
                {
                    q.push(" WHERE ").push(column).push(" = ").push_bind(value);
                    q.push(" RETURNING *");
                    let row = q.build_query_as::<R>().fetch_optional(&mut *self.conn().await?).await?;
                    Ok(row.map(Into::into))
                }

                /// Every row `sql` selects.
                async fn all<R, T>(&self, sql: &'static str) -> StorageResult<Vec<T>>
                where
                    R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
                    T: From<R>,
                {
                    let rows = sqlx::query_as::<_, R>(sql).fetch_all(&mut *self.conn().await?).await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                }

                /// Deletes each id in one transaction; rolls back at the first missing one.
                async fn delete_all(
                    &self,
                    owner: BudgetOwner,
                    ids: &[String],
                ) -> StorageResult<DeleteOutcome> {
                    let (table, column) = owner_table(owner);
                    let mut conn = self.conn().await?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    for id in ids {
                        let mut q = QueryBuilder::<Db>::new("DELETE FROM ");
                        q.push(table).push(" WHERE ").push(column).push(" = ").push_bind(id);
                        if q.build().execute(&mut *tx).await?.rows_affected() == 0 {
                            tx.rollback().await?;
                            return Ok(DeleteOutcome::Missing(id.clone()));
                        }
                    }
                    tx.commit().await?;
                    Ok(DeleteOutcome::Deleted)
                }
            }

            #[async_trait]
            impl Storage for $storage {
                async fn insert_team(&self, t: &TeamRow) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(format!(
                        "INSERT INTO teams (team_id, team_alias, organization_id, models, aliases, \
                         {BUDGET_COLUMNS}, metadata, blocked, alert_webhook_url, created_at, \
                         updated_at) "
                    ));
                    q.push_values([t], |mut v, t| {
                        v.push_bind(&t.team_id)
                            .push_bind(&t.team_alias)
                            .push_bind(&t.organization_id)
                            .push_bind(Json(&t.models))
                            .push_bind(Json(&t.aliases));
                        bind_budget(&mut v, &t.budget);
                        v.push_bind(Json(&t.metadata))
                            .push_bind(t.blocked)
                            .push_bind(&t.alert_webhook_url)
                            .push_bind(t.created_at)
                            .push_bind(t.updated_at);
                    });
                    self.insert(q).await?;
                    Ok(())
                }

                async fn team(&self, team_id: &str) -> StorageResult<Option<TeamRow>> {
                    self.one::<TeamRecord, _>("SELECT * FROM teams", "team_id", team_id)
                        .await
                }

                async fn teams(&self) -> StorageResult<Vec<TeamRow>> {
                    self.all::<TeamRecord, _>(concat!(
                        "SELECT * FROM teams ORDER BY created_at, ",
                        $order
                    ))
                    .await
                }

                async fn teams_page(
                    &self,
                    query: &TeamQuery,
                    offset: u64,
                    limit: u64,
                ) -> StorageResult<(Vec<TeamRow>, u64)> {
                    fn selected<'a>(select: &str, query: &'a TeamQuery) -> QueryBuilder<'a, Db> {
                        let mut q = QueryBuilder::<Db>::new(select);
                        q.push(" WHERE 1 = 1");
                        if let Some(pattern) = &query.search {
                            q.push(" AND (LOWER(team_id) LIKE ")
                                .push_bind(pattern)
                                .push(" ESCAPE '\\' OR LOWER(COALESCE(team_alias, '')) LIKE ")
                                .push_bind(pattern)
                                .push(" ESCAPE '\\')");
                        }
                        if let Some(only) = &query.only {
                            q.push(" AND team_id IN (NULL");
                            for id in only {
                                q.push(", ").push_bind(id);
                            }
                            q.push(")");
                        }
                        q
                    }
                    let query = TeamQuery {
                        search: query.search.as_deref().map(like_pattern),
                        ..query.clone()
                    };
                    let total: i64 = selected("SELECT COUNT(*) FROM teams", &query)
                        .build_query_scalar()
                        .fetch_one(&mut *self.conn().await?)
                        .await?;
                    let mut q = selected("SELECT * FROM teams", &query);
                    let by = match query.order {
                        TeamOrder::Name => "LOWER(COALESCE(team_alias, team_id))",
                        TeamOrder::Spend => "spend",
                        TeamOrder::Used => {
                            "CASE WHEN max_budget > 0 THEN spend * 1.0 / max_budget ELSE 0 END"
                        }
                        TeamOrder::Reset => "COALESCE(budget_reset_at, 9223372036854775807)",
                        TeamOrder::Created => "created_at",
                    };
                    q.push(" ORDER BY ")
                        .push(by)
                        .push(if query.descending { " DESC" } else { " ASC" })
                        .push(", team_id LIMIT ")
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .push(" OFFSET ")
                        .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
                    let rows = q.build_query_as::<TeamRecord>().fetch_all(&mut *self.conn().await?).await?;
                    Ok((
                        rows.into_iter().map(Into::into).collect(),
                        u64::try_from(total).unwrap_or(0),
                    ))
                }

                async fn update_team(
                    &self,
                    team_id: &str,
                    p: &TeamPatch,
                    now: i64,
                ) -> StorageResult<Option<TeamRow>> {
                    let mut q = QueryBuilder::<Db>::new("UPDATE teams SET updated_at = ");
                    q.push_bind(now);
                    set(&mut q, "team_alias", p.team_alias.clone());
                    set(&mut q, "organization_id", p.organization_id.clone());
                    set(&mut q, "models", p.models.clone().map(Json));
                    set(&mut q, "aliases", p.aliases.clone().map(Json));
                    set_budget(&mut q, &p.budget);
                    set(&mut q, "metadata", p.metadata.clone().map(Json));
                    set(&mut q, "blocked", p.blocked);
                    set(&mut q, "alert_webhook_url", p.alert_webhook_url.clone());
                    self.updated::<TeamRecord, _>(q, "team_id", team_id).await
                }

                async fn delete_teams(&self, team_ids: &[String]) -> StorageResult<DeleteOutcome> {
                    // The team's keys go with it (ON DELETE CASCADE).
                    self.delete_all(BudgetOwner::Team, team_ids).await
                }

                async fn insert_key(&self, k: &KeyRow) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(format!(
                        "INSERT INTO api_keys (key_id, key_hash, key_hint, team_id, user_id, \
                         key_alias, models, aliases, {BUDGET_COLUMNS}, metadata, blocked, \
                         expires_at, previous_key_hash, previous_key_expires_at, max_role, \
                         issued_by, created_at, updated_at) "
                    ));
                    q.push_values([k], |mut v, k| {
                        v.push_bind(&k.key_id)
                            .push_bind(&k.key_hash)
                            .push_bind(&k.key_hint)
                            .push_bind(&k.team_id)
                            .push_bind(&k.user_id)
                            .push_bind(&k.key_alias)
                            .push_bind(Json(&k.models))
                            .push_bind(Json(&k.aliases));
                        bind_budget(&mut v, &k.budget);
                        v.push_bind(Json(&k.metadata))
                            .push_bind(k.blocked)
                            .push_bind(k.expires_at)
                            .push_bind(k.previous_key.as_ref().map(|(hash, _)| hash))
                            .push_bind(k.previous_key.as_ref().map(|(_, until)| *until))
                            .push_bind(&k.max_role)
                            .push_bind(&k.issued_by)
                            .push_bind(k.created_at)
                            .push_bind(k.updated_at);
                    });
                    self.insert(q).await?;
                    Ok(())
                }

                async fn key(&self, key_id: &str) -> StorageResult<Option<KeyRow>> {
                    self.one::<KeyRecord, _>("SELECT * FROM api_keys", "key_id", key_id)
                        .await
                }

                async fn key_by_hash(&self, key_hash: &str) -> StorageResult<Option<KeyRow>> {
                    // Its secret, or the one it had before a rotation (the caller checks the
                    // grace period: `KeyRow::accepts`).
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT * FROM api_keys WHERE key_hash = ",
                    );
                    q.push_bind(key_hash)
                        .push(" OR previous_key_hash = ")
                        .push_bind(key_hash);
                    let row = q.build_query_as::<KeyRecord>().fetch_optional(&mut *self.conn().await?).await?;
                    Ok(row.map(Into::into))
                }

                async fn keys(
                    &self,
                    filter: &KeyFilter,
                    offset: u64,
                    limit: u64,
                ) -> StorageResult<(Vec<KeyRow>, u64)> {
                    fn filtered<'a>(select: &str, filter: &'a KeyFilter) -> QueryBuilder<'a, Db> {
                        let mut q = QueryBuilder::<Db>::new(select);
                        q.push(" WHERE 1 = 1");
                        if let Some(team_id) = &filter.team_id {
                            q.push(" AND team_id = ").push_bind(team_id);
                        }
                        if let Some(user_id) = &filter.user_id {
                            q.push(" AND user_id = ").push_bind(user_id);
                        }
                        if let Some(alias) = &filter.key_alias {
                            q.push(" AND key_alias = ").push_bind(alias);
                        }
                        if let Some(hash) = &filter.key_hash {
                            q.push(" AND key_hash = ").push_bind(hash);
                        }
                        q
                    }
                    let total: i64 = filtered("SELECT COUNT(*) FROM api_keys", filter)
                        .build_query_scalar()
                        .fetch_one(&mut *self.conn().await?)
                        .await?;
                    let mut q = filtered("SELECT * FROM api_keys", filter);
                    q.push(concat!(" ORDER BY created_at, ", $order, " LIMIT "))
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .push(" OFFSET ")
                        .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
                    let rows = q.build_query_as::<KeyRecord>().fetch_all(&mut *self.conn().await?).await?;
                    Ok((
                        rows.into_iter().map(Into::into).collect(),
                        u64::try_from(total).unwrap_or(0),
                    ))
                }

                async fn update_key(
                    &self,
                    key_id: &str,
                    p: &KeyPatch,
                    now: i64,
                ) -> StorageResult<Option<KeyRow>> {
                    let mut q = QueryBuilder::<Db>::new("UPDATE api_keys SET updated_at = ");
                    q.push_bind(now);
                    if let Some(secret) = &p.secret {
                        let (old, until) = secret.previous_key.clone().unzip();
                        set(&mut q, "key_hash", Some(secret.key_hash.clone()));
                        set(&mut q, "key_hint", Some(secret.key_hint.clone()));
                        set(&mut q, "previous_key_hash", Some(old));
                        set(&mut q, "previous_key_expires_at", Some(until));
                    }
                    if let Some((max_role, issued_by)) = &p.authority {
                        set(&mut q, "max_role", Some(max_role.clone()));
                        set(&mut q, "issued_by", Some(issued_by.clone()));
                    }
                    set(&mut q, "user_id", p.user_id.clone());
                    set(&mut q, "key_alias", p.key_alias.clone());
                    set(&mut q, "models", p.models.clone().map(Json));
                    set(&mut q, "aliases", p.aliases.clone().map(Json));
                    set_budget(&mut q, &p.budget);
                    set(&mut q, "metadata", p.metadata.clone().map(Json));
                    set(&mut q, "blocked", p.blocked);
                    set(&mut q, "expires_at", p.expires_at);
                    self.updated::<KeyRecord, _>(q, "key_id", key_id).await
                }

                async fn delete_keys(&self, key_ids: &[String]) -> StorageResult<DeleteOutcome> {
                    self.delete_all(BudgetOwner::Key, key_ids).await
                }

                async fn all_keys(&self) -> StorageResult<Vec<KeyRow>> {
                    self.all::<KeyRecord, _>("SELECT * FROM api_keys").await
                }

                async fn insert_user(&self, u: &UserRow) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(format!(
                        "INSERT INTO users (user_id, user_alias, user_email, user_role, models, \
                         {BUDGET_COLUMNS}, metadata, created_at, updated_at) "
                    ));
                    q.push_values([u], |mut v, u| {
                        v.push_bind(&u.user_id)
                            .push_bind(&u.user_alias)
                            .push_bind(&u.user_email)
                            .push_bind(&u.user_role)
                            .push_bind(Json(&u.models));
                        bind_budget(&mut v, &u.budget);
                        v.push_bind(Json(&u.metadata))
                            .push_bind(u.created_at)
                            .push_bind(u.updated_at);
                    });
                    self.insert(q).await?;
                    Ok(())
                }

                async fn user(&self, user_id: &str) -> StorageResult<Option<UserRow>> {
                    self.one::<UserRecord, _>("SELECT * FROM users", "user_id", user_id)
                        .await
                }

                async fn all_users(&self) -> StorageResult<Vec<UserRow>> {
                    self.all::<UserRecord, _>("SELECT * FROM users").await
                }

                async fn users_with_email(&self, address: &str) -> StorageResult<Vec<UserRow>> {
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT * FROM users WHERE LOWER(user_email) = LOWER(",
                    );
                    q.push_bind(address)
                        .push(") ORDER BY created_at, user_id LIMIT 10");
                    let rows = q
                        .build_query_as::<UserRecord>()
                        .fetch_all(&mut *self.conn().await?)
                        .await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                }

                async fn shared_emails(&self) -> StorageResult<Vec<String>> {
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT LOWER(user_email) FROM users WHERE user_email IS NOT NULL \
                         GROUP BY LOWER(user_email) HAVING COUNT(*) > 1 ORDER BY 1",
                    );
                    Ok(q.build_query_scalar().fetch_all(&mut *self.conn().await?).await?)
                }

                async fn users_page(
                    &self,
                    query: &UserQuery,
                    offset: u64,
                    limit: u64,
                ) -> StorageResult<(Vec<(UserRow, u64)>, u64)> {
                    fn selected<'a>(select: &str, query: &'a UserQuery) -> QueryBuilder<'a, Db> {
                        let mut q = QueryBuilder::<Db>::new(select);
                        q.push(" WHERE 1 = 1");
                        if let Some(role) = &query.role {
                            q.push(" AND user_role = ").push_bind(role);
                        }
                        if let Some(ids) = &query.user_ids {
                            q.push(" AND user_id IN (");
                            let mut list = q.separated(", ");
                            for id in ids {
                                list.push_bind(id);
                            }
                            // An empty list selects nobody.
                            if ids.is_empty() {
                                list.push("NULL");
                            }
                            q.push(")");
                        }
                        if let Some(pattern) = &query.email {
                            q.push(" AND LOWER(COALESCE(user_email, '')) LIKE ")
                                .push_bind(pattern)
                                .push(" ESCAPE '\\'");
                        }
                        q
                    }
                    let query = UserQuery {
                        email: query.email.as_deref().map(like_pattern),
                        ..query.clone()
                    };
                    let total: i64 = selected("SELECT COUNT(*) FROM users", &query)
                        .build_query_scalar()
                        .fetch_one(&mut *self.conn().await?)
                        .await?;
                    let mut q = selected(
                        "SELECT users.*, (SELECT COUNT(*) FROM api_keys \
                         WHERE api_keys.user_id = users.user_id) AS key_count FROM users",
                        &query,
                    );
                    q.push(concat!(" ORDER BY created_at, ", $order, " LIMIT "))
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .push(" OFFSET ")
                        .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
                    let rows = q.build_query_as::<UserKeys>().fetch_all(&mut *self.conn().await?).await?;
                    Ok((
                        rows.into_iter()
                            .map(|r| (r.user.into(), u64::try_from(r.key_count).unwrap_or(0)))
                            .collect(),
                        u64::try_from(total).unwrap_or(0),
                    ))
                }

                async fn update_user(
                    &self,
                    user_id: &str,
                    p: &UserPatch,
                    now: i64,
                ) -> StorageResult<Option<UserRow>> {
                    let mut q = QueryBuilder::<Db>::new("UPDATE users SET updated_at = ");
                    q.push_bind(now);
                    set(&mut q, "user_alias", p.user_alias.clone());
                    set(&mut q, "user_email", p.user_email.clone());
                    set(&mut q, "user_role", p.user_role.clone());
                    set(&mut q, "models", p.models.clone().map(Json));
                    set_budget(&mut q, &p.budget);
                    set(&mut q, "metadata", p.metadata.clone().map(Json));
                    self.updated::<UserRecord, _>(q, "user_id", user_id).await
                }

                async fn delete_users(&self, user_ids: &[String]) -> StorageResult<DeleteOutcome> {
                    let mut conn = self.conn().await?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    for id in user_ids {
                        let mut q = QueryBuilder::<Db>::new("DELETE FROM users WHERE user_id = ");
                        q.push_bind(id);
                        if q.build().execute(&mut *tx).await?.rows_affected() == 0 {
                            tx.rollback().await?;
                            return Ok(DeleteOutcome::Missing(id.clone()));
                        }
                        let mut q =
                            QueryBuilder::<Db>::new("DELETE FROM api_keys WHERE user_id = ");
                        q.push_bind(id);
                        q.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(DeleteOutcome::Deleted)
                }

                async fn insert_member(&self, m: &MemberRow) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(format!(
                        "INSERT INTO team_members (member_id, team_id, user_id, role, models, \
                         {BUDGET_COLUMNS}, created_at, updated_at) "
                    ));
                    let member_id = m.member_id();
                    q.push_values([m], |mut v, m| {
                        v.push_bind(&member_id)
                            .push_bind(&m.team_id)
                            .push_bind(&m.user_id)
                            .push_bind(&m.role)
                            .push_bind(Json(&m.models));
                        bind_budget(&mut v, &m.budget);
                        v.push_bind(m.created_at).push_bind(m.updated_at);
                    });
                    self.insert(q).await?;
                    Ok(())
                }

                async fn member(&self, member_id: &str) -> StorageResult<Option<MemberRow>> {
                    self.one::<MemberRecord, _>(MEMBERS, "team_members.member_id", member_id)
                        .await
                }

                async fn members(
                    &self,
                    team_id: Option<&str>,
                    user_id: Option<&str>,
                ) -> StorageResult<Vec<MemberRow>> {
                    let mut q = QueryBuilder::<Db>::new(MEMBERS);
                    q.push(" WHERE 1 = 1");
                    if let Some(team_id) = team_id {
                        q.push(" AND team_members.team_id = ").push_bind(team_id);
                    }
                    if let Some(user_id) = user_id {
                        q.push(" AND team_members.user_id = ").push_bind(user_id);
                    }
                    q.push(concat!(" ORDER BY team_members.created_at, team_members.", $order));
                    let rows = q.build_query_as::<MemberRecord>().fetch_all(&mut *self.conn().await?).await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                }

                async fn update_member(
                    &self,
                    member_id: &str,
                    p: &MemberPatch,
                    now: i64,
                ) -> StorageResult<Option<MemberRow>> {
                    let mut q = QueryBuilder::<Db>::new("UPDATE team_members SET updated_at = ");
                    q.push_bind(now);
                    set(&mut q, "role", p.role.clone());
                    set(&mut q, "models", p.models.clone().map(Json));
                    set_budget(&mut q, &p.budget);
                    q.push(" WHERE member_id = ").push_bind(member_id);
                    if q.build().execute(&mut *self.conn().await?).await?.rows_affected() == 0 {
                        return Ok(None);
                    }
                    self.member(member_id).await
                }

                async fn delete_member(&self, member_id: &str) -> StorageResult<Option<Vec<String>>> {
                    let mut conn = self.conn().await?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let mut q = QueryBuilder::<Db>::new(
                        "DELETE FROM team_members WHERE member_id = ",
                    );
                    q.push_bind(member_id);
                    q.push(" RETURNING team_id, user_id");
                    let Some((team_id, user_id)) = q
                        .build_query_as::<(String, String)>()
                        .fetch_optional(&mut *tx)
                        .await?
                    else {
                        tx.rollback().await?;
                        return Ok(None);
                    };
                    let mut q = QueryBuilder::<Db>::new("DELETE FROM api_keys WHERE team_id = ");
                    q.push_bind(&team_id).push(" AND user_id = ").push_bind(&user_id);
                    q.push(" RETURNING key_id");
                    let keys: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(Some(keys))
                }

                async fn insert_organization(&self, o: &OrganizationRow) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(format!(
                        "INSERT INTO organizations (organization_id, organization_alias, models, \
                         {BUDGET_COLUMNS}, metadata, created_at, updated_at) "
                    ));
                    q.push_values([o], |mut v, o| {
                        v.push_bind(&o.organization_id)
                            .push_bind(&o.organization_alias)
                            .push_bind(Json(&o.models));
                        bind_budget(&mut v, &o.budget);
                        v.push_bind(Json(&o.metadata))
                            .push_bind(o.created_at)
                            .push_bind(o.updated_at);
                    });
                    self.insert(q).await?;
                    Ok(())
                }

                async fn organization(&self, id: &str) -> StorageResult<Option<OrganizationRow>> {
                    self.one::<OrganizationRecord, _>(
                        "SELECT * FROM organizations",
                        "organization_id",
                        id,
                    )
                    .await
                }

                async fn organizations(&self) -> StorageResult<Vec<OrganizationRow>> {
                    self.all::<OrganizationRecord, _>(concat!(
                        "SELECT * FROM organizations ORDER BY created_at, ",
                        $order
                    ))
                    .await
                }

                async fn update_organization(
                    &self,
                    id: &str,
                    p: &OrganizationPatch,
                    now: i64,
                ) -> StorageResult<Option<OrganizationRow>> {
                    let mut q = QueryBuilder::<Db>::new("UPDATE organizations SET updated_at = ");
                    q.push_bind(now);
                    set(&mut q, "organization_alias", p.organization_alias.clone());
                    set(&mut q, "models", p.models.clone().map(Json));
                    set_budget(&mut q, &p.budget);
                    set(&mut q, "metadata", p.metadata.clone().map(Json));
                    self.updated::<OrganizationRecord, _>(q, "organization_id", id).await
                }

                async fn delete_organizations(&self, ids: &[String]) -> StorageResult<DeleteOutcome> {
                    let mut conn = self.conn().await?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    for id in ids {
                        // The teams go first (their keys and members with them), then the
                        // organization (its members with it).
                        let mut q =
                            QueryBuilder::<Db>::new("DELETE FROM teams WHERE organization_id = ");
                        q.push_bind(id);
                        q.build().execute(&mut *tx).await?;
                        let mut q = QueryBuilder::<Db>::new(
                            "DELETE FROM organizations WHERE organization_id = ",
                        );
                        q.push_bind(id);
                        if q.build().execute(&mut *tx).await?.rows_affected() == 0 {
                            tx.rollback().await?;
                            return Ok(DeleteOutcome::Missing(id.clone()));
                        }
                    }
                    tx.commit().await?;
                    Ok(DeleteOutcome::Deleted)
                }

                async fn insert_org_member(&self, m: &OrgMemberRow) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(
                        "INSERT INTO organization_members (member_id, organization_id, user_id, \
                         user_role, created_at, updated_at) ",
                    );
                    let member_id = super::super::member_id(&m.organization_id, &m.user_id);
                    q.push_values([m], |mut v, m| {
                        v.push_bind(&member_id)
                            .push_bind(&m.organization_id)
                            .push_bind(&m.user_id)
                            .push_bind(&m.user_role)
                            .push_bind(m.created_at)
                            .push_bind(m.updated_at);
                    });
                    self.insert(q).await?;
                    Ok(())
                }

                async fn org_members(
                    &self,
                    organization_id: Option<&str>,
                    user_id: Option<&str>,
                ) -> StorageResult<Vec<OrgMemberRow>> {
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT organization_members.*, users.user_email FROM organization_members \
                         JOIN users ON users.user_id = organization_members.user_id WHERE 1 = 1",
                    );
                    if let Some(id) = organization_id {
                        q.push(" AND organization_members.organization_id = ").push_bind(id);
                    }
                    if let Some(id) = user_id {
                        q.push(" AND organization_members.user_id = ").push_bind(id);
                    }
                    q.push(concat!(
                        " ORDER BY organization_members.created_at, organization_members.",
                        $order
                    ));
                    let rows = q.build_query_as::<OrgMemberRecord>().fetch_all(&mut *self.conn().await?).await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                }

                async fn record_spend(&self, logs: &[SpendLog]) -> StorageResult<()> {
                    let mut conn = self.conn().await?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    // What each key and team is owed, per window: only rows written now count,
                    // so a batch committed twice adds nothing the second time.
                    let mut keys: BTreeMap<(&str, i64), i64> = BTreeMap::new();
                    let mut teams: BTreeMap<(&str, i64), i64> = BTreeMap::new();
                    let mut users: BTreeMap<(&str, i64), i64> = BTreeMap::new();
                    let mut members: BTreeMap<(String, i64), i64> = BTreeMap::new();
                    let mut orgs: BTreeMap<(&str, i64), i64> = BTreeMap::new();
                    let mut charged = Vec::new();
                    for chunk in logs.chunks(500) {
                        let mut q = QueryBuilder::<Db>::new(
                            "INSERT INTO spend_logs (request_id, ts_ms, key_id, team_id, \
                             user_id, model, prompt_tokens, completion_tokens, cost, \
                             latency_ms, status, key_window, team_window, user_window, \
                             member_window, organization_id, organization_window, model_id, \
                             retries, fallbacks) ",
                        );
                        q.push_values(chunk, |mut row, log| {
                            row.push_bind(&log.request_id)
                                .push_bind(log.ts_ms)
                                .push_bind(&log.key_id)
                                .push_bind(&log.team_id)
                                .push_bind(&log.user_id)
                                .push_bind(&log.model)
                                .push_bind(log.prompt_tokens)
                                .push_bind(log.completion_tokens)
                                .push_bind(log.cost)
                                .push_bind(log.latency_ms)
                                .push_bind(log.status)
                                .push_bind(log.key_window)
                                .push_bind(log.team_window)
                                .push_bind(log.user_window)
                                .push_bind(log.member_window)
                                .push_bind(&log.organization_id)
                                .push_bind(log.organization_window)
                                .push_bind(&log.model_id)
                                .push_bind(log.retries)
                                .push_bind(log.fallbacks);
                        });
                        q.push(
                            " ON CONFLICT (request_id) DO NOTHING \
                             RETURNING key_id, team_id, user_id, cost, key_window, team_window, \
                             user_window, member_window, organization_id, organization_window",
                        );
                        charged.extend(q.build_query_as::<Charged>().fetch_all(&mut *tx).await?);
                    }
                    for c in &charged {
                        let key = keys.entry((c.key_id.as_str(), c.key_window)).or_default();
                        *key = key.saturating_add(c.cost);
                        let team = teams.entry((c.team_id.as_str(), c.team_window)).or_default();
                        *team = team.saturating_add(c.cost);
                        if let Some(user_id) = &c.user_id {
                            let user = users.entry((user_id.as_str(), c.user_window)).or_default();
                            *user = user.saturating_add(c.cost);
                            let member = members
                                .entry((super::super::member_id(&c.team_id, user_id), c.member_window))
                                .or_default();
                            *member = member.saturating_add(c.cost);
                        }
                    }
                    for c in &charged {
                        if let Some(org) = &c.organization_id {
                            let owed = orgs.entry((org.as_str(), c.organization_window)).or_default();
                            *owed = owed.saturating_add(c.cost);
                        }
                    }
                    let members: BTreeMap<(&str, i64), i64> =
                        members.iter().map(|((id, w), c)| ((id.as_str(), *w), *c)).collect();
                    for (owner, owed) in [
                        (BudgetOwner::Key, &keys),
                        (BudgetOwner::Team, &teams),
                        (BudgetOwner::User, &users),
                        (BudgetOwner::Member, &members),
                        (BudgetOwner::Organization, &orgs),
                    ] {
                        let (table, column) = owner_table(owner);
                        for ((id, window), cost) in owed {
                            if *cost == 0 {
                                continue;
                            }
                            let mut q = QueryBuilder::<Db>::new("UPDATE ");
                            q.push(table).push(" SET spend = spend + ").push_bind(*cost);
                            q.push(" WHERE ").push(column).push(" = ").push_bind(*id);
                            q.push(" AND budget_window = ").push_bind(*window);
                            q.build().execute(&mut *tx).await?;
                        }
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn reset_budget(
                    &self,
                    owner: BudgetOwner,
                    id: &str,
                    due_at: i64,
                    next: i64,
                ) -> StorageResult<Option<i64>> {
                    let (table, column) = owner_table(owner);
                    let mut q = QueryBuilder::<Db>::new("UPDATE ");
                    q.push(table)
                        .push(" SET spend = 0, budget_window = budget_window + 1, budget_reset_at = ")
                        .push_bind(next);
                    q.push(" WHERE ").push(column).push(" = ").push_bind(id);
                    q.push(" AND budget_reset_at = ").push_bind(due_at);
                    q.push(" RETURNING budget_window");
                    Ok(q.build_query_scalar::<i64>()
                        .fetch_optional(&mut *self.conn().await?)
                        .await?)
                }

                async fn spend_logs(
                    &self,
                    filter: &SpendFilter,
                    offset: u64,
                    limit: u64,
                ) -> StorageResult<(Vec<SpendLog>, u64)> {
                    fn filtered<'a>(select: &str, f: &'a SpendFilter) -> QueryBuilder<'a, Db> {
                        let mut q = QueryBuilder::<Db>::new(select);
                        q.push(" WHERE 1 = 1");
                        if let Some(team_id) = &f.team_id {
                            q.push(" AND team_id = ").push_bind(team_id);
                        }
                        if let Some(key_id) = &f.key_id {
                            q.push(" AND key_id = ").push_bind(key_id);
                        }
                        if let Some(model) = &f.model {
                            q.push(" AND model = ").push_bind(model);
                        }
                        if let Some(status) = f.status {
                            q.push(" AND status = ").push_bind(status);
                        }
                        if let Some(request_id) = &f.request_id {
                            q.push(" AND request_id = ").push_bind(request_id);
                        }
                        if let Some(from) = f.from_ms {
                            q.push(" AND ts_ms >= ").push_bind(from);
                        }
                        if let Some(to) = f.to_ms {
                            q.push(" AND ts_ms < ").push_bind(to);
                        }
                        q
                    }
                    let total: i64 = filtered("SELECT COUNT(*) FROM spend_logs", filter)
                        .build_query_scalar()
                        .fetch_one(&mut *self.conn().await?)
                        .await?;
                    let mut q = filtered(
                        "SELECT request_id, ts_ms, key_id, team_id, user_id, model, \
                         prompt_tokens, completion_tokens, cost, latency_ms, status, key_window, \
                         team_window, user_window, member_window, organization_id, \
                         organization_window, model_id, retries, fallbacks FROM spend_logs",
                        filter,
                    );
                    q.push(" ORDER BY ts_ms DESC, id DESC LIMIT ")
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .push(" OFFSET ")
                        .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
                    let rows = q.build_query_as::<SpendLog>().fetch_all(&mut *self.conn().await?).await?;
                    Ok((rows, u64::try_from(total).unwrap_or(0)))
                }

                async fn record_refusals(
                    &self,
                    counts: &[RefusalCount],
                    keep_from: i64,
                ) -> StorageResult<()> {
                    let mut conn = self.conn().await?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    for chunk in counts.chunks(500) {
                        let mut q = QueryBuilder::<Db>::new(
                            "INSERT INTO refusals (minute, level, reason, count) ",
                        );
                        q.push_values(chunk, |mut row, c| {
                            row.push_bind(c.minute)
                                .push_bind(&c.level)
                                .push_bind(&c.reason)
                                .push_bind(c.count);
                        });
                        q.push(
                            " ON CONFLICT (minute, level, reason) \
                             DO UPDATE SET count = refusals.count + excluded.count",
                        );
                        q.build().execute(&mut *tx).await?;
                    }
                    QueryBuilder::<Db>::new("DELETE FROM refusals WHERE minute < ")
                        .push_bind(keep_from)
                        .build()
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn refusals(&self, from: i64) -> StorageResult<Vec<RefusalCount>> {
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT minute, level, reason, count FROM refusals WHERE minute >= ",
                    );
                    q.push_bind(from).push(" ORDER BY minute, level, reason");
                    Ok(q.build_query_as::<RefusalCount>().fetch_all(&mut *self.conn().await?).await?)
                }

                async fn daily_spend(
                    &self,
                    team_id: &str,
                    from_ms: i64,
                    to_ms: i64,
                    split: Option<SpendGrouping>,
                ) -> StorageResult<Vec<DailySpend>> {
                    let mut q = QueryBuilder::<Db>::new(concat!("SELECT ", $day, " AS day, "));
                    q.push(split.map_or("''", SpendGrouping::column));
                    q.push(
                        " AS group_id, CAST(SUM(cost) AS BIGINT) AS spend, COUNT(*) AS requests, \
                         CAST(SUM(prompt_tokens + completion_tokens) AS BIGINT) AS tokens \
                         FROM spend_logs WHERE team_id = ",
                    );
                    q.push_bind(team_id);
                    q.push(" AND ts_ms >= ").push_bind(from_ms);
                    q.push(" AND ts_ms < ").push_bind(to_ms);
                    q.push(if split.is_some() { " GROUP BY 1, 2" } else { " GROUP BY 1" });
                    q.push(" ORDER BY 1, 2");
                    Ok(q.build_query_as::<DailySpend>().fetch_all(&mut *self.conn().await?).await?)
                }

                async fn spend_by(
                    &self,
                    grouping: SpendGrouping,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u64,
                ) -> StorageResult<Vec<GroupSpend>> {
                    let column = grouping.column();
                    let mut q = QueryBuilder::<Db>::new("SELECT ");
                    q.push(column).push(
                        " AS id, CAST(SUM(cost) AS BIGINT) AS spend, COUNT(*) AS requests, \
                         CAST(SUM(prompt_tokens + completion_tokens) AS BIGINT) AS tokens \
                         FROM spend_logs WHERE ts_ms >= ",
                    );
                    q.push_bind(from_ms).push(" AND ts_ms < ").push_bind(to_ms);
                    q.push(" GROUP BY ").push(column);
                    q.push(" ORDER BY spend DESC, id LIMIT ")
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
                    Ok(q.build_query_as::<GroupSpend>().fetch_all(&mut *self.conn().await?).await?)
                }

                async fn insert_session(
                    &self,
                    token_hash: &str,
                    user_id: Option<&str>,
                    bound_by: Option<&str>,
                    expires_at: i64,
                ) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(
                        "INSERT INTO admin_sessions (token_hash, user_id, bound_by, expires_at) ",
                    );
                    q.push_values([(token_hash, user_id, bound_by, expires_at)], |mut v, (hash, user, bound, at)| {
                        v.push_bind(hash).push_bind(user).push_bind(bound).push_bind(at);
                    });
                    self.insert(q).await?;
                    Ok(())
                }

                async fn session(
                    &self,
                    token_hash: &str,
                    now: i64,
                ) -> StorageResult<Option<SessionRow>> {
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT user_id, bound_by, expires_at FROM admin_sessions WHERE token_hash = ",
                    );
                    q.push_bind(token_hash).push(" AND expires_at > ").push_bind(now);
                    let found: Option<(Option<String>, Option<String>, i64)> =
                        q.build_query_as().fetch_optional(&mut *self.conn().await?).await?;
                    Ok(found.map(|(user_id, bound_by, expires_at)| SessionRow {
                        user_id,
                        bound_by,
                        expires_at,
                    }))
                }

                async fn delete_user_sessions(&self, user_id: &str) -> StorageResult<()> {
                    let mut q =
                        QueryBuilder::<Db>::new("DELETE FROM admin_sessions WHERE user_id = ");
                    q.push_bind(user_id);
                    q.build().execute(&mut *self.conn().await?).await?;
                    Ok(())
                }

                async fn password(&self, user_id: &str) -> StorageResult<Option<PasswordRow>> {
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT password_hash, password_bound_by FROM users WHERE user_id = ",
                    );
                    q.push_bind(user_id);
                    let found: Option<(Option<String>, Option<String>)> =
                        q.build_query_as().fetch_optional(&mut *self.conn().await?).await?;
                    Ok(found.and_then(|(hash, bound_by)| {
                        hash.map(|hash| PasswordRow { hash, bound_by })
                    }))
                }

                async fn accept_invitation(
                    &self,
                    id_hash: &str,
                    password_hash: &str,
                    now: i64,
                ) -> StorageResult<bool> {
                    let mut conn = self.conn().await?;
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let mut q = QueryBuilder::<Db>::new(
                        "UPDATE invitations SET accepted_at = ",
                    );
                    q.push_bind(now)
                        .push(" WHERE id_hash = ")
                        .push_bind(id_hash)
                        .push(" AND accepted_at IS NULL AND expires_at > ")
                        .push_bind(now)
                        .push(" RETURNING user_id");
                    let user_id: Option<String> =
                        q.build_query_scalar().fetch_optional(&mut *tx).await?;
                    let Some(user_id) = user_id else {
                        tx.rollback().await?;
                        return Ok(false);
                    };
                    let mut q = QueryBuilder::<Db>::new("UPDATE users SET password_hash = ");
                    q.push_bind(password_hash)
                        .push(
                            ", password_bound_by = (SELECT CASE WHEN may_reset THEN NULL \
                             ELSE created_by END FROM invitations WHERE id_hash = ",
                        )
                        .push_bind(id_hash)
                        .push("), updated_at = ")
                        .push_bind(now)
                        .push(" WHERE user_id = ")
                        .push_bind(&user_id);
                    q.build().execute(&mut *tx).await?;
                    // The person's other links stop working: one sets the password.
                    let mut q = QueryBuilder::<Db>::new("UPDATE invitations SET accepted_at = ");
                    q.push_bind(now)
                        .push(" WHERE accepted_at IS NULL AND user_id = ")
                        .push_bind(&user_id);
                    q.build().execute(&mut *tx).await?;
                    // A new password ends the sessions the old one opened.
                    let mut q =
                        QueryBuilder::<Db>::new("DELETE FROM admin_sessions WHERE user_id = ");
                    q.push_bind(&user_id);
                    q.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn insert_invitation(&self, i: &InvitationRow) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(
                        "INSERT INTO invitations (id_hash, user_id, created_by, created_at, \
                         expires_at, accepted_at, may_reset) ",
                    );
                    q.push_values([i], |mut v, i| {
                        v.push_bind(&i.id_hash)
                            .push_bind(&i.user_id)
                            .push_bind(&i.created_by)
                            .push_bind(i.created_at)
                            .push_bind(i.expires_at)
                            .push_bind(i.accepted_at)
                            .push_bind(i.may_reset);
                    });
                    self.insert(q).await?;
                    Ok(())
                }

                async fn invitation(&self, id_hash: &str) -> StorageResult<Option<InvitationRow>> {
                    self.one::<InvitationRow, _>(
                        "SELECT id_hash, user_id, created_by, created_at, expires_at, accepted_at, \
                         may_reset FROM invitations",
                        "id_hash",
                        id_hash,
                    )
                    .await
                }

                async fn delete_session(&self, token_hash: &str) -> StorageResult<()> {
                    let mut q =
                        QueryBuilder::<Db>::new("DELETE FROM admin_sessions WHERE token_hash = ");
                    q.push_bind(token_hash);
                    q.build().execute(&mut *self.conn().await?).await?;
                    Ok(())
                }

                async fn delete_expired_sessions(&self, now: i64) -> StorageResult<()> {
                    let mut q =
                        QueryBuilder::<Db>::new("DELETE FROM admin_sessions WHERE expires_at <= ");
                    q.push_bind(now);
                    q.build().execute(&mut *self.conn().await?).await?;
                    Ok(())
                }

                async fn begin(&self) -> StorageResult<Box<dyn Transaction>> {
                    if self.tx.is_some() {
                        return Err(StorageError::Unsupported(
                            "a transaction inside a transaction".to_string(),
                        ));
                    }
                    let turn = self.writers.turn().await;
                    let tx = self.pool.begin_with($begin).await?;
                    Ok(Box::new($storage {
                        pool: self.pool.clone(),
                        tx: Some(std::sync::Arc::new(tokio::sync::Mutex::new(tx))),
                        writers: self.writers.clone(),
                        _turn: turn,
                    }))
                }

                async fn insert_audit(&self, rows: &[AuditRow]) -> StorageResult<()> {
                    if rows.is_empty() {
                        return Ok(());
                    }
                    let mut q = QueryBuilder::<Db>::new(
                        "INSERT INTO audit_log (request_id, at_ms, actor, changed_by, address, \
                         method, route, target_type, target_id, before_value, after_value) ",
                    );
                    q.push_values(rows, |mut v, r| {
                        v.push_bind(&r.request_id)
                            .push_bind(r.at_ms)
                            .push_bind(&r.actor)
                            .push_bind(&r.changed_by)
                            .push_bind(&r.address)
                            .push_bind(&r.method)
                            .push_bind(&r.route)
                            .push_bind(&r.target_type)
                            .push_bind(&r.target_id)
                            .push_bind(r.before_value.as_ref().map(Json))
                            .push_bind(r.after_value.as_ref().map(Json));
                    });
                    q.build().execute(&mut *self.conn().await?).await?;
                    Ok(())
                }

                async fn audit(
                    &self,
                    filter: &AuditFilter,
                    offset: u64,
                    limit: u64,
                ) -> StorageResult<(Vec<AuditRow>, u64)> {
                    fn filtered<'a>(select: &str, f: &'a AuditFilter) -> QueryBuilder<'a, Db> {
                        let mut q = QueryBuilder::<Db>::new(select);
                        q.push(" WHERE 1 = 1");
                        if let Some(v) = &f.target_type {
                            q.push(" AND target_type = ").push_bind(v);
                        }
                        if let Some(v) = &f.target_id {
                            q.push(" AND target_id = ").push_bind(v);
                        }
                        if let Some(v) = &f.actor {
                            q.push(" AND actor = ").push_bind(v);
                        }
                        if let Some(v) = f.from_ms {
                            q.push(" AND at_ms >= ").push_bind(v);
                        }
                        if let Some(v) = f.to_ms {
                            q.push(" AND at_ms < ").push_bind(v);
                        }
                        q
                    }
                    let total: i64 = filtered("SELECT COUNT(*) FROM audit_log", filter)
                        .build_query_scalar()
                        .fetch_one(&mut *self.conn().await?)
                        .await?;
                    let mut q = filtered("SELECT * FROM audit_log", filter);
                    q.push(" ORDER BY id DESC LIMIT ")
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .push(" OFFSET ")
                        .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
                    let rows = q
                        .build_query_as::<AuditRecord>()
                        .fetch_all(&mut *self.conn().await?)
                        .await?;
                    Ok((
                        rows.into_iter().map(Into::into).collect(),
                        u64::try_from(total).unwrap_or(0),
                    ))
                }

                async fn budget_levels(&self, owner: BudgetOwner) -> StorageResult<Vec<BudgetLevel>> {
                    let (table, column) = owner_table(owner);
                    let team = match owner {
                        BudgetOwner::Team | BudgetOwner::Key | BudgetOwner::Member => "team_id",
                        BudgetOwner::User | BudgetOwner::Organization => "CAST(NULL AS TEXT)",
                    };
                    let sql = format!(
                        "SELECT {column} AS id, {team} AS team_id, {BUDGET_COLUMNS} FROM {table} \
                         WHERE max_budget IS NOT NULL OR soft_budget IS NOT NULL"
                    );
                    let rows = QueryBuilder::<Db>::new(sql)
                        .build_query_as::<LevelRecord>()
                        .fetch_all(&mut *self.conn().await?)
                        .await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                }

                async fn insert_alerts(&self, rows: &[AlertRow]) -> StorageResult<u64> {
                    if rows.is_empty() {
                        return Ok(0);
                    }
                    let mut q = QueryBuilder::<Db>::new(
                        "INSERT INTO alert_events (event_id, destination, dedup_key, event, scope, \
                         target_id, payload, created_at, attempts, next_attempt_at, \
                         delivered_at, last_error) ",
                    );
                    q.push_values(rows, |mut v, r| {
                        v.push_bind(&r.event_id)
                            .push_bind(&r.destination)
                            .push_bind(&r.dedup_key)
                            .push_bind(&r.event)
                            .push_bind(&r.scope)
                            .push_bind(&r.target_id)
                            .push_bind(&r.payload)
                            .push_bind(r.created_at)
                            .push_bind(r.attempts)
                            .push_bind(r.next_attempt_at)
                            .push_bind(r.delivered_at)
                            .push_bind(&r.last_error);
                    });
                    q.push(" ON CONFLICT DO NOTHING");
                    Ok(q.build().execute(&mut *self.conn().await?).await?.rows_affected())
                }

                async fn due_alerts(&self, now: i64, limit: u64) -> StorageResult<Vec<AlertRow>> {
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT * FROM alert_events WHERE delivered_at IS NULL \
                         AND destination <> '' AND next_attempt_at <= ",
                    );
                    q.push_bind(now)
                        .push(" ORDER BY next_attempt_at LIMIT ")
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
                    Ok(q.build_query_as::<AlertRow>()
                        .fetch_all(&mut *self.conn().await?)
                        .await?)
                }

                async fn claim_alert(&self, row: &AlertRow, until: i64) -> StorageResult<bool> {
                    let mut q = QueryBuilder::<Db>::new("UPDATE alert_events SET next_attempt_at = ");
                    q.push_bind(until)
                        .push(" WHERE event_id = ")
                        .push_bind(&row.event_id)
                        .push(" AND destination = ")
                        .push_bind(&row.destination)
                        .push(" AND delivered_at IS NULL AND next_attempt_at = ")
                        .push_bind(row.next_attempt_at);
                    let done = q.build().execute(&mut *self.conn().await?).await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn alert_attempted(
                    &self,
                    row: &AlertRow,
                    delivered_at: Option<i64>,
                    next_attempt_at: i64,
                    error: Option<&str>,
                ) -> StorageResult<()> {
                    let mut q = QueryBuilder::<Db>::new(
                        "UPDATE alert_events SET attempts = attempts + 1, delivered_at = ",
                    );
                    q.push_bind(delivered_at)
                        .push(", next_attempt_at = ")
                        .push_bind(next_attempt_at)
                        .push(", last_error = ")
                        .push_bind(error)
                        .push(" WHERE event_id = ")
                        .push_bind(&row.event_id)
                        .push(" AND destination = ")
                        .push_bind(&row.destination);
                    q.build().execute(&mut *self.conn().await?).await?;
                    Ok(())
                }

                async fn alerts(
                    &self,
                    filter: &AlertFilter,
                    offset: u64,
                    limit: u64,
                ) -> StorageResult<(Vec<AlertRow>, u64)> {
                    fn filtered<'a>(select: &str, f: &'a AlertFilter) -> QueryBuilder<'a, Db> {
                        let mut q = QueryBuilder::<Db>::new(select);
                        q.push(" WHERE 1 = 1");
                        if let Some(v) = &f.scope {
                            q.push(" AND scope = ").push_bind(v);
                        }
                        if let Some(v) = &f.target_id {
                            q.push(" AND target_id = ").push_bind(v);
                        }
                        q
                    }
                    let total: i64 = filtered("SELECT COUNT(*) FROM alert_events", filter)
                        .build_query_scalar()
                        .fetch_one(&mut *self.conn().await?)
                        .await?;
                    let mut q = filtered("SELECT * FROM alert_events", filter);
                    q.push(" ORDER BY created_at DESC, event_id LIMIT ")
                        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .push(" OFFSET ")
                        .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
                    let rows = q
                        .build_query_as::<AlertRow>()
                        .fetch_all(&mut *self.conn().await?)
                        .await?;
                    Ok((rows, u64::try_from(total).unwrap_or(0)))
                }

                async fn close(&self) {
                    self.pool.close().await;
                }
            }
        }
    };
}

pub(super) use sql_storage;
