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

/// Sends with the session cookie of a sign-in, from Gatehouse's own pages.
async fn as_session(
    app: &TestApp,
    login: &Reply,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    send_with_cookie(app, method, path, &cookie_of(login), body).await
}

/// A key a team admin issued, and a password set through a team admin's link (which the team
/// admin may have used themself), do no more than that team admin could when their person
/// later gets more: another team's admin, an organization's org_admin. Credentials the person
/// got from a proxy admin, or made themself with those, carry what the person may do.
#[tokio::test]
async fn credentials_someone_else_gave_out_keep_to_their_scopes() {
    let app = TestApp::spawn_gateway().await;
    world(&app).await;
    ok(&app
        .new_team(json!({"team_id": "ops", "organization_id": "acme"}))
        .await);
    ok(&app.new_team(json!({"team_id": "far"})).await);
    let (lead_key, _) = key_of(&app, "ml", "lead").await;
    // The team admin issues a key for a new person, and invites another one and sets the
    // password from the link themself.
    let issued = as_key(
        &app,
        &lead_key,
        Method::POST,
        "/key/generate",
        Some(json!({"team_id": "ml", "user_id": "newbie"})),
    )
    .await;
    let held = ok(&issued)["key"].as_str().expect("key").to_string();
    let invitation = as_key(
        &app,
        &lead_key,
        Method::POST,
        "/invitation/new",
        Some(json!({"user_id": "fresh", "team_id": "ml"})),
    )
    .await;
    let link = ok(&invitation)["id"].as_str().expect("id").to_string();
    set_password(&app, &link, PASSWORD).await;
    // A proxy admin gives both more: the team `far`, and the organization `acme`.
    for person in ["newbie", "fresh"] {
        ok(&app
            .post(
                "/team/member_add",
                json!({"team_id": "far", "member": {"user_id": person, "role": "admin"}}),
            )
            .await);
        ok(&app
            .post(
                "/organization/member_add",
                json!({"organization_id": "acme", "member": {"user_id": person, "role": "org_admin"}}),
            )
            .await);
    }
    let beyond = [
        (Method::GET, "/team/info?team_id=far", None),
        (
            Method::POST,
            "/team/member_add",
            Some(json!({"team_id": "far", "member": {"user_id": "mole", "role": "user"}})),
        ),
        (
            Method::POST,
            "/team/update",
            Some(json!({"team_id": "ops", "team_alias": "taken"})),
        ),
        (
            Method::POST,
            "/key/generate",
            Some(json!({"team_id": "far"})),
        ),
    ];
    let session = login(&app, "fresh", PASSWORD).await;
    for (method, path, body) in &beyond {
        let by_key = as_key(&app, &held, method.clone(), path, body.clone()).await;
        assert_eq!(
            by_key.status,
            StatusCode::FORBIDDEN,
            "key {path}: {}",
            by_key.body
        );
        let by_session = as_session(&app, &session, method.clone(), path, body.clone()).await;
        assert_eq!(
            by_session.status,
            StatusCode::FORBIDDEN,
            "session {path}: {}",
            by_session.body
        );
    }
    // Within the team admin's scope they work as before.
    ok(&as_key(&app, &held, Method::GET, "/team/info?team_id=ml", None).await);
    ok(&as_session(&app, &session, Method::GET, "/team/info?team_id=ml", None).await);
    ok(&app.chat(&held, ask("gpt-4o")).await);
    // A key the person holds from a proxy admin does what the person may; rotated with the
    // bounded key, it stays bounded (the bounded key's holder learns the new secret).
    let (own, own_token) = key_of(&app, "ml", "newbie").await;
    ok(&as_key(&app, &own, Method::GET, "/team/info?team_id=far", None).await);
    let rotated = as_key(
        &app,
        &held,
        Method::POST,
        "/key/regenerate",
        Some(json!({"key": own_token})),
    )
    .await;
    let rotated = ok(&rotated)["key"].as_str().expect("key").to_string();
    let far = as_key(&app, &rotated, Method::GET, "/team/info?team_id=far", None).await;
    assert_eq!(far.status, StatusCode::FORBIDDEN, "{}", far.body);
    // A proxy admin's reset link gives the person a password of their own.
    let reset = app
        .post("/invitation/new", json!({"user_id": "fresh"}))
        .await;
    let link = ok(&reset)["id"].as_str().expect("id").to_string();
    ok(&app
        .send(
            Method::POST,
            "/invitation/accept",
            None,
            Some(json!({"id": link, "password": format!("{PASSWORD} anew")})),
        )
        .await);
    let session = login(&app, "fresh", &format!("{PASSWORD} anew")).await;
    ok(&as_session(&app, &session, Method::GET, "/team/info?team_id=far", None).await);
    ok(&as_session(
        &app,
        &session,
        Method::POST,
        "/team/update",
        Some(json!({"team_id": "ops", "team_alias": "theirs now"})),
    )
    .await);
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
    // Each kind of wrong key (the known key's id with wrong secrets; stale tokens of no key's
    // shape, tries at the admin key) is answered 401, then 429 once its address is over the
    // limit.
    for kind in [0, 1] {
        let statuses: Vec<StatusCode> = statuses
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == kind)
            .map(|(_, s)| *s)
            .collect();
        let first_429 = statuses
            .iter()
            .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
            .expect("the wrong keys are throttled");
        assert!(first_429 >= 20, "{first_429}");
        assert!(statuses[..first_429]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED));
        assert!(
            statuses[first_429..]
                .iter()
                .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
            "{kind}: {statuses:?}"
        );
    }
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
    set_password(app, &id, PASSWORD).await;
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

/// What one probe answers, as a caller outside the target's scope sees it: the status and the
/// body, with the id asked about written `<id>` (a stream: its status only).
async fn answer(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    id: &str,
) -> (StatusCode, String) {
    let mut request = app
        .client
        .request(method, format!("{}{}", app.base, path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        return (status, "(a stream)".to_string());
    }
    let text = response.text().await.unwrap_or_default();
    (status, text.replace(id, "<id>"))
}

/// Another team's id, key, key alias, user or organization gets the same answer as one that
/// does not exist, on every route that takes one, for a team admin, an org_admin and a member.
#[tokio::test]
async fn another_teams_ids_answer_as_ids_that_do_not_exist() {
    let app = TestApp::spawn_gateway().await;
    world(&app).await;
    // Outside every caller's scope: the team `far` with the key `theirs` of `stranger`, and the
    // organization `elsewhere`.
    ok(&app
        .post("/organization/new", json!({"organization_id": "elsewhere"}))
        .await);
    ok(&app.new_team(json!({"team_id": "far"})).await);
    let issued = app
        .generate_key(json!({"team_id": "far", "user_id": "stranger", "key_alias": "theirs"}))
        .await;
    let far_token = ok(&issued)["token"].as_str().expect("token").to_string();
    // A token that is well formed and names no key: one deleted.
    let gone = app.generate_key(json!({"team_id": "far"})).await;
    let gone_token = ok(&gone)["token"].as_str().expect("token").to_string();
    ok(&app.delete_keys(&[&gone_token]).await);

    let team = ("far", "no-such-team");
    let key = (far_token.as_str(), gone_token.as_str());
    let alias = ("theirs", "no-such-alias");
    let user = ("stranger", "no-such-user");
    let org = ("elsewhere", "no-such-org");
    let get = |path: &str| (Method::GET, path.to_string(), None::<Value>);
    let post = |path: &str, body: &str| {
        (
            Method::POST,
            path.to_string(),
            Some(serde_json::from_str::<Value>(body).expect("a JSON body")),
        )
    };
    let probes = [
        (team, get("/team/info?team_id={id}")),
        (team, get("/team/events?team_ids={id}")),
        (
            team,
            post("/team/update", r#"{"team_id": "{id}", "team_alias": "x"}"#),
        ),
        (team, post("/team/delete", r#"{"team_ids": ["{id}"]}"#)),
        (team, post("/team/block", r#"{"team_id": "{id}"}"#)),
        (team, post("/team/unblock", r#"{"team_id": "{id}"}"#)),
        (
            team,
            post(
                "/team/member_add",
                r#"{"team_id": "{id}", "member": {"user_id": "newcomer", "role": "user"}}"#,
            ),
        ),
        (
            team,
            post(
                "/team/member_update",
                r#"{"team_id": "{id}", "user_id": "stranger", "role": "admin"}"#,
            ),
        ),
        (
            team,
            post(
                "/team/member_delete",
                r#"{"team_id": "{id}", "user_id": "stranger"}"#,
            ),
        ),
        (team, post("/key/generate", r#"{"team_id": "{id}"}"#)),
        (
            team,
            post("/key/generate", r#"{"team_id": "{id}", "user_id": "ann"}"#),
        ),
        (team, get("/key/list?team_id={id}")),
        (
            team,
            post(
                "/invitation/new",
                r#"{"user_id": "invitee", "team_id": "{id}"}"#,
            ),
        ),
        (team, get("/spend/logs?team_id={id}")),
        (team, get("/spend/daily?team_id={id}")),
        (key, get("/key/info?key={id}")),
        (key, get("/team/events?keys={id}")),
        (
            key,
            post("/key/update", r#"{"key": "{id}", "key_alias": "x"}"#),
        ),
        (key, post("/key/delete", r#"{"keys": ["{id}"]}"#)),
        (key, post("/key/block", r#"{"key": "{id}"}"#)),
        (key, post("/key/unblock", r#"{"key": "{id}"}"#)),
        (key, post("/key/regenerate", r#"{"key": "{id}"}"#)),
        (
            key,
            (Method::POST, "/key/{id}/regenerate".to_string(), None),
        ),
        (key, get("/spend/logs?key={id}")),
        (alias, post("/key/delete", r#"{"key_aliases": ["{id}"]}"#)),
        (alias, get("/key/list?key_alias={id}")),
        (user, get("/user/info?user_id={id}")),
        (user, get("/key/list?user_id={id}")),
        (user, post("/invitation/new", r#"{"user_id": "{id}"}"#)),
        (
            user,
            post("/user/update", r#"{"user_id": "{id}", "user_alias": "x"}"#),
        ),
        (user, post("/user/delete", r#"{"user_ids": ["{id}"]}"#)),
        (org, get("/organization/info?organization_id={id}")),
        (
            org,
            post(
                "/organization/member_add",
                r#"{"organization_id": "{id}", "member": {"user_id": "newcomer", "role": "internal_user"}}"#,
            ),
        ),
        (
            org,
            post(
                "/team/new",
                r#"{"team_id": "fresh", "organization_id": "{id}"}"#,
            ),
        ),
    ];
    let mut told_apart = Vec::new();
    for caller in ["lead", "oa", "ann"] {
        let (secret, _) = key_of(&app, "ml", caller).await;
        for ((existing, missing), (method, path, body)) in &probes {
            let mut answers = Vec::new();
            for id in [*existing, *missing] {
                let path = path.replace("{id}", id);
                let body = body.as_ref().map(|b| {
                    serde_json::from_str(&b.to_string().replace("{id}", id)).expect("JSON")
                });
                answers.push(answer(&app, &secret, method.clone(), &path, body, id).await);
            }
            // A list filter may answer an empty list; nothing answers what it names.
            assert!(
                !answers[0].0.is_success() || !answers[0].1.contains("<id>"),
                "{caller} {method} {path} reached another team's {existing}: {:?}",
                answers[0]
            );
            if answers[0] != answers[1] {
                told_apart.push(format!(
                    "{caller} {method} {path}: {existing} → {:?}, {missing} → {:?}",
                    answers[0], answers[1]
                ));
            }
        }
    }
    assert!(
        told_apart.is_empty(),
        "existence told apart:\n{}",
        told_apart.join("\n")
    );
}

/// A throttled address is still heard with a key made a moment ago on another instance (one
/// this instance has not heard of yet): only keys looked up and found nowhere are refused
/// unread.
#[tokio::test]
async fn a_throttled_address_is_heard_with_a_key_made_on_another_instance() {
    let Some(database) = TestDatabase::create_postgres().await else {
        return;
    };
    let database = std::sync::Arc::new(database);
    // Two instances on one database, with nothing between them to tell each other of keys.
    let here =
        TestApp::spawn_gateway_on(database.clone(), &["--trusted-proxies", "127.0.0.1"]).await;
    let there = TestApp::spawn_gateway_on(database, &[]).await;
    let from = "203.0.113.77";
    let send = |key: String, path: &'static str, body: Option<Value>| {
        let mut request = here
            .client
            .request(
                if body.is_some() {
                    Method::POST
                } else {
                    Method::GET
                },
                format!("{}{path}", here.base),
            )
            .header("x-forwarded-for", from)
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { read(request.send().await.expect("sent")).await }
    };
    let mut last = StatusCode::OK;
    for i in 0..30 {
        let wrong = format!("sk-{:0>12}_{i:0>40}", i);
        last = send(wrong, "/v1/chat/completions", Some(ask("gpt-4o")))
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let made = there.team_with_key("elsewhere").await;
    let chat = send(made.clone(), "/v1/chat/completions", Some(ask("gpt-4o"))).await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.body);
    let listed = send(made, "/session/me", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
}
