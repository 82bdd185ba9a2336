//! Single sign-on against a small OpenID Connect provider the test starts: discovery, keys, an
//! authorization endpoint that signs the person in at once, and a token endpoint that checks
//! the PKCE verifier and the client's secret and signs an ID token (RS256).

use crate::helpers::{ok, read, TestApp};
use axum::{
    extract::{Form, Query, State},
    http::{header, HeaderMap, StatusCode as Status},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Json, Router,
};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

const KEY: &str = include_str!("oidc_test_key.pem");
const CLIENT_ID: &str = "gatehouse-test";
const CLIENT_SECRET: &str = "client-secret-for-tests";

/// Who the provider signs in, and what it says of their address.
#[derive(Clone)]
struct Provider {
    issuer: String,
    email: Arc<Mutex<(String, bool)>>,
    /// code → (nonce, PKCE challenge)
    codes: Arc<Mutex<HashMap<String, (String, String)>>>,
}

fn signer() -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(KEY, Some(JsonWebKeyId::new("k1".into()))).expect("key")
}

async fn discovery(State(p): State<Provider>) -> Json<Value> {
    let base = &p.issuer;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks() -> Json<Value> {
    let set = CoreJsonWebKeySet::new(vec![signer().as_verification_key()]);
    Json(serde_json::to_value(set).expect("jwks"))
}

async fn authorize(
    State(p): State<Provider>,
    Query(q): Query<HashMap<String, String>>,
) -> Redirect {
    let code = format!("code-{}", uuid::Uuid::new_v4());
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    p.codes.lock().expect("lock").insert(
        code.clone(),
        (q["nonce"].clone(), q["code_challenge"].clone()),
    );
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        q["redirect_uri"], q["state"]
    ))
}

async fn token(
    State(p): State<Provider>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(format!("Basic {basic}").as_str())
    {
        return (Status::UNAUTHORIZED, "bad client").into_response();
    }
    let Some((nonce, challenge)) = p.codes.lock().expect("lock").remove(&form["code"]) else {
        return (Status::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    };
    let verified = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(form["code_verifier"].as_bytes()));
    if verified != challenge {
        return (Status::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    }
    let (email, email_verified) = p.email.lock().expect("lock").clone();
    let now = chrono::Utc::now();
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(p.issuer.clone()).expect("issuer"),
        vec![Audience::new(CLIENT_ID.into())],
        now + chrono::Duration::seconds(300),
        now,
        StandardClaims::new(SubjectIdentifier::new("subject-1".into()))
            .set_email(Some(EndUserEmail::new(email)))
            .set_email_verified(Some(email_verified)),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce)));
    let id_token = CoreIdToken::new(
        claims,
        &signer(),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .expect("signed");
    Json(json!({
        "access_token": "at", "token_type": "Bearer", "expires_in": 300,
        "id_token": id_token.to_string(),
    }))
    .into_response()
}

async fn spawn_provider() -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let provider = Provider {
        issuer: format!("http://{}", listener.local_addr().expect("addr")),
        email: Arc::new(Mutex::new(("ada@example.com".into(), true))),
        codes: Arc::default(),
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(provider.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    provider
}

/// Follows a sign-in as a browser would: Gatehouse → provider → Gatehouse, with the cookie
/// Gatehouse set for the way back (`state` replaced when given).
async fn sign_in(app: &TestApp, state: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let start = browser
        .get(format!("{}/session/oidc/login", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let cookie = start.headers()[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let to_provider = start.headers()[header::LOCATION]
        .to_str()
        .expect("location")
        .to_string();
    let back = browser.get(&to_provider).send().await.expect("sent");
    let mut callback = back.headers()[header::LOCATION]
        .to_str()
        .expect("location")
        .to_string();
    if let Some(state) = state {
        let (path, query) = callback.split_once('?').expect("query");
        let code = query
            .split('&')
            .find(|p| p.starts_with("code="))
            .expect("code");
        callback = format!("{path}?{code}&state={state}");
    }
    let answer = browser
        .get(&callback)
        .header(header::COOKIE, cookie)
        .send()
        .await
        .expect("sent");
    let (status, headers) = (answer.status(), answer.headers().clone());
    (status, headers, answer.text().await.expect("body"))
}

/// The message of a JSON error answer.
fn message(body: &str) -> String {
    let error: Value = serde_json::from_str(body).expect("JSON error");
    error["error"]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

async fn spawn_with_sso(provider: &Provider) -> TestApp {
    TestApp::spawn_with(&[
        "--oidc-issuer",
        &provider.issuer,
        "--oidc-client-id",
        CLIENT_ID,
        "--oidc-client-secret",
        CLIENT_SECRET,
    ])
    .await
}

#[tokio::test]
async fn a_person_signs_in_through_the_provider_by_verified_email() {
    let provider = spawn_provider().await;
    let app = spawn_with_sso(&provider).await;
    ok(&app
        .post(
            "/user/new",
            json!({"user_id": "ada", "user_email": "Ada@Example.com", "auto_create_key": false}),
        )
        .await);
    let (status, headers, body) = sign_in(&app, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("url=/"), "{body}");
    let session = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gatehouse_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let me = read(
        app.client
            .get(format!("{}/session/me", app.base))
            .header(header::COOKIE, session)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(ok(&me)["user_id"], "ada");

    // A state that is not the one Gatehouse began with is refused.
    assert_eq!(sign_in(&app, Some("forged")).await.0, StatusCode::FORBIDDEN);
    // An address the provider has not verified matches nobody.
    provider.email.lock().expect("lock").1 = false;
    let (status, _, body) = sign_in(&app, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message(&body).contains("verified"), "{body}");
    // Nor does one no user has.
    *provider.email.lock().expect("lock") = ("eve@example.com".into(), true);
    let (status, _, body) = sign_in(&app, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message(&body).contains("invite"), "{body}");
}

#[tokio::test]
async fn without_a_provider_single_sign_on_is_not_there() {
    let app = TestApp::spawn().await;
    let reply = app
        .send(reqwest::Method::GET, "/session/oidc/login", None, None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error_message().contains("not configured"));
}
