//! Anthropic's Messages API in front of any deployment, and `anthropic/` deployments behind
//! chat completions, over real HTTP to the mock provider's Anthropic endpoint; and the official
//! Anthropic Python SDK against it.

use crate::helpers::{ask, ok, spawn_upstream, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// USD per token of the `claude` deployment: input, output, cache read, cache write.
const PRICES: (f64, f64, f64, f64) = (0.000001, 0.000002, 0.0000001, 0.00000125);

/// What an answer of the mock's costs at [`PRICES`], nano-dollars: `prompt` tokens of the
/// prompt's own, the mock's 4 read from and 2 written to the cache, `output` tokens out.
fn cost_nanos(prompt: u64, output: u64) -> i64 {
    let (input, out, read, write) = PRICES;
    let usd = prompt as f64 * input
        + server::providers::mock::CACHE_READ_TOKENS as f64 * read
        + server::providers::mock::CACHE_WRITE_TOKENS as f64 * write
        + output as f64 * out;
    (usd * 1e9).round() as i64
}

/// A gateway with `claude` on an Anthropic upstream and `gpt-4o-mini` on the in-process
/// (OpenAI-shaped) mock; a key of team `team` for both.
async fn gateway(team: &str) -> (TestApp, String) {
    let upstream = spawn_upstream().await;
    let (input, output, read, write) = PRICES;
    let yaml = format!(
        "model_list:\n\
         - model_name: claude\n  litellm_params:\n    model: anthropic/claude-sonnet-4-5\n    \
         api_base: {upstream}\n    api_key: sk-ant-upstream\n  model_info:\n    \
         input_cost_per_token: {input}\n    output_cost_per_token: {output}\n    \
         cache_read_input_token_cost: {read}\n    cache_creation_input_token_cost: {write}\n\
         - model_name: gpt-4o-mini\n  litellm_params:\n    model: mock/gpt-4o-mini\n"
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key(team).await;
    (app, key)
}

async fn messages(app: &TestApp, key: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{}/v1/messages", app.base))
        .header("anthropic-version", "2023-06-01")
        .json(&body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn question(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "system": "Be brief.",
        "messages": [{"role": "user", "content": "one two three"}]})
}

async fn spend_of(app: &TestApp, team: &str, rows: u64) -> Vec<i64> {
    let logs = app.wait_for_logs(team, rows).await;
    logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|log| (log["spend"].as_f64().expect("spend") * 1e9).round() as i64)
        .collect()
}

#[tokio::test]
async fn chat_completions_reach_an_anthropic_deployment() {
    let (app, key) = gateway("chat-to-claude").await;
    let reply = app.chat(&key, ask("claude")).await;
    let answer = ok(&reply);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "This is a mock reply"
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    // 3 words + 3 of the message, and the cache's 4 + 2, as OpenAI counts prompts.
    assert_eq!(answer["usage"]["prompt_tokens"], 12);
    assert_eq!(answer["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert_eq!(answer["usage"]["completion_tokens"], 5);

    let (status, _, text) = app.chat_stream(&key, ask("claude")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(r#""content":"mock ""#), "{text}");
    assert!(text.contains(r#""finish_reason":"stop""#), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // Each charged at the cache's prices for its cache tokens.
    assert_eq!(
        spend_of(&app, "chat-to-claude", 2).await,
        [cost_nanos(6, 5), cost_nanos(6, 5)]
    );
}

#[tokio::test]
async fn an_anthropic_deployment_gets_the_limit_it_was_reserved_for() {
    let (app, key) = gateway("limits").await;
    let mut body = ask("claude");
    body["max_tokens"] = Value::Null;
    body["max_completion_tokens"] = json!(3);
    let reply = app.chat(&key, body).await;
    let answer = ok(&reply);
    assert_eq!(answer["choices"][0]["message"]["content"], "This is a");
    assert_eq!(answer["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn a_stream_anthropic_fails_with_an_error_event_is_tried_elsewhere() {
    let upstream = spawn_upstream().await;
    let yaml = format!(
        "model_list:\n\
         - model_name: claude\n  litellm_params:\n    model: anthropic/overloaded\n    \
         api_base: {upstream}\n  model_info: {{id: overloaded}}\n\
         - model_name: claude\n  litellm_params:\n    model: anthropic/claude-sonnet-4-5\n    \
         api_base: {upstream}\n  model_info: {{id: fine}}\n\
         router_settings:\n  routing_strategy: latency-based-routing\n"
    );
    let app = TestApp::spawn_yaml(&yaml).await;
    let key = app.team_with_key("overloaded").await;
    for _ in 0..5 {
        let (status, headers, text) = app.chat_stream(&key, ask("claude")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(headers["x-litellm-model-id"], "fine");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(!text.contains("Overloaded"), "{text}");
    }
    let health = app.get("/health/deployments").await;
    let overloaded = ok(&health)["deployments"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["model_id"] == "overloaded")
        .expect("listed")
        .clone();
    assert_eq!(
        overloaded["recent_errors"][0]["message"],
        "The model's provider failed (status 529)."
    );
}

#[tokio::test]
async fn the_messages_api_answers_in_anthropics_shape() {
    let (app, key) = gateway("messages").await;
    // In front of an Anthropic deployment…
    let (status, answer) = messages(&app, Some(&key), question("claude")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["model"], "claude");
    assert_eq!(
        answer["content"],
        json!([{"type": "text", "text": "This is a mock reply"}])
    );
    assert_eq!(answer["stop_reason"], "end_turn");
    // "Be brief." and "one two three", 3 each besides.
    assert_eq!(
        answer["usage"],
        json!({"input_tokens": 11, "output_tokens": 5, "cache_read_input_tokens": 4,
            "cache_creation_input_tokens": 2})
    );
    // …and an OpenAI-shaped one.
    let (status, answer) = messages(&app, Some(&key), question("gpt-4o-mini")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["content"][0]["text"], "This is a mock reply");
    assert_eq!(answer["usage"]["input_tokens"], 11);
    assert!(answer["id"].as_str().expect("id").starts_with("msg_"));

    let (status, counted) = app
        .client
        .post(format!("{}/v1/messages/count_tokens", app.base))
        .bearer_auth(&key)
        .json(
            &json!({"model": "claude", "messages": [{"role": "user", "content": "one two three"}]}),
        )
        .send()
        .await
        .map(|r| (r.status(), r))
        .expect("sent");
    let counted: Value = counted.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{counted}");
    assert!(counted["input_tokens"].as_u64().expect("count") >= 6);
}

#[tokio::test]
async fn tool_use_streams_as_input_json_deltas() {
    let (app, key) = gateway("tools").await;
    let mut body = question("claude");
    body["stream"] = json!(true);
    body["tools"] = json!([{"name": "search", "description": "Searches",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}]);
    for model in ["claude", "gpt-4o-mini"] {
        body["model"] = json!(model);
        let (status, events) = messages(&app, Some(&key), body.clone()).await;
        let events = events.as_str().expect("an event stream").to_string();
        assert_eq!(status, StatusCode::OK, "{events}");
        assert!(events.starts_with("event: message_start\n"), "{events}");
        assert!(events.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        if model == "claude" {
            assert!(events.contains(r#""type":"tool_use""#), "{events}");
            assert!(
                events.contains(r#""partial_json":"{\"query\": ""#),
                "{events}"
            );
            assert!(events.contains(r#""stop_reason":"tool_use""#), "{events}");
            assert!(
                events.contains(r#""cache_read_input_tokens":4"#),
                "{events}"
            );
        } else {
            assert!(events.contains(r#""type":"text_delta""#), "{events}");
        }
    }
}

#[tokio::test]
async fn refusals_come_in_anthropics_error_shape() {
    let (app, key) = gateway("refusals").await;
    let error_type = |body: &Value| {
        assert_eq!(body["type"], "error", "{body}");
        body["error"]["type"].as_str().expect("type").to_string()
    };
    let (status, body) = messages(&app, None, question("claude")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_type(&body), "authentication_error");
    let (status, body) = messages(&app, Some("sk-not-a-key-at-all"), question("claude")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_type(&body), "authentication_error");
    assert!(!body.to_string().contains("sk-not-a-key-at-all"));
    let mut no_limit = question("claude");
    no_limit
        .as_object_mut()
        .expect("object")
        .remove("max_tokens");
    let (status, body) = messages(&app, Some(&key), no_limit).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&body), "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("max_tokens"));
    let (status, body) = messages(&app, Some(&key), question("nowhere")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&body), "invalid_request_error");
    // Over budget: refused before the upstream is asked, as for chat completions.
    ok(&app
        .update_team(json!({"team_id": "refusals", "max_budget": 0.0000001}))
        .await);
    let (status, body) = messages(&app, Some(&key), question("claude")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&body), "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("Budget has been exceeded"));
}

#[tokio::test]
async fn anthropics_python_sdk_streams_and_calls_tools_through_the_gateway() {
    let (app, key) = gateway("sdk").await;
    let script = format!(
        r#"
import anthropic
client = anthropic.Anthropic(base_url="{base}", api_key="{key}", max_retries=0)
message = client.messages.create(model="claude", max_tokens=5, system="Be brief.",
    messages=[{{"role": "user", "content": "one two three"}}])
print(message.content[0].text, message.usage.input_tokens, message.usage.output_tokens,
    message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens)
tools = [{{"name": "search", "description": "Searches", "input_schema": {{"type": "object",
    "properties": {{"query": {{"type": "string"}}}}}}}}]
with client.messages.stream(model="claude", max_tokens=50, tools=tools,
        messages=[{{"role": "user", "content": "find it"}}]) as stream:
    final = stream.get_final_message()
print(final.stop_reason, final.content[0].type, final.content[0].input)
with client.messages.stream(model="gpt-4o-mini", max_tokens=5,
        messages=[{{"role": "user", "content": "say hi"}}]) as stream:
    print("".join(stream.text_stream))
print(client.messages.count_tokens(model="claude",
    messages=[{{"role": "user", "content": "one two three"}}]).input_tokens > 0)
try:
    client.messages.create(model="claude", max_tokens=5, messages=[])
except anthropic.BadRequestError as err:
    print("refused", err.status_code)
"#,
        base = app.base
    );
    let python = std::env::var("GATEHOUSE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .output()
    })
    .await
    .expect("joined")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout,
        "This is a mock reply 11 5 4 2\ntool_use tool_use {'query': 'mock'}\n\
         This is a mock reply\nTrue\nrefused 400\n"
    );
    // Three answers, each charged once at the answering model's prices.
    let spend = spend_of(&app, "sdk", 3).await;
    assert_eq!(spend.len(), 3);
    // Newest first: the mock model's stream, the tool call, the first answer.
    assert_eq!(spend[2], cost_nanos(11, 5));
    // "find it": 2 words + 3; the tool call's 6 output tokens.
    assert_eq!(spend[1], cost_nanos(5, 6));
}

/// `count_tokens` with `key`: its status and body.
async fn count(app: &TestApp, key: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/v1/messages/count_tokens", app.base))
        .header("x-api-key", key)
        .json(&json!({"model": "claude",
            "messages": [{"role": "user", "content": "one two three"}]}))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.expect("JSON"))
}

/// Counting tokens is a request to every limit: it counts toward RPM, and a blocked, expired
/// or spent key is refused in Anthropic's error shape.
#[tokio::test]
async fn token_counts_are_within_every_limit() {
    let (app, _) = gateway("counts").await;
    let key = |body: Value| {
        let app = &app;
        async move {
            ok(&app.generate_key(body).await)["key"]
                .as_str()
                .expect("key")
                .to_string()
        }
    };
    let limited = key(json!({"team_id": "counts", "rpm_limit": 2})).await;
    for _ in 0..2 {
        let (status, counted) = count(&app, &limited).await;
        assert_eq!(status, StatusCode::OK, "{counted}");
    }
    let (status, refused) = count(&app, &limited).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["error"]["type"], "rate_limit_error");

    let spent = key(json!({"team_id": "counts", "max_budget": 0})).await;
    let (status, refused) = count(&app, &spent).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .expect("message")
        .contains("budget"));

    let blocked = key(json!({"team_id": "counts"})).await;
    ok(&app.post("/key/block", json!({"key": blocked})).await);
    let (status, refused) = count(&app, &blocked).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");

    let expired = key(json!({"team_id": "counts", "duration": "1s"})).await;
    app.clock.advance(5_000);
    let (status, refused) = count(&app, &expired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["type"], "error");
}
