//! The request path through a real gateway to a real (mock) upstream over HTTP.

use crate::helpers::{Reply, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// 6 prompt tokens (3 words + 3 per message) and, with `max_tokens: 5`, 5 completion tokens:
/// 6 × $0.000001 + 5 × $0.000002 = $0.000016.
pub fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 5})
}
const COST: f64 = 0.000016;
/// What such a request reserves: its prompt counted by the o200k tokenizer with the per-message
/// overheads (11 tokens), plus its 5 output tokens.
const BOUND: f64 = 11.0 * 0.000001 + 5.0 * 0.000002;

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-12)
}

async fn team_key(app: &TestApp, team: Value, key: Value) -> String {
    let created = app.new_team(team.clone()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let mut key = key;
    key["team_id"] = team["team_id"].clone();
    let generated = app.generate_key(key).await;
    assert_eq!(generated.status, StatusCode::OK, "{}", generated.body);
    generated.body["key"].as_str().expect("key").to_string()
}

fn refused(reply: &Reply, status: StatusCode, kind: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    reply.error_message();
    assert_eq!(reply.body["error"]["type"], kind, "{}", reply.body);
}

#[tokio::test]
async fn a_response_is_priced_and_charged_to_key_and_team() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(
        &app,
        json!({"team_id": "t", "max_budget": 10.0}),
        json!({"user_id": "alice"}),
    )
    .await;

    let reply = app.chat(&key, ask("gpt-4o")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["object"], "chat.completion");
    assert_eq!(
        reply.body["choices"][0]["message"]["content"],
        "This is a mock reply"
    );
    assert_eq!(reply.body["usage"]["prompt_tokens"], json!(6));
    let cost: f64 = reply.headers["x-litellm-response-cost"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!((cost - COST).abs() < 1e-12, "{cost}");

    assert!(close(&app.team_info("t").await.body["spend"], COST));
    assert!(close(&app.key_info(&key).await.body["info"]["spend"], COST));

    // After a clean restart the spend and the log are in the database.
    let app = app.restart().await;
    assert!(close(&app.team_info("t").await.body["spend"], COST));
    let logs = app.get("/spend/logs?team_id=t").await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.body);
    assert_eq!(logs.body["total_count"], json!(1));
    let log = &logs.body["logs"][0];
    assert_eq!(log["model"], "gpt-4o");
    assert_eq!(log["user_id"], "alice");
    assert_eq!(log["prompt_tokens"], json!(6));
    assert_eq!(log["completion_tokens"], json!(5));
    assert_eq!(log["status"], json!(200));
    assert!(close(&log["spend"], COST));
    let today = app.clock.now().format("%Y-%m-%d").to_string();
    let daily = app
        .get(&format!(
            "/spend/daily?team_id=t&start_date={today}&end_date={today}"
        ))
        .await;
    assert_eq!(daily.status, StatusCode::OK, "{}", daily.body);
    assert_eq!(daily.body["days"][0]["requests"], json!(1));
    assert!(close(&daily.body["days"][0]["spend"], COST));
}

#[tokio::test]
async fn streaming_passes_chunks_through_and_charges_the_usage() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(&app, json!({"team_id": "t"}), json!({})).await;
    for model in ["gpt-4o", "gpt-4o-mini"] {
        let (status, headers, text) = app.chat_stream(&key, ask(model)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/event-stream");
        let chunks: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).expect("chunk is JSON"))
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
            })
            .collect();
        assert_eq!(content, "This is a mock reply", "{model}");
        assert!(text.trim_end().ends_with("data: [DONE]"));
    }
    assert!(close(&app.team_info("t").await.body["spend"], 2.0 * COST));
}

#[tokio::test]
async fn embeddings_and_the_model_list() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(
        &app,
        json!({"team_id": "t", "models": ["gpt-4o", "text-embedding-3-small"]}),
        json!({}),
    )
    .await;
    let reply = app
        .send(
            Method::POST,
            "/v1/embeddings",
            Some(&key),
            Some(json!({"model": "text-embedding-3-small", "input": "a b c"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["data"][0]["object"], "embedding");
    assert!(close(
        &app.team_info("t").await.body["spend"],
        3.0 * 0.000001
    ));

    let models = app.send(Method::GET, "/v1/models", Some(&key), None).await;
    let ids: Vec<&str> = models.body["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["gpt-4o", "text-embedding-3-small"]);
}

#[tokio::test]
async fn a_team_over_budget_is_refused_on_every_key() {
    let app = TestApp::spawn_gateway().await;
    // Room for one request, not two.
    let first = team_key(
        &app,
        json!({"team_id": "t", "max_budget": COST + BOUND - 0.000001}),
        json!({}),
    )
    .await;
    let second = app.generate_key(json!({"team_id": "t"})).await.body["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(app.chat(&first, ask("gpt-4o")).await.status, StatusCode::OK);
    for key in [&first, &second] {
        let reply = app.chat(key, ask("gpt-4o")).await;
        refused(&reply, StatusCode::BAD_REQUEST, "budget_exceeded");
        assert!(reply.error_message().contains("Team=t"));
    }
    // Raising the budget lets the team through on the very next request.
    app.update_team(json!({"team_id": "t", "max_budget": 1.0}))
        .await;
    assert_eq!(
        app.chat(&second, ask("gpt-4o")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_key_budget_is_its_own() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(
        &app,
        json!({"team_id": "t"}),
        json!({"max_budget": COST + BOUND - 0.000001}),
    )
    .await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    refused(
        &app.chat(&key, ask("gpt-4o")).await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
    let other = app.generate_key(json!({"team_id": "t"})).await.body["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(app.chat(&other, ask("gpt-4o")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_requests_never_overspend_the_budget() {
    let app = TestApp::spawn_gateway().await;
    // Room for 3 requests of $0.000016 each, then the budget is spent.
    let budget = 3.5 * COST;
    assert!((2.0 * BOUND..3.0 * BOUND).contains(&budget));
    let key = team_key(
        &app,
        json!({"team_id": "t", "max_budget": budget}),
        json!({}),
    )
    .await;
    let requests = (0..40).map(|_| app.chat(&key, ask("gpt-4o")));
    let replies = futures_util::future::join_all(requests).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let refused_count = replies
        .iter()
        .filter(|r| r.status == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!(ok + refused_count, 40);
    let spend = app.team_info("t").await.body["spend"]
        .as_f64()
        .expect("spend");
    assert!(
        (spend - ok as f64 * COST).abs() < 1e-12,
        "spend {spend} for {ok} requests"
    );
    // Never over the budget: each request reserved what it could cost.
    assert!(
        spend <= budget,
        "spent {spend} of {budget} in {ok} requests"
    );
    // Two reservations fit at once; a third only once one of them has settled.
    assert!((2..=3).contains(&ok), "{ok} admitted");
    // Reservations were all released: one at a time, requests go on until what is left
    // cannot cover one more.
    let mut more = 0;
    while app.chat(&key, ask("gpt-4o")).await.status == StatusCode::OK {
        more += 1;
        assert!(more <= 4, "the budget never ran out");
    }
    let spend = app.team_info("t").await.body["spend"]
        .as_f64()
        .expect("spend");
    assert!(
        spend <= budget && spend + BOUND > budget,
        "spent {spend} of {budget}"
    );
}

#[tokio::test]
async fn rpm_is_shared_by_the_team_and_answers_429_with_headers() {
    let app = TestApp::spawn_gateway().await;
    let a = team_key(&app, json!({"team_id": "t", "rpm_limit": 3}), json!({})).await;
    let b = app.generate_key(json!({"team_id": "t"})).await.body["key"]
        .as_str()
        .expect("key")
        .to_string();
    for key in [&a, &b, &a] {
        let reply = app.chat(key, ask("gpt-4o")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.headers.contains_key("x-ratelimit-remaining-requests"));
    }
    for _ in 0..3 {
        let reply = app.chat(&b, ask("gpt-4o")).await;
        refused(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error");
        assert!(reply.error_message().contains("Limit type: requests"));
        assert_eq!(reply.headers["x-ratelimit-limit-requests"], "3");
        assert_eq!(reply.headers["x-ratelimit-remaining-requests"], "0");
        let retry: u64 = reply.headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=61).contains(&retry), "{retry}");
    }
    // Refused requests did not count: a minute later exactly 3 more go through.
    app.clock.advance(61_000);
    for _ in 0..3 {
        assert_eq!(app.chat(&b, ask("gpt-4o")).await.status, StatusCode::OK);
    }
    assert_eq!(
        app.chat(&a, ask("gpt-4o")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn tpm_counts_real_tokens() {
    let app = TestApp::spawn_gateway().await;
    // Each request uses 11 tokens: the second one reaches 22 >= 20.
    let key = team_key(&app, json!({"team_id": "t", "tpm_limit": 20}), json!({})).await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    let reply = app.chat(&key, ask("gpt-4o")).await;
    refused(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error");
    assert!(reply.error_message().contains("Limit type: tokens"));
    assert_eq!(reply.headers["x-ratelimit-limit-tokens"], "20");
    app.clock.advance(61_000);
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn key_rpm_limits_only_that_key() {
    let app = TestApp::spawn_gateway().await;
    let limited = team_key(&app, json!({"team_id": "t"}), json!({"rpm_limit": 1})).await;
    let free = app.generate_key(json!({"team_id": "t"})).await.body["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(
        app.chat(&limited, ask("gpt-4o")).await.status,
        StatusCode::OK
    );
    refused(
        &app.chat(&limited, ask("gpt-4o")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
    );
    assert_eq!(app.chat(&free, ask("gpt-4o")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn model_allow_lists_of_key_and_team() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(
        &app,
        json!({"team_id": "t", "models": ["gpt-4o", "gpt-4o-mini"]}),
        json!({"models": ["gpt-4o"]}),
    )
    .await;
    refused(
        &app.chat(&key, ask("gpt-4o-mini")).await,
        StatusCode::UNAUTHORIZED,
        "key_model_access_denied",
    );
    let any = app.generate_key(json!({"team_id": "t"})).await.body["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(
        app.chat(&any, ask("gpt-4o-mini")).await.status,
        StatusCode::OK
    );
    refused(
        &app.send(
            Method::POST,
            "/v1/embeddings",
            Some(&any),
            Some(json!({"model": "text-embedding-3-small", "input": "x"})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "team_model_access_denied",
    );
    // A model outside the team's list is refused for the list, before anything else.
    refused(
        &app.chat(&any, ask("no-such-model")).await,
        StatusCode::UNAUTHORIZED,
        "team_model_access_denied",
    );
    let open = team_key(&app, json!({"team_id": "open"}), json!({})).await;
    let unknown = app.chat(&open, ask("no-such-model")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["error"]["param"], "model");
}

#[tokio::test]
async fn block_unblock_and_delete_hold_from_the_next_request() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(&app, json!({"team_id": "t"}), json!({})).await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    app.block_team("t").await;
    refused(
        &app.chat(&key, ask("gpt-4o")).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    app.unblock_team("t").await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    app.block_key(&key).await;
    refused(
        &app.chat(&key, ask("gpt-4o")).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    app.unblock_key(&key).await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    app.delete_teams(&["t"]).await;
    refused(
        &app.chat(&key, ask("gpt-4o")).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
}

#[tokio::test]
async fn bad_credentials_and_bad_bodies() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(&app, json!({"team_id": "t"}), json!({})).await;
    refused(
        &app.send(
            Method::POST,
            "/v1/chat/completions",
            None,
            Some(ask("gpt-4o")),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    refused(
        &app.chat("sk-not-a-key", ask("gpt-4o")).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    for body in [json!([1]), json!({"messages": []}), json!({"model": 5})] {
        let reply = app.chat(&key, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        reply.error_message();
    }
    // A request body cannot redirect the gateway.
    let mut redirect = ask("gpt-4o");
    redirect["api_base"] = json!("http://127.0.0.1:9/v1");
    assert_eq!(app.chat(&key, redirect).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(&app, json!({"team_id": "t"}), json!({"duration": "1h"})).await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    app.clock.advance(3_601_000);
    refused(
        &app.chat(&key, ask("gpt-4o")).await,
        StatusCode::UNAUTHORIZED,
        "expired_key",
    );
}

#[tokio::test]
async fn budget_reset_starts_a_new_window_and_never_twice() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(
        &app,
        json!({"team_id": "t", "max_budget": COST + BOUND - 0.000001, "budget_duration": "1d"}),
        json!({}),
    )
    .await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    refused(
        &app.chat(&key, ask("gpt-4o")).await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
    let reset_at = app.team_info("t").await.body["budget_reset_at"].clone();

    app.clock.advance(24 * 3_600_000);
    // The writer's own tick may get there first; either way the window resets once.
    app.reset_due_budgets().await;
    let info = app.team_info("t").await.body;
    assert!(close(&info["spend"], 0.0));
    let next_reset = info["budget_reset_at"].clone();
    assert_ne!(next_reset, reset_at);

    // New-window spend survives a second run in the same tick.
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    assert_eq!(app.reset_due_budgets().await, 0);
    assert!(close(&app.team_info("t").await.body["spend"], COST));

    // And the database agrees after a restart.
    let app = app.restart().await;
    let info = app.team_info("t").await.body;
    assert!(close(&info["spend"], COST));
    assert_eq!(info["budget_reset_at"], next_reset);
}

#[tokio::test]
async fn a_teams_daily_spend_splits_by_model_and_by_key() {
    let app = TestApp::spawn_gateway().await;
    let first = team_key(&app, json!({"team_id": "t"}), json!({"key_alias": "a"})).await;
    let second = app.generate_key(json!({"team_id": "t"})).await.body;
    let second_token = second["token"].as_str().expect("token").to_string();
    let second = second["key"].as_str().expect("key").to_string();
    for (key, model) in [
        (&first, "gpt-4o"),
        (&second, "gpt-4o"),
        (&second, "gpt-4o"),
        (&first, "gpt-4o-mini"),
    ] {
        assert_eq!(app.chat(key, ask(model)).await.status, StatusCode::OK);
    }
    app.wait_for_logs("t", 4).await;
    let today = app.clock.now().format("%Y-%m-%d").to_string();
    let app = &app;
    let day = |query: &str| {
        let path = format!("/spend/daily?team_id=t&start_date={today}&end_date={today}{query}");
        async move {
            let reply = app.get(&path).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
            reply.body["days"][0].clone()
        }
    };

    let total = day("").await;
    assert_eq!(total["requests"], json!(4));
    assert!(total.get("groups").is_none(), "{total}");

    let by_model = day("&group_by=model").await;
    assert_eq!(by_model["requests"], json!(4));
    assert_eq!(by_model["spend"], total["spend"]);
    let groups = by_model["groups"].as_array().expect("groups");
    let names: Vec<_> = groups
        .iter()
        .map(|g| g["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["gpt-4o", "gpt-4o-mini"], "most spent first");
    assert_eq!(groups[0]["requests"], json!(3));
    assert!(close(&groups[0]["spend"], 3.0 * COST));
    let sum: f64 = groups.iter().filter_map(|g| g["spend"].as_f64()).sum();
    assert!(close(&total["spend"], sum));

    // LiteLLM's name for keys works too.
    for split in ["key", "api_key"] {
        let by_key = day(&format!("&group_by={split}")).await;
        let groups = by_key["groups"].as_array().expect("groups");
        assert_eq!(groups.len(), 2);
        let second = groups
            .iter()
            .find(|g| g["id"] == second_token.as_str())
            .expect("the second key");
        assert_eq!(second["requests"], json!(2));
        assert!(close(&second["spend"], 2.0 * COST));
    }

    let wrong = app.get("/spend/daily?team_id=t&group_by=team").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.body["error"]["param"], "group_by");
}

#[tokio::test]
async fn spend_read_api_validates_its_input() {
    let app = TestApp::spawn_gateway().await;
    app.new_team(json!({"team_id": "t"})).await;
    for path in [
        "/spend/logs?page=0",
        "/spend/logs?start=yesterday",
        "/spend/logs?team_id=a%20b",
        "/spend/daily?team_id=t&start_date=2026-13-01",
        "/spend/daily?team_id=t&start_date=2026-02-01&end_date=2026-01-01",
        "/spend/daily?team_id=t&start_date=2020-01-01&end_date=2026-01-01",
        "/spend/daily",
    ] {
        let reply = app.get(path).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
        reply.error_message();
    }
    assert_eq!(
        app.get("/spend/daily?team_id=ghost").await.status,
        StatusCode::NOT_FOUND
    );
    let empty = app.get("/spend/daily?team_id=t").await.body;
    assert_eq!(empty["days"].as_array().map(Vec::len), Some(30));
}

#[tokio::test]
async fn an_unreachable_provider_is_a_502_that_costs_nothing() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(
        &app,
        json!({"team_id": "t", "max_budget": 0.001}),
        json!({}),
    )
    .await;
    for _ in 0..3 {
        let reply = app.chat(&key, ask("unreachable")).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
        reply.error_message();
    }
    // Nothing charged, nothing left reserved: the budget still admits requests.
    assert!(close(&app.team_info("t").await.body["spend"], 0.0));
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    let app = app.restart().await;
    let logs = app.get("/spend/logs?team_id=t&size=10").await.body;
    assert_eq!(logs["total_count"], json!(4));
    let statuses: Vec<u64> = logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|l| l["status"].as_u64())
        .collect();
    assert_eq!(statuses, [200, 502, 502, 502]);
}

#[tokio::test]
async fn the_spend_summary_ranks_teams_models_and_keys() {
    let app = TestApp::spawn_gateway().await;
    let a = team_key(&app, json!({"team_id": "a"}), json!({})).await;
    let b = team_key(&app, json!({"team_id": "b"}), json!({})).await;
    for _ in 0..2 {
        app.chat(&a, ask("gpt-4o")).await;
    }
    app.chat(&b, ask("gpt-4o-mini")).await;
    let app = app.restart().await;
    let summary = app.get("/spend/summary").await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .expect("list")
            .iter()
            .filter_map(|g| g["id"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(ids(&summary.body["teams"]), ["a", "b"]);
    assert!(close(&summary.body["teams"][0]["spend"], 2.0 * COST));
    assert_eq!(summary.body["teams"][0]["requests"], json!(2));
    assert_eq!(ids(&summary.body["top_models"]), ["gpt-4o", "gpt-4o-mini"]);
    assert_eq!(summary.body["top_keys"].as_array().map(Vec::len), Some(2));
    let models = app.get("/model/info").await.body;
    assert_eq!(models["data"][0]["model_name"], "gpt-4o");
    assert!(close(
        &models["data"][0]["model_info"]["input_cost_per_token"],
        0.000001
    ));
    assert_eq!(
        app.get("/spend/summary?start_date=x").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_request_log_filters_by_model_status_and_request() {
    let app = TestApp::spawn_gateway().await;
    let key = app.team_with_key("logged").await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    assert_eq!(
        app.chat(&key, ask("gpt-4o-mini")).await.status,
        StatusCode::OK
    );
    let all = app.wait_for_logs("logged", 2).await;
    let count = |query: &str| {
        let app = &app;
        let query = query.to_string();
        async move {
            let reply = app
                .get(&format!("/spend/logs?team_id=logged&{query}"))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
            reply.body["total_count"].as_u64().expect("count")
        }
    };
    assert_eq!(count("model=gpt-4o").await, 1);
    assert_eq!(count("model=gpt-4o-mini").await, 1);
    assert_eq!(count("status=200").await, 2);
    assert_eq!(count("status=500").await, 0);
    let newest = &all["logs"][0];
    assert_eq!(newest["model"], "gpt-4o-mini", "newest first: {all}");
    let id = newest["request_id"].as_str().expect("id");
    let one = app.get(&format!("/spend/logs?request_id={id}")).await;
    assert_eq!(one.body["total_count"], json!(1));
    assert_eq!(one.body["logs"][0]["request_id"], json!(id));
    for bad in ["status=abc", "status=70000", "model=%01"] {
        let reply = app.get(&format!("/spend/logs?{bad}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
    }
}
