//! The embedded default: one SQLite file in WAL mode.

use super::StorageResult;
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    SqlitePool,
};
use std::{str::FromStr, time::Duration};

pub struct SqliteStorage {
    pool: SqlitePool,
    /// The transaction every query runs in, for a storage [`super::Storage::begin`] answered.
    tx: Option<super::sql::Tx<sqlx::Sqlite>>,
    writers: super::sql::Writers,
    /// This transaction's turn to write, while it is open.
    _turn: Option<tokio::sync::OwnedSemaphorePermit>,
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
        Ok(Self {
            pool,
            tx: None,
            writers: super::sql::Writers::one(),
            _turn: None,
        })
    }
}

super::sql::sql_storage!(
    SqliteStorage,
    sqlx::Sqlite,
    order = "rowid",
    day = "date(ts_ms / 1000, 'unixepoch')",
    begin = "BEGIN IMMEDIATE"
);
