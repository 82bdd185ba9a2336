//! The budget contract through a real gateway and a real (faulty) upstream over HTTP: crafted
//! requests cannot open a budget, every answered request is charged, upstream faults cost
//! nothing and leak nothing.

use crate::helpers::{refused, TestApp, INPUT_PRICE, OUTPUT_PRICE, UPSTREAM_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ask(model: &str, extra: Value) -> Value {
    let mut body =
        json!({"model": model, "messages": [{"role": "user", "content": "one two three"}]});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

async fn team_key(app: &TestApp, team: Value) -> String {
    let created = app.new_team(team.clone()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let key = app
        .generate_key(json!({"team_id": team["team_id"].clone()}))
        .await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.body);
    key.body["key"].as_str().expect("key").to_string()
}

async fn spend(app: &TestApp, team_id: &str) -> f64 {
    app.team_info(team_id).await.body["spend"]
        .as_f64()
        .expect("spend")
}

/// What a request of the tests' price costs, USD.
fn cost(prompt: u64, completion: u64) -> f64 {
    prompt as f64 * INPUT_PRICE + completion as f64 * OUTPUT_PRICE
}

#[tokio::test]
async fn a_crafted_max_tokens_is_refused_and_cannot_open_a_budget() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(&app, json!({"team_id": "t", "max_budget": 0.001})).await;
    let crafted = app
        .chat(&key, ask("gpt-4o-mini", json!({"max_tokens": u64::MAX})))
        .await;
    let message = refused(&crafted, StatusCode::BAD_REQUEST, "invalid_request_error");
    assert_eq!(crafted.body["error"]["param"], "max_tokens");
    assert!(message.contains("16384"), "{message}");
    // With the crafted request among them, 200 requests leave the budget unpassed.
    let mut requests = vec![app.chat(&key, ask("gpt-4o-mini", json!({"max_tokens": u64::MAX})))];
    for _ in 0..200 {
        requests.push(app.chat(&key, ask("gpt-4o-mini", json!({"max_tokens": 20}))));
    }
    let replies = futures_util::future::join_all(requests).await;
    assert!(replies
        .iter()
        .all(|r| r.status != StatusCode::INTERNAL_SERVER_ERROR));
    let spent = spend(&app, "t").await;
    assert!(spent <= 0.001, "spent {spent} of a $0.001 budget");
}

#[tokio::test]
async fn n_choices_are_reserved_and_a_missing_limit_is_lowered_to_fit() {
    let (app, faults) = TestApp::spawn_faults().await;
    // Room for one choice of 100 tokens, not for 50 of them.
    let budget = cost(20, 150);
    let key = team_key(&app, json!({"team_id": "t", "max_budget": budget})).await;
    let message = refused(
        &app.chat(&key, ask("honest", json!({"n": 50, "max_tokens": 100})))
            .await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
    assert!(message.contains("Team=t"), "{message}");
    assert!(message.contains("lower max_tokens"), "{message}");
    // Without a limit of its own the request goes, with max_tokens lowered to what is left.
    let reply = app.chat(&key, ask("honest", json!({"n": 50}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let lowered: u64 = reply.headers["x-gatehouse-max-tokens"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!((1..100).contains(&lowered), "{lowered}");
    assert_eq!(faults.last_seen()["max_tokens"], json!(lowered));
    assert_eq!(faults.last_seen()["n"], json!(50));
    let spent = spend(&app, "t").await;
    assert!(spent <= budget, "spent {spent} of {budget}");
    assert!(spent > 0.0);
}

#[tokio::test]
async fn the_model_limit_is_sent_when_the_request_sets_none() {
    let (app, faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    let reply = app.chat(&key, ask("honest", json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(!reply.headers.contains_key("x-gatehouse-max-tokens"));
    assert_eq!(faults.last_seen()["max_tokens"], json!(1000));
    // A limit above the model's is refused as OpenAI refuses it; one within goes as it is.
    let too_many = app
        .chat(&key, ask("honest", json!({"max_completion_tokens": 1001})))
        .await;
    refused(&too_many, StatusCode::BAD_REQUEST, "invalid_request_error");
    assert_eq!(too_many.body["error"]["param"], "max_completion_tokens");
    let fine = app
        .chat(&key, ask("honest", json!({"max_tokens": 7})))
        .await;
    assert_eq!(fine.status, StatusCode::OK);
    assert_eq!(faults.last_seen()["max_tokens"], json!(7));
}

#[tokio::test]
async fn fields_reach_the_upstream_in_the_order_the_caller_wrote_them() {
    // Strict JSON-schema outputs and prompt-cache keys depend on the order of a body's keys:
    // what the gateway does not change goes on as written, nested objects included.
    let (app, faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    let body = r#"{"zeta_vendor_field": 1, "model": "honest", "alpha_vendor_field": 2,
        "messages": [{"role": "user", "content": "one two three", "name": "z", "annotations": []}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema":
            {"type": "object", "properties": {"verdict": {"type": "string"},
            "confidence": {"type": "number"}, "because": {"type": "string"}},
            "required": ["verdict", "confidence", "because"]}}},
        "mid_vendor_field": {"y": 1, "b": 2, "x": 3}}"#;
    let reply = app
        .client
        .post(format!("{}/v1/chat/completions", app.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), StatusCode::OK);
    let seen = faults.last_seen();
    let keys = |value: &Value| -> Vec<String> {
        value.as_object().expect("object").keys().cloned().collect()
    };
    let sent = keys(&seen);
    let position = |name: &str| sent.iter().position(|k| k == name).expect(name);
    assert!(
        position("zeta_vendor_field") < position("alpha_vendor_field"),
        "{sent:?}"
    );
    assert!(
        position("alpha_vendor_field") < position("mid_vendor_field"),
        "{sent:?}"
    );
    assert_eq!(keys(&seen["mid_vendor_field"]), ["y", "b", "x"]);
    assert_eq!(
        keys(&seen["messages"][0]),
        ["role", "content", "name", "annotations"]
    );
    let schema = &seen["response_format"]["json_schema"]["schema"];
    assert_eq!(
        keys(&schema["properties"]),
        ["verdict", "confidence", "because"]
    );
}

#[tokio::test]
async fn a_prompt_the_budget_cannot_cover_is_refused_with_what_is_left() {
    let (app, _faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t", "max_budget": 0.00001})).await;
    let long = "word ".repeat(50);
    let reply = app
        .chat(
            &key,
            json!({"model": "honest", "messages": [{"role": "user", "content": long}]}),
        )
        .await;
    let message = refused(&reply, StatusCode::BAD_REQUEST, "budget_exceeded");
    assert!(message.contains("Team=t"), "{message}");
    assert!(
        message.contains("Left after the requests in flight: $0.00001"),
        "{message}"
    );
    assert!(message.contains("can cost up to $"), "{message}");
}

#[tokio::test]
async fn images_are_reserved_by_the_providers_rule() {
    let (app, _faults) = TestApp::spawn_faults().await;
    // Room for two requests with one image each (1,445 tokens + text + 10 out).
    let budget = 2.2 * cost(1_470, 10);
    let key = team_key(&app, json!({"team_id": "t", "max_budget": budget})).await;
    let with_image = json!({"model": "images", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]}]});
    let replies =
        futures_util::future::join_all((0..10).map(|_| app.chat(&key, with_image.clone()))).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert!((1..=2).contains(&ok), "{ok} admitted");
    let spent = spend(&app, "t").await;
    assert!(spent <= budget, "spent {spent} of {budget}");
}

#[tokio::test]
async fn answers_without_usage_are_charged_by_counting_them() {
    let (app, _faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    let reply = app.chat(&key, ask("no-usage", json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let (status, _, text) = app
        .chat_stream(&key, ask("stream-no-usage", json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("there, friend"));
    let logs = app.wait_for_logs("t", 2).await;
    for log in logs["logs"].as_array().expect("logs") {
        assert_eq!(log["status"], json!(200), "{log}");
        assert!(log["prompt_tokens"].as_u64() >= Some(6), "{log}");
        assert!(log["completion_tokens"].as_u64() >= Some(3), "{log}");
        assert!(log["spend"].as_f64() > Some(0.0), "{log}");
    }
}

#[tokio::test]
async fn a_stream_the_upstream_cuts_ends_with_an_error_event_and_pays_what_was_delivered() {
    let (app, _faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    let (status, _, text) = app.chat_stream(&key, ask("stream-cut", json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("Hello"), "{text}");
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .expect("events");
    let event: Value = serde_json::from_str(last).expect("the last event is JSON");
    assert_eq!(event["error"]["code"], "502", "{text}");
    assert!(!text.contains("[DONE]"));
    let logs = app.wait_for_logs("t", 1).await;
    let log = &logs["logs"][0];
    assert_eq!(log["status"], json!(502));
    assert!(log["prompt_tokens"].as_u64() >= Some(6), "{log}");
    assert!(log["completion_tokens"].as_u64() >= Some(2), "{log}");
}

#[tokio::test]
async fn a_client_that_leaves_a_stream_still_pays_for_all_of_it() {
    let (app, faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    let mut body = ask("stream-held", json!({}));
    body["stream"] = json!(true);
    let mut response = app
        .client
        .post(format!("{}/v1/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let first = response.chunk().await.expect("read").expect("a chunk");
    assert!(String::from_utf8_lossy(&first).contains("Hello"));
    drop(response);
    faults.open();
    let logs = app.wait_for_logs("t", 1).await;
    let log = &logs["logs"][0];
    assert_eq!(log["status"], json!(499), "{log}");
    // The upstream's own usage, read after the caller left: 40 completion tokens.
    assert_eq!(log["completion_tokens"], json!(40), "{log}");
    assert!(spend(&app, "t").await > 0.0);
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_still_pays_and_is_logged() {
    let (app, faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    let request = {
        let (client, base, key) = (app.client.clone(), app.base.clone(), key.clone());
        tokio::spawn(async move {
            client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&ask("held", json!({"max_tokens": 10})))
                .send()
                .await
        })
    };
    faults.until_waiting(1).await;
    request.abort();
    let _ = request.await;
    faults.open();
    let logs = app.wait_for_logs("t", 1).await;
    let log = &logs["logs"][0];
    assert_eq!(log["status"], json!(499), "{log}");
    assert_eq!(log["completion_tokens"], json!(10), "{log}");
    let charged = spend(&app, "t").await;
    assert!((charged - cost(6, 10)).abs() < 1e-12, "{charged}");
}

#[tokio::test]
async fn invalid_upstream_json_is_a_502_that_costs_nothing() {
    let (app, _faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    let reply = app.chat(&key, ask("bad-json", json!({}))).await;
    refused(&reply, StatusCode::BAD_GATEWAY, "upstream_error");
    assert_eq!(spend(&app, "t").await, 0.0);
    let logs = app.wait_for_logs("t", 1).await;
    assert_eq!(logs["logs"][0]["status"], json!(502));
}

#[tokio::test]
async fn a_hanging_upstream_times_out_with_504_and_frees_its_reservation() {
    let (app, _faults) = TestApp::spawn_faults().await;
    // The budget holds one request's reservation at a time.
    let budget = 1.5 * cost(20, 100);
    let key = team_key(&app, json!({"team_id": "t", "max_budget": budget})).await;
    let reply = app
        .chat(&key, ask("hang", json!({"max_tokens": 100})))
        .await;
    refused(&reply, StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert_eq!(spend(&app, "t").await, 0.0);
    let next = app
        .chat(&key, ask("honest", json!({"max_tokens": 100})))
        .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
}

#[tokio::test]
async fn upstream_errors_are_mapped_and_never_leak_the_providers_text() {
    let (app, _faults) = TestApp::spawn_faults().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    for model in ["status-500", "status-401"] {
        let reply = app.chat(&key, ask(model, json!({}))).await;
        let message = refused(&reply, StatusCode::BAD_GATEWAY, "upstream_error");
        assert!(
            !reply.body.to_string().contains(UPSTREAM_SECRET),
            "{}",
            reply.body
        );
        assert!(!message.contains("exploded"), "{message}");
    }
    let limited = app.chat(&key, ask("status-429", json!({}))).await;
    refused(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error");
    assert_eq!(limited.headers["retry-after"], "7");
    let rejected = app.chat(&key, ask("status-400", json!({}))).await;
    let message = refused(&rejected, StatusCode::BAD_REQUEST, "invalid_request_error");
    assert!(message.contains("maximum context length"), "{message}");
    assert_eq!(spend(&app, "t").await, 0.0);
}

#[tokio::test]
async fn a_provider_that_over_reports_is_charged_no_more_than_the_bound() {
    let (app, _faults) = TestApp::spawn_faults().await;
    let budget = 0.01;
    let key = team_key(&app, json!({"team_id": "t", "max_budget": budget})).await;
    let reply = app
        .chat(&key, ask("over-report", json!({"max_tokens": 50})))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let charged = spend(&app, "t").await;
    assert!(charged > 0.0 && charged <= cost(30, 50), "{charged}");
}

#[tokio::test]
async fn requests_in_flight_reserve_what_they_can_cost_not_their_body_bytes() {
    let (app, faults) = TestApp::spawn_faults().await;
    // 400 words of prompt: about 410 tokens, but 2,000 bytes. Four such requests with 100
    // output tokens each fit in this budget; counted as bytes, two would not.
    let prompt = "word ".repeat(400);
    let one = cost(420, 100);
    let budget = 4.2 * one;
    let key = team_key(&app, json!({"team_id": "t", "max_budget": budget})).await;
    let body = json!({"model": "held", "max_tokens": 100, "messages": [{"role": "user", "content": prompt}]});
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let (client, base, key, body) = (
                app.client.clone(),
                app.base.clone(),
                key.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                client
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .expect("sent")
                    .status()
            })
        })
        .collect();
    faults.until_waiting(4).await;
    // A fifth does not fit while the four are in flight.
    let fifth = app.chat(&key, body.clone()).await;
    refused(&fifth, StatusCode::BAD_REQUEST, "budget_exceeded");
    faults.open();
    for request in requests {
        assert_eq!(request.await.expect("task"), StatusCode::OK);
    }
    let spent = spend(&app, "t").await;
    assert!(spent <= budget, "spent {spent} of {budget}");
}

#[tokio::test]
async fn the_model_list_checks_block_and_expiry_first() {
    let app = TestApp::spawn_gateway().await;
    let key = team_key(&app, json!({"team_id": "t"})).await;
    let models = |key: String| {
        let app = &app;
        async move { app.send(Method::GET, "/v1/models", Some(&key), None).await }
    };
    assert_eq!(models(key.clone()).await.status, StatusCode::OK);
    app.block_key(&key).await;
    refused(
        &models(key.clone()).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    // A model that is not served is still refused for the block first.
    refused(
        &app.chat(&key, ask("no-such-model", json!({}))).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    app.unblock_key(&key).await;
    app.block_team("t").await;
    refused(
        &models(key.clone()).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    app.unblock_team("t").await;
    let expiring = app
        .generate_key(json!({"team_id": "t", "duration": "1h"}))
        .await
        .body["key"]
        .as_str()
        .expect("key")
        .to_string();
    app.clock.advance(3_601_000);
    refused(
        &models(expiring.clone()).await,
        StatusCode::UNAUTHORIZED,
        "expired_key",
    );
    refused(
        &app.chat(&expiring, ask("no-such-model", json!({}))).await,
        StatusCode::UNAUTHORIZED,
        "expired_key",
    );
}

/// The error event a stream ended with: its `error.code`.
fn last_error_code(text: &str) -> Value {
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .expect("events");
    let event: Value = serde_json::from_str(last).expect("the last event is JSON");
    event["error"]["code"].clone()
}

/// A hostile upstream cannot make the gateway read or hold without end: a whole answer or an
/// error body is read up to its cap, a stream's line up to its cap and a stream up to its
/// overall deadline; an answer too large is charged its bound, a cut stream what it delivered
/// (at most its bound), an error nothing.
#[tokio::test]
async fn a_hostile_upstream_is_read_within_the_caps_and_charged_by_the_contract() {
    let (app, _faults) = TestApp::spawn_faults_with(&[
        "--upstream-max-answer",
        "1MiB",
        "--upstream-max-error",
        "4KiB",
        "--upstream-max-line",
        "256KiB",
        "--stream-max-duration",
        "2s",
    ])
    .await;
    let five = json!({"max_tokens": 5});

    let key = team_key(&app, json!({"team_id": "whole"})).await;
    let reply = app.chat(&key, ask("endless", five.clone())).await;
    let message = refused(&reply, StatusCode::BAD_GATEWAY, "upstream_error");
    assert!(message.contains("larger than"), "{message}");
    let reply = app.chat(&key, ask("endless-error", five.clone())).await;
    refused(&reply, StatusCode::BAD_GATEWAY, "upstream_error");
    let logs = app.wait_for_logs("whole", 2).await;
    for log in logs["logs"].as_array().expect("logs") {
        assert_eq!(log["status"], json!(502), "{log}");
    }
    // The answer came, too large: charged all it could use, once (not tried again); the error
    // costs nothing.
    let charged = spend(&app, "whole").await;
    assert!(charged >= cost(6, 5) && charged <= cost(30, 5), "{charged}");
    assert_eq!(logs["total_count"], json!(2), "{logs}");

    // A line without end: the stream ends with an error event once the line passes its cap,
    // charged for what went by (more than the prompt; never more than the bound).
    let key = team_key(&app, json!({"team_id": "line"})).await;
    let (status, _, text) = app
        .chat_stream(&key, ask("stream-no-newline", five.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("Hello"));
    assert_eq!(last_error_code(&text), json!("502"));
    assert!(text.len() < 1 << 20, "{} bytes went out", text.len());
    let logs = app.wait_for_logs("line", 1).await;
    assert_eq!(logs["logs"][0]["status"], json!(502), "{logs}");
    let charged = spend(&app, "line").await;
    assert!(charged > cost(6, 1), "{charged}");
    assert!(charged <= cost(30, 5), "{charged}");

    // A stream that never ends: it ends at its deadline with a timeout event, charged the same.
    let key = team_key(&app, json!({"team_id": "long"})).await;
    let (status, _, text) = app
        .chat_stream(&key, ask("stream-endless", five.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains(" word"));
    assert_eq!(last_error_code(&text), json!("504"));
    let logs = app.wait_for_logs("long", 1).await;
    assert_eq!(logs["logs"][0]["status"], json!(504), "{logs}");
    let charged = spend(&app, "long").await;
    assert!(charged > cost(6, 1), "{charged}");
    assert!(charged <= cost(30, 5), "{charged}");
}
