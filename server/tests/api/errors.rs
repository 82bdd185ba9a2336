use crate::helpers::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Each bad body is refused with a 4xx JSON error naming the problem, and nothing changes.
#[tokio::test]
async fn bad_team_input_is_a_4xx_json_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.new_team(json!({"team_id": "keep", "max_budget": 10.0, "budget_duration": "1d"}))
        .await;
    let snapshot = app.team_list().await.body;

    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "/team/new",
            json!({"team_id": "x", "max_budget": "abc"}),
            Some("max_budget"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "max_budget": -1.0}),
            Some("max_budget"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "max_budget": 1e15}),
            Some("max_budget"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "tpm_limit": -5}),
            Some("tpm_limit"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "rpm_limit": 1.5}),
            Some("rpm_limit"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "budget_duration": "monthly"}),
            Some("budget_duration"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "budget_duration": "0d"}),
            Some("budget_duration"),
        ),
        ("/team/new", json!({"team_id": "bad id"}), Some("team_id")),
        (
            "/team/new",
            json!({"team_id": "../etc/passwd"}),
            Some("team_id"),
        ),
        (
            "/team/new",
            json!({"team_id": "x'; DROP TABLE teams;--"}),
            Some("team_id"),
        ),
        ("/team/new", json!({"team_id": 42}), Some("team_id")),
        (
            "/team/new",
            json!({"team_id": "x", "models": "gpt-4"}),
            Some("models"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "models": [""]}),
            Some("models"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "metadata": [1, 2]}),
            Some("metadata"),
        ),
        (
            "/team/new",
            json!({"team_id": "x", "team_alias": ""}),
            Some("team_alias"),
        ),
        ("/team/new", json!({"team_id": "x", "max_budjet": 5}), None),
        ("/team/new", json!(["not", "an", "object"]), None),
        (
            "/team/update",
            json!({"team_id": "keep", "max_budget": -3}),
            Some("max_budget"),
        ),
        (
            "/team/update",
            json!({"team_id": "keep", "budget_duration": "1w"}),
            Some("budget_duration"),
        ),
        ("/team/update", json!({"max_budget": 3}), None),
        (
            "/team/delete",
            json!({"team_ids": "keep"}),
            Some("team_ids"),
        ),
        ("/team/delete", json!({"team_ids": []}), Some("team_ids")),
        ("/team/block", json!({}), None),
    ];
    for (path, body, param) in cases {
        let reply = app.post(path, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            reply.body
        );
        let message = reply.error_message();
        assert!(!message.is_empty());
        if let Some(param) = param {
            assert_eq!(reply.body["error"]["param"], json!(param), "{path} {body}");
        }
    }
    assert_eq!(app.team_list().await.body, snapshot);
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let app = TestApp::spawn().await;
    for raw in [
        "{",
        "not json",
        "",
        "{\"team_id\": \"a\"} trailing",
        "\u{0}",
    ] {
        let reply = app.post_raw("/team/new", raw.to_string()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{raw:?}");
        reply.error_message();
        assert_eq!(
            reply.body["error"]["param"],
            json!(null),
            "{raw:?}: no field to name"
        );
    }
    let huge = format!(
        "{{\"team_id\": \"big\", \"metadata\": {{\"x\": \"{}\"}}}}",
        "a".repeat(2 << 20)
    );
    let reply = app.post_raw("/team/new", huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // The rest of the body is not read: the answer says the connection closes.
    assert_eq!(reply.headers["connection"], "close");
    reply.error_message();
    assert_eq!(app.team_list().await.body["teams"], json!([]));
}

#[tokio::test]
async fn a_duplicate_team_id_is_409_and_keeps_the_first_team() {
    let app = TestApp::spawn().await;
    app.new_team(json!({"team_id": "dup", "team_alias": "First"}))
        .await;
    let again = app
        .new_team(json!({"team_id": "dup", "team_alias": "Second"}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.error_message().contains("dup"));
    assert_eq!(app.team_info("dup").await.body["team_alias"], "First");
}

#[tokio::test]
async fn unknown_teams_and_missing_parameters() {
    let app = TestApp::spawn().await;
    let info = app.team_info("ghost").await;
    assert_eq!(info.status, StatusCode::NOT_FOUND);
    assert_eq!(info.body["error"]["type"], "not_found_error");
    let update = app
        .update_team(json!({"team_id": "ghost", "max_budget": 1.0}))
        .await;
    assert_eq!(update.status, StatusCode::NOT_FOUND);
    let missing = app.get("/team/info").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.error_message().contains("team_id"));
    let odd = app.get("/team/info?team_id=%3Cscript%3E").await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    let bad_key = app.get("/key/info?key=%00%01").await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_methods_and_unknown_api_paths_answer_json() {
    let app = TestApp::spawn().await;
    let wrong = app
        .send(
            Method::GET,
            "/team/new",
            Some(crate::helpers::ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    wrong.error_message();
    let unknown = app.get("/team/frobnicate").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    unknown.error_message();
    let health = app.send(Method::GET, "/health", None, None).await;
    assert_eq!(health.body, json!({"status": "ok"}));
}
