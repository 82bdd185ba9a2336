//! Several deployments per model, as LiteLLM's router serves them: weights, cooldowns,
//! retries, fallbacks and per-deployment limits, against real HTTP upstreams the tests start
//! and can break.

use crate::helpers::{ask, ok, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{
    atomic::{AtomicU8, AtomicUsize, Ordering},
    Arc,
};

/// What an upstream does with the requests it gets.
const ANSWER: u8 = 0;
const FAIL: u8 = 1;
const TOO_LONG: u8 = 2;
const HANG: u8 = 3;

/// An OpenAI-compatible upstream that counts what reaches it; it answers (streams too) with a
/// usage of 10 prompt and 5 completion tokens, or fails as told.
#[derive(Clone)]
struct Upstream {
    base: String,
    hits: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
}

impl Upstream {
    async fn start(mode: u8) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let upstream = Self {
            base: format!("http://{addr}/v1"),
            hits: Arc::default(),
            mode: Arc::new(AtomicU8::new(mode)),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(respond))
            .with_state(upstream.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serves") });
        upstream
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn respond(
    axum::extract::State(upstream): axum::extract::State<Upstream>,
    axum::Json(request): axum::Json<Value>,
) -> axum::response::Response {
    use axum::{http::header, response::IntoResponse};
    upstream.hits.fetch_add(1, Ordering::SeqCst);
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15});
    match upstream.mode.load(Ordering::SeqCst) {
        HANG => std::future::pending().await,
        FAIL => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": {"message": "upstream exploded", "type": "x"}})),
        )
            .into_response(),
        TOO_LONG => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message":
                "This model's maximum context length is 10 tokens.", "type": "x"}})),
        )
            .into_response(),
        _ if request["stream"] == json!(true) => {
            let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
                "model": request["model"], "choices": [{"index": 0,
                "delta": {"content": "hello"}, "finish_reason": null}]});
            let last = json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
                "model": request["model"], "choices": [], "usage": usage});
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                format!("data: {chunk}\n\ndata: {last}\n\ndata: [DONE]\n\n"),
            )
                .into_response()
        }
        _ => axum::Json(json!({"id": "c", "object": "chat.completion", "created": 0,
            "model": request["model"], "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "hello"}, "finish_reason": "stop"}], "usage": usage}))
        .into_response(),
    }
}

/// One `model_list` entry: `id` is its `model_info.id`; `extra` more `litellm_params`.
fn deployment(model_name: &str, id: &str, upstream: &Upstream, extra: &str) -> String {
    format!(
        "- model_name: {model_name}\n  litellm_params:\n    model: openai/{model_name}\n    \
         api_base: {}\n{extra}  model_info:\n    id: {id}\n    input_cost_per_token: 0.000001\n    \
         output_cost_per_token: 0.000002\n",
        upstream.base
    )
}

/// What the upstreams' usage costs at the tests' prices: 10 × $1e-6 + 5 × $2e-6.
const COST_USD: f64 = 0.00002;

fn header<'a>(reply: &'a crate::helpers::Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Sends `n` small chats, `parallel` at a time; answers each reply.
async fn chats(app: &TestApp, key: &str, model: &str, n: usize) -> Vec<crate::helpers::Reply> {
    let mut replies = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(25) {
        let sent = batch.iter().map(|_| app.chat(key, ask(model)));
        replies.extend(futures_util::future::join_all(sent).await);
    }
    replies
}

#[tokio::test]
async fn weights_split_the_traffic() {
    let (a, b) = (Upstream::start(ANSWER).await, Upstream::start(ANSWER).await);
    let yaml = format!(
        "model_list:\n{}{}",
        deployment("chat", "heavy", &a, "    weight: 3\n"),
        deployment("chat", "light", &b, "    weight: 1\n"),
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("weights").await;
    let replies = chats(&app, &key, "chat", 1_000).await;
    let mut heavy = 0;
    for reply in &replies {
        ok(reply);
        match header(reply, "x-litellm-model-id") {
            "heavy" => heavy += 1,
            "light" => {}
            other => panic!("answered by {other}"),
        }
        assert_eq!(header(reply, "x-litellm-attempted-retries"), "0");
        assert_eq!(header(reply, "x-litellm-attempted-fallbacks"), "0");
    }
    assert_eq!(a.hits(), heavy);
    assert_eq!(a.hits() + b.hits(), 1_000);
    let share = heavy as f64 / 10.0;
    assert!((67.5..=82.5).contains(&share), "heavy got {share} %");
    // A group's deployments may be priced apart: each answer at the one that gave it.
    let logs = app.wait_for_logs("weights", 1_000).await;
    assert!(logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .all(|log| log["model_id"] == "heavy" || log["model_id"] == "light"));
}

#[tokio::test]
async fn a_failing_deployment_cools_down_and_no_request_fails() {
    let good = [Upstream::start(ANSWER).await, Upstream::start(ANSWER).await];
    let bad = Upstream::start(FAIL).await;
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  allowed_fails: 2\n  cooldown_time: 30\n",
        deployment("chat", "good-1", &good[0], ""),
        deployment("chat", "bad", &bad, ""),
        deployment("chat", "good-2", &good[1], ""),
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("cooling").await;
    let replies = chats(&app, &key, "chat", 200).await;
    let mut retried = 0;
    for reply in &replies {
        ok(reply);
        assert_ne!(header(reply, "x-litellm-model-id"), "bad");
        if header(reply, "x-litellm-attempted-retries") == "1" {
            retried += 1;
            // Charged once, for the deployment that answered.
            let cost: f64 = header(reply, "x-litellm-response-cost")
                .parse()
                .expect("cost");
            assert!((cost - COST_USD).abs() < 1e-12, "{cost}");
        }
    }
    // Its third failure in a minute (allowed: 2) cooled it down: no more traffic reached it
    // (requests in flight when it cooled may still have arrived).
    assert!(bad.hits() >= 3 && bad.hits() <= 3 + 25, "{}", bad.hits());
    assert_eq!(retried, bad.hits());
    let health = app.get("/health/deployments").await;
    let states = ok(&health)["deployments"].as_array().expect("list").clone();
    let state = |id: &str| {
        states
            .iter()
            .find(|d| d["model_id"] == id)
            .expect(id)
            .clone()
    };
    assert_eq!(state("bad")["status"], "cooling_down");
    assert!(state("bad")["cooling_down_until"].is_string());
    assert_eq!(
        state("bad")["recent_errors"][0]["message"],
        "The model's provider failed (status 500)."
    );
    assert_eq!(state("good-1")["status"], "healthy");
    assert_eq!(health.body["unhealthy_count"], 1);
    let before = bad.hits();
    chats(&app, &key, "chat", 20).await;
    assert_eq!(bad.hits(), before, "a cooling deployment got traffic");

    // Once the cooldown is over it gets traffic again.
    app.clock.advance(31_000);
    bad.mode.store(ANSWER, Ordering::SeqCst);
    for reply in chats(&app, &key, "chat", 60).await {
        ok(&reply);
    }
    assert!(bad.hits() > before);
}

#[tokio::test]
async fn every_deployment_cooling_down_is_a_503_with_retry_after() {
    let (a, b) = (Upstream::start(FAIL).await, Upstream::start(FAIL).await);
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  allowed_fails: 0\n  cooldown_time: 20\n",
        deployment("chat", "a", &a, ""),
        deployment("chat", "b", &b, ""),
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("down").await;
    let first = app.chat(&key, ask("chat")).await;
    assert_eq!(first.status, StatusCode::BAD_GATEWAY, "{}", first.body);
    assert_eq!((a.hits(), b.hits()), (1, 1), "each tried once, then cooled");
    let refused = app.chat(&key, ask("chat")).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert!(refused.error_message().contains("cooling down"));
    assert_eq!(header(&refused, "retry-after"), "20");
    assert_eq!((a.hits(), b.hits()), (1, 1));
    // Nothing was charged for either.
    let logs = app.wait_for_logs("down", 2).await;
    assert!(logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .all(|log| log["spend"] == 0.0));
}

#[tokio::test]
async fn a_fallback_answers_when_the_group_fails_and_only_where_the_key_may_go() {
    let (primary, backup) = (Upstream::start(FAIL).await, Upstream::start(ANSWER).await);
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 1\n  fallbacks:\n    - primary: [backup]\n",
        deployment("primary", "p", &primary, ""),
        deployment("backup", "b", &backup, ""),
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("falls").await;
    let reply = app.chat(&key, ask("primary")).await;
    ok(&reply);
    assert_eq!(header(&reply, "x-litellm-model-id"), "b");
    assert_eq!(header(&reply, "x-litellm-attempted-retries"), "1");
    assert_eq!(header(&reply, "x-litellm-attempted-fallbacks"), "1");
    assert_eq!((primary.hits(), backup.hits()), (2, 1));
    let logs = app.wait_for_logs("falls", 1).await;
    let log = &logs["logs"][0];
    assert_eq!(log["model"], "backup");
    assert_eq!(log["model_id"], "b");
    assert_eq!(
        (log["retries"].clone(), log["fallbacks"].clone()),
        (json!(1), json!(1))
    );

    // A key that may use only `primary` never reaches `backup`.
    let team = app
        .new_team(json!({"team_id": "narrow", "models": ["primary"]}))
        .await;
    ok(&team);
    let narrow = app.generate_key(json!({"team_id": "narrow"})).await;
    let narrow = ok(&narrow)["key"].as_str().expect("key").to_string();
    let refused = app.chat(&narrow, ask("primary")).await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert_eq!(backup.hits(), 1);
}

#[tokio::test]
async fn the_reservation_covers_the_dearest_deployment_a_request_can_reach() {
    let (cheap, dear) = (Upstream::start(FAIL).await, Upstream::start(ANSWER).await);
    // `dear` costs 1,000 times as much; a budget that fits the cheap bound only is refused
    // before anything is sent, since the request could fall back to `dear`.
    let yaml = format!(
        "model_list:\n{}- model_name: dear\n  litellm_params:\n    model: openai/dear\n    \
         api_base: {}\n  model_info:\n    id: dear\n    input_cost_per_token: 0.001\n    \
         output_cost_per_token: 0.002\n    max_output_tokens: 100\n\
         router_settings:\n  fallbacks:\n    - cheap: [dear]\n",
        deployment("cheap", "cheap", &cheap, ""),
        dear.base,
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    ok(&app
        .new_team(json!({"team_id": "tight", "max_budget": 0.01}))
        .await);
    let key = app.generate_key(json!({"team_id": "tight"})).await;
    let key = ok(&key)["key"].as_str().expect("key").to_string();
    let refused = app.chat(&key, ask("cheap")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["error"]["type"], "budget_exceeded");
    assert_eq!((cheap.hits(), dear.hits()), (0, 0));
    // With room for the dearest, the fallback answers and is charged its own price.
    ok(&app
        .update_team(json!({"team_id": "tight", "max_budget": 1.0}))
        .await);
    let reply = app.chat(&key, ask("cheap")).await;
    ok(&reply);
    let cost: f64 = header(&reply, "x-litellm-response-cost")
        .parse()
        .expect("cost");
    assert!((cost - 0.02).abs() < 1e-9, "{cost}");
}

#[tokio::test]
async fn a_prompt_too_long_goes_to_the_context_window_fallback() {
    let (small, large) = (
        Upstream::start(TOO_LONG).await,
        Upstream::start(ANSWER).await,
    );
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  context_window_fallbacks:\n    - small: [large]\n",
        deployment("small", "s", &small, ""),
        deployment("large", "l", &large, ""),
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("long").await;
    let reply = app.chat(&key, ask("small")).await;
    ok(&reply);
    assert_eq!(header(&reply, "x-litellm-model-id"), "l");
    assert_eq!(header(&reply, "x-litellm-attempted-fallbacks"), "1");
    // A refusal for the prompt's length is not retried at the same model.
    assert_eq!((small.hits(), large.hits()), (1, 1));
}

#[tokio::test]
async fn a_stream_is_retried_before_its_first_byte() {
    let (bad, good) = (Upstream::start(FAIL).await, Upstream::start(ANSWER).await);
    // Latency-based: the failing deployment, with no answer timed, is tried first once the
    // other has one.
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  routing_strategy: latency-based-routing\n",
        deployment("chat", "bad", &bad, ""),
        deployment("chat", "good", &good, ""),
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("streams").await;
    for _ in 0..7 {
        let before = bad.hits();
        let (status, headers, text) = app.chat_stream(&key, ask("chat")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(headers["x-litellm-model-id"], "good");
        let retries = (bad.hits() - before).to_string();
        assert_eq!(headers["x-litellm-attempted-retries"], retries.as_str());
        assert!(
            text.contains("hello") && text.ends_with("data: [DONE]\n\n"),
            "{text}"
        );
    }
    // Tried first until its fourth failure (allowed: 3) cooled it down.
    assert_eq!((bad.hits(), good.hits()), (4, 7));
}

#[tokio::test]
async fn usage_based_routing_never_exceeds_a_deployments_rpm() {
    let (a, b) = (Upstream::start(ANSWER).await, Upstream::start(ANSWER).await);
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  routing_strategy: usage-based-routing\n",
        deployment("chat", "a", &a, "    rpm: 5\n"),
        deployment("chat", "b", &b, "    rpm: 5\n"),
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("usage").await;
    let replies = chats(&app, &key, "chat", 15).await;
    let answered = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(answered, 10);
    for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(
            reply.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            reply.body
        );
        assert!(reply.error_message().contains("per-minute limit"));
        let wait: u64 = header(reply, "retry-after").parse().expect("seconds");
        assert!((1..=61).contains(&wait), "{wait}");
    }
    assert_eq!((a.hits(), b.hits()), (5, 5));
    // A minute on, there is room again.
    app.clock.advance(61_000);
    ok(&app.chat(&key, ask("chat")).await);
    assert_eq!(a.hits() + b.hits(), 11);
}

/// Two instances share each deployment's `rpm` (in Redis) and its cooldowns (by notice).
#[tokio::test]
async fn a_fleet_shares_rpm_and_cooldowns() {
    let (limited, bad, good) = (
        Upstream::start(ANSWER).await,
        Upstream::start(FAIL).await,
        Upstream::start(ANSWER).await,
    );
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  allowed_fails: 0\n  cooldown_time: 60\n",
        deployment("limited", "limited", &limited, "    rpm: 3\n"),
        deployment("chat", "bad", &bad, ""),
        deployment("chat", "good", &good, ""),
    );
    let Some(fleet) = TestApp::spawn_fleet_yaml(2, &yaml).await else {
        return;
    };
    let key = fleet[0].team_with_key("fleet-routing").await;
    let mut answered = 0;
    for i in 0..8 {
        let reply = fleet[i % 2].chat(&key, ask("limited")).await;
        if reply.status == StatusCode::OK {
            answered += 1;
        } else {
            assert_eq!(
                reply.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{}",
                reply.body
            );
        }
    }
    assert_eq!((answered, limited.hits()), (3, 3));

    // The first instance's failure cools `bad` down for the second one too.
    while bad.hits() == 0 {
        ok(&fleet[0].chat(&key, ask("chat")).await);
    }
    let told = async {
        loop {
            let health = fleet[1].get("/health/deployments").await;
            let cooling = ok(&health)["deployments"]
                .as_array()
                .expect("list")
                .iter()
                .any(|d| d["model_id"] == "bad" && d["status"] == "cooling_down");
            if cooling {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), told)
        .await
        .expect("the second instance was told of the cooldown");
    let hits = bad.hits();
    chats(&fleet[1], &key, "chat", 20).await;
    assert_eq!(bad.hits(), hits);
}

#[tokio::test]
async fn every_try_ends_within_the_requests_deadline() {
    let (a, b) = (Upstream::start(HANG).await, Upstream::start(HANG).await);
    // Each try may take 10 minutes (the default); the whole request 1 s.
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  timeout: 1\n",
        deployment("chat", "a", &a, ""),
        deployment("chat", "b", &b, ""),
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("deadline").await;
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        app.chat(&key, ask("chat")),
    )
    .await
    .expect("answered within the deadline, not a try's timeout");
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{}", reply.body);
    assert_eq!(a.hits() + b.hits(), 1, "no try starts past the deadline");
    let logs = app.wait_for_logs("deadline", 1).await;
    assert_eq!(logs["logs"][0]["spend"], 0.0);
}

#[tokio::test]
async fn router_settings_are_checked_at_start() {
    let upstream = Upstream::start(ANSWER).await;
    for (settings, words) in [
        ("routing_strategy: fastest", "routing_strategy"),
        ("fallbacks:\n    - chat: [nowhere]", "nowhere"),
        ("num_retries: 99", "num_retries"),
        ("cooldown_time: -1", "cooldown_time"),
    ] {
        let yaml = format!(
            "model_list:\n{}router_settings:\n  {settings}\n",
            deployment("chat", "x", &upstream, "")
        );
        let err = server::providers::Models::from_yaml(&yaml).expect_err(settings);
        assert!(format!("{err:#}").contains(words), "{err:#}");
    }
}
