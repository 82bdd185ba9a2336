//! The embedded default: one SQLite file in WAL mode. Every statement binds its values.

use super::{
    DailySpend, DeleteOutcome, GroupSpend, KeyFilter, KeyPatch, KeyRow, SpendBatch, SpendFilter,
    SpendGrouping, SpendLog, Storage, StorageError, StorageResult, TeamPatch, TeamRow,
};
use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    types::Json,
    Encode, FromRow, QueryBuilder, Sqlite, SqlitePool, Type,
};
use std::{str::FromStr, time::Duration};

pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    pub async fn connect(url: &str) -> StorageResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// Maps constraint violations to the storage errors callers act on.
fn classify(err: sqlx::Error) -> StorageError {
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

#[derive(FromRow)]
struct TeamRecord {
    team_id: String,
    team_alias: Option<String>,
    models: Json<Vec<String>>,
    max_budget: Option<i64>,
    spend: i64,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    budget_duration: Option<String>,
    budget_reset_at: Option<i64>,
    metadata: Json<Map<String, Value>>,
    blocked: bool,
    created_at: i64,
    updated_at: i64,
}

impl From<TeamRecord> for TeamRow {
    fn from(r: TeamRecord) -> Self {
        Self {
            team_id: r.team_id,
            team_alias: r.team_alias,
            models: r.models.0,
            max_budget: r.max_budget,
            spend: r.spend,
            tpm_limit: r.tpm_limit,
            rpm_limit: r.rpm_limit,
            budget_duration: r.budget_duration,
            budget_reset_at: r.budget_reset_at,
            metadata: r.metadata.0,
            blocked: r.blocked,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
struct KeyRecord {
    key_id: String,
    key_hash: String,
    key_hint: String,
    team_id: String,
    user_id: Option<String>,
    key_alias: Option<String>,
    models: Json<Vec<String>>,
    max_budget: Option<i64>,
    spend: i64,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    budget_duration: Option<String>,
    budget_reset_at: Option<i64>,
    metadata: Json<Map<String, Value>>,
    blocked: bool,
    expires_at: Option<i64>,
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
            max_budget: r.max_budget,
            spend: r.spend,
            tpm_limit: r.tpm_limit,
            rpm_limit: r.rpm_limit,
            budget_duration: r.budget_duration,
            budget_reset_at: r.budget_reset_at,
            metadata: r.metadata.0,
            blocked: r.blocked,
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Adds `, column = ?` to an UPDATE when the patch carries a value for it.
fn set<'a, T>(query: &mut QueryBuilder<'a, Sqlite>, column: &'static str, value: Option<T>)
where
    T: 'a + Encode<'a, Sqlite> + Type<Sqlite> + Send,
{
    if let Some(value) = value {
        query.push(", ").push(column).push(" = ").push_bind(value);
    }
}

/// Deletes each id from `table` in one transaction; rolls back at the first missing one.
async fn delete_all(
    pool: &SqlitePool,
    sql: &'static str,
    ids: &[String],
) -> StorageResult<DeleteOutcome> {
    let mut tx = pool.begin().await?;
    for id in ids {
        let done = sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(DeleteOutcome::Missing(id.clone()));
        }
    }
    tx.commit().await?;
    Ok(DeleteOutcome::Deleted)
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn insert_team(&self, t: &TeamRow) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO teams (team_id, team_alias, models, max_budget, spend, tpm_limit, \
             rpm_limit, budget_duration, budget_reset_at, metadata, blocked, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.team_id)
        .bind(&t.team_alias)
        .bind(Json(&t.models))
        .bind(t.max_budget)
        .bind(t.spend)
        .bind(t.tpm_limit)
        .bind(t.rpm_limit)
        .bind(&t.budget_duration)
        .bind(t.budget_reset_at)
        .bind(Json(&t.metadata))
        .bind(t.blocked)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn team(&self, team_id: &str) -> StorageResult<Option<TeamRow>> {
        let row = sqlx::query_as::<_, TeamRecord>("SELECT * FROM teams WHERE team_id = ?")
            .bind(team_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    async fn teams(&self) -> StorageResult<Vec<TeamRow>> {
        let rows =
            sqlx::query_as::<_, TeamRecord>("SELECT * FROM teams ORDER BY created_at, rowid")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn update_team(
        &self,
        team_id: &str,
        p: &TeamPatch,
        now: i64,
    ) -> StorageResult<Option<TeamRow>> {
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE teams SET updated_at = ");
        q.push_bind(now);
        set(&mut q, "team_alias", p.team_alias.clone());
        set(&mut q, "models", p.models.clone().map(Json));
        set(&mut q, "max_budget", p.max_budget);
        set(&mut q, "tpm_limit", p.tpm_limit);
        set(&mut q, "rpm_limit", p.rpm_limit);
        set(&mut q, "budget_duration", p.budget_duration.clone());
        set(&mut q, "budget_reset_at", p.budget_reset_at);
        set(&mut q, "metadata", p.metadata.clone().map(Json));
        set(&mut q, "blocked", p.blocked);
        q.push(" WHERE team_id = ").push_bind(team_id.to_string());
        q.push(" RETURNING *");
        let row = q
            .build_query_as::<TeamRecord>()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    async fn delete_teams(&self, team_ids: &[String]) -> StorageResult<DeleteOutcome> {
        // The team's keys go with it (ON DELETE CASCADE).
        delete_all(&self.pool, "DELETE FROM teams WHERE team_id = ?", team_ids).await
    }

    async fn insert_key(&self, k: &KeyRow) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (key_id, key_hash, key_hint, team_id, user_id, key_alias, models, \
             max_budget, spend, tpm_limit, rpm_limit, budget_duration, budget_reset_at, metadata, \
             blocked, expires_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.key_id)
        .bind(&k.key_hash)
        .bind(&k.key_hint)
        .bind(&k.team_id)
        .bind(&k.user_id)
        .bind(&k.key_alias)
        .bind(Json(&k.models))
        .bind(k.max_budget)
        .bind(k.spend)
        .bind(k.tpm_limit)
        .bind(k.rpm_limit)
        .bind(&k.budget_duration)
        .bind(k.budget_reset_at)
        .bind(Json(&k.metadata))
        .bind(k.blocked)
        .bind(k.expires_at)
        .bind(k.created_at)
        .bind(k.updated_at)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn key(&self, key_id: &str) -> StorageResult<Option<KeyRow>> {
        let row = sqlx::query_as::<_, KeyRecord>("SELECT * FROM api_keys WHERE key_id = ?")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    async fn key_by_hash(&self, key_hash: &str) -> StorageResult<Option<KeyRow>> {
        let row = sqlx::query_as::<_, KeyRecord>("SELECT * FROM api_keys WHERE key_hash = ?")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    async fn keys(
        &self,
        filter: &KeyFilter,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<KeyRow>, u64)> {
        fn filtered<'a>(select: &str, filter: &'a KeyFilter) -> QueryBuilder<'a, Sqlite> {
            let mut q = QueryBuilder::<Sqlite>::new(select);
            q.push(" WHERE 1 = 1");
            if let Some(team_id) = &filter.team_id {
                q.push(" AND team_id = ").push_bind(team_id);
            }
            if let Some(user_id) = &filter.user_id {
                q.push(" AND user_id = ").push_bind(user_id);
            }
            q
        }
        let total: i64 = filtered("SELECT COUNT(*) FROM api_keys", filter)
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let mut q = filtered("SELECT * FROM api_keys", filter);
        q.push(" ORDER BY created_at, rowid LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = q
            .build_query_as::<KeyRecord>()
            .fetch_all(&self.pool)
            .await?;
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
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE api_keys SET updated_at = ");
        q.push_bind(now);
        set(&mut q, "user_id", p.user_id.clone());
        set(&mut q, "key_alias", p.key_alias.clone());
        set(&mut q, "models", p.models.clone().map(Json));
        set(&mut q, "max_budget", p.max_budget);
        set(&mut q, "tpm_limit", p.tpm_limit);
        set(&mut q, "rpm_limit", p.rpm_limit);
        set(&mut q, "budget_duration", p.budget_duration.clone());
        set(&mut q, "budget_reset_at", p.budget_reset_at);
        set(&mut q, "metadata", p.metadata.clone().map(Json));
        set(&mut q, "blocked", p.blocked);
        set(&mut q, "expires_at", p.expires_at);
        q.push(" WHERE key_id = ").push_bind(key_id.to_string());
        q.push(" RETURNING *");
        let row = q
            .build_query_as::<KeyRecord>()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    async fn delete_keys(&self, key_ids: &[String]) -> StorageResult<DeleteOutcome> {
        delete_all(&self.pool, "DELETE FROM api_keys WHERE key_id = ?", key_ids).await
    }

    async fn all_keys(&self) -> StorageResult<Vec<KeyRow>> {
        let rows = sqlx::query_as::<_, KeyRecord>("SELECT * FROM api_keys")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn record_spend(&self, batch: &SpendBatch) -> StorageResult<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in batch.logs.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO spend_logs (request_id, ts_ms, key_id, team_id, user_id, model, \
                 prompt_tokens, completion_tokens, cost, latency_ms, status) ",
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
                    .push_bind(log.status);
            });
            q.build().execute(&mut *tx).await?;
        }
        for (table, column, states) in [
            ("teams", "team_id", &batch.teams),
            ("api_keys", "key_id", &batch.keys),
        ] {
            for state in states {
                let mut q = QueryBuilder::<Sqlite>::new("UPDATE ");
                q.push(table)
                    .push(" SET spend = ")
                    .push_bind(state.spend)
                    .push(", budget_reset_at = ")
                    .push_bind(state.reset_at);
                q.push(" WHERE ")
                    .push(column)
                    .push(" = ")
                    .push_bind(&state.id);
                q.build().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn spend_logs(
        &self,
        filter: &SpendFilter,
        offset: u64,
        limit: u64,
    ) -> StorageResult<(Vec<SpendLog>, u64)> {
        fn filtered<'a>(select: &str, f: &'a SpendFilter) -> QueryBuilder<'a, Sqlite> {
            let mut q = QueryBuilder::<Sqlite>::new(select);
            q.push(" WHERE 1 = 1");
            if let Some(team_id) = &f.team_id {
                q.push(" AND team_id = ").push_bind(team_id);
            }
            if let Some(key_id) = &f.key_id {
                q.push(" AND key_id = ").push_bind(key_id);
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
            .fetch_one(&self.pool)
            .await?;
        let mut q = filtered(
            "SELECT request_id, ts_ms, key_id, team_id, user_id, model, prompt_tokens, \
             completion_tokens, cost, latency_ms, status FROM spend_logs",
            filter,
        );
        q.push(" ORDER BY ts_ms DESC, id DESC LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = q.build_query_as::<SpendLog>().fetch_all(&self.pool).await?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    async fn daily_spend(
        &self,
        team_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> StorageResult<Vec<DailySpend>> {
        let rows = sqlx::query_as::<_, DailySpend>(
            "SELECT date(ts_ms / 1000, 'unixepoch') AS day, SUM(cost) AS spend, \
             COUNT(*) AS requests, SUM(prompt_tokens + completion_tokens) AS tokens \
             FROM spend_logs WHERE team_id = ? AND ts_ms >= ? AND ts_ms < ? \
             GROUP BY day ORDER BY day",
        )
        .bind(team_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn spend_by(
        &self,
        grouping: SpendGrouping,
        from_ms: i64,
        to_ms: i64,
        limit: u64,
    ) -> StorageResult<Vec<GroupSpend>> {
        let column = match grouping {
            SpendGrouping::Team => "team_id",
            SpendGrouping::Model => "model",
            SpendGrouping::Key => "key_id",
        };
        let mut q = QueryBuilder::<Sqlite>::new("SELECT ");
        q.push(column).push(
            " AS id, SUM(cost) AS spend, COUNT(*) AS requests, \
             SUM(prompt_tokens + completion_tokens) AS tokens FROM spend_logs WHERE ts_ms >= ",
        );
        q.push_bind(from_ms).push(" AND ts_ms < ").push_bind(to_ms);
        q.push(" GROUP BY ").push(column);
        q.push(" ORDER BY spend DESC, id LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        Ok(q.build_query_as::<GroupSpend>()
            .fetch_all(&self.pool)
            .await?)
    }

    async fn insert_session(&self, token_hash: &str, expires_at: i64) -> StorageResult<()> {
        sqlx::query("INSERT INTO admin_sessions (token_hash, expires_at) VALUES (?, ?)")
            .bind(token_hash)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session_valid(&self, token_hash: &str, now: i64) -> StorageResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT expires_at FROM admin_sessions WHERE token_hash = ? AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn delete_session(&self, token_hash: &str) -> StorageResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: i64) -> StorageResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
