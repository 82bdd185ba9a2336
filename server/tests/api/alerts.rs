//! Budget alerts: one signed event per threshold crossed, kept across restarts, retried when
//! the receiver fails; the team's own webhook only on hosts the operator allows.

use crate::helpers::{ask, ok, TestApp};
use axum::{extract::State, http::HeaderMap, http::StatusCode as Status, routing::post, Router};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

const SECRET: &str = "alert-secret-for-tests";

/// A webhook receiver: what it got (signature header, body), and how many deliveries it
/// refuses first.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, String)>>>,
    refuse: Arc<AtomicUsize>,
    tries: Arc<AtomicUsize>,
}

async fn hook(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> Status {
    receiver.tries.fetch_add(1, Ordering::SeqCst);
    let refuse = receiver.refuse.load(Ordering::SeqCst);
    if refuse > 0 {
        receiver.refuse.store(refuse - 1, Ordering::SeqCst);
        return Status::SERVICE_UNAVAILABLE;
    }
    let signature = headers
        .get("x-gatehouse-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    receiver.got.lock().expect("lock").push((signature, body));
    Status::OK
}

async fn spawn_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), receiver)
}

impl Receiver {
    /// The events received, each checked against its signature.
    fn events(&self) -> Vec<Value> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .map(|(signature, body)| {
                let mut mac =
                    <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
                mac.update(body.as_bytes());
                let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                assert_eq!(*signature, expected, "bad signature on {body}");
                serde_json::from_str(body).expect("JSON body")
            })
            .collect()
    }

    /// Waits (at most 10 s) until `n` events have arrived; the alert loop runs every 500 ms.
    async fn until(&self, n: usize) -> Vec<Value> {
        for _ in 0..1000 {
            if self.got.lock().expect("lock").len() >= n {
                return self.events();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{n} events never arrived: {:?}", self.events());
    }
}

fn thresholds_of(events: &[Value]) -> Vec<(String, String, Value)> {
    let mut seen: Vec<(String, String, Value)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().expect("event").to_string(),
                e["id"].as_str().expect("id").to_string(),
                e["threshold"].clone(),
            )
        })
        .collect();
    seen.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    seen
}

#[tokio::test]
async fn one_signed_event_per_threshold_crossed_across_restarts() {
    let (url, receiver) = spawn_receiver().await;
    let flags = [
        "--alert-webhook-url",
        url.as_str(),
        "--alert-webhook-secret",
        SECRET,
    ];
    // Half an hour into the team's monthly window: too early for a forecast, whatever today
    // is (from the month's 4th on, the spend so far would forecast past the budget too).
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:30:00Z")
        .expect("date")
        .to_utc();
    let app = TestApp::spawn_gateway_at(start, &flags).await;
    ok(&app
        .new_team(json!({"team_id": "ml", "budget_duration": "30d"}))
        .await);
    let key = app.generate_key(json!({"team_id": "ml"})).await;
    let key = ok(&key)["key"].as_str().expect("key").to_string();
    ok(&app.chat(&key, ask("gpt-4o")).await);
    app.wait_for_logs("ml", 1).await;
    let spent = ok(&app.team_info("ml").await)["spend"]
        .as_f64()
        .expect("spend");
    assert!(spent > 0.0);
    // The budget moves under the spend: 60 % of it crosses 50 %.
    ok(&app
        .update_team(json!({"team_id": "ml", "max_budget": spent / 0.6}))
        .await);
    let first = receiver.until(1).await;
    assert_eq!(first[0]["event"], "budget_threshold");
    assert_eq!(first[0]["scope"], "team");
    assert_eq!(first[0]["id"], "ml");
    assert_eq!(first[0]["threshold"], 50);
    assert!((first[0]["spend"].as_f64().expect("spend") - spent).abs() < 1e-9);
    assert!(first[0]["budget_reset_at"].is_string());
    assert!(first[0]["event_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("evt_")));

    // Restarted between two crossings (once the first is recorded as delivered): the first
    // is not sent again, the next ones are.
    poll_alerts(&app, 1).await;
    let app = app.restart_with(&flags).await;
    ok(&app
        .update_team(json!({"team_id": "ml", "max_budget": spent / 0.85}))
        .await);
    receiver.until(2).await;
    ok(&app
        .update_team(json!({"team_id": "ml", "max_budget": spent}))
        .await);
    let all = receiver.until(3).await;
    assert_eq!(
        thresholds_of(&all),
        [
            ("budget_threshold".into(), "ml".into(), json!(100)),
            ("budget_threshold".into(), "ml".into(), json!(50)),
            ("budget_threshold".into(), "ml".into(), json!(80)),
        ]
    );
    let ids: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(ids.len(), 3);
    // A soft budget is one more event, once.
    ok(&app
        .update_team(json!({"team_id": "ml", "soft_budget": spent / 2.0}))
        .await);
    let all = receiver.until(4).await;
    assert_eq!(all[3]["event"], "soft_budget");
    poll_alerts(&app, 4).await;
    let app = app.restart_with(&flags).await;
    // After another restart, a new crossing (the key's) is the only new event: the restarted
    // instance looked at the team's crossings again and sent none of them twice.
    let token = ok(&app.key_info(&key).await)["key"]
        .as_str()
        .expect("token")
        .to_string();
    ok(&app
        .update_key(json!({"key": token, "max_budget": spent}))
        .await);
    let all = receiver.until(7).await;
    let listed = poll_alerts(&app, 7).await;
    assert_eq!(listed["total_count"], 7);
    assert_eq!(all.iter().filter(|e| e["scope"] == "key").count(), 3);
    assert_eq!(all.iter().filter(|e| e["scope"] == "team").count(), 4);
    let ids: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(ids.len(), 7, "an event was sent twice: {all:?}");
    for alert in listed["alerts"].as_array().expect("alerts") {
        assert!(alert["delivered_at"].is_string(), "{alert}");
        assert_eq!(alert["attempts"], 1);
    }
}

/// The first alert `/alert/list` lists, once `done` says it is as wanted.
async fn poll_alert(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..1000 {
        let list = app.get("/alert/list").await;
        let alert = ok(&list)["alerts"][0].clone();
        if done(&alert) {
            return alert;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the alert never got there");
}

/// `/alert/list` once it lists `n` alerts, all delivered.
async fn poll_alerts(app: &TestApp, n: u64) -> Value {
    for _ in 0..1000 {
        let list = app.get("/alert/list").await;
        let body = ok(&list).clone();
        let delivered = body["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x["delivered_at"].is_string()));
        if body["total_count"] == n && delivered {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the alerts never settled at {n}");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff() {
    let (url, receiver) = spawn_receiver().await;
    receiver.refuse.store(2, Ordering::SeqCst);
    let flags = [
        "--alert-webhook-url",
        url.as_str(),
        "--alert-webhook-secret",
        SECRET,
        "--alert-thresholds",
        "100",
    ];
    let app = TestApp::spawn_gateway_with(&flags).await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    let key = app.generate_key(json!({"team_id": "ml"})).await;
    let key = ok(&key)["key"].as_str().expect("key").to_string();
    ok(&app.chat(&key, ask("gpt-4o")).await);
    app.wait_for_logs("ml", 1).await;
    let spent = ok(&app.team_info("ml").await)["spend"]
        .as_f64()
        .expect("spend");
    ok(&app
        .update_team(json!({"team_id": "ml", "max_budget": spent}))
        .await);
    // Refused once: the next try waits a second of the gateway's clock, then two. (The clock
    // is the test's: nothing is tried again until it moves.)
    for (tries, wait_ms) in [(1_u64, 1_000), (2, 2_000)] {
        let alert = poll_alert(&app, |a| a["attempts"] == tries).await;
        assert!(alert["delivered_at"].is_null());
        assert!(alert["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")));
        assert!(alert["next_attempt_at"].is_string());
        assert_eq!(receiver.tries.load(Ordering::SeqCst) as u64, tries);
        app.clock.advance(wait_ms);
    }
    let events = receiver.until(1).await;
    assert_eq!(events[0]["threshold"], 100);
    assert_eq!(receiver.tries.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_teams_webhook_is_for_allowed_hosts_and_admins() {
    let (url, receiver) = spawn_receiver().await;
    // The receiver is on loopback, on a port of its own: allowed here.
    let flags = [
        "--alert-webhook-secret",
        SECRET,
        "--alert-webhook-hosts",
        "127.0.0.1",
        "--alert-webhook-allow-private",
        "true",
        "--alert-thresholds",
        "100",
    ];
    let app = TestApp::spawn_gateway_with(&flags).await;
    let internal = app
        .new_team(json!({"team_id": "x", "alert_webhook_url": "http://169.254.169.254/latest"}))
        .await;
    assert_eq!(
        internal.status,
        StatusCode::BAD_REQUEST,
        "{}",
        internal.body
    );
    assert_eq!(internal.body["error"]["param"], "alert_webhook_url");
    assert_eq!(
        app.team_info("x").await.status,
        StatusCode::NOT_FOUND,
        "a refused team was made"
    );
    ok(&app
        .new_team(json!({"team_id": "ml", "alert_webhook_url": url}))
        .await);
    // A team admin may not point it elsewhere.
    ok(&app
        .post("/user/new", json!({"user_id": "lead", "teams": ["ml"]}))
        .await);
    ok(&app
        .post(
            "/team/member_update",
            json!({"team_id": "ml", "user_id": "lead", "role": "admin"}),
        )
        .await);
    let lead = app
        .generate_key(json!({"team_id": "ml", "user_id": "lead"}))
        .await;
    let lead = ok(&lead)["key"].as_str().expect("key").to_string();
    let changed = app
        .send(
            reqwest::Method::POST,
            "/team/update",
            Some(&lead),
            Some(json!({"team_id": "ml", "alert_webhook_url": url})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::FORBIDDEN);
    // The team's key crossing its team's budget reaches the team's webhook.
    let key = app.generate_key(json!({"team_id": "ml"})).await;
    let key = ok(&key)["key"].as_str().expect("key").to_string();
    ok(&app.chat(&key, ask("gpt-4o")).await);
    app.wait_for_logs("ml", 1).await;
    let spent = ok(&app.team_info("ml").await)["spend"]
        .as_f64()
        .expect("spend");
    ok(&app
        .update_team(json!({"team_id": "ml", "max_budget": spent}))
        .await);
    let events = receiver.until(1).await;
    assert_eq!(events[0]["scope"], "team");
    assert_eq!(events[0]["id"], "ml");
}

/// A team's webhook is delivered only to a public address on port 80 or 443, whatever host
/// name it gives: one that resolves to loopback is not sent, and the outbox says why.
#[tokio::test]
async fn a_teams_webhook_never_reaches_a_private_address() {
    let (url, receiver) = spawn_receiver().await;
    let flags = [
        "--alert-webhook-secret",
        SECRET,
        "--alert-webhook-hosts",
        "localhost,127.0.0.1",
        "--alert-thresholds",
        "100",
    ];
    let app = TestApp::spawn_gateway_with(&flags).await;
    let port = reqwest::Url::parse(&url)
        .expect("url")
        .port()
        .expect("port");
    for (team, hook) in [
        ("named", url.replace("127.0.0.1", "localhost")),
        ("web", "http://127.0.0.1/hook".to_string()),
    ] {
        ok(&app
            .new_team(json!({"team_id": team, "alert_webhook_url": hook}))
            .await);
        let key = app.generate_key(json!({"team_id": team})).await;
        let key = ok(&key)["key"].as_str().expect("key").to_string();
        ok(&app.chat(&key, ask("gpt-4o")).await);
        app.wait_for_logs(team, 1).await;
        let spent = ok(&app.team_info(team).await)["spend"]
            .as_f64()
            .expect("spend");
        ok(&app
            .update_team(json!({"team_id": team, "max_budget": spent}))
            .await);
        let mut alert = Value::Null;
        for _ in 0..1000 {
            let list = app.get(&format!("/alert/list?scope=team&id={team}")).await;
            alert = ok(&list)["alerts"][0].clone();
            if alert["attempts"].as_u64() >= Some(1) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(alert["delivered_at"].is_null(), "{alert}");
        let error = alert["last_error"].as_str().expect("why");
        let expected = if team == "named" {
            format!("port 80 or 443, not {port}")
        } else {
            "not a public address".to_string()
        };
        assert!(error.contains(&expected), "{error}");
        assert!(
            error.contains("GATEHOUSE_ALERT_WEBHOOK_ALLOW_PRIVATE"),
            "{error}"
        );
    }
    assert_eq!(receiver.tries.load(Ordering::SeqCst), 0);
}
