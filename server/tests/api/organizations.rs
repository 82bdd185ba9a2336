//! LiteLLM's organizations through a real gateway: `/organization/*` with LiteLLM's shapes and
//! methods, teams bound by their organization when put in it or changed, and the
//! organization's budget, limits and models enforced on every request of every one of its
//! teams (LiteLLM reads them and never enforces them).

use crate::helpers::{ask, ok, refused, Reply, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn key_in(app: &TestApp, team_id: &str) -> String {
    let reply = app.generate_key(json!({"team_id": team_id})).await;
    ok(&reply)["key"].as_str().expect("key").to_string()
}

async fn patch(app: &TestApp, path: &str, body: Value) -> Reply {
    app.send(
        Method::PATCH,
        path,
        Some(crate::helpers::ADMIN_KEY),
        Some(body),
    )
    .await
}

async fn delete(app: &TestApp, path: &str, body: Value) -> Reply {
    app.send(
        Method::DELETE,
        path,
        Some(crate::helpers::ADMIN_KEY),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn organizations_are_made_read_listed_changed_and_deleted_as_in_litellm() {
    let app = TestApp::spawn_gateway().await;
    let made = app
        .post(
            "/organization/new",
            json!({"organization_id": "acme", "organization_alias": "Acme",
                "models": ["gpt-4o", "gpt-4o-mini"], "max_budget": 20, "rpm_limit": 100,
                "budget_duration": "30d", "metadata": {"cost_center": "42"}}),
        )
        .await;
    let body = ok(&made);
    assert_eq!(body["organization_id"], "acme");
    assert_eq!(body["max_budget"], 20.0);
    assert_eq!(body["litellm_budget_table"]["rpm_limit"], 100);
    assert_eq!(body["teams"], json!([]));
    let again = app
        .post("/organization/new", json!({"organization_id": "acme"}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // A team is put in it at creation or later; the organization lists it.
    ok(&app
        .new_team(json!({"team_id": "ml", "organization_id": "acme", "models": ["gpt-4o"]}))
        .await);
    ok(&app.new_team(json!({"team_id": "ops"})).await);
    let moved = app
        .update_team(json!({"team_id": "ops", "organization_id": "acme"}))
        .await;
    assert_eq!(ok(&moved)["organization_id"], "acme");
    let info = app.get("/organization/info?organization_id=acme").await;
    let teams: Vec<&str> = ok(&info)["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .map(|t| t["team_id"].as_str().expect("id"))
        .collect();
    assert_eq!(teams, ["ml", "ops"]);

    // Members, by id and by e-mail; users are made.
    let added = app
        .post(
            "/organization/member_add",
            json!({"organization_id": "acme", "member": [
                {"role": "org_admin", "user_id": "boss"},
                {"role": "internal_user", "user_email": "dev@example.com"}]}),
        )
        .await;
    let body = ok(&added);
    assert_eq!(body["organization_id"], "acme");
    assert_eq!(
        body["updated_organization_memberships"][0]["user_role"],
        "org_admin"
    );
    assert_eq!(body["updated_users"][1]["user_email"], "dev@example.com");
    assert_eq!(
        app.get("/organization/info?organization_id=acme")
            .await
            .body["members"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // LiteLLM's methods: PATCH to update, DELETE to delete; the list is a bare list.
    let changed = patch(
        &app,
        "/organization/update",
        json!({"organization_id": "acme", "organization_alias": "Acme Corp", "max_budget": null}),
    )
    .await;
    assert_eq!(ok(&changed)["organization_alias"], "Acme Corp");
    assert_eq!(changed.body["max_budget"], Value::Null);
    let list = app.get("/organization/list").await;
    assert_eq!(ok(&list).as_array().map(Vec::len), Some(1));

    // Deleting it deletes its teams and their keys (LiteLLM's); other teams stay.
    let key = key_in(&app, "ml").await;
    let outside = key_in(&app, "ops").await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    ok(&app
        .update_team(json!({"team_id": "ops", "organization_id": null}))
        .await);
    let gone = delete(
        &app,
        "/organization/delete",
        json!({"organization_ids": ["acme"]}),
    )
    .await;
    assert_eq!(ok(&gone)[0]["organization_id"], "acme");
    assert_eq!(app.team_info("ml").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.chat(&key, ask("gpt-4o")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.chat(&outside, ask("gpt-4o")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/organization/info?organization_id=acme")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_team_lies_within_its_organization_and_bad_requests_change_nothing() {
    let app = TestApp::spawn().await;
    ok(&app
        .post(
            "/organization/new",
            json!({"organization_id": "acme", "models": ["gpt-4o*"], "max_budget": 10,
                "tpm_limit": 1000}),
        )
        .await);
    for (body, status, param) in [
        (
            json!({"team_id": "t", "organization_id": "acme", "models": ["claude-3"]}),
            StatusCode::BAD_REQUEST,
            "models",
        ),
        (
            json!({"team_id": "t", "organization_id": "acme", "max_budget": 11}),
            StatusCode::BAD_REQUEST,
            "max_budget",
        ),
        (
            json!({"team_id": "t", "organization_id": "acme", "tpm_limit": 1001}),
            StatusCode::BAD_REQUEST,
            "tpm_limit",
        ),
        (
            json!({"team_id": "t", "organization_id": "nope"}),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            json!({"team_id": "t", "organization_id": "a/b"}),
            StatusCode::BAD_REQUEST,
            "organization_id",
        ),
    ] {
        let reply = app.new_team(body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(
                reply.body["error"]["param"], param,
                "{body}: {}",
                reply.body
            );
        }
    }
    assert_eq!(app.team_list().await.body["teams"], json!([]));

    // Within it: made. Changing it beyond the organization's is refused and changes nothing.
    ok(&app
        .new_team(json!({"team_id": "t", "organization_id": "acme",
            "models": ["gpt-4o-mini"], "max_budget": 5}))
        .await);
    let over = app
        .update_team(json!({"team_id": "t", "max_budget": 50, "team_alias": "T"}))
        .await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST, "{}", over.body);
    assert!(
        over.error_message().contains("organization 'acme'"),
        "{}",
        over.body
    );
    let team = app.team_info("t").await;
    assert_eq!(team.body["max_budget"], 5.0);
    assert_eq!(team.body["team_alias"], Value::Null);
    // A team already beyond an organization's bounds cannot join it.
    ok(&app
        .new_team(json!({"team_id": "big", "max_budget": 100}))
        .await);
    let join = app
        .update_team(json!({"team_id": "big", "organization_id": "acme"}))
        .await;
    assert_eq!(join.status, StatusCode::BAD_REQUEST, "{}", join.body);
    assert_eq!(
        app.team_info("big").await.body["organization_id"],
        Value::Null
    );

    for (method, path, body, status) in [
        (
            Method::POST,
            "/organization/new",
            json!({"organization_id": "x", "max_budget": -1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/organization/new",
            json!({"organization_id": "x", "model_max_budget": {"gpt-4o": 1}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/organization/update",
            json!({"organization_id": "nope", "max_budget": 1}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/organization/delete",
            json!({"organization_ids": ["acme", "nope"]}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/organization/member_add",
            json!({"organization_id": "acme", "member": {"role": "owner", "user_id": "u"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/organization/member_add",
            json!({"organization_id": "acme", "member": {"user_id": "u"},
                "max_budget_in_organization": 5}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let reply = app
            .send(
                method.clone(),
                path,
                Some(crate::helpers::ADMIN_KEY),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            reply.status, status,
            "{method} {path} {body}: {}",
            reply.body
        );
    }
    assert_eq!(
        app.get("/organization/list")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(app.team_info("t").await.status, StatusCode::OK);
    assert_eq!(app.get("/user/list").await.body["total"], 0);
}

#[tokio::test]
async fn an_organizations_budget_limits_and_models_hold_over_all_of_its_teams() {
    let app = TestApp::spawn_gateway().await;
    ok(&app
        .post(
            "/organization/new",
            json!({"organization_id": "acme", "models": ["gpt-4o", "gpt-4o-mini"],
                "rpm_limit": 3}),
        )
        .await);
    ok(&app
        .new_team(json!({"team_id": "a", "organization_id": "acme"}))
        .await);
    ok(&app
        .new_team(json!({"team_id": "b", "organization_id": "acme"}))
        .await);
    ok(&app.new_team(json!({"team_id": "outside"})).await);
    let (one, two, outside) = (
        key_in(&app, "a").await,
        key_in(&app, "b").await,
        key_in(&app, "outside").await,
    );

    // Models: the organization's list bounds every team in it (their own lists are empty).
    let message = refused(
        &app.chat(&one, ask("text-embedding-3-small")).await,
        StatusCode::UNAUTHORIZED,
        "organization_model_access_denied",
    );
    assert!(message.contains("Organization=acme"), "{message}");

    // The rate limit: three requests a minute over both teams together.
    for key in [&one, &two, &one] {
        assert_eq!(app.chat(key, ask("gpt-4o")).await.status, StatusCode::OK);
    }
    let message = refused(
        &app.chat(&two, ask("gpt-4o")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
    );
    assert!(
        message.starts_with("Rate limit exceeded for organization: acme."),
        "{message}"
    );
    assert_eq!(
        app.chat(&outside, ask("gpt-4o")).await.status,
        StatusCode::OK
    );
    app.clock.advance(61_000);

    // The budget: both teams' spend counts once, and the refusal says whose.
    let spent = app
        .get("/organization/info?organization_id=acme")
        .await
        .body["spend"]
        .as_f64()
        .expect("spend");
    assert!(spent > 0.0);
    ok(&patch(
        &app,
        "/organization/update",
        json!({"organization_id": "acme", "max_budget": spent}),
    )
    .await);
    let message = refused(
        &app.chat(&one, ask("gpt-4o")).await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
    assert!(message.contains("Organization=acme"), "{message}");
    assert_eq!(
        app.chat(&outside, ask("gpt-4o")).await.status,
        StatusCode::OK
    );

    // The organization's spend is the database's too: it survives a restart.
    app.wait_for_logs("a", 2).await;
    app.wait_for_logs("b", 1).await;
    let app = app.restart().await;
    let after = app
        .get("/organization/info?organization_id=acme")
        .await
        .body["spend"]
        .as_f64()
        .expect("spend");
    assert!((after - spent).abs() < 1e-9, "{after} vs {spent}");
    refused(
        &app.chat(&two, ask("gpt-4o")).await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
}
