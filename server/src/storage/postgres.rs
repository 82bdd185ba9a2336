//! PostgreSQL, for running several instances on one database.

use super::StorageResult;
use sqlx::{postgres::PgPoolOptions, PgPool};
use std::time::Duration;

pub struct PostgresStorage {
    pool: PgPool,
    /// The transaction every query runs in, for a storage [`super::Storage::begin`] answered.
    tx: Option<super::sql::Tx<sqlx::Postgres>>,
    writers: super::sql::Writers,
    /// This transaction's turn to write, while it is open.
    _turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl PostgresStorage {
    pub async fn connect(url: &str) -> StorageResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            tx: None,
            writers: super::sql::Writers::Many,
            _turn: None,
        })
    }

    /// The pool, for the change notices sent over this database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

super::sql::sql_storage!(
    PostgresStorage,
    sqlx::Postgres,
    order = "seq",
    day = "to_char(to_timestamp(ts_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    begin = "BEGIN"
);
