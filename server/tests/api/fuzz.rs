//! A bounded fuzz run of the admin API and the proxy: random JSON (made of the API's own field
//! names and of hostile values) and random bytes, with the admin key or a virtual key. Nothing
//! a client sends may get a 5xx from Gatehouse's own code, and every refusal is a JSON error.

use crate::helpers::{TestApp, ADMIN_KEY};
use proptest::{prelude::*, test_runner::TestRunner};
use reqwest::header;
use serde_json::{Map, Value};

const FIELDS: &[&str] = &[
    "team_id",
    "team_alias",
    "models",
    "max_budget",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "metadata",
    "blocked",
    "key",
    "keys",
    "team_ids",
    "user_id",
    "key_alias",
    "duration",
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stream",
    "stream_options",
    "input",
    "content",
    "role",
    "name",
    "tools",
    "type",
    "image_url",
    "url",
    "detail",
    "input_audio",
    "data",
    "file",
    "file_id",
    "prediction",
    "api_base",
    "page",
    "size",
];

const ENDPOINTS: &[&str] = &[
    "/team/new",
    "/team/update",
    "/team/delete",
    "/team/block",
    "/team/unblock",
    "/key/generate",
    "/key/update",
    "/key/delete",
    "/key/block",
    "/session/login",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/chat/completions",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("gpt-4o-mini".to_string()),
            Just("gpt-4o".to_string()),
            Just("t".to_string()),
            Just("30d".to_string()),
            Just("-1h".to_string()),
            Just("user".to_string()),
            Just("image_url".to_string()),
            ".{0,40}",
        ]
        .prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(FIELDS).prop_map(String::from),
                        ".{0,12}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A body: JSON (mostly objects), or bytes that may not be JSON at all.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn fuzzed_bodies_never_get_a_5xx_from_gatehouse() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (app, key) = runtime.block_on(async {
        let app = TestApp::spawn_gateway().await;
        let key = app.team_with_key("t").await;
        (app, key)
    });
    let mut runner = TestRunner::new(ProptestConfig::with_cases(600));
    let strategy = (proptest::sample::select(ENDPOINTS), body(), any::<bool>());
    runner
        .run(&strategy, |(path, body, as_admin)| {
            let credential = if path.starts_with("/v1/") || path.starts_with("/chat/") {
                key.as_str()
            } else if as_admin {
                ADMIN_KEY
            } else {
                key.as_str()
            };
            let (status, text) = runtime.block_on(async {
                let response = app
                    .client
                    .post(format!("{}{path}", app.base))
                    .bearer_auth(credential)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("sent");
                let status = response.status();
                (status, response.text().await.expect("body"))
            });
            prop_assert!(
                status.as_u16() < 500,
                "{path} {}: {status} {text}",
                String::from_utf8_lossy(&body)
            );
            if status.as_u16() >= 400 {
                let parsed: Result<Value, _> = serde_json::from_str(&text);
                prop_assert!(
                    parsed.is_ok_and(|v| v["error"]["message"].is_string()),
                    "{path}: {status} is not a JSON error: {text}"
                );
            }
            Ok(())
        })
        .expect("no 5xx, every refusal a JSON error");
}
