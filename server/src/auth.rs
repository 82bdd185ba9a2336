//! Who is calling: admin routes accept the master key as `Authorization: Bearer ...` or a
//! console session cookie. A virtual key is recognised and refused with 403.

use crate::{
    error::ApiError,
    service::{secrets, session},
    state::AppState,
};
use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderMap},
};

pub const SESSION_COOKIE: &str = "gatehouse_session";

/// The bearer token of a request; `Ok(None)` without an Authorization header.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed =
        || ApiError::Unauthorized("Authorization header must be `Bearer <key>`".to_string());
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Whether a request carrying the session cookie comes from a Gatehouse page: its `Origin`
/// names the host it was sent to (browsers send `Origin` with every cross-site and every
/// same-origin non-GET fetch), or, without `Origin`, `Sec-Fetch-Site` says same-origin.
/// Together with SameSite=Strict this keeps other sites from acting with the cookie (CSRF).
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) => {
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            origin_host.is_some() && origin_host == host
        }
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|site| site == "same-origin"),
    }
}

/// Proof that the caller is the admin; add it to a router with `from_extractor_with_state`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer_token(&parts.headers)? {
            if state.master_key.matches(token) {
                return Ok(Admin);
            }
            if secrets::is_virtual_key(token)
                && state
                    .storage
                    .key_by_hash(&secrets::sha256_hex(token))
                    .await?
                    .is_some()
            {
                return Err(ApiError::Forbidden(
                    "Virtual keys cannot call admin routes; use the admin (master) key."
                        .to_string(),
                ));
            }
            return Err(ApiError::Unauthorized("Invalid admin key.".to_string()));
        }
        if let Some(token) = session_cookie(&parts.headers) {
            if !session::is_valid(state.storage.as_ref(), token, chrono::Utc::now()).await? {
                return Err(ApiError::Unauthorized(
                    "Your session has expired; sign in again.".to_string(),
                ));
            }
            if !parts.method.is_safe() && !same_origin(&parts.headers) {
                return Err(ApiError::Forbidden(
                    "Cross-site request refused: a signed-in browser may only change things \
                     from Gatehouse's own pages."
                        .to_string(),
                ));
            }
            return Ok(Admin);
        }
        Err(ApiError::Unauthorized(
            "No credentials: send `Authorization: Bearer <admin key>` or sign in.".to_string(),
        ))
    }
}
