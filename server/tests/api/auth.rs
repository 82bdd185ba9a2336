use crate::helpers::{read, TestApp, ADMIN_KEY};
use reqwest::{header, Method, StatusCode};
use serde_json::json;

const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/team/new"),
    ("GET", "/team/list"),
    // A key may read its own team: another one is refused.
    ("GET", "/team/info?team_id=other"),
    ("POST", "/team/update"),
    ("POST", "/team/delete"),
    ("POST", "/team/block"),
    ("POST", "/team/unblock"),
    ("POST", "/key/generate"),
    ("GET", "/key/info?key=k"),
    ("GET", "/key/list"),
    ("POST", "/key/update"),
    ("POST", "/key/delete"),
    ("POST", "/key/block"),
    ("POST", "/key/unblock"),
    ("POST", "/team/member_add"),
    ("POST", "/team/member_update"),
    ("POST", "/team/member_delete"),
    ("POST", "/user/new"),
    ("GET", "/user/list"),
    ("GET", "/user/info?user_id=someone"),
    ("POST", "/user/update"),
    ("POST", "/user/delete"),
    ("POST", "/organization/new"),
    ("GET", "/organization/list"),
    ("GET", "/organization/info?organization_id=o"),
    ("PATCH", "/organization/update"),
    ("DELETE", "/organization/delete"),
    ("POST", "/organization/member_add"),
];

#[tokio::test]
async fn admin_routes_need_the_master_key() {
    let app = TestApp::spawn().await;
    let virtual_key = app.team_with_key("t").await;
    for (method, path) in ADMIN_ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let body = (method != Method::GET).then(|| json!({}));
        let none = app.send(method.clone(), path, None, body.clone()).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{path} without key");
        none.error_message();
        let wrong = app
            .send(
                method.clone(),
                path,
                Some("sk-admin-wrong-key"),
                body.clone(),
            )
            .await;
        assert_eq!(
            wrong.status,
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong key"
        );
        let member = app
            .send(method.clone(), path, Some(&virtual_key), body.clone())
            .await;
        assert_eq!(
            member.status,
            StatusCode::FORBIDDEN,
            "{path} with a virtual key"
        );
        assert!(
            !member.body.to_string().contains(&virtual_key),
            "error echoes the key"
        );
        // Past the throttle's window: the wrong keys above are failures from one address.
        app.clock.advance(61_000);
    }
    // Nothing changed by any of those calls.
    assert_eq!(
        app.team_list().await.body["teams"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(app.key_list("").await.body["total_count"], json!(1));
}

#[tokio::test]
async fn a_malformed_authorization_header_is_401() {
    let app = TestApp::spawn().await;
    for value in ["Basic abc", "Bearer", ADMIN_KEY, "Bearer  "] {
        let reply = app
            .client
            .get(format!("{}/team/list", app.base))
            .header(header::AUTHORIZATION, value)
            .send()
            .await
            .expect("sent");
        assert_eq!(
            read(reply).await.status,
            StatusCode::UNAUTHORIZED,
            "{value}"
        );
    }
}

fn session_cookie(reply: &crate::helpers::Reply) -> String {
    let set_cookie = reply
        .headers
        .get(header::SET_COOKIE)
        .expect("set-cookie")
        .to_str()
        .expect("ascii");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing in {set_cookie}"
        );
    }
    assert!(!set_cookie.contains(ADMIN_KEY));
    set_cookie.split(';').next().expect("pair").to_string()
}

#[tokio::test]
async fn signing_in_sets_a_session_cookie_the_api_accepts() {
    let app = TestApp::spawn().await;
    app.new_team(json!({"team_id": "t"})).await;
    let login = app
        .send(
            Method::POST,
            "/session/login",
            None,
            Some(json!({"key": ADMIN_KEY})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert!(login.body["expires_at"].is_string());
    let cookie = session_cookie(&login);

    let with_cookie = |method: Method, path: &str| {
        app.client
            .request(method, format!("{}{}", app.base, path))
            .header(header::COOKIE, cookie.clone())
    };
    let list = read(
        with_cookie(Method::GET, "/team/list")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["teams"][0]["team_id"], "t");

    let logout = read(
        with_cookie(Method::POST, "/session/logout")
            .header(header::ORIGIN, app.base.clone())
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(logout.status, StatusCode::OK);
    let cleared = logout
        .headers
        .get(header::SET_COOKIE)
        .expect("cleared")
        .to_str()
        .expect("ascii");
    assert!(cleared.contains("Max-Age=0"));
    let after = read(
        with_cookie(Method::GET, "/team/list")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert!(after.error_message().contains("sign in"));
}

#[tokio::test]
async fn a_wrong_key_does_not_sign_in() {
    let app = TestApp::spawn().await;
    let virtual_key = app.team_with_key("t").await;
    for key in ["sk-admin-wrong", virtual_key.as_str(), ""] {
        let login = app
            .send(
                Method::POST,
                "/session/login",
                None,
                Some(json!({"key": key})),
            )
            .await;
        assert_eq!(login.status, StatusCode::UNAUTHORIZED);
        assert!(login.error_message().contains("not the admin key"));
        assert!(login.headers.get(header::SET_COOKIE).is_none());
    }
}

#[tokio::test]
async fn a_forged_session_cookie_is_refused() {
    let app = TestApp::spawn().await;
    let reply = app
        .client
        .get(format!("{}/team/list", app.base))
        .header(header::COOKIE, "gatehouse_session=forged")
        .send()
        .await
        .expect("sent");
    assert_eq!(read(reply).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookie_authenticated_changes_must_come_from_gatehouse_pages() {
    let app = TestApp::spawn().await;
    let login = app
        .send(
            Method::POST,
            "/session/login",
            None,
            Some(json!({"key": ADMIN_KEY})),
        )
        .await;
    let cookie = session_cookie(&login);
    let post = |origin: Option<&str>, team: &str| {
        let mut request = app
            .client
            .post(format!("{}/team/new", app.base))
            .header(header::COOKIE, cookie.clone())
            .json(&json!({"team_id": team}));
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.send()
    };
    for origin in [
        None,
        Some("https://evil.example"),
        Some("http://127.0.0.1:1"),
    ] {
        let reply = read(post(origin, "csrf").await.expect("sent")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin:?}");
        assert!(reply.error_message().contains("Cross-site"));
    }
    assert_eq!(app.team_list().await.body["teams"], json!([]));
    let own = read(post(Some(&app.base), "ours").await.expect("sent")).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    // The bearer key needs no Origin: scripts are not browsers.
    assert_eq!(
        app.new_team(json!({"team_id": "script"})).await.status,
        StatusCode::OK
    );
}
