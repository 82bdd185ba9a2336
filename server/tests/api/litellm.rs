//! What LiteLLM's callers send and expect, through a real gateway: model lists with wildcards
//! and LiteLLM's special names, model aliases of keys and teams, `max_parallel_requests` on
//! keys and teams (in process and in Redis), and LiteLLM's wording of refusals.

use crate::helpers::{ask, refused, Reply, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn key_in(app: &TestApp, team: Value, key: Value) -> Reply {
    let created = app.new_team(team.clone()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let mut body = key;
    body["team_id"] = team["team_id"].clone();
    app.generate_key(body).await
}

async fn secret(app: &TestApp, team: Value, key: Value) -> String {
    let reply = key_in(app, team, key).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["key"].as_str().expect("key").to_string()
}

async fn models_of(app: &TestApp, key: &str) -> Vec<String> {
    let reply = app
        .send(reqwest::Method::GET, "/v1/models", Some(key), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut names: Vec<String> = reply.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn model_lists_take_wildcards_and_litellms_special_names() {
    let app = TestApp::spawn_gateway().await;
    // The team: every `gpt-4o*` model; the key: whatever its team allows.
    let key = secret(
        &app,
        json!({"team_id": "t", "models": ["gpt-4o*"]}),
        json!({"models": ["all-team-models"]}),
    )
    .await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    assert_eq!(
        app.chat(&key, ask("gpt-4o-mini")).await.status,
        StatusCode::OK
    );
    let message = refused(
        &app.chat(&key, ask("text-embedding-3-small")).await,
        StatusCode::UNAUTHORIZED,
        "team_model_access_denied",
    );
    assert!(
        message.starts_with(
            "team not allowed to access model. This team can only access \
             models=['gpt-4o*']. Tried to access text-embedding-3-small."
        ),
        "{message}"
    );
    assert!(message.contains("Team=t"), "{message}");
    // /v1/models lists the real names the key may use, not the patterns.
    assert_eq!(models_of(&app, &key).await, ["gpt-4o", "gpt-4o-mini"]);

    // `*` and `all-proxy-models` allow everything; a key's list stays within its team's.
    let any = secret(&app, json!({"team_id": "all", "models": ["*"]}), json!({})).await;
    assert_eq!(
        app.chat(&any, ask("gpt-4o-mini")).await.status,
        StatusCode::OK
    );
    assert_eq!(models_of(&app, &any).await.len(), 4);
    let narrow = secret(
        &app,
        json!({"team_id": "proxy", "models": ["all-proxy-models"]}),
        json!({"models": ["gpt-*"]}),
    )
    .await;
    assert_eq!(models_of(&app, &narrow).await, ["gpt-4o", "gpt-4o-mini"]);
    let message = refused(
        &app.chat(&narrow, ask("unreachable")).await,
        StatusCode::UNAUTHORIZED,
        "key_model_access_denied",
    );
    assert_eq!(
        message,
        "key not allowed to access model. This key can only access models=['gpt-*']. Tried \
         to access unreachable."
    );
    let reply = app.chat(&narrow, ask("unreachable")).await;
    assert_eq!(reply.body["error"]["param"], "model");
    assert_eq!(reply.body["error"]["code"], "401");

    // A key may not claim more than its team allows, wildcards included.
    for models in [
        json!(["*"]),
        json!(["gpt-*"]),
        json!(["text-embedding-3-small"]),
    ] {
        let reply = app
            .generate_key(json!({"team_id": "t", "models": models}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{models}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["param"], "models");
    }
    for models in [json!(["gpt-4o*"]), json!(["gpt-4o-*"]), json!(["gpt-4o"])] {
        let reply = app
            .generate_key(json!({"team_id": "t", "models": models}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{models}: {}", reply.body);
    }
}

#[tokio::test]
async fn aliases_map_a_name_to_a_served_model_and_never_widen_access() {
    let app = TestApp::spawn_gateway().await;
    let created = app
        .new_team(json!({"team_id": "t", "models": ["gpt-4o", "gpt-4o-mini"],
            "model_aliases": {"fast": "gpt-4o-mini", "smart": "gpt-4o"}}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.body["model_aliases"]["fast"], "gpt-4o-mini");
    let reply = app
        .generate_key(json!({"team_id": "t", "aliases": {"smart": "gpt-4o-mini"}}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["aliases"], json!({"smart": "gpt-4o-mini"}));
    let key = reply.body["key"].as_str().expect("key").to_string();

    // The team's alias, and the key's before the team's.
    for (asked, served) in [("fast", "gpt-4o-mini"), ("smart", "gpt-4o-mini")] {
        let reply = app.chat(&key, ask(asked)).await;
        assert_eq!(reply.status, StatusCode::OK, "{asked}: {}", reply.body);
        assert_eq!(reply.body["model"], served, "{asked}");
    }
    let logs = app.wait_for_logs("t", 2).await;
    for log in logs["logs"].as_array().expect("logs") {
        assert_eq!(log["model"], "gpt-4o-mini", "{log}");
    }

    // An alias may not lead outside the models of its level (or, for a key, its team's).
    let wider = app
        .generate_key(json!({"team_id": "t", "aliases": {"x": "text-embedding-3-small"}}))
        .await;
    assert_eq!(wider.status, StatusCode::BAD_REQUEST, "{}", wider.body);
    assert_eq!(wider.body["error"]["param"], "aliases");
    assert!(wider
        .error_message()
        .contains("add 'text-embedding-3-small'"));
    let narrower = app
        .generate_key(
            json!({"team_id": "t", "models": ["gpt-4o"], "aliases": {"x": "gpt-4o-mini"}}),
        )
        .await;
    assert_eq!(
        narrower.status,
        StatusCode::BAD_REQUEST,
        "{}",
        narrower.body
    );
    let team = app
        .update_team(json!({"team_id": "t", "model_aliases": {"e": "text-embedding-3-small"}}))
        .await;
    assert_eq!(team.status, StatusCode::BAD_REQUEST, "{}", team.body);
    assert_eq!(team.body["error"]["param"], "model_aliases");

    // Narrowing the team's models later: the alias resolves, and the served model is refused.
    let narrowed = app
        .update_team(json!({"team_id": "t", "models": ["gpt-4o"]}))
        .await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.body);
    refused(
        &app.chat(&key, ask("fast")).await,
        StatusCode::UNAUTHORIZED,
        "team_model_access_denied",
    );
    // Clearing the aliases: the name is just a name again.
    let cleared = app.update_key(json!({"key": key, "aliases": null})).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.body["aliases"], json!({}));
    assert_eq!(app.chat(&key, ask("smart")).await.body["model"], "gpt-4o");
}

/// Holds `n` requests in flight through `key` on the `held` model; answers their tasks.
fn hold(app: &TestApp, key: &str, n: usize) -> Vec<tokio::task::JoinHandle<StatusCode>> {
    (0..n)
        .map(|_| {
            let (client, base, key) = (app.client.clone(), app.base.clone(), key.to_string());
            tokio::spawn(async move {
                client
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(key)
                    .json(&ask("held"))
                    .send()
                    .await
                    .expect("sent")
                    .status()
            })
        })
        .collect()
}

async fn parallel_limits(flags: &[&str]) {
    let (app, faults) = TestApp::spawn_faults_with(flags).await;
    let key = secret(
        &app,
        json!({"team_id": "t", "max_parallel_requests": 3}),
        json!({"max_parallel_requests": 2}),
    )
    .await;
    let other = app.generate_key(json!({"team_id": "t"})).await.body["key"]
        .as_str()
        .expect("key")
        .to_string();
    let info = app.key_info(&key).await;
    assert_eq!(info.body["info"]["max_parallel_requests"], 2);
    assert_eq!(app.team_info("t").await.body["max_parallel_requests"], 3);

    let held = hold(&app, &key, 2);
    faults.until_waiting(2).await;
    let reply = app.chat(&key, ask("honest")).await;
    let message = refused(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error");
    assert!(
        message.contains("Limit type: max_parallel_requests. Current limit: 2"),
        "{message}"
    );
    assert!(
        message.starts_with("Rate limit exceeded for api_key: "),
        "{message}"
    );
    assert_eq!(reply.headers["retry-after"], "1");
    // The team has room for one more, through another key; then it is full too.
    let third = hold(&app, &other, 1);
    faults.until_waiting(3).await;
    let message = refused(
        &app.chat(&other, ask("honest")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
    );
    assert!(
        message.starts_with("Rate limit exceeded for team: t."),
        "{message}"
    );
    faults.open();
    for request in held.into_iter().chain(third) {
        assert_eq!(request.await.expect("task"), StatusCode::OK);
    }
    // Finished requests leave room again; a refused one never took any.
    assert_eq!(app.chat(&key, ask("honest")).await.status, StatusCode::OK);
    assert_eq!(app.chat(&key, ask("honest")).await.status, StatusCode::OK);

    // Cleared, the limit is gone.
    let cleared = app
        .update_key(json!({"key": key, "max_parallel_requests": null}))
        .await;
    assert_eq!(cleared.body["max_parallel_requests"], Value::Null);
}

#[tokio::test]
async fn max_parallel_requests_limits_requests_in_flight() {
    parallel_limits(&[]).await;
}

#[tokio::test]
async fn max_parallel_requests_is_shared_through_redis() {
    let Some(redis) = crate::helpers::redis_url().await else {
        return;
    };
    let prefix = crate::helpers::redis_prefix();
    parallel_limits(&["--redis-url", &redis, "--redis-prefix", &prefix]).await;
}

#[tokio::test]
async fn key_calls_take_the_fields_litellms_client_sends() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.new_team(json!({"team_id": "t"})).await.status,
        StatusCode::OK
    );
    let mut hashes = Vec::new();
    for alias in ["ci", "ci", "laptop"] {
        let reply = app
            .generate_key(json!({"team_id": "t", "key_alias": alias}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        hashes.push(
            reply.body["token_id"]
                .as_str()
                .expect("token_id")
                .to_string(),
        );
    }
    // LiteLLM's client sends every filter it was given, booleans as "true"/"false".
    let listed = app
        .key_list("?key_alias=ci&return_full_object=true&include_team_keys=false&page=1&size=10")
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["total_count"], 2);
    let by_hash = app.key_list(&format!("?key_hash={}", hashes[2])).await;
    assert_eq!(by_hash.body["total_count"], 1);
    assert_eq!(by_hash.body["keys"][0]["key_alias"], "laptop");
    let bad = app.key_list("?key_hash=sk-123").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["param"], "key_hash");

    // /key/delete by alias (every key with it), with `keys: null` as the client sends it.
    let deleted = app
        .post("/key/delete", json!({"keys": null, "key_aliases": ["ci"]}))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        deleted.body["deleted_keys"].as_array().map(Vec::len),
        Some(2)
    );
    let missing = app
        .post("/key/delete", json!({"keys": null, "key_aliases": ["ci"]}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    let none = app
        .post("/key/delete", json!({"keys": [], "key_aliases": null}))
        .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.body);
    // And by the SHA-256, with `key_aliases: null`.
    let deleted = app
        .post(
            "/key/delete",
            json!({"keys": [hashes[2]], "key_aliases": null}),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(app.key_list("?team_id=t").await.body["total_count"], 0);
}

#[tokio::test]
async fn litellm_fields_are_ignored_or_refused_by_name_never_dropped_silently() {
    let app = TestApp::spawn().await;
    let team = app
        .new_team(json!({"team_id": "t", "tags": ["prod"], "max_parallel_requests": 4}))
        .await;
    assert_eq!(team.status, StatusCode::OK, "{}", team.body);
    let key = app
        .generate_key(
            json!({"team_id": "t", "tags": ["ci"], "send_invite_email": true,
            "soft_budget": 5, "key_alias": "ci"}),
        )
        .await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.body);
    assert_eq!(key.body["key_alias"], "ci");
    for (field, value, says) in [
        ("spend", json!(10), "cannot be set"),
        ("model_max_budget", json!({"gpt-4o": 1}), "per-model"),
        ("model_rpm_limit", json!({"gpt-4o": 1}), "per-model"),
        ("budget_id", json!("b"), "max_budget"),
        ("rpm_limit_type", json!("best_effort_throughput"), "exactly"),
        ("guardrails", json!(["pii"]), "guardrails"),
    ] {
        let mut body = json!({"team_id": "t"});
        body[field] = value;
        let reply = app.generate_key(body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["param"], field);
        assert!(reply.error_message().contains(says), "{}", reply.body);
    }
    let members = app
        .update_team(json!({"team_id": "t", "team_member_budget": 5}))
        .await;
    assert_eq!(members.status, StatusCode::BAD_REQUEST, "{}", members.body);
    assert_eq!(members.body["error"]["param"], "team_member_budget");
    assert!(members.error_message().contains("max_budget_in_team"));
    // A field neither has is refused as unknown, as before.
    let unknown = app
        .generate_key(json!({"team_id": "t", "max_budgett": 1}))
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.key_list("?team_id=t").await.body["total_count"], 1);
}
