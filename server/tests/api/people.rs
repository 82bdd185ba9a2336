//! People and roles: every route against every role (by key and by session), invitations,
//! sign-in with a password, and key rotation.

use crate::helpers::{
    ask, cookie_of, ok, refused, send_with_cookie, set_password, Reply, TestApp, ADMIN_KEY,
};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A password zxcvbn scores as strong.
const PASSWORD: &str = "correct horse battery staple 1987 lantern";

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The master key.
    Admin,
    /// A `proxy_admin`.
    Root,
    /// A `proxy_admin_viewer`.
    Auditor,
    /// The `org_admin` of `acme` (an `internal_user`).
    Boss,
    /// The `admin` of team `ml` (in `acme`).
    Lead,
    /// An `internal_user` member of `ml`.
    Ada,
    /// An `internal_user_viewer` member of `ml`.
    Vic,
    /// A key of team `other` without a user.
    TeamKey,
    /// No credentials.
    Nobody,
}
use Who::*;

const PEOPLE: [(Who, &str, &str); 6] = [
    (Root, "root", "proxy_admin"),
    (Auditor, "auditor", "proxy_admin_viewer"),
    (Boss, "boss", "internal_user"),
    (Lead, "lead", "internal_user"),
    (Ada, "ada", "internal_user"),
    (Vic, "vic", "internal_user_viewer"),
];
const EVERYONE: [Who; 9] = [Admin, Root, Auditor, Boss, Lead, Ada, Vic, TeamKey, Nobody];
const SIGNED: &[Who] = &[Admin, Root, Auditor, Boss, Lead, Ada, Vic];
const READERS: &[Who] = &[Admin, Root, Auditor];
const ADMINS: &[Who] = &[Admin, Root];
const ORG: &[Who] = &[Admin, Root, Boss];
const TEAM: &[Who] = &[Admin, Root, Boss, Lead];
const TEAM_AND_OWNER: &[Who] = &[Admin, Root, Boss, Lead, Ada];
const TEAM_READERS: &[Who] = &[Admin, Root, Auditor, Boss, Lead];

/// What a case makes (with the admin key) before each call: `{id}` in its path and body.
#[derive(Debug, Clone, Copy)]
enum Prep {
    Nothing,
    /// A team in this organization (or none).
    Team(Option<&'static str>),
    /// A key in this team, for this user (or none): `{id}` is its token.
    Key(&'static str, Option<&'static str>),
    /// A user member of this team: `{id}` is the user.
    Member(&'static str),
    User,
    Organization,
    /// A key the team admin `lead` issued in `ml` for a new user, who was then made a proxy
    /// admin: `{id}` is its token.
    Promoted,
}

struct Case {
    method: &'static str,
    /// The route as mounted (and as the OpenAPI document names it).
    route: &'static str,
    /// The path called: `{id}` is what `prep` made, `{n}` a number new to each call.
    path: &'static str,
    body: Option<&'static str>,
    prep: Prep,
    allowed: &'static [Who],
}

const fn case(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    prep: Prep,
    allowed: &'static [Who],
) -> Case {
    Case {
        method,
        route,
        path,
        body,
        prep,
        allowed,
    }
}

/// Every admin route, in and out of each role's scope. `ml` and `ops` are teams of the
/// organization `acme`; `other` is a team outside it.
const CASES: &[Case] = &[
    case(
        "POST",
        "/team/new",
        "/team/new",
        Some(r#"{"team_id": "t{n}"}"#),
        Prep::Nothing,
        ADMINS,
    ),
    case(
        "POST",
        "/team/new",
        "/team/new",
        Some(r#"{"team_id": "t{n}", "organization_id": "acme"}"#),
        Prep::Nothing,
        ORG,
    ),
    case(
        "GET",
        "/team/list",
        "/team/list",
        None,
        Prep::Nothing,
        SIGNED,
    ),
    case(
        "GET",
        "/team/info",
        "/team/info?team_id=ml",
        None,
        Prep::Nothing,
        SIGNED,
    ),
    case(
        "GET",
        "/team/info",
        "/team/info?team_id=other",
        None,
        Prep::Nothing,
        READERS,
    ),
    case(
        "GET",
        "/team/events",
        "/team/events?team_ids=ml",
        None,
        Prep::Nothing,
        SIGNED,
    ),
    case(
        "GET",
        "/team/events",
        "/team/events?team_ids=other",
        None,
        Prep::Nothing,
        READERS,
    ),
    case(
        "POST",
        "/team/update",
        "/team/update",
        Some(r#"{"team_id": "{id}", "team_alias": "x"}"#),
        Prep::Team(Some("acme")),
        ORG,
    ),
    case(
        "POST",
        "/team/update",
        "/team/update",
        Some(r#"{"team_id": "{id}", "team_alias": "x"}"#),
        Prep::Team(None),
        ADMINS,
    ),
    case(
        "POST",
        "/team/delete",
        "/team/delete",
        Some(r#"{"team_ids": ["{id}"]}"#),
        Prep::Team(Some("acme")),
        ORG,
    ),
    case(
        "POST",
        "/team/block",
        "/team/block",
        Some(r#"{"team_id": "{id}"}"#),
        Prep::Team(Some("acme")),
        ORG,
    ),
    case(
        "POST",
        "/team/unblock",
        "/team/unblock",
        Some(r#"{"team_id": "{id}"}"#),
        Prep::Team(Some("acme")),
        ORG,
    ),
    case(
        "POST",
        "/team/member_add",
        "/team/member_add",
        Some(r#"{"team_id": "ml", "member": {"user_id": "m{n}", "role": "user"}}"#),
        Prep::Nothing,
        TEAM,
    ),
    case(
        "POST",
        "/team/member_add",
        "/team/member_add",
        Some(r#"{"team_id": "other", "member": {"user_id": "m{n}", "role": "user"}}"#),
        Prep::Nothing,
        ADMINS,
    ),
    case(
        "POST",
        "/team/member_update",
        "/team/member_update",
        Some(r#"{"team_id": "ml", "user_id": "{id}", "role": "user"}"#),
        Prep::Member("ml"),
        TEAM,
    ),
    case(
        "POST",
        "/team/member_delete",
        "/team/member_delete",
        Some(r#"{"team_id": "ml", "user_id": "{id}"}"#),
        Prep::Member("ml"),
        TEAM,
    ),
    case(
        "POST",
        "/key/generate",
        "/key/generate",
        Some(r#"{"team_id": "ml"}"#),
        Prep::Nothing,
        TEAM_AND_OWNER,
    ),
    case(
        "POST",
        "/key/generate",
        "/key/generate",
        Some(r#"{"team_id": "ml", "user_id": "bob"}"#),
        Prep::Nothing,
        TEAM,
    ),
    case(
        "POST",
        "/key/generate",
        "/key/generate",
        Some(r#"{"team_id": "other"}"#),
        Prep::Nothing,
        ADMINS,
    ),
    case(
        "GET",
        "/key/info",
        "/key/info?key={id}",
        None,
        Prep::Key("ml", Some("ada")),
        &[Admin, Root, Auditor, Boss, Lead, Ada],
    ),
    case(
        "GET",
        "/key/info",
        "/key/info?key={id}",
        None,
        Prep::Key("other", None),
        READERS,
    ),
    case(
        "GET",
        "/key/list",
        "/key/list?team_id=ml",
        None,
        Prep::Nothing,
        SIGNED,
    ),
    case(
        "GET",
        "/key/list",
        "/key/list?user_id=bob",
        None,
        Prep::Nothing,
        READERS,
    ),
    case(
        "POST",
        "/key/update",
        "/key/update",
        Some(r#"{"key": "{id}", "key_alias": "x"}"#),
        Prep::Key("ml", Some("ada")),
        TEAM_AND_OWNER,
    ),
    case(
        "POST",
        "/key/update",
        "/key/update",
        Some(r#"{"key": "{id}", "key_alias": "x"}"#),
        Prep::Key("ml", Some("bob")),
        TEAM,
    ),
    case(
        "POST",
        "/key/delete",
        "/key/delete",
        Some(r#"{"keys": ["{id}"]}"#),
        Prep::Key("ml", Some("ada")),
        TEAM_AND_OWNER,
    ),
    case(
        "POST",
        "/key/delete",
        "/key/delete",
        Some(r#"{"keys": ["{id}"]}"#),
        Prep::Key("other", None),
        ADMINS,
    ),
    case(
        "POST",
        "/key/block",
        "/key/block",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("bob")),
        TEAM,
    ),
    case(
        "POST",
        "/key/unblock",
        "/key/unblock",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("bob")),
        TEAM,
    ),
    case(
        "POST",
        "/key/regenerate",
        "/key/regenerate",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("ada")),
        TEAM_AND_OWNER,
    ),
    case(
        "POST",
        "/key/{key}/regenerate",
        "/key/{id}/regenerate",
        None,
        Prep::Key("other", None),
        ADMINS,
    ),
    // Other people's keys: rotating (which answers the new secret), changing and unblocking
    // them is for who may act for their user; blocking stays a team manager's.
    case(
        "GET",
        "/key/info",
        "/key/info?key={id}",
        None,
        Prep::Key("ml", Some("root")),
        TEAM_READERS,
    ),
    case(
        "POST",
        "/key/regenerate",
        "/key/regenerate",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("root")),
        ADMINS,
    ),
    case(
        "POST",
        "/key/{key}/regenerate",
        "/key/{id}/regenerate",
        None,
        Prep::Key("ml", Some("root")),
        ADMINS,
    ),
    case(
        "POST",
        "/key/update",
        "/key/update",
        Some(r#"{"key": "{id}", "max_budget": 5}"#),
        Prep::Key("ml", Some("root")),
        ADMINS,
    ),
    case(
        "POST",
        "/key/unblock",
        "/key/unblock",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("root")),
        ADMINS,
    ),
    case(
        "POST",
        "/key/block",
        "/key/block",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("root")),
        TEAM,
    ),
    case(
        "GET",
        "/key/info",
        "/key/info?key={id}",
        None,
        Prep::Key("ml", Some("auditor")),
        TEAM_READERS,
    ),
    case(
        "POST",
        "/key/regenerate",
        "/key/regenerate",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("auditor")),
        ADMINS,
    ),
    case(
        "POST",
        "/key/{key}/regenerate",
        "/key/{id}/regenerate",
        None,
        Prep::Key("ml", Some("auditor")),
        ADMINS,
    ),
    case(
        "POST",
        "/key/update",
        "/key/update",
        Some(r#"{"key": "{id}", "max_budget": 5}"#),
        Prep::Key("ml", Some("auditor")),
        ADMINS,
    ),
    case(
        "POST",
        "/key/unblock",
        "/key/unblock",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("auditor")),
        ADMINS,
    ),
    case(
        "POST",
        "/key/block",
        "/key/block",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("auditor")),
        TEAM,
    ),
    case(
        "GET",
        "/key/info",
        "/key/info?key={id}",
        None,
        Prep::Key("ml", Some("vic")),
        &[Admin, Root, Auditor, Boss, Lead, Vic],
    ),
    case(
        "POST",
        "/key/regenerate",
        "/key/regenerate",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("vic")),
        TEAM,
    ),
    case(
        "POST",
        "/key/{key}/regenerate",
        "/key/{id}/regenerate",
        None,
        Prep::Key("ml", Some("vic")),
        TEAM,
    ),
    case(
        "POST",
        "/key/update",
        "/key/update",
        Some(r#"{"key": "{id}", "max_budget": 5}"#),
        Prep::Key("ml", Some("vic")),
        TEAM,
    ),
    case(
        "POST",
        "/key/unblock",
        "/key/unblock",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("vic")),
        TEAM,
    ),
    case(
        "POST",
        "/key/block",
        "/key/block",
        Some(r#"{"key": "{id}"}"#),
        Prep::Key("ml", Some("vic")),
        TEAM,
    ),
    case(
        "GET",
        "/key/info",
        "/key/info?key={id}",
        None,
        Prep::Promoted,
        TEAM_READERS,
    ),
    case(
        "POST",
        "/key/regenerate",
        "/key/regenerate",
        Some(r#"{"key": "{id}"}"#),
        Prep::Promoted,
        ADMINS,
    ),
    case(
        "POST",
        "/key/{key}/regenerate",
        "/key/{id}/regenerate",
        None,
        Prep::Promoted,
        ADMINS,
    ),
    case(
        "POST",
        "/key/update",
        "/key/update",
        Some(r#"{"key": "{id}", "max_budget": 5}"#),
        Prep::Promoted,
        ADMINS,
    ),
    case(
        "POST",
        "/key/unblock",
        "/key/unblock",
        Some(r#"{"key": "{id}"}"#),
        Prep::Promoted,
        ADMINS,
    ),
    case(
        "POST",
        "/key/block",
        "/key/block",
        Some(r#"{"key": "{id}"}"#),
        Prep::Promoted,
        TEAM,
    ),
    case(
        "POST",
        "/user/new",
        "/user/new",
        Some(r#"{"user_id": "u{n}", "auto_create_key": false}"#),
        Prep::Nothing,
        ADMINS,
    ),
    case(
        "GET",
        "/user/info",
        "/user/info?user_id=ada",
        None,
        Prep::Nothing,
        &[Admin, Root, Auditor, Ada],
    ),
    case(
        "GET",
        "/user/list",
        "/user/list",
        None,
        Prep::Nothing,
        READERS,
    ),
    case(
        "POST",
        "/user/update",
        "/user/update",
        Some(r#"{"user_id": "{id}", "user_alias": "x"}"#),
        Prep::User,
        ADMINS,
    ),
    case(
        "POST",
        "/user/delete",
        "/user/delete",
        Some(r#"{"user_ids": ["{id}"]}"#),
        Prep::User,
        ADMINS,
    ),
    case(
        "POST",
        "/organization/new",
        "/organization/new",
        Some(r#"{"organization_id": "o{n}"}"#),
        Prep::Nothing,
        ADMINS,
    ),
    case(
        "GET",
        "/organization/list",
        "/organization/list",
        None,
        Prep::Nothing,
        SIGNED,
    ),
    case(
        "GET",
        "/organization/info",
        "/organization/info?organization_id=acme",
        None,
        Prep::Nothing,
        &[Admin, Root, Auditor, Boss],
    ),
    case(
        "PATCH",
        "/organization/update",
        "/organization/update",
        Some(r#"{"organization_id": "{id}", "organization_alias": "x"}"#),
        Prep::Organization,
        ADMINS,
    ),
    case(
        "DELETE",
        "/organization/delete",
        "/organization/delete",
        Some(r#"{"organization_ids": ["{id}"]}"#),
        Prep::Organization,
        ADMINS,
    ),
    case(
        "POST",
        "/organization/member_add",
        "/organization/member_add",
        Some(
            r#"{"organization_id": "acme", "member": {"user_id": "m{n}", "role": "internal_user"}}"#,
        ),
        Prep::Nothing,
        ORG,
    ),
    case(
        "POST",
        "/invitation/new",
        "/invitation/new",
        Some(r#"{"user_id": "i{n}", "team_id": "ml"}"#),
        Prep::Nothing,
        TEAM,
    ),
    case(
        "POST",
        "/invitation/new",
        "/invitation/new",
        Some(r#"{"user_id": "i{n}"}"#),
        Prep::Nothing,
        ADMINS,
    ),
    case(
        "GET",
        "/session/me",
        "/session/me",
        None,
        Prep::Nothing,
        &[Admin, Root, Auditor, Boss, Lead, Ada, Vic, TeamKey],
    ),
    case(
        "GET",
        "/spend/logs",
        "/spend/logs?team_id=ml",
        None,
        Prep::Nothing,
        TEAM_READERS,
    ),
    case(
        "GET",
        "/spend/logs",
        "/spend/logs?key={id}",
        None,
        Prep::Key("ml", Some("ada")),
        &[Admin, Root, Auditor, Boss, Lead, Ada],
    ),
    case(
        "GET",
        "/spend/daily",
        "/spend/daily?team_id=ml",
        None,
        Prep::Nothing,
        TEAM_READERS,
    ),
    case(
        "GET",
        "/spend/daily",
        "/spend/daily?team_id=other",
        None,
        Prep::Nothing,
        READERS,
    ),
    case(
        "GET",
        "/spend/summary",
        "/spend/summary",
        None,
        Prep::Nothing,
        READERS,
    ),
    case(
        "GET",
        "/spend/refusals",
        "/spend/refusals",
        None,
        Prep::Nothing,
        READERS,
    ),
    case(
        "GET",
        "/model/info",
        "/model/info",
        None,
        Prep::Nothing,
        SIGNED,
    ),
    case("GET", "/metrics", "/metrics", None, Prep::Nothing, READERS),
    case(
        "GET",
        "/health/deployments",
        "/health/deployments",
        None,
        Prep::Nothing,
        READERS,
    ),
    case("GET", "/audit", "/audit", None, Prep::Nothing, READERS),
    case(
        "GET",
        "/alert/list",
        "/alert/list",
        None,
        Prep::Nothing,
        READERS,
    ),
];

/// Routes every caller may call: signing in and out, accepting an invitation, health, the API's
/// description, and the proxy (its own keys decide there).
const PUBLIC: &[(&str, &str)] = &[
    ("POST", "/session/login"),
    ("POST", "/session/logout"),
    ("POST", "/invitation/accept"),
    ("GET", "/session/oidc/login"),
    ("GET", "/session/oidc/callback"),
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/docs/"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("GET", "/v1/models"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/chat/completions"),
    ("POST", "/embeddings"),
    ("GET", "/models"),
];

/// A person's credentials: their virtual key, and a session opened with their password.
struct Credentials {
    key: String,
    cookie: Option<String>,
}

/// Invites `user_id`, sets the password from the link, signs in: the session cookie.
async fn sign_in_person(app: &TestApp, user_id: &str) -> String {
    let invitation = app
        .post("/invitation/new", json!({"user_id": user_id}))
        .await;
    let id = ok(&invitation)["id"].as_str().expect("id").to_string();
    set_password(app, &id, PASSWORD).await;
    let login = app
        .send(
            Method::POST,
            "/session/login",
            None,
            Some(json!({"user_id": user_id, "password": PASSWORD})),
        )
        .await;
    cookie_of(&login)
}

/// The organization `acme` (teams `ml` and `ops`), the team `other`, and one user per role.
async fn world(app: &TestApp) -> Vec<(Who, Credentials)> {
    ok(&app
        .post("/organization/new", json!({"organization_id": "acme"}))
        .await);
    // (`other` comes with its key, below.)
    for (team, org) in [("ml", Some("acme")), ("ops", Some("acme"))] {
        ok(&app
            .new_team(json!({"team_id": team, "organization_id": org}))
            .await);
    }
    let mut all = vec![(
        Admin,
        Credentials {
            key: ADMIN_KEY.to_string(),
            cookie: None,
        },
    )];
    for (who, user_id, role) in PEOPLE {
        let team = if who == Boss { "ops" } else { "ml" };
        ok(&app
            .post(
                "/user/new",
                json!({"user_id": user_id, "user_role": role, "teams": [team]}),
            )
            .await);
        let key = app
            .generate_key(json!({"team_id": team, "user_id": user_id}))
            .await;
        let key = ok(&key)["key"].as_str().expect("key").to_string();
        let cookie = Some(sign_in_person(app, user_id).await);
        all.push((who, Credentials { key, cookie }));
    }
    ok(&app
        .post(
            "/team/member_update",
            json!({"team_id": "ml", "user_id": "lead", "role": "admin"}),
        )
        .await);
    ok(&app
        .post(
            "/organization/member_add",
            json!({"organization_id": "acme", "member": {"user_id": "boss", "role": "org_admin"}}),
        )
        .await);
    all.push((
        TeamKey,
        Credentials {
            key: app.team_with_key("other").await,
            cookie: None,
        },
    ));
    all
}

/// Makes what a case needs, with the admin key: the `{id}` of the path and body.
async fn prepare(app: &TestApp, prep: Prep, n: usize, lead: &str) -> String {
    match prep {
        Prep::Promoted => {
            let user = format!("promoted{n}");
            let key = app
                .send(
                    Method::POST,
                    "/key/generate",
                    Some(lead),
                    Some(json!({"team_id": "ml", "user_id": user})),
                )
                .await;
            let token = ok(&key)["token"].as_str().expect("token").to_string();
            ok(&app
                .post(
                    "/user/update",
                    json!({"user_id": user, "user_role": "proxy_admin"}),
                )
                .await);
            token
        }
        Prep::Nothing => String::new(),
        Prep::Team(org) => {
            let id = format!("prep{n}");
            ok(&app
                .new_team(json!({"team_id": id, "organization_id": org}))
                .await);
            id
        }
        Prep::Key(team, user) => {
            let key = app
                .generate_key(json!({"team_id": team, "user_id": user}))
                .await;
            ok(&key)["token"].as_str().expect("token").to_string()
        }
        Prep::Member(team) => {
            let id = format!("member{n}");
            ok(&app
                .post(
                    "/team/member_add",
                    json!({"team_id": team, "member": {"user_id": id, "role": "user"}}),
                )
                .await);
            id
        }
        Prep::User => {
            let id = format!("user{n}");
            ok(&app
                .post(
                    "/user/new",
                    json!({"user_id": id, "auto_create_key": false}),
                )
                .await);
            id
        }
        Prep::Organization => {
            let id = format!("org{n}");
            ok(&app
                .post("/organization/new", json!({"organization_id": id}))
                .await);
            id
        }
    }
}

/// The status of a call (a stream's is read without waiting for its end).
async fn status_of(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = app
        .client
        .request(method, format!("{}{}", app.base, path))
        .header(header::ORIGIN, app.base.trim_end_matches('/'));
    match auth {
        Auth::Bearer(key) => request = request.bearer_auth(key),
        Auth::Cookie(cookie) => request = request.header(header::COOKIE, cookie),
        Auth::None => {}
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let text = if streaming {
        String::new()
    } else {
        response.text().await.unwrap_or_default()
    };
    (status, text)
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
    None,
}

/// Every route × every role, by key and by session: allowed (2xx), or 401/403 with a JSON
/// error that never echoes a credential. A route the API serves that has no case here fails
/// the test: a new route needs a rule.
#[tokio::test]
async fn every_route_answers_every_role_as_its_rule_says() {
    let app = TestApp::spawn().await;
    let people = world(&app).await;

    let document = app.get("/openapi.json").await;
    let mut served: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, item) in ok(&document)["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            served.insert((method.to_uppercase(), path.clone()));
        }
    }
    let mut ruled: BTreeSet<(String, String)> = CASES
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_string()))
        .collect();
    ruled.extend(
        PUBLIC
            .iter()
            .map(|(m, p)| ((*m).to_string(), (*p).to_string())),
    );
    let unruled: Vec<_> = served.difference(&ruled).collect();
    assert!(
        unruled.is_empty(),
        "routes without a case here: {unruled:?}"
    );
    let gone: Vec<_> = ruled.difference(&served).collect();
    assert!(gone.is_empty(), "cases for routes not served: {gone:?}");

    let lead = people
        .iter()
        .find(|(w, _)| *w == Lead)
        .map(|(_, c)| c.key.clone())
        .expect("lead");
    let mut n = 0;
    for case in CASES {
        for who in EVERYONE {
            let credentials = people.iter().find(|(w, _)| *w == who).map(|(_, c)| c);
            let mut ways: Vec<Auth<'_>> = Vec::new();
            match credentials {
                Some(c) => {
                    ways.push(Auth::Bearer(&c.key));
                    if let Some(cookie) = &c.cookie {
                        ways.push(Auth::Cookie(cookie));
                    }
                }
                None => ways.push(Auth::None),
            }
            for auth in ways {
                n += 1;
                let id = prepare(&app, case.prep, n, &lead).await;
                let fill = |text: &str| text.replace("{id}", &id).replace("{n}", &n.to_string());
                let path = fill(case.path);
                let body = case
                    .body
                    .map(|b| serde_json::from_str::<Value>(&fill(b)).expect("case body"));
                let method = Method::from_bytes(case.method.as_bytes()).expect("method");
                let (status, text) = status_of(&app, method, &path, auth, body).await;
                let how = match auth {
                    Auth::Bearer(_) => "key",
                    Auth::Cookie(_) => "session",
                    Auth::None => "nothing",
                };
                if case.allowed.contains(&who) {
                    assert!(
                        status.is_success(),
                        "{} {path} as {who:?} by {how}: {status} {text}",
                        case.method
                    );
                } else {
                    let expected = if who == Nobody {
                        StatusCode::UNAUTHORIZED
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    assert_eq!(
                        status, expected,
                        "{} {path} as {who:?} by {how}: {text}",
                        case.method
                    );
                    let error: Value = serde_json::from_str(&text).expect("JSON error");
                    assert!(error["error"]["message"].is_string(), "{text}");
                    if let Some(c) = credentials {
                        assert!(!text.contains(&c.key), "the key is echoed: {text}");
                    }
                }
            }
        }
    }
}

/// A team admin's lists hold their team and its keys; a member's, their own keys.
#[tokio::test]
async fn lists_hold_what_each_role_may_see() {
    let app = TestApp::spawn().await;
    let people = world(&app).await;
    let key_of = |who: Who| {
        people
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, c)| c.key.clone())
            .expect("credentials")
    };
    let team_ids = |reply: &Reply| -> Vec<String> {
        ok(reply)["teams"]
            .as_array()
            .expect("teams")
            .iter()
            .map(|t| t["team_id"].as_str().expect("id").to_string())
            .collect()
    };
    let lead = app
        .send(Method::GET, "/team/list", Some(&key_of(Lead)), None)
        .await;
    assert_eq!(team_ids(&lead), ["ml"]);
    let boss = app
        .send(Method::GET, "/team/list", Some(&key_of(Boss)), None)
        .await;
    assert_eq!(team_ids(&boss), ["ml", "ops"]);
    let paged = app
        .send(
            Method::GET,
            "/team/list?page=1&size=10",
            Some(&key_of(Boss)),
            None,
        )
        .await;
    assert_eq!(team_ids(&paged), ["ml", "ops"]);
    assert_eq!(ok(&paged)["total_count"], 2);
    let users_of = |reply: &Reply| -> BTreeSet<String> {
        ok(reply)["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["user_id"].as_str().unwrap_or("-").to_string())
            .collect()
    };
    let team_keys = app
        .send(
            Method::GET,
            "/key/list?team_id=ml",
            Some(&key_of(Lead)),
            None,
        )
        .await;
    assert_eq!(
        users_of(&team_keys),
        ["ada", "auditor", "lead", "root", "vic"]
            .map(String::from)
            .into()
    );
    let own = app
        .send(
            Method::GET,
            "/key/list?team_id=ml",
            Some(&key_of(Ada)),
            None,
        )
        .await;
    assert_eq!(users_of(&own), ["ada"].map(String::from).into());
    let info = app
        .send(
            Method::GET,
            "/team/info?team_id=ml",
            Some(&key_of(Ada)),
            None,
        )
        .await;
    for key in ok(&info)["keys"].as_array().expect("keys") {
        assert_eq!(key["user_id"], "ada", "another's key shown: {key}");
    }
    let orgs = app
        .send(Method::GET, "/organization/list", Some(&key_of(Ada)), None)
        .await;
    assert_eq!(ok(&orgs), &json!([]));
}

#[tokio::test]
async fn an_invited_person_sets_a_password_and_signs_in() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    let invitation = app
        .post(
            "/invitation/new",
            json!({"user_email": "grace@example.com", "team_id": "ml"}),
        )
        .await;
    let body = ok(&invitation).clone();
    let id = body["id"].as_str().expect("id");
    assert!(body["url"]
        .as_str()
        .expect("url")
        .ends_with(&format!("/invite/{id}")));
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().expect("at"))
        .expect("time");
    let days = (expires.timestamp() - app.clock.now().timestamp()) / 86_400;
    assert!((6..=7).contains(&days), "{days} days");
    let user_id = body["user_id"].as_str().expect("user");
    // The new person is an internal_user member of the team.
    let user = app.get(&format!("/user/info?user_id={user_id}")).await;
    assert_eq!(ok(&user)["user_info"]["user_role"], "internal_user");
    assert_eq!(ok(&user)["user_info"]["teams"], json!(["ml"]));

    let accept = |password: &str| {
        let body = json!({"id": id, "password": password});
        let app = &app;
        async move {
            app.send(Method::POST, "/invitation/accept", None, Some(body))
                .await
        }
    };
    // A weak password is refused, and the link still works.
    let weak = accept("password1").await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST, "{}", weak.body);
    assert_eq!(weak.body["error"]["param"], "password");
    let login = |password: &str| {
        let body = json!({"user_email": "Grace@Example.com", "password": password});
        let app = &app;
        async move {
            app.send(Method::POST, "/session/login", None, Some(body))
                .await
        }
    };
    assert_eq!(login(PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    ok(&accept(PASSWORD).await);
    // The link works once.
    assert_eq!(accept(PASSWORD).await.status, StatusCode::NOT_FOUND);
    let signed_in = login(PASSWORD).await;
    assert_eq!(ok(&signed_in)["user_id"], user_id);
    assert_eq!(ok(&signed_in)["user_role"], "internal_user");
    let cookie = cookie_of(&signed_in);
    let me = send_with_cookie(&app, Method::GET, "/session/me", &cookie, None).await;
    assert_eq!(ok(&me)["member_teams"], json!(["ml"]));
    // The person issues themself a key in their team.
    let key = send_with_cookie(
        &app,
        Method::POST,
        "/key/generate",
        &cookie,
        Some(json!({"team_id": "ml"})),
    )
    .await;
    assert_eq!(ok(&key)["user_id"], user_id);
    let wrong = login("not the password at all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.body.to_string().contains("not the password"));
    // The stored password is an argon2id hash, never the password.
    let stored = app
        .running_storage()
        .password(user_id)
        .await
        .expect("read")
        .expect("set")
        .hash;
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(PASSWORD));
}

/// Another site's page cannot sign a browser in (into an attacker's account), and a request
/// naming one user twice is one change on both databases.
#[tokio::test]
async fn sign_in_comes_from_gatehouse_pages_and_changes_are_whole() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    let forged = app
        .client
        .post(format!("{}/session/login", app.base))
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({"key": ADMIN_KEY}))
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let twice = app
        .post(
            "/team/member_add",
            json!({"team_id": "ml", "member": [{"user_id": "dup"}, {"user_id": "dup"}]}),
        )
        .await;
    assert_eq!(
        ok(&twice)["updated_team_memberships"]
            .as_array()
            .expect("list")
            .len(),
        1
    );
    let audit = app.get("/audit?target_type=member").await;
    assert_eq!(ok(&audit)["total_count"], 1);
}

/// A link a team admin made cannot set the password of someone who has become more since.
#[tokio::test]
async fn an_invitation_cannot_outgrow_who_made_it() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    ok(&app
        .post("/user/new", json!({"user_id": "lead", "teams": ["ml"]}))
        .await);
    ok(&app
        .post(
            "/team/member_update",
            json!({"team_id": "ml", "user_id": "lead", "role": "admin"}),
        )
        .await);
    let lead = app
        .generate_key(json!({"team_id": "ml", "user_id": "lead"}))
        .await;
    let lead = ok(&lead)["key"].as_str().expect("key").to_string();
    let invite = |user: &str| {
        let body = json!({"user_id": user, "team_id": "ml"});
        let (app, lead) = (&app, lead.clone());
        async move {
            app.send(Method::POST, "/invitation/new", Some(&lead), Some(body))
                .await
        }
    };
    let kept = invite("newbie").await;
    let kept = ok(&kept)["id"].as_str().expect("id").to_string();
    let second = invite("newbie").await;
    let second = ok(&second)["id"].as_str().expect("id").to_string();
    // Promoted before setting a password: the team admin's link no longer works.
    ok(&app
        .post(
            "/user/update",
            json!({"user_id": "newbie", "user_role": "proxy_admin"}),
        )
        .await);
    let accept = |id: &str| {
        let body = json!({"id": id, "password": PASSWORD});
        let app = &app;
        async move {
            app.send(Method::POST, "/invitation/accept", None, Some(body))
                .await
        }
    };
    assert_eq!(accept(&kept).await.status, StatusCode::FORBIDDEN);
    // Back to a member: the person sets a password, and the other link is spent with it.
    ok(&app
        .post(
            "/user/update",
            json!({"user_id": "newbie", "user_role": "internal_user"}),
        )
        .await);
    ok(&accept(&kept).await);
    assert_eq!(accept(&second).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    ok(&app
        .post("/user/new", json!({"user_id": "ada", "teams": ["ml"]}))
        .await);
    let mut last = StatusCode::OK;
    for _ in 0..25 {
        last = app
            .send(
                Method::POST,
                "/session/login",
                None,
                Some(json!({"user_id": "ada", "password": "guess guess guess"})),
            )
            .await
            .status;
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

/// A role change or a deletion holds for sessions already open, from their next request.
#[tokio::test]
async fn role_changes_and_deletions_reach_open_sessions_at_once() {
    let app = TestApp::spawn().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    ok(&app
        .post("/user/new", json!({"user_id": "ada", "teams": ["ml"]}))
        .await);
    let cookie = sign_in_person(&app, "ada").await;
    let users = || send_with_cookie(&app, Method::GET, "/user/list", &cookie, None);
    assert_eq!(users().await.status, StatusCode::FORBIDDEN);
    ok(&app
        .post(
            "/user/update",
            json!({"user_id": "ada", "user_role": "proxy_admin_viewer"}),
        )
        .await);
    ok(&users().await);
    let change = send_with_cookie(
        &app,
        Method::POST,
        "/team/new",
        &cookie,
        Some(json!({"team_id": "no"})),
    )
    .await;
    assert_eq!(change.status, StatusCode::FORBIDDEN);
    ok(&app.post("/user/delete", json!({"user_ids": ["ada"]})).await);
    assert_eq!(users().await.status, StatusCode::UNAUTHORIZED);
}

/// A rotated key: a new secret, the same id, budget and spend; the old secret works for the
/// grace period, then 401. Without a grace period it stops at once.
#[tokio::test]
async fn a_rotated_key_keeps_working_for_its_grace_period() {
    let app = TestApp::spawn_gateway().await;
    ok(&app.new_team(json!({"team_id": "ml"})).await);
    let issued = app
        .generate_key(json!({"team_id": "ml", "max_budget": 5}))
        .await;
    let old = ok(&issued)["key"].as_str().expect("key").to_string();
    let token = ok(&issued)["token"].as_str().expect("token").to_string();
    ok(&app.chat(&old, ask("gpt-4o")).await);
    let spent = app.key_info(&token).await.body["info"]["spend"].clone();

    let rotated = app
        .post(
            "/key/regenerate",
            json!({"key": token, "grace_period": "1h"}),
        )
        .await;
    let new = ok(&rotated)["key"].as_str().expect("key").to_string();
    assert_ne!(new, old);
    assert_eq!(ok(&rotated)["token"], token);
    assert_eq!(ok(&rotated)["max_budget"], 5.0);
    assert_eq!(ok(&rotated)["spend"], spent);
    ok(&app.chat(&new, ask("gpt-4o")).await);
    ok(&app.chat(&old, ask("gpt-4o")).await);
    app.clock.advance(59 * 60 * 1000);
    ok(&app.chat(&old, ask("gpt-4o")).await);
    app.clock.advance(2 * 60 * 1000);
    refused(
        &app.chat(&old, ask("gpt-4o")).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    ok(&app.chat(&new, ask("gpt-4o")).await);

    // LiteLLM's form, by token in the path, no grace: the old secret stops at once.
    let again = app
        .send(
            Method::POST,
            &format!("/key/{token}/regenerate"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    let newest = ok(&again)["key"].as_str().expect("key").to_string();
    refused(
        &app.chat(&new, ask("gpt-4o")).await,
        StatusCode::UNAUTHORIZED,
        "auth_error",
    );
    ok(&app.chat(&newest, ask("gpt-4o")).await);
    // A secret in the path is refused, and never echoed.
    let in_path = app
        .send(
            Method::POST,
            &format!("/key/{newest}/regenerate"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(in_path.status, StatusCode::BAD_REQUEST);
    assert!(!in_path.body.to_string().contains(&newest));
    ok(&app.chat(&newest, ask("gpt-4o")).await);
    let bad = app
        .post(
            "/key/regenerate",
            json!({"key": token, "grace_period": "soon"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["param"], "grace_period");
    // The rotation survives a restart: the newest secret works, the others do not.
    let app = app.restart().await;
    ok(&app.chat(&newest, ask("gpt-4o")).await);
    assert_eq!(
        app.chat(&old, ask("gpt-4o")).await.status,
        StatusCode::UNAUTHORIZED
    );
}
