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

impl TestDatabase {
    pub async fn create() -> Self {
        let Some(admin) = admin_url() else {
            return Self {
                url: None,
                admin: None,
            };
        };
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
