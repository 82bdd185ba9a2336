//! `/session/*`: the console's sign-in. The admin key buys an HttpOnly, SameSite=Strict cookie
//! that expires; the key itself is never stored in the browser.

use crate::{
    auth::{session_cookie, SESSION_COOKIE},
    error::ApiError,
    extract::ApiJson,
    service::session,
    state::AppState,
};
use app::types::{Login, Session};
use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use chrono::Utc;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session/login", post(login))
        .route("/session/logout", post(logout))
}

fn cookie(value: &str, max_age_secs: i64) -> String {
    format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}")
}

async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let new = session::sign_in(
        state.storage.as_ref(),
        &state.master_key,
        &req.key,
        state.session_ttl,
        Utc::now(),
    )
    .await?;
    let body = Session {
        expires_at: new.expires_at_text(),
    };
    let set_cookie = cookie(&new.token, state.session_ttl.num_seconds());
    Ok(([(header::SET_COOKIE, set_cookie)], Json(body)).into_response())
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        session::sign_out(state.storage.as_ref(), token).await?;
    }
    let body = json!({ "signed_out": true });
    Ok(([(header::SET_COOKIE, cookie("", 0))], Json(body)).into_response())
}
