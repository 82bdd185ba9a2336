//! The database a test server runs on: a SQLite file in its own directory, or — when
//! `TEST_DATABASE_URL` names a PostgreSQL server — a database of its own there, created for the
//! test and dropped after it. With `CI=true` a PostgreSQL that cannot be reached fails the test.

use sqlx::{Connection, PgConnection};

pub struct TestDatabase {
    /// The server's `DATABASE_URL`; `None` for the SQLite default.
    pub url: Option<String>,
    admin: Option<(String, String)>,
}

fn admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
}

/// `postgres://.../name` with another database name.
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{name}")
}

/// Where a service a test needs runs, unless it cannot be reached: then the test fails under
/// `CI=true`, and elsewhere says loudly that it was skipped.
fn required(what: &str, reachable: bool, url: String) -> Option<String> {
    if reachable {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} at {url} cannot be reached, and CI=true: start it");
    }
    eprintln!("SKIPPED: {what} at {url} cannot be reached; start it to run this test");
    None
}

/// The Redis fleet tests use: `TEST_REDIS_URL`, else the machine's at 127.0.0.1:6379.
pub async fn redis_url() -> Option<String> {
    let url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let reachable = match redis::Client::open(url.as_str()) {
        Ok(client) => match client.get_multiplexed_async_connection().await {
            Ok(mut con) => redis::cmd("PING")
                .query_async::<String>(&mut con)
                .await
                .is_ok(),
            Err(_) => false,
        },
        Err(_) => false,
    };
    required("Redis", reachable, url)
}

/// A key prefix no other test run uses.
pub fn redis_prefix() -> String {
    format!("gatehouse-test-{}", uuid::Uuid::new_v4().simple())
}

impl TestDatabase {
    /// A PostgreSQL database of the test's own (fleets need one): `TEST_DATABASE_URL`, else the
    /// machine's at 127.0.0.1:5432.
    pub async fn create_postgres() -> Option<Self> {
        let admin = admin_url()
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let reachable = PgConnection::connect(&admin).await.is_ok();
        required("PostgreSQL", reachable, admin.clone())?;
        Some(Self::create_in(admin).await)
    }

    pub async fn create() -> Self {
        match admin_url() {
            Some(admin) => Self::create_in(admin).await,
            None => Self {
                url: None,
                admin: None,
            },
        }
    }

    async fn create_in(admin: String) -> Self {
        let name = format!("gatehouse_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|err| {
            panic!("TEST_DATABASE_URL: PostgreSQL cannot be reached ({err}); start it or unset TEST_DATABASE_URL")
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        Self {
            url: Some(with_database(&admin, &name)),
            admin: Some((admin, name)),
        }
    }

    /// Creates it from synchronous code (the process tests).
    pub fn create_blocking() -> Self {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(Self::create())
        })
        .join()
        .expect("database created")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.admin.take() else {
            return;
        };
        // Dropping may happen inside a runtime: do it on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}
