//! Authority that cannot be taken: another person's key is rotated, changed or unblocked only by
//! who may act for that person; a key carries no more than its issuer could do; a rotated
//! key's old secret serves models, never management; wrong keys never lock out valid ones.

use crate::helpers::*;
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple 1987 lantern";

/// Sends with `key` as the bearer token.
async fn as_key(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    app.send(method, path, Some(key), body).await
}

/// A key of `user_id` in `team_id`, issued with the admin key: (secret, token).
async fn key_of(app: &TestApp, team_id: &str, user_id: &str) -> (String, String) {
    let issued = app
        .generate_key(json!({"team_id": team_id, "user_id": user_id}))
        .await;
    let body = ok(&issued);
    (
        body["key"].as_str().expect("key").to_string(),
        body["token"].as_str().expect("token").to_string(),
    )
}

/// The organization `acme` with the team `ml`; in `ml` the proxy admin `boss`, the team admin
/// `lead`, the member `ann`; `oa` is `acme`'s org_admin.
async fn world(app: &TestApp) {
    ok(&app
        .post("/organization/new", json!({"organization_id": "acme"}))
        .await);
    ok(&app
        .new_team(json!({"team_id": "ml", "organization_id": "acme"}))
        .await);
    for (user, role) in [
        ("boss", "proxy_admin"),
        ("lead", "internal_user"),
        ("ann", "internal_user"),
        ("oa", "internal_user"),
    ] {
        ok(&app
            .post(
                "/user/new",
                json!({"user_id": user, "user_role": role, "auto_create_key": false}),
            )
            .await);
    }
    ok(&app
        .post(
            "/team/member_add",
            json!({"team_id": "ml", "member": [
                {"user_id": "boss", "role": "user"},
                {"user_id": "lead", "role": "admin"},
                {"user_id": "ann", "role": "user"}]}),
        )
        .await);
    ok(&app
        .post(
            "/organization/member_add",
            json!({"organization_id": "acme", "member": [{"user_id": "oa", "role": "org_admin"}]}),
        )
        .await);
}

/// A team admin or an org_admin who can see a proxy admin's key in their team cannot rotate
/// it (which would hand them its secret), change it or unblock it; they may still block it.
#[tokio::test]
async fn another_persons_key_is_acted_on_only_by_who_may_act_for_them() {
    let app = TestApp::spawn_gateway().await;
    world(&app).await;
    let (boss_secret, boss_token) = key_of(&app, "ml", "boss").await;
    let (ann_secret, ann_token) = key_of(&app, "ml", "ann").await;
    for manager in ["lead", "oa"] {
        let (key, _) = key_of(&app, "ml", manager).await;
        // The token is in plain view of the team's managers.
        let team =
            ok(&as_key(&app, &key, Method::GET, "/team/info?team_id=ml", None).await).clone();
        assert!(
            team.to_string().contains(&boss_token),
            "{manager} sees the key"
        );
        for (method, path, body) in [
            (
                Method::POST,
                "/key/regenerate".to_string(),
                Some(json!({"key": boss_token})),
            ),
            (Method::POST, format!("/key/{boss_token}/regenerate"), None),
            (
                Method::POST,
                "/key/update".to_string(),
                Some(json!({"key": boss_token, "max_budget": 1})),
            ),
            (
                Method::POST,
                "/key/unblock".to_string(),
                Some(json!({"key": boss_token})),
            ),
        ] {
            let reply = as_key(&app, &key, method, &path, body).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{manager} {path}: {}",
                reply.body
            );
            assert!(!reply.body.to_string().contains("sk-"), "{}", reply.body);
        }
        // A plain member's key is theirs to manage.
        let rotated = as_key(
            &app,
            &key,
            Method::POST,
            "/key/regenerate",
            Some(json!({"key": ann_token})),
        )
        .await;
        ok(&rotated);
    }
    // The proxy admin's key is untouched: its secret still manages, ann's first one is gone.
    ok(&as_key(&app, &boss_secret, Method::GET, "/user/list", None).await);
    assert_eq!(
        as_key(&app, &ann_secret, Method::GET, "/key/list", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Nothing made anyone more than they were.
    let lead = ok(&app.get("/user/info?user_id=lead").await).clone();
    assert_eq!(lead["user_info"]["user_role"], "internal_user", "{lead}");
}

/// A key a team admin issued for a new user stays a member's key when that user is promoted:
/// its holder (who may be the team admin) cannot use it to make anyone a proxy admin. A proxy
/// admin's own keys are unaffected.
#[tokio::test]
async fn a_key_carries_no_more_than_its_issuer_could_do() {
    let app = TestApp::spawn_gateway().await;
    world(&app).await;
    let (lead_key, _) = key_of(&app, "ml", "lead").await;
    let issued = as_key(
        &app,
        &lead_key,
        Method::POST,
        "/key/generate",
        Some(json!({"team_id": "ml", "user_id": "newbie"})),
    )
    .await;
    let held = ok(&issued)["key"].as_str().expect("key").to_string();
    ok(&app
        .post(
            "/user/update",
            json!({"user_id": "newbie", "user_role": "proxy_admin"}),
        )
        .await);
    let promote = as_key(
        &app,
        &held,
        Method::POST,
        "/user/update",
        Some(json!({"user_id": "lead", "user_role": "proxy_admin"})),
    )
    .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN, "{}", promote.body);
    assert_eq!(
        as_key(&app, &held, Method::GET, "/user/list", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // It still serves models and what a member may do.
    ok(&app.chat(&held, ask("gpt-4o")).await);
    ok(&as_key(&app, &held, Method::GET, "/key/list", None).await);
    // Nor does a key a team admin gives to the promoted user later carry more.
    let (spare, spare_token) = key_of(&app, "ml", "ann").await;
    let given = as_key(
        &app,
        &lead_key,
        Method::POST,
        "/key/update",
        Some(json!({"key": spare_token, "user_id": "newbie"})),
    )
    .await;
    assert_eq!(given.status, StatusCode::FORBIDDEN, "{}", given.body);
    assert_eq!(
        as_key(&app, &spare, Method::GET, "/user/list", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The promoted user's own new key, from a proxy admin, is a proxy admin's.
    let (own, _) = key_of(&app, "ml", "newbie").await;
    ok(&as_key(&app, &own, Method::GET, "/user/list", None).await);
    let lead = ok(&app.get("/user/info?user_id=lead").await).clone();
    assert_eq!(lead["user_info"]["user_role"], "internal_user", "{lead}");
}

/// During a rotation's grace period the old secret keeps serving models; on management routes
/// it is refused, so whoever took it cannot rotate the key again.
#[tokio::test]
async fn an_old_secret_in_its_grace_period_serves_models_only() {
    let app = TestApp::spawn_gateway().await;
    world(&app).await;
    let (old, token) = key_of(&app, "ml", "ann").await;
    let rotated = as_key(
        &app,
        &old,
        Method::POST,
        "/key/regenerate",
        Some(json!({"key": token, "grace_period": "1h"})),
    )
    .await;
    let new = ok(&rotated)["key"].as_str().expect("key").to_string();
    ok(&app.chat(&old, ask("gpt-4o")).await);
    for (path, body) in [
        ("/key/regenerate", json!({"key": token})),
        ("/key/update", json!({"key": token, "key_alias": "mine"})),
        ("/key/delete", json!({"keys": [token]})),
    ] {
        let reply = as_key(&app, &old, Method::POST, path, Some(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {}",
            reply.body
        );
        assert!(reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("grace period")));
    }
    assert_eq!(
        as_key(
            &app,
            &old,
            Method::GET,
            &format!("/key/info?key={token}"),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    // The owner's new secret is the one that still manages the key.
    ok(&as_key(
        &app,
        &new,
        Method::GET,
        &format!("/key/info?key={token}"),
        None,
    )
    .await);
    ok(&app.chat(&new, ask("gpt-4o")).await);
}

/// A stale script's wrong keys, 1,000 in a minute from one address, interleaved with valid
/// requests from the same address: every valid one is answered; the wrong ones get 401, then
/// 429. A key's token known to others does not lock the key out.
#[tokio::test]
async fn wrong_keys_never_lock_out_valid_ones() {
    let app = TestApp::spawn_gateway().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    let issued = app.generate_key(json!({"team_id": "ml"})).await;
    let valid = ok(&issued)["key"].as_str().expect("key").to_string();
    let own = format!(
        "/key/info?key={}",
        ok(&issued)["token"].as_str().expect("token")
    );
    // Someone who knows the key's id sends wrong secrets with it.
    let (id, _) = valid
        .strip_prefix("sk-")
        .and_then(|rest| rest.split_once('_'))
        .expect("key shape");
    let mut statuses = Vec::new();
    for i in 0..1000 {
        let wrong = if i % 2 == 0 {
            format!("sk-{id}_{i:0>40}")
        } else {
            format!("sk-stale{i:0>40}")
        };
        let path = if i % 3 == 0 {
            "/key/list"
        } else {
            "/v1/chat/completions"
        };
        let reply = if path == "/key/list" {
            as_key(&app, &wrong, Method::GET, path, None).await
        } else {
            app.chat(&wrong, ask("gpt-4o")).await
        };
        statuses.push(reply.status);
        if i % 10 == 0 {
            ok(&app.chat(&valid, ask("gpt-4o")).await);
            ok(&as_key(&app, &valid, Method::GET, &own, None).await);
            ok(&app.get("/team/list").await);
        }
    }
    let first_429 = statuses
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .expect("the wrong keys are throttled");
    assert!(first_429 >= 20, "{first_429}");
    assert!(statuses[..first_429]
        .iter()
        .all(|s| *s == StatusCode::UNAUTHORIZED));
    assert!(statuses[first_429..]
        .iter()
        .all(|s| *s == StatusCode::TOO_MANY_REQUESTS));
    // People still sign in from the address: a stale key is not a guessed password.
    ok(&app.new_team(json!({"team_id": "people"})).await);
    let cookie = sign_in(&app, "ada").await;
    assert_eq!(cookie.status, StatusCode::OK, "{}", cookie.body);
}

/// Invites `user_id` into the team `people`, sets the password and signs in.
async fn sign_in(app: &TestApp, user_id: &str) -> Reply {
    let invitation = app
        .post(
            "/invitation/new",
            json!({"user_id": user_id, "team_id": "people"}),
        )
        .await;
    let id = ok(&invitation)["id"].as_str().expect("id").to_string();
    ok(&app
        .send(
            Method::POST,
            "/invitation/accept",
            None,
            Some(json!({"id": id, "password": PASSWORD})),
        )
        .await);
    login(app, user_id, PASSWORD).await
}

async fn login(app: &TestApp, user_id: &str, password: &str) -> Reply {
    app.send(
        Method::POST,
        "/session/login",
        None,
        Some(json!({"user_id": user_id, "password": password})),
    )
    .await
}

/// 270 wrong passwords over 30 accounts from one address, with the attacker's own correct
/// sign-in every 10th try: the address is throttled all the same (a success forgives only its
/// own account), before any password is checked — the attacker's own included.
#[tokio::test]
async fn spraying_passwords_is_throttled_whatever_succeeds_between() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "people"})).await);
    assert_eq!(sign_in(&app, "mallory").await.status, StatusCode::OK);
    for n in 0..30 {
        ok(&app
            .post(
                "/user/new",
                json!({"user_id": format!("victim{n}"), "auto_create_key": false}),
            )
            .await);
    }
    let mut statuses = Vec::new();
    for i in 0..270 {
        if i % 10 == 9 {
            let own = login(&app, "mallory", PASSWORD).await;
            statuses.push(own.status);
        }
        let guess = login(&app, &format!("victim{}", i % 30), "Winter2026!").await;
        statuses.push(guess.status);
    }
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        throttled > 200,
        "{throttled} of {} throttled",
        statuses.len()
    );
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED
        || *s == StatusCode::TOO_MANY_REQUESTS
        || *s == StatusCode::OK));
    // Throttled before the password is checked: the right one waits too.
    let own = login(&app, "mallory", PASSWORD).await;
    assert_eq!(own.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(own.headers.get(header::RETRY_AFTER).is_some());
    // A minute later the address is heard again.
    app.clock.advance(61_000);
    assert_eq!(
        login(&app, "mallory", PASSWORD).await.status,
        StatusCode::OK
    );
}

/// Nobody takes another person's e-mail address (compared without case): not a team admin
/// adding a member, not a proxy admin making or changing a user.
#[tokio::test]
async fn an_address_another_user_holds_is_refused() {
    let app = TestApp::spawn().await;
    world(&app).await;
    ok(&app
        .post(
            "/user/update",
            json!({"user_id": "boss", "user_email": "boss@example.com"}),
        )
        .await);
    let (lead_key, _) = key_of(&app, "ml", "lead").await;
    let squat = as_key(
        &app,
        &lead_key,
        Method::POST,
        "/team/member_add",
        Some(json!({"team_id": "ml", "member": {"user_id": "fake", "user_email": "Boss@Example.com"}})),
    )
    .await;
    assert_eq!(squat.status, StatusCode::BAD_REQUEST, "{}", squat.body);
    assert_eq!(squat.body["error"]["param"], "user_email");
    assert_eq!(
        app.get("/user/info?user_id=fake").await.status,
        StatusCode::NOT_FOUND
    );
    let made = app
        .post(
            "/user/new",
            json!({"user_id": "twin", "user_email": "BOSS@example.com", "auto_create_key": false}),
        )
        .await;
    assert_eq!(made.status, StatusCode::BAD_REQUEST, "{}", made.body);
    let changed = app
        .post(
            "/user/update",
            json!({"user_id": "ann", "user_email": "boss@EXAMPLE.com"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::BAD_REQUEST, "{}", changed.body);
    // One's own address, in another case, is one's own.
    ok(&app
        .post(
            "/user/update",
            json!({"user_id": "boss", "user_email": "Boss@Example.com"}),
        )
        .await);
}

/// Setting a password through an invitation is a row of the audit log: the person, their
/// password (never its value), from where.
#[tokio::test]
async fn setting_a_password_is_in_the_audit_log() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "people"})).await);
    ok(&sign_in(&app, "ada").await);
    let log = app.get("/audit?target_type=password").await;
    let entries = ok(&log)["entries"].as_array().expect("entries").clone();
    assert_eq!(entries.len(), 1, "{log:?}", log = log.body);
    assert_eq!(entries[0]["target_id"], "ada");
    assert_eq!(entries[0]["actor"], "ada");
    assert_eq!(entries[0]["route"], "/invitation/accept");
    assert!(!log.body.to_string().contains(PASSWORD));
    // A used link sets nothing and leaves no row.
    let again = app
        .send(
            Method::POST,
            "/invitation/accept",
            None,
            Some(
                json!({"id": "no-such-link-0000000000000000000000000000000", "password": PASSWORD}),
            ),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    let log = app.get("/audit?target_type=password").await;
    assert_eq!(ok(&log)["total_count"], 1);
}
