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
            if session::is_valid(state.storage.as_ref(), token, chrono::Utc::now()).await? {
                return Ok(Admin);
            }
            return Err(ApiError::Unauthorized(
                "Your session has expired; sign in again.".to_string(),
            ));
        }
        Err(ApiError::Unauthorized(
            "No credentials: send `Authorization: Bearer <admin key>` or sign in.".to_string(),
        ))
    }
}
