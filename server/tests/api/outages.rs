//! Redis or PostgreSQL lost while serving, through a connection the test can cut: requests get
//! a clear 503 or keep going as documented, never a 500 or a wrong 401, and nothing answered
//! is lost once the service is back.

use crate::helpers::{redis_prefix, redis_url, TestApp, TestDatabase};
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::money::Nanos;
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

fn ask() -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 5})
}
/// What `ask` costs, nano-dollars.
const COST: i64 = 16_000;

/// A TCP forwarder to a real service that the test can cut (every connection closed, new ones
/// dropped) and restore.
struct Cable {
    addr: SocketAddr,
    open: watch::Sender<bool>,
}

impl Cable {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (open, _) = watch::channel(true);
        let state = open.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = state.subscribe();
                if !*cut.borrow_and_update() {
                    continue; // dropped: the caller sees the connection closed
                }
                tokio::spawn(async move {
                    let Ok(mut service) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut service) => {}
                        _ = cut.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self { addr, open }
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn restore(&self) {
        self.open.send_replace(true);
    }
}

fn socket_of(url: &str, default_port: u16) -> SocketAddr {
    let url = reqwest::Url::parse(url).expect("url");
    let host = url.host_str().expect("host");
    let port = url.port().unwrap_or(default_port);
    format!("{host}:{port}").parse().expect("an address")
}

/// Sends `ask` until the answer has `status` (at most `limit`), each try cut off after 2 s.
async fn until(app: &TestApp, key: &str, status: StatusCode, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let sent = app
            .client
            .post(format!("{}/v1/chat/completions", app.base))
            .bearer_auth(key)
            .json(&ask())
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(response) = sent {
            let got = response.status();
            let body: Value = response.json().await.expect("JSON");
            assert!(
                got.as_u16() < 500 || got == StatusCode::SERVICE_UNAVAILABLE,
                "{got}: {body}"
            );
            assert_ne!(got, StatusCode::UNAUTHORIZED, "{body}");
            if got == status {
                return body;
            }
        }
        assert!(started.elapsed() < limit, "never answered {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn losing_redis_answers_503_and_counters_come_back_from_the_database() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let cable = Cable::to(socket_of(&redis, 6379)).await;
    let prefix = redis_prefix();
    let url = format!("redis://{}", cable.addr);
    let app = TestApp::spawn_gateway_on(
        std::sync::Arc::new(TestDatabase::create().await),
        &["--redis-url", &url, "--redis-prefix", &prefix],
    )
    .await;
    let key = app.team_with_key("t").await;
    assert_eq!(app.chat(&key, ask()).await.status, StatusCode::OK);
    app.wait_for_logs("t", 1).await;

    cable.cut();
    let refused = until(
        &app,
        &key,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(refused["error"]["type"], "service_unavailable", "{refused}");
    // Admin calls still work; the spend shown is the database's.
    let info = app.team_info("t").await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.body["spend"], json!(0.000016));
    // Redis comes back empty, as a restarted Redis that keeps nothing would.
    let client = redis::Client::open(redis.as_str()).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:team:t"))
        .query_async(&mut con)
        .await
        .expect("DEL");
    cable.restore();

    until(&app, &key, StatusCode::OK, Duration::from_secs(10)).await;
    app.wait_for_logs("t", 2).await;
    let live = app.team_info("t").await.body["spend"]
        .as_f64()
        .expect("spend");
    assert!(
        (live - 0.000032).abs() < 1e-12,
        "spend {live} after the outage"
    );
    assert_eq!(app.stored_team("t").await.budget.spend, Nanos(2 * COST));
}

/// A PostgreSQL test database reached through a cable.
async fn postgres_behind_cable() -> Option<(TestDatabase, Cable)> {
    let mut database = TestDatabase::create_postgres().await?;
    let url = database.url.clone().expect("a PostgreSQL URL");
    let cable = Cable::to(socket_of(&url, 5432)).await;
    let target = socket_of(&url, 5432);
    database.url = Some(url.replacen(&target.to_string(), &cable.addr.to_string(), 1));
    Some((database, cable))
}

#[tokio::test]
async fn losing_postgres_refuses_admin_writes_and_queues_spend() {
    let Some((database, cable)) = postgres_behind_cable().await else {
        return;
    };
    let app = TestApp::spawn_gateway_on(std::sync::Arc::new(database), &[]).await;
    let key = app.team_with_key("t").await;

    cable.cut();
    let write = app
        .update_team(json!({"team_id": "t", "max_budget": 5.0}))
        .await;
    assert_eq!(
        write.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        write.body
    );
    write.error_message();
    for _ in 0..5 {
        let reply = app.chat(&key, ask()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    cable.restore();

    app.wait_for_logs("t", 5).await;
    assert_eq!(app.stored_team("t").await.budget.spend, Nanos(5 * COST));
    let write = app
        .update_team(json!({"team_id": "t", "max_budget": 5.0}))
        .await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.body);
}

#[tokio::test]
async fn with_strict_durability_losing_postgres_refuses_requests() {
    let Some((database, cable)) = postgres_behind_cable().await else {
        return;
    };
    let app = TestApp::spawn_gateway_on(
        std::sync::Arc::new(database),
        &["--spend-durability", "strict"],
    )
    .await;
    let key = app.team_with_key("t").await;
    assert_eq!(app.chat(&key, ask()).await.status, StatusCode::OK);

    cable.cut();
    // A request already admitted waits for its spend to be committed...
    let waiting = {
        let (client, url, key) = (
            app.client.clone(),
            format!("{}/v1/chat/completions", app.base),
            key.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&ask())
                .send()
                .await
                .expect("sent")
                .status()
        })
    };
    // ...and once a commit has failed, new ones are refused.
    let refused = until(
        &app,
        &key,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(refused["error"]["type"], "service_unavailable", "{refused}");
    cable.restore();

    assert_eq!(waiting.await.expect("request"), StatusCode::OK);
    until(&app, &key, StatusCode::OK, Duration::from_secs(20)).await;
    let stored = app.stored_team("t").await.budget.spend;
    let logs = app.wait_for_logs("t", 1).await["total_count"]
        .as_i64()
        .expect("count");
    assert_eq!(
        stored,
        Nanos(logs * COST),
        "every answered request charged once"
    );
}

#[tokio::test]
async fn a_full_spend_queue_refuses_new_requests_and_loses_nothing_answered() {
    let Some((database, cable)) = postgres_behind_cable().await else {
        return;
    };
    let app =
        TestApp::spawn_gateway_on(std::sync::Arc::new(database), &["--spend-queue", "3"]).await;
    let key = app.team_with_key("t").await;

    cable.cut();
    // Three answers wait in the queue for the database; the fourth request is refused before
    // it reaches the provider.
    for _ in 0..3 {
        let reply = app.chat(&key, ask()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let refused = app.chat(&key, ask()).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["error"]["type"], "service_unavailable");
    cable.restore();

    // Once the queue is written, requests are admitted again, and each answer is charged once.
    until(&app, &key, StatusCode::OK, Duration::from_secs(20)).await;
    app.wait_for_logs("t", 4).await;
    assert_eq!(app.stored_team("t").await.budget.spend, Nanos(4 * COST));
}
