//! Who is calling: admin routes accept the master key as `Authorization: Bearer ...` or a
//! console session cookie. A virtual key acts with its user's role, as in LiteLLM: a
//! `proxy_admin`'s key may do everything, a `proxy_admin_viewer`'s may read everything, any
//! other key may read its own key, its user and its teams (403 for the rest). Failed attempts
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

/// Proof that the caller may call this admin route; add it to a router with
/// `from_extractor_with_state`. It leaves a [`Caller`] in the request's extensions.
pub struct Admin;

/// Who called an admin route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The master key, a signed-in session, or a key whose user may read or manage everything.
    Admin,
    /// A virtual key reading what is its own.
    Key {
        key_id: String,
        team_id: String,
        user_id: Option<String>,
    },
}

fn allow(parts: &mut Parts, caller: Caller) -> Result<Admin, ApiError> {
    parts.extensions.insert(caller);
    Ok(Admin)
}

/// What a virtual key may do on an admin route: what its user's role allows.
async fn key_caller(
    parts: &mut Parts,
    state: &AppState,
    key: &crate::storage::KeyRow,
) -> Result<Admin, ApiError> {
    if key.blocked
        || key
            .expires_at
            .is_some_and(|at| at <= chrono::Utc::now().timestamp())
    {
        return Err(ApiError::Unauthorized(
            "This key is blocked or has expired.".to_string(),
        ));
    }
    let role = match &key.user_id {
        Some(user_id) => state.storage.user(user_id).await?.map(|u| u.user_role),
        None => None,
    };
    let role = role.as_deref().unwrap_or("no user");
    match role {
        "proxy_admin" => return allow(parts, Caller::Admin),
        "proxy_admin_viewer" if parts.method.is_safe() => return allow(parts, Caller::Admin),
        "proxy_admin_viewer" => {
            return Err(ApiError::Forbidden(
                "This key's user is a proxy_admin_viewer: it may read, not change.".to_string(),
            ))
        }
        _ => {}
    }
    let refused = || {
        ApiError::Forbidden(format!(
            "This key's user ({role}) may read its own key (/key/info), user (/user/info) and \
             teams (/team/info) only; other admin routes need the admin key or a proxy_admin's \
             key."
        ))
    };
    if !parts.method.is_safe() {
        return Err(refused());
    }
    let query =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
    let own = match parts.uri.path() {
        "/key/info" => match query.get("key") {
            None => true,
            Some(reference) => crate::service::keys::resolve(state.ctx(), "key", reference)
                .await
                .is_ok_and(|named| named.key_id == key.key_id),
        },
        "/user/info" => match query.get("user_id") {
            None => key.user_id.is_some(),
            Some(user_id) => key.user_id.as_ref() == Some(user_id),
        },
        "/team/info" => match (query.get("team_id"), &key.user_id) {
            (Some(team_id), _) if *team_id == key.team_id => true,
            (Some(team_id), Some(user_id)) => state
                .storage
                .member(&crate::storage::member_id(team_id, user_id))
                .await?
                .is_some(),
            _ => false,
        },
        _ => false,
    };
    if !own {
        return Err(refused());
    }
    allow(
        parts,
        Caller::Key {
            key_id: key.key_id.clone(),
            team_id: key.team_id.clone(),
            user_id: key.user_id.clone(),
        },
    )
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(parts, state);
        if let Some(token) = bearer_token(&parts.headers)? {
            let account = secrets::virtual_key_id(token).unwrap_or(ADMIN_ACCOUNT);
            throttled(state, ip, Some(account))?;
            if state.master_key.matches(token) {
                state.throttle.success(ip, Some(ADMIN_ACCOUNT));
                return allow(parts, Caller::Admin);
            }
            if secrets::is_virtual_key(token) {
                if let Some(key) = state
                    .storage
                    .key_by_hash(&secrets::sha256_hex(token))
                    .await?
                {
                    return key_caller(parts, state, &key).await;
                }
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
            return allow(parts, Caller::Admin);
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
