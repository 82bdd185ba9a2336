//! Who is calling: admin routes accept the master key as `Authorization: Bearer ...` or a
//! console session cookie. A virtual key is recognised and refused with 403. Failed attempts
//! are throttled per address and per account; a signed-in browser may change things only from
//! Gatehouse's own origin.

use crate::{
    config::PublicUrl,
    error::ApiError,
    service::{secrets, session},
    state::AppState,
    throttle::client_address,
};
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts, HeaderMap},
};
use std::net::{IpAddr, SocketAddr};

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

/// The origins whose pages may act with the session cookie: the public URL, or the listen
/// address and its loopback names. Compared with the browser's `Origin` exactly, scheme and
/// port included; the `Host` header is never consulted.
#[derive(Debug, Clone)]
pub struct Origins {
    allowed: Vec<String>,
    /// Whether the session cookie is marked `Secure` (the public URL is https).
    pub secure: bool,
}

impl Origins {
    pub fn new(public: Option<&PublicUrl>, bound: SocketAddr) -> Self {
        if let Some(public) = public {
            return Self {
                allowed: vec![public.origin.clone()],
                secure: public.https,
            };
        }
        let port = bound.port();
        let mut allowed: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|host| format!("http://{host}:{port}"))
            .collect();
        if !bound.ip().is_unspecified() {
            allowed.push(format!("http://{bound}"));
        }
        Self {
            allowed,
            secure: false,
        }
    }

    /// Whether a request's `Origin` is one of ours. Browsers send `Origin` with every
    /// non-GET fetch, same-origin ones included.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|origin| self.allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)))
    }
}

/// The address a request comes from, for throttling (see [`crate::throttle::client_address`]).
pub fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => client_address(*peer, &parts.headers, &state.trusted_proxies),
        None => IpAddr::from([0, 0, 0, 0]),
    }
}

/// Refuses a request from an address or for an account that failed too often.
pub fn throttled(state: &AppState, ip: IpAddr, account: Option<&str>) -> Result<(), ApiError> {
    state
        .throttle
        .check(ip, account)
        .map_err(ApiError::Throttled)
}

/// The admin account's name for throttling.
pub const ADMIN_ACCOUNT: &str = "admin";

/// Proof that the caller is the admin; add it to a router with `from_extractor_with_state`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(parts, state);
        if let Some(token) = bearer_token(&parts.headers)? {
            let account = secrets::virtual_key_id(token).unwrap_or(ADMIN_ACCOUNT);
            throttled(state, ip, Some(account))?;
            if state.master_key.matches(token) {
                state.throttle.success(ip, Some(ADMIN_ACCOUNT));
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
            state.throttle.failure(ip, Some(account));
            return Err(ApiError::Unauthorized("Invalid admin key.".to_string()));
        }
        if let Some(token) = session_cookie(&parts.headers) {
            throttled(state, ip, None)?;
            if !session::is_valid(state.storage.as_ref(), token, chrono::Utc::now()).await? {
                state.throttle.failure(ip, None);
                return Err(ApiError::Unauthorized(
                    "Your session has expired; sign in again.".to_string(),
                ));
            }
            if !parts.method.is_safe() && !state.origins.allows(&parts.headers) {
                return Err(cross_site());
            }
            return Ok(Admin);
        }
        Err(ApiError::Unauthorized(
            "No credentials: send `Authorization: Bearer <admin key>` or sign in.".to_string(),
        ))
    }
}

/// Who may read /metrics: the holder of the metrics token, or an admin.
pub struct MetricsReader;

impl FromRequestParts<AppState> for MetricsReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let (Some(expected), Some(token)) = (&state.metrics_token, bearer_token(&parts.headers)?)
        {
            if expected.matches(token) {
                return Ok(Self);
            }
        }
        Admin::from_request_parts(parts, state)
            .await
            .map(|Admin| Self)
    }
}

/// A signed-in browser asked to change something from a page that is not Gatehouse's.
pub fn cross_site() -> ApiError {
    ApiError::Forbidden(
        "Cross-site request refused: a signed-in browser may only change things from \
         Gatehouse's own pages."
            .to_string(),
    )
}
