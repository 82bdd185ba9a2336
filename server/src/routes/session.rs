//! `/session/*`: the console's sign-in. The admin key buys an HttpOnly, SameSite=Strict cookie
//! that expires; the key itself is never stored in the browser.

use crate::{
    auth::{cross_site, session_cookie, throttled, ADMIN_ACCOUNT, SESSION_COOKIE},
    error::ApiError,
    extract::ApiJson,
    service::{self, session},
    state::AppState,
    throttle::client_address,
};
use app::types::{Login, Session};
use axum::{
    extract::{ConnectInfo, State},
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Json,
};
use chrono::Utc;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
}

fn cookie(state: &AppState, value: &str, max_age_secs: i64) -> String {
    let secure = if state.origins.secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
    )
}

/// Signs the console in with the admin key: an HttpOnly session cookie.
#[utoipa::path(post, path = "/session/login", tag = "session", security(()), request_body = Login,
    responses((status = 200, description = "Signed in; the cookie is set", body = Session)))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let ip = client_address(peer, &headers, &state.trusted_proxies);
    throttled(&state, ip, Some(ADMIN_ACCOUNT))?;
    let signed_in = session::sign_in(
        state.storage.as_ref(),
        &state.master_key,
        &req.key,
        state.session_ttl,
        Utc::now(),
    )
    .await;
    let new = match signed_in {
        Ok(new) => {
            state.throttle.success(ip, Some(ADMIN_ACCOUNT));
            new
        }
        Err(err @ service::Error::Unauthorized(_)) => {
            state.throttle.failure(ip, Some(ADMIN_ACCOUNT));
            return Err(err.into());
        }
        Err(err) => return Err(err.into()),
    };
    let body = Session {
        expires_at: new.expires_at_text(),
    };
    let set_cookie = cookie(&state, &new.token, state.session_ttl.num_seconds());
    Ok(([(header::SET_COOKIE, set_cookie)], Json(body)).into_response())
}

/// Ends the session of the cookie sent, if any.
#[utoipa::path(post, path = "/session/logout", tag = "session", security(()),
    responses((status = 200, description = "Signed out", body = Object,
        example = json!({"signed_out": true}))))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        // Another site must not be able to sign the admin out either.
        if !state.origins.allows(&headers) {
            return Err(cross_site());
        }
        session::sign_out(state.storage.as_ref(), token).await?;
    }
    let body = json!({ "signed_out": true });
    Ok(([(header::SET_COOKIE, cookie(&state, "", 0))], Json(body)).into_response())
}
