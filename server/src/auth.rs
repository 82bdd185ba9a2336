//! Who is calling: admin routes accept the master key or a virtual key as
//! `Authorization: Bearer ...`, or a console session cookie (opened with the admin key or by a
//! person with a password). A virtual key acts with its user's role, as in LiteLLM, exactly as
//! the user signed in would: each route has a [`Rule`], and the services check the target
//! against the actor's scopes ([`crate::service::access`]). Wrong keys and sessions are
//! throttled per address and per account ([`crate::throttle`]); a signed-in browser may
//! change things only from Gatehouse's own origin.

use crate::{
    config::PublicUrl,
    error::ApiError,
    service::{
        access::{Actor, Role},
        secrets, session,
    },
    state::AppState,
    throttle::{client_address, Guess},
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
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `wanted`, if the request carries one.
pub fn cookie<'a>(headers: &'a HeaderMap, wanted: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
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

    /// Where people reach Gatehouse (for links it gives out): the public URL, else the
    /// listen address on this machine.
    pub fn home(&self) -> &str {
        self.allowed.first().map_or("", String::as_str)
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

/// Refuses a sign-in from an address or for an account that failed too often, before its
/// password (or link) is checked.
pub fn throttled(state: &AppState, ip: IpAddr, account: Option<&str>) -> Result<(), ApiError> {
    state
        .throttle
        .check(Guess::SignIn, ip, account)
        .map_err(ApiError::Throttled)
}

/// The answer to a wrong credential: counted, and 401 — or 429 once its address or account
/// has failed too often.
pub fn wrong(
    state: &AppState,
    guess: Guess,
    ip: IpAddr,
    account: Option<&str>,
    why: &str,
) -> ApiError {
    match state.throttle.failure(guess, ip, account) {
        Ok(()) => ApiError::Unauthorized(why.to_string()),
        Err(wait) => ApiError::Throttled(wait),
    }
}

/// The admin account's name for throttling.
pub const ADMIN_ACCOUNT: &str = "admin";

/// Before a token is compared with the admin key: the key is chosen by its operator and can be
/// guessed, so an address that has not used it in the last day waits out the throttle first,
/// as for a password (an address that has is answered at once; its wrong tries still count).
pub fn before_admin_key(state: &AppState, ip: IpAddr) -> Result<(), ApiError> {
    if state.throttle.trusts(ip, ADMIN_ACCOUNT) {
        return Ok(());
    }
    state
        .throttle
        .check(Guess::AdminKey, ip, Some(ADMIN_ACCOUNT))
        .map_err(ApiError::Throttled)
}

/// Proof that the caller may call this admin route; add it to a router with
/// `from_extractor_with_state`. It leaves the [`Actor`] in the request's extensions: the
/// services check what it may do to what.
pub struct Admin;

/// What a route asks of its caller before the service looks at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A proxy admin; a proxy admin viewer when it only reads.
    Admin,
    /// Anyone signed in (not a viewer, when it changes something): the service checks the
    /// target against the actor's scopes.
    Scoped,
    /// Also a virtual key with no user: `/key/info` on itself.
    OwnKey,
}

/// Every admin route's rule, by its path as mounted. A route missing here is refused to all
/// but the admin key (and the route × role test fails).
pub const RULES: &[(&str, Rule)] = &[
    ("/team/new", Rule::Scoped),
    ("/team/list", Rule::Scoped),
    ("/team/info", Rule::Scoped),
    ("/team/events", Rule::Scoped),
    ("/team/update", Rule::Scoped),
    ("/team/delete", Rule::Scoped),
    ("/team/block", Rule::Scoped),
    ("/team/unblock", Rule::Scoped),
    ("/team/member_add", Rule::Scoped),
    ("/team/member_update", Rule::Scoped),
    ("/team/member_delete", Rule::Scoped),
    ("/key/generate", Rule::Scoped),
    ("/key/info", Rule::OwnKey),
    ("/key/list", Rule::Scoped),
    ("/key/update", Rule::Scoped),
    ("/key/delete", Rule::Scoped),
    ("/key/block", Rule::Scoped),
    ("/key/unblock", Rule::Scoped),
    ("/key/regenerate", Rule::Scoped),
    ("/key/{key}/regenerate", Rule::Scoped),
    ("/user/new", Rule::Admin),
    ("/user/info", Rule::Scoped),
    ("/user/list", Rule::Admin),
    ("/user/update", Rule::Admin),
    ("/user/delete", Rule::Admin),
    ("/organization/new", Rule::Admin),
    ("/organization/info", Rule::Scoped),
    ("/organization/list", Rule::Scoped),
    ("/organization/update", Rule::Admin),
    ("/organization/delete", Rule::Admin),
    ("/organization/member_add", Rule::Scoped),
    ("/invitation/new", Rule::Scoped),
    ("/session/me", Rule::OwnKey),
    ("/spend/logs", Rule::Scoped),
    ("/spend/daily", Rule::Scoped),
    ("/spend/summary", Rule::Admin),
    ("/spend/refusals", Rule::Admin),
    ("/model/info", Rule::Scoped),
    ("/metrics", Rule::Admin),
    ("/audit", Rule::Admin),
    ("/alert/list", Rule::Admin),
    ("/health/deployments", Rule::Admin),
];

pub fn rule(path: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(mounted, _)| *mounted == path)
        .map(|(_, rule)| *rule)
}

/// Whether `actor` passes the route's rule (the service then checks the target).
fn passes(actor: &Actor, rule: Option<Rule>, safe: bool) -> Result<(), ApiError> {
    let refused = |why: &str| Err(ApiError::Forbidden(why.to_string()));
    if actor.changes_all() {
        return Ok(());
    }
    if !safe
        && matches!(
            actor.role,
            Role::ProxyAdminViewer | Role::InternalUserViewer
        )
    {
        return refused("Your role may read, not change.");
    }
    match rule {
        None => refused("This route is for the admin key only."),
        Some(Rule::Admin) if actor.reads_all() => Ok(()),
        Some(Rule::Admin) => refused("This route is for proxy admins."),
        Some(_) if actor.reads_all() => Ok(()),
        Some(Rule::OwnKey) => Ok(()),
        Some(Rule::Scoped) if actor.role == Role::KeyOnly => refused(
            "A key without a user may read its own key (/key/info) only; other admin routes \
             need the admin key or a user's key or sign-in.",
        ),
        Some(Rule::Scoped) => Ok(()),
    }
}

/// The admin key's holder may say who they are (LiteLLM's `LiteLLM-Changed-By`).
fn changed_by(headers: &HeaderMap) -> Option<String> {
    headers
        .get("litellm-changed-by")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_string)
}

/// The actor behind a virtual key: its user, with the user's role (at most the key's
/// [`crate::storage::KeyRow::max_role`]); or the key alone.
async fn key_actor(state: &AppState, key: &crate::storage::KeyRow) -> Result<Actor, ApiError> {
    if key.blocked
        || key
            .expires_at
            .is_some_and(|at| at <= state.now().timestamp())
    {
        return Err(ApiError::Unauthorized(
            "This key is blocked or has expired.".to_string(),
        ));
    }
    let Some(user_id) = &key.user_id else {
        return Ok(Actor::key_only(&key.key_id));
    };
    user_actor(
        state,
        user_id,
        Some(key.key_id.clone()),
        key.max_role.as_deref(),
        key.issued_by.as_deref(),
    )
    .await
}

/// A user acting now, as the database says now: a role change or a deletion holds at once.
async fn user_actor(
    state: &AppState,
    user_id: &str,
    key_id: Option<String>,
    cap: Option<&str>,
    bound_by: Option<&str>,
) -> Result<Actor, ApiError> {
    let Some(user) = state.storage.user(user_id).await? else {
        return Err(ApiError::Unauthorized(
            "This user no longer exists; sign in again.".to_string(),
        ));
    };
    Ok(Actor::user(
        state.ctx(),
        &user.user_id,
        &user.user_role,
        key_id,
        cap,
        bound_by,
    )
    .await?)
}

/// Who is calling, from the bearer token or the session cookie, as the database says now. A
/// valid key or session is never refused by the failure throttle; a wrong one is counted.
pub async fn identify(parts: &Parts, state: &AppState) -> Result<Actor, ApiError> {
    let ip = client_ip(parts, state);
    if let Some(token) = bearer_token(&parts.headers)? {
        // Whatever is not shaped like a virtual key is a try at the admin key.
        let Some(account) = secrets::virtual_key_id(token) else {
            before_admin_key(state, ip)?;
            if state.master_key.matches(token) {
                state.throttle.signed_in(ip, ADMIN_ACCOUNT);
                return Ok(Actor {
                    changed_by: changed_by(&parts.headers),
                    ..Actor::admin()
                });
            }
            return Err(wrong(
                state,
                Guess::AdminKey,
                ip,
                Some(ADMIN_ACCOUNT),
                "Invalid admin key.",
            ));
        };
        if state.master_key.matches(token) {
            state.throttle.signed_in(ip, ADMIN_ACCOUNT);
            return Ok(Actor {
                changed_by: changed_by(&parts.headers),
                ..Actor::admin()
            });
        }
        {
            let hash = secrets::sha256_hex(token);
            // A throttled caller's keys that were looked up and found nowhere lately cost no
            // database read (a key made a moment ago on another instance is still read).
            let throttled = state.throttle.check(Guess::Key, ip, Some(account)).is_err();
            let key = if throttled && state.gate.surely_unknown(&hash) {
                None
            } else {
                let key = state.storage.key_by_hash(&hash).await?;
                if key.is_none() {
                    state.gate.remember_unknown(&hash);
                }
                key
            };
            if let Some(key) = key {
                if key.key_hash == hash {
                    state.throttle.success(Some(account));
                    return key_actor(state, &key).await;
                }
                if key.accepts(&hash, state.now().timestamp()) {
                    // A rotated key's old secret, in its grace period: it keeps serving models,
                    // never managing anything (whoever took it cannot rotate the key again).
                    return Err(ApiError::Unauthorized(
                        "This key was rotated: until its grace period ends the old secret works \
                         on the model routes only; use the new secret here."
                            .to_string(),
                    ));
                }
            }
        }
        return Err(wrong(
            state,
            Guess::Key,
            ip,
            Some(account),
            "Invalid admin key.",
        ));
    }
    if let Some(token) = session_cookie(&parts.headers) {
        let Some(found) = session::find(state.storage.as_ref(), token, state.now()).await? else {
            return Err(wrong(
                state,
                Guess::Key,
                ip,
                None,
                "Your session has expired; sign in again.",
            ));
        };
        if !parts.method.is_safe() && !state.origins.allows(&parts.headers) {
            return Err(cross_site());
        }
        return match &found.user_id {
            None => Ok(Actor::admin()),
            Some(user_id) => {
                user_actor(state, user_id, None, None, found.bound_by.as_deref()).await
            }
        };
    }
    Err(ApiError::Unauthorized(
        "No credentials: send `Authorization: Bearer <admin key>` or sign in.".to_string(),
    ))
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let actor = identify(parts, state).await?;
        let route = parts
            .extensions
            .get::<axum::extract::MatchedPath>()
            .map(|path| rule(path.as_str()))
            .unwrap_or(None);
        passes(&actor, route, parts.method.is_safe())?;
        parts.extensions.insert(actor);
        Ok(Admin)
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
