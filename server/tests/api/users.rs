//! LiteLLM's users through a real gateway: `/user/*` with LiteLLM's shapes, and a user's
//! budget, limits and models holding over all of the user's keys together.

use crate::helpers::{ask, ok, refused, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn key_for(app: &TestApp, team_id: &str, user_id: &str) -> String {
    let reply = app
        .generate_key(json!({"team_id": team_id, "user_id": user_id}))
        .await;
    ok(&reply)["key"].as_str().expect("key").to_string()
}

#[tokio::test]
async fn users_are_made_read_listed_changed_and_deleted_as_in_litellm() {
    let app = TestApp::spawn_gateway().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    let made = app
        .post(
            "/user/new",
            json!({"user_id": "ada", "user_email": "ada@example.com", "user_role": "internal_user",
                "teams": ["ml"], "max_budget": 10, "budget_duration": "30d", "key_alias": "ada-laptop",
                "models": ["gpt-4o-mini"], "send_invite_email": false}),
        )
        .await;
    let body = ok(&made);
    assert_eq!(body["user_id"], "ada");
    assert_eq!(body["user_role"], "internal_user");
    assert_eq!(body["max_budget"], 10.0);
    assert_eq!(body["teams"], json!(["ml"]));
    assert_eq!(body["token_id"].as_str().map(str::len), Some(64));
    let key = body["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("sk-"));
    // The key is in the team, for the user, with the alias asked for.
    assert_eq!(
        app.chat(&key, ask("gpt-4o-mini")).await.status,
        StatusCode::OK
    );

    let info = app.get("/user/info?user_id=ada").await;
    let body = ok(&info);
    assert_eq!(body["user_id"], "ada");
    assert_eq!(body["user_info"]["user_email"], "ada@example.com");
    assert!(body["user_info"]["spend"].as_f64().expect("spend") > 0.0);
    assert_eq!(body["keys"][0]["key_alias"], "ada-laptop");
    assert_eq!(body["keys"][0]["team_id"], "ml");
    assert_eq!(body["teams"][0]["team_id"], "ml");

    // A key naming a user that does not exist yet makes the user (internal_user, no limits).
    key_for(&app, "ml", "bob").await;
    let bob = app.get("/user/info?user_id=bob").await;
    assert_eq!(ok(&bob)["user_info"]["user_role"], "internal_user");
    assert_eq!(bob.body["user_info"]["max_budget"], Value::Null);
    ok(&app
        .post(
            "/user/new",
            json!({"user_id": "root", "user_role": "proxy_admin", "auto_create_key": false}),
        )
        .await);

    let page = app.get("/user/list?page=1&page_size=2").await;
    let body = ok(&page);
    assert_eq!(body["total"], 3);
    assert_eq!(body["total_pages"], 2);
    assert_eq!(body["page_size"], 2);
    assert_eq!(body["users"][0]["user_id"], "ada");
    assert_eq!(body["users"][0]["key_count"], 1);
    let admins = app.get("/user/list?role=proxy_admin").await;
    assert_eq!(ok(&admins)["users"][0]["user_id"], "root");
    assert_eq!(admins.body["users"][0]["key_count"], 0);
    let some = app.get("/user/list?user_ids=ada,bob").await;
    assert_eq!(ok(&some)["total"], 2);
    let by_email = app.get("/user/list?user_email=ADA@").await;
    assert_eq!(ok(&by_email)["total"], 1);

    let updated = app
        .post(
            "/user/update",
            json!({"user_id": "ada", "max_budget": 20, "user_alias": "Ada L."}),
        )
        .await;
    let body = ok(&updated);
    assert_eq!(body["max_budget"], 20.0);
    assert_eq!(body["data"]["user_alias"], "Ada L.");

    // Deleting a user deletes the user's keys (LiteLLM's answer: how many users went).
    let deleted = app.post("/user/delete", json!({"user_ids": ["ada"]})).await;
    assert_eq!(ok(&deleted), &json!(1));
    refused(
        &app.chat(&key, ask("gpt-4o-mini")).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    let gone = app.get("/user/info?user_id=ada").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_message(), "User ada not found");
    assert_eq!(app.key_list("?user_id=ada").await.body["total_count"], 0);
}

#[tokio::test]
async fn bad_user_requests_change_nothing() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    for (body, param) in [
        (json!({"user_id": "x", "user_role": "team"}), "user_role"),
        (
            json!({"user_id": "x", "user_email": "not-an-address"}),
            "user_email",
        ),
        (json!({"user_id": "x y"}), "user_id"),
        // A key needs a team in Gatehouse: say where, or ask for no key.
        (json!({"user_id": "x"}), "auto_create_key"),
        (json!({"user_id": "x", "teams": ["nope"]}), "teams"),
        (
            json!({"user_id": "x", "teams": ["ml"], "max_budget": -1}),
            "max_budget",
        ),
        (
            json!({"user_id": "x", "teams": ["ml"], "spend": 5}),
            "spend",
        ),
    ] {
        let reply = app.post("/user/new", body.clone()).await;
        assert!(reply.status.is_client_error(), "{body}: {}", reply.body);
        if reply.status == StatusCode::BAD_REQUEST {
            assert_eq!(
                reply.body["error"]["param"], param,
                "{body}: {}",
                reply.body
            );
        }
    }
    assert_eq!(app.get("/user/list").await.body["total"], 0);
    assert_eq!(app.key_list("").await.body["total_count"], 0);
    ok(&app
        .post(
            "/user/new",
            json!({"user_id": "x", "auto_create_key": false}),
        )
        .await);
    let again = app
        .post(
            "/user/new",
            json!({"user_id": "x", "auto_create_key": false}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let missing = app
        .post("/user/delete", json!({"user_ids": ["x", "nobody"]}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert_eq!(app.get("/user/list").await.body["total"], 1);
    let unknown = app
        .post(
            "/user/update",
            json!({"user_id": "nobody", "max_budget": 1}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_users_budget_models_and_limits_hold_over_all_of_the_users_keys() {
    let app = TestApp::spawn_gateway().await;
    ok(&app.new_team(json!({"team_id": "a"})).await);
    ok(&app.new_team(json!({"team_id": "b"})).await);
    ok(&app
        .post(
            "/user/new",
            json!({"user_id": "u", "auto_create_key": false,
            "models": ["gpt-4o", "gpt-4o-*"], "rpm_limit": 3}),
        )
        .await);
    let one = key_for(&app, "a", "u").await;
    let two = key_for(&app, "b", "u").await;
    let other = key_for(&app, "b", "someone-else").await;

    // Models: the user's list bounds every key of the user.
    let message = refused(
        &app.chat(&one, ask("text-embedding-3-small")).await,
        StatusCode::UNAUTHORIZED,
        "user_model_access_denied",
    );
    assert!(message.contains("User=u"), "{message}");
    let models = app
        .send(reqwest::Method::GET, "/v1/models", Some(&two), None)
        .await;
    let listed: Vec<&str> = ok(&models)["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert!(listed.contains(&"gpt-4o-mini") && !listed.contains(&"text-embedding-3-small"));

    // The rate limit: three requests a minute through both keys together.
    for key in [&one, &two, &one] {
        assert_eq!(app.chat(key, ask("gpt-4o")).await.status, StatusCode::OK);
    }
    let message = refused(
        &app.chat(&two, ask("gpt-4o")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
    );
    assert!(
        message.starts_with("Rate limit exceeded for user: u."),
        "{message}"
    );
    assert_eq!(app.chat(&other, ask("gpt-4o")).await.status, StatusCode::OK);
    app.clock.advance(61_000);

    // The budget: what both keys spent counts once for the user, and the refusal says whose.
    let spent = app.get("/user/info?user_id=u").await.body["user_info"]["spend"]
        .as_f64()
        .expect("spend");
    assert!(spent > 0.0);
    ok(&app
        .post("/user/update", json!({"user_id": "u", "max_budget": spent}))
        .await);
    let message = refused(
        &app.chat(&two, ask("gpt-4o")).await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
    assert!(message.contains("User=u"), "{message}");
    assert_eq!(app.chat(&other, ask("gpt-4o")).await.status, StatusCode::OK);

    // The spend is the database's too: it survives a restart.
    app.wait_for_logs("a", 2).await;
    app.wait_for_logs("b", 3).await;
    let app = app.restart().await;
    let after = app.get("/user/info?user_id=u").await.body["user_info"]["spend"]
        .as_f64()
        .expect("spend");
    assert!((after - spent).abs() < 1e-9, "{after} vs {spent}");
    refused(
        &app.chat(&one, ask("gpt-4o")).await,
        StatusCode::BAD_REQUEST,
        "budget_exceeded",
    );
}

/// As in LiteLLM, a user's key acts with the user's role on management routes.
#[tokio::test]
async fn a_users_key_acts_with_the_users_role() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    ok(&app.new_team(json!({"team_id": "other"})).await);
    let key_of = |body: &Value| body["key"].as_str().expect("key").to_string();
    let admin = key_of(ok(&app
        .post(
            "/user/new",
            json!({"user_id": "root", "user_role": "proxy_admin", "teams": ["ml"]}),
        )
        .await));
    let viewer = key_of(ok(&app
        .post(
            "/user/new",
            json!({"user_id": "auditor", "user_role": "proxy_admin_viewer", "teams": ["ml"]}),
        )
        .await));
    let own = key_of(ok(&app
        .post("/user/new", json!({"user_id": "ada", "teams": ["ml"]}))
        .await));
    let colleague = app
        .generate_key(json!({"team_id": "ml", "user_id": "bob"}))
        .await;
    let colleague = ok(&colleague)["token"].as_str().expect("token").to_string();
    let call = |method: Method, path: &str, key: &str, body: Option<Value>| {
        let (path, key) = (path.to_string(), key.to_string());
        let app = &app;
        async move { app.send(method, &path, Some(&key), body).await.status }
    };

    // A proxy_admin's key manages.
    assert_eq!(
        call(
            Method::POST,
            "/team/new",
            &admin,
            Some(json!({"team_id": "made"}))
        )
        .await,
        StatusCode::OK
    );
    // A proxy_admin_viewer's key reads everything and changes nothing.
    assert_eq!(
        call(Method::GET, "/team/list", &viewer, None).await,
        StatusCode::OK
    );
    assert_eq!(
        call(Method::GET, "/user/info?user_id=ada", &viewer, None).await,
        StatusCode::OK
    );
    assert_eq!(
        call(
            Method::POST,
            "/team/new",
            &viewer,
            Some(json!({"team_id": "no"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // An internal_user's key reads its own key (named or not), user and team, and no more.
    let me = app.send(Method::GET, "/key/info", Some(&own), None).await;
    assert_eq!(ok(&me)["info"]["user_id"], "ada");
    let by_secret = format!("/key/info?key={own}");
    assert_eq!(
        call(Method::GET, &by_secret, &own, None).await,
        StatusCode::OK
    );
    let whoami = app.send(Method::GET, "/user/info", Some(&own), None).await;
    assert_eq!(ok(&whoami)["user_id"], "ada");
    assert_eq!(
        call(Method::GET, "/team/info?team_id=ml", &own, None).await,
        StatusCode::OK
    );
    for path in [
        format!("/key/info?key={colleague}"),
        "/user/info?user_id=bob".to_string(),
        "/team/info?team_id=other".to_string(),
        "/user/list".to_string(),
        "/key/list?user_id=bob".to_string(),
    ] {
        let reply = app.send(Method::GET, &path, Some(&own), None).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.body
        );
        assert!(!reply.body.to_string().contains(&own), "the key is echoed");
    }
    // Its lists hold what it may see: its teams, its keys.
    let teams = app.send(Method::GET, "/team/list", Some(&own), None).await;
    let team_ids: Vec<&str> = ok(&teams)["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .filter_map(|t| t["team_id"].as_str())
        .collect();
    assert_eq!(team_ids, ["ml"]);
    let keys = app.send(Method::GET, "/key/list", Some(&own), None).await;
    for key in ok(&keys)["keys"].as_array().expect("keys") {
        assert_eq!(key["user_id"], "ada", "another user's key listed: {key}");
    }
    // It issues itself a key in its team, not one for a colleague.
    let issued = app
        .send(
            Method::POST,
            "/key/generate",
            Some(&own),
            Some(json!({"team_id": "ml"})),
        )
        .await;
    assert_eq!(ok(&issued)["user_id"], "ada");
    assert_eq!(
        call(
            Method::POST,
            "/key/generate",
            &own,
            Some(json!({"team_id": "ml", "user_id": "bob"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // The admin key still needs to name the key and the user.
    let unnamed = app.get("/key/info").await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST, "{}", unnamed.body);
    assert_eq!(app.get("/user/info").await.status, StatusCode::BAD_REQUEST);
    // A role change holds from the next request: ada's key now manages.
    ok(&app
        .post(
            "/user/update",
            json!({"user_id": "ada", "user_role": "proxy_admin"}),
        )
        .await);
    assert_eq!(
        call(Method::GET, "/team/list", &own, None).await,
        StatusCode::OK
    );
}
