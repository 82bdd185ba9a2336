//! LiteLLM's team members through a real gateway: `/team/member_add|update|delete` and
//! `members_with_roles` with LiteLLM's shapes, and a member's budget, limits and models in a
//! team holding over that user's keys in that team — and only there.

use crate::helpers::{ask, ok, refused, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn key_for(app: &TestApp, team_id: &str, user_id: &str) -> String {
    let reply = app
        .generate_key(json!({"team_id": team_id, "user_id": user_id}))
        .await;
    ok(&reply)["key"].as_str().expect("key").to_string()
}

fn roles(team: &Value) -> Vec<(String, String)> {
    team["members_with_roles"]
        .as_array()
        .expect("members_with_roles")
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().expect("user_id").to_string(),
                m["role"].as_str().expect("role").to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(u, r)| (u.to_string(), r.to_string()))
        .collect()
}

#[tokio::test]
async fn members_are_added_changed_listed_and_removed_as_in_litellm() {
    let app = TestApp::spawn_gateway().await;
    let team = app
        .new_team(json!({"team_id": "ml", "models": ["gpt-4o", "gpt-4o-mini"],
            "members_with_roles": [{"role": "admin", "user_id": "lead"}]}))
        .await;
    assert_eq!(roles(ok(&team)), pairs(&[("lead", "admin")]));
    // The lead is a user now (LiteLLM makes one), an internal_user, in the team.
    let lead = app.get("/user/info?user_id=lead").await;
    assert_eq!(ok(&lead)["user_info"]["user_role"], "internal_user");
    assert_eq!(lead.body["user_info"]["teams"], json!(["ml"]));

    // One member, by id, with a budget in the team; then a list, one by e-mail only.
    let added = app
        .post(
            "/team/member_add",
            json!({"team_id": "ml", "member": {"role": "user", "user_id": "ada"},
                "max_budget_in_team": 2.5, "tpm_limit": 1000}),
        )
        .await;
    let body = ok(&added);
    assert_eq!(body["team_id"], "ml");
    assert_eq!(roles(body), pairs(&[("lead", "admin"), ("ada", "user")]));
    assert_eq!(body["updated_users"][0]["user_id"], "ada");
    let membership = &body["updated_team_memberships"][0];
    assert_eq!(membership["max_budget_in_team"], 2.5);
    assert_eq!(membership["tpm_limit"], 1000);
    assert_eq!(membership["litellm_budget_table"]["max_budget"], 2.5);
    let list = app
        .post(
            "/team/member_add",
            json!({"team_id": "ml", "member": [
                {"role": "user", "user_email": "bob@example.com"},
                {"role": "admin", "user_id": "ada"}]}),
        )
        .await;
    // ada is there already: only bob is added, under a new id with his address.
    let body = ok(&list);
    assert_eq!(body["updated_users"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["updated_users"][0]["user_email"], "bob@example.com");
    let bob = body["updated_users"][0]["user_id"]
        .as_str()
        .expect("id")
        .to_string();
    let again = app
        .post(
            "/team/member_add",
            json!({"team_id": "ml", "member": {"role": "user", "user_id": "ada"}}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // /team/info: the spec's members (keys, and members without one with key null), LiteLLM's
    // members_with_roles and team_memberships.
    let key = key_for(&app, "ml", "ada").await;
    let info = app.team_info("ml").await;
    let body = ok(&info);
    let members = body["members"].as_array().expect("members");
    let ada_key = members
        .iter()
        .find(|m| m["user_id"] == "ada")
        .expect("ada is listed");
    assert!(ada_key["key"]
        .as_str()
        .expect("masked key")
        .starts_with("sk-"));
    assert_eq!(ada_key["role"], "user");
    let bobs = members
        .iter()
        .find(|m| m["user_id"] == bob.as_str())
        .expect("bob is listed");
    assert_eq!(bobs["key"], Value::Null);
    assert_eq!(
        body["team_info"]["members_with_roles"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(body["team_memberships"].as_array().map(Vec::len), Some(3));

    // Update by e-mail; then the role and budget of ada.
    let changed = app
        .post(
            "/team/member_update",
            json!({"team_id": "ml", "user_email": "bob@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(ok(&changed)["role"], "admin");
    assert_eq!(changed.body["user_id"], bob.as_str());
    let changed = app
        .post(
            "/team/member_update",
            json!({"team_id": "ml", "user_id": "ada", "max_budget_in_team": null,
                "rpm_limit": 7, "allowed_models": ["gpt-4o-mini"]}),
        )
        .await;
    let body = ok(&changed);
    assert_eq!(body["max_budget_in_team"], Value::Null);
    assert_eq!(body["rpm_limit"], 7);
    assert_eq!(body["tpm_limit"], 1000);
    assert_eq!(body["allowed_models"], json!(["gpt-4o-mini"]));

    // Delete: the member goes with their keys in the team (LiteLLM's); the user stays.
    assert_eq!(
        app.chat(&key, ask("gpt-4o-mini")).await.status,
        StatusCode::OK
    );
    let gone = app
        .post(
            "/team/member_delete",
            json!({"team_id": "ml", "user_id": "ada"}),
        )
        .await;
    let body = ok(&gone);
    assert_eq!(body["deleted_keys"].as_array().map(Vec::len), Some(1));
    assert!(!roles(body).iter().any(|(u, _)| u == "ada"));
    assert_eq!(
        app.chat(&key, ask("gpt-4o-mini")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/user/info?user_id=ada").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/user/info?user_id=ada").await.body["user_info"]["teams"],
        json!([])
    );
}

#[tokio::test]
async fn bad_member_requests_change_nothing() {
    let app = TestApp::spawn().await;
    ok(&app
        .new_team(json!({"team_id": "ml", "models": ["gpt-4o"]}))
        .await);
    for (body, status, param) in [
        (
            json!({"team_id": "ml", "member": {"role": "owner", "user_id": "x"}}),
            StatusCode::BAD_REQUEST,
            "role",
        ),
        (
            json!({"team_id": "ml", "member": {"role": "user"}}),
            StatusCode::BAD_REQUEST,
            "member",
        ),
        (
            json!({"team_id": "ml", "member": {"user_id": "x y"}}),
            StatusCode::BAD_REQUEST,
            "user_id",
        ),
        (
            json!({"team_id": "ml", "member": {"user_email": "nope"}}),
            StatusCode::BAD_REQUEST,
            "user_email",
        ),
        (
            json!({"team_id": "ml", "member": {"user_id": "x"}, "max_budget_in_team": -1}),
            StatusCode::BAD_REQUEST,
            "max_budget",
        ),
        (
            json!({"team_id": "ml", "member": {"user_id": "x"}, "allowed_models": ["gpt-3.5"]}),
            StatusCode::BAD_REQUEST,
            "allowed_models",
        ),
        (
            json!({"team_id": "ml", "member": []}),
            StatusCode::BAD_REQUEST,
            "member",
        ),
        (
            json!({"team_id": "ml", "member": "bob"}),
            StatusCode::BAD_REQUEST,
            "member",
        ),
        (
            json!({"team_id": "ml", "member": {"user_id": "x", "rol": "admin"}}),
            StatusCode::BAD_REQUEST,
            "member",
        ),
        (
            json!({"team_id": "nope", "member": {"user_id": "x"}}),
            StatusCode::NOT_FOUND,
            "",
        ),
    ] {
        let reply = app.post("/team/member_add", body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        // A mistake inside a member is named, not "nothing matched".
        if body["member"].get("rol").is_some() {
            assert!(reply.error_message().contains("rol"), "{}", reply.body);
        }
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(
                reply.body["error"]["param"], param,
                "{body}: {}",
                reply.body
            );
        }
    }
    assert_eq!(app.get("/user/list").await.body["total"], 0);
    assert_eq!(roles(&app.team_info("ml").await.body), vec![]);
    for (path, body, status) in [
        (
            "/team/member_update",
            json!({"team_id": "ml", "user_id": "nobody", "role": "admin"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/team/member_update",
            json!({"team_id": "ml", "role": "admin"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/team/member_delete",
            json!({"team_id": "ml", "user_id": "nobody"}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let reply = app.post(path, body.clone()).await;
        assert_eq!(reply.status, status, "{path} {body}: {}", reply.body);
    }

    // members_with_roles never silently drops a member who holds keys in the team.
    key_for(&app, "ml", "ada").await;
    let dropped = app
        .update_team(json!({"team_id": "ml", "max_budget": 5,
            "members_with_roles": [{"role": "admin", "user_id": "lead"}]}))
        .await;
    assert_eq!(dropped.status, StatusCode::BAD_REQUEST, "{}", dropped.body);
    assert!(dropped.error_message().contains("/team/member_delete"));
    let team = app.team_info("ml").await;
    assert_eq!(roles(&team.body), pairs(&[("ada", "user")]));
    assert_eq!(team.body["max_budget"], Value::Null);
    // Kept in the list, with a role changed and one added, the update goes through.
    let kept = app
        .update_team(json!({"team_id": "ml", "members_with_roles": [
            {"role": "admin", "user_id": "ada"}, {"role": "user", "user_id": "lead"}]}))
        .await;
    assert_eq!(
        roles(ok(&kept)),
        pairs(&[("ada", "admin"), ("lead", "user")])
    );
}

#[tokio::test]
async fn a_members_budget_limits_and_models_hold_over_their_keys_in_that_team_only() {
    let app = TestApp::spawn_gateway().await;
    ok(&app.new_team(json!({"team_id": "a"})).await);
    ok(&app.new_team(json!({"team_id": "b"})).await);
    ok(&app
        .post(
            "/team/member_add",
            json!({"team_id": "a", "member": {"role": "user", "user_id": "u"},
                "rpm_limit": 3, "allowed_models": ["gpt-4o"]}),
        )
        .await);
    let one = key_for(&app, "a", "u").await;
    let two = key_for(&app, "a", "u").await;
    let elsewhere = key_for(&app, "b", "u").await;
    let colleague = key_for(&app, "a", "v").await;

    // Models: the member's list bounds the user's keys in team a, not in team b.
    let message = refused(
        &app.chat(&one, ask("gpt-4o-mini")).await,
        StatusCode::UNAUTHORIZED,
        "team_member_model_access_denied",
    );
    assert!(message.contains("Member=a/u"), "{message}");
    assert_eq!(
        app.chat(&elsewhere, ask("gpt-4o-mini")).await.status,
        StatusCode::OK
    );

    // The rate limit: three requests a minute over both of u's keys in team a.
    for key in [&one, &two, &one] {
        assert_eq!(app.chat(key, ask("gpt-4o")).await.status, StatusCode::OK);
    }
    let message = refused(
        &app.chat(&two, ask("gpt-4o")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
    );
    assert!(
        message.starts_with("Rate limit exceeded for team_member: a/u."),
        "{message}"
    );
    assert_eq!(
        app.chat(&elsewhere, ask("gpt-4o")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.chat(&colleague, ask("gpt-4o")).await.status,
        StatusCode::OK
    );
    app.clock.advance(61_000);

    // The budget in the team: what both keys spent counts once, and the refusal says whose.
    let info = app.team_info("a").await;
    let spent = ok(&info)["team_memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .find(|m| m["user_id"] == "u")
        .expect("u")["spend"]
        .as_f64()
        .expect("spend");
    assert!(spent > 0.0);
    ok(&app
        .post(
            "/team/member_update",
            json!({"team_id": "a", "user_id": "u", "max_budget_in_team": spent}),
        )
        .await);
    let message = refused(
        &app.chat(&two, ask("gpt-4o")).await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
    assert!(message.contains("Member=a/u"), "{message}");
    assert_eq!(
        app.chat(&elsewhere, ask("gpt-4o")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.chat(&colleague, ask("gpt-4o")).await.status,
        StatusCode::OK
    );

    // The member's spend is the database's too: it survives a restart.
    app.wait_for_logs("a", 5).await;
    let app = app.restart().await;
    let info = app.team_info("a").await;
    let after = ok(&info)["team_memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .find(|m| m["user_id"] == "u")
        .expect("u")["spend"]
        .as_f64()
        .expect("spend");
    assert!((after - spent).abs() < 1e-9, "{after} vs {spent}");
    refused(
        &app.chat(&one, ask("gpt-4o")).await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
}

#[tokio::test]
async fn a_user_made_with_several_teams_is_a_member_of_each_with_the_key_in_the_first() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "a"})).await);
    ok(&app.new_team(json!({"team_id": "b"})).await);
    let made = app
        .post("/user/new", json!({"user_id": "u", "teams": ["a", "b"]}))
        .await;
    assert_eq!(ok(&made)["teams"], json!(["a", "b"]));
    let info = app.get("/user/info?user_id=u").await;
    assert_eq!(ok(&info)["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(info.body["keys"][0]["team_id"], "a");
    assert_eq!(info.body["teams"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        roles(&app.team_info("b").await.body),
        pairs(&[("u", "user")])
    );
}
