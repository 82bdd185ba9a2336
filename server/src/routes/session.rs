//! `/session/*`: the console's sign-in. The admin key buys an HttpOnly, SameSite=Strict cookie
//! that expires; the key itself is never stored in the browser.

use crate::{
    auth::{cross_site, session_cookie, throttled, wrong, ADMIN_ACCOUNT, SESSION_COOKIE},
    error::ApiError,
    extract::ApiJson,
    routes::audit::Unit,
    service::{self, access::Actor, session, users},
    state::AppState,
    throttle::{client_address, Guess},
};
use app::types::{
    InvitationAccept, InvitationAccepted, InvitationCreated, InvitationNew, Login, Me, Session,
};
use axum::{
    extract::{ConnectInfo, State},
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Signing in and out, and accepting an invitation: no credentials needed.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(accept))
        .routes(routes!(oidc_login))
        .routes(routes!(oidc_callback))
}

/// Who is calling, and invitations: behind the admin routes' check.
pub fn signed_in_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(invite))
}

/// A browser page of another site may not sign someone in (into the attacker's account) or set
/// a password; API clients send no `Origin`.
fn refuse_other_sites(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key(header::ORIGIN) && !state.origins.allows(headers) {
        return Err(cross_site());
    }
    Ok(())
}

fn cookie(state: &AppState, value: &str, max_age_secs: i64) -> String {
    let secure = if state.origins.secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
    )
}

/// Signs the console in: with the admin key, or as a person with `user_id` (or `user_email`)
/// and password. Failed attempts are throttled per address and per account.
#[utoipa::path(post, path = "/session/login", tag = "session", security(()), request_body = Login,
    responses((status = 200, description = "Signed in; the cookie is set", body = Session)))]
#[tracing::instrument(name = "session.login", level = "debug", skip_all)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let ip = client_address(peer, &headers, &state.trusted_proxies);
    refuse_other_sites(&state, &headers)?;
    let now = state.now();
    let (account, signed_in, user) = match (&req.key, &req.password) {
        (Some(key), None) if req.user_id.is_none() && req.user_email.is_none() => {
            // The admin key: guessable, so asked like a password from a new address.
            crate::auth::before_admin_key(&state, ip)?;
            let signed_in = session::sign_in(
                state.storage.as_ref(),
                &state.master_key,
                key,
                state.session_ttl,
                now,
            )
            .await;
            (ADMIN_ACCOUNT.to_string(), signed_in, None)
        }
        (None, Some(password)) => {
            let account = match (&req.user_id, &req.user_email) {
                (Some(user_id), None) => user_id.clone(),
                (None, Some(email)) => email.to_lowercase(),
                _ => {
                    return Err(ApiError::invalid(
                        "user_id",
                        "name yourself by user_id or by user_email (one of them)",
                    ))
                }
            };
            let account = format!("user:{account}");
            throttled(&state, ip, Some(&account))?;
            let user = match (&req.user_id, &req.user_email) {
                (Some(user_id), _) => state.storage.user(user_id).await?,
                (None, Some(email)) => users::only_one_with_email(state.ctx(), email).await?,
                (None, None) => None,
            };
            let signed_in = session::sign_in_password(
                state.storage.as_ref(),
                user.clone(),
                password,
                state.session_ttl,
                now,
            )
            .await;
            (account, signed_in, user)
        }
        _ => {
            return Err(ApiError::invalid(
                "key",
                "send the admin key as `key`, or `user_id` (or `user_email`) and `password`",
            ))
        }
    };
    let guess = if user.is_some() || req.password.is_some() {
        Guess::SignIn
    } else {
        Guess::AdminKey
    };
    let new = match signed_in {
        Ok(new) => {
            state.throttle.signed_in(ip, &account);
            new
        }
        Err(service::Error::Unauthorized(why)) => {
            return Err(wrong(&state, guess, ip, Some(&account), &why));
        }
        Err(err) => return Err(err.into()),
    };
    let body = Session {
        expires_at: new.expires_at_text(),
        user_role: user
            .as_ref()
            .map_or_else(|| "proxy_admin".to_string(), |u| u.user_role.clone()),
        user_id: user.map(|u| u.user_id),
    };
    let set_cookie = cookie(&state, &new.token, state.session_ttl.num_seconds());
    Ok(([(header::SET_COOKIE, set_cookie)], Json(body)).into_response())
}

/// Who is calling (signed in, or by key) and what they may do: the console shows what the
/// role allows.
#[utoipa::path(get, path = "/session/me", tag = "people",
    responses((status = 200, description = "The caller", body = Me)))]
#[tracing::instrument(name = "session.me", level = "debug", skip_all)]
async fn me(Extension(actor): Extension<Actor>) -> Json<Me> {
    Json(Me {
        user_id: actor.user_id.clone(),
        user_role: actor.role.name().to_string(),
        changes_all: actor.changes_all(),
        reads_all: actor.reads_all(),
        admin_teams: actor.admin_teams.clone(),
        member_teams: actor.member_teams.clone(),
        admin_orgs: actor.admin_orgs.clone(),
    })
}

/// Invites a person: a one-time link (7 days) where they set their password; the same link
/// resets a forgotten one. A team's admin invites into that team (`team_id`), making the user
/// (`internal_user`) and the membership when new.
#[utoipa::path(post, path = "/invitation/new", tag = "people", request_body = InvitationNew,
    responses((status = 200, description = "The link, shown once", body = InvitationCreated)))]
#[tracing::instrument(name = "session.invite", level = "debug", skip_all)]
async fn invite(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<InvitationNew>,
) -> Result<Json<InvitationCreated>, ApiError> {
    let invitation = session::invite(
        state.ctx_in(&actor, &unit.0),
        req.user_id.as_deref(),
        req.user_email.as_deref(),
        req.team_id.as_deref(),
        state.now(),
    )
    .await?;
    Ok(Json(InvitationCreated {
        url: format!("{}/invite/{}", state.origins.home(), invitation.id),
        id: invitation.id,
        expires_at: service::timestamp(invitation.expires_at),
        user_id: invitation.user_id,
    }))
}

/// Sets the invited person's password (argon2id; refused when too easy to guess). The link
/// works once; their other sessions end.
#[utoipa::path(post, path = "/invitation/accept", tag = "session", security(()),
    request_body = InvitationAccept,
    responses((status = 200, description = "The password is set; sign in with it",
        body = InvitationAccepted)))]
#[tracing::instrument(name = "session.accept", level = "debug", skip_all)]
async fn accept(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<InvitationAccept>,
) -> Result<Json<InvitationAccepted>, ApiError> {
    refuse_other_sites(&state, &headers)?;
    // Guessing links is throttled like guessing passwords.
    let ip = client_address(peer, &headers, &state.trusted_proxies);
    throttled(&state, ip, None)?;
    let now = state.now();
    let facts = service::audit::RequestFacts {
        request_id: uuid::Uuid::new_v4().to_string(),
        at_ms: now.timestamp_millis(),
        actor: String::new(),
        changed_by: None,
        address: Some(ip.to_string()),
        method: "POST".to_string(),
        route: "/invitation/accept".to_string(),
    };
    match session::accept(state.storage.as_ref(), &req.id, &req.password, facts, now).await {
        Ok(user_id) => Ok(Json(InvitationAccepted { user_id })),
        Err(err @ service::Error::NotFound(_)) => {
            let _ = state.throttle.failure(Guess::SignIn, ip, None);
            Err(err.into())
        }
        Err(err) => Err(err.into()),
    }
}

/// Ends the session of the cookie sent, if any.
#[utoipa::path(post, path = "/session/logout", tag = "session", security(()),
    responses((status = 200, description = "Signed out", body = Object,
        example = json!({"signed_out": true}))))]
#[tracing::instrument(name = "session.logout", level = "debug", skip_all)]
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

/// The cookie that carries a single sign-on from its start to its way back.
const OIDC_COOKIE: &str = "gatehouse_oidc";

fn sso_unavailable(why: &str) -> ApiError {
    tracing::warn!(why, "single sign-on failed");
    ApiError::Status {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        message: "Single sign-on is unavailable now; try again, or sign in with a password."
            .to_string(),
    }
}

fn sso_not_configured() -> ApiError {
    ApiError::NotFound(
        "Single sign-on is not configured here (GATEHOUSE_OIDC_ISSUER); sign in with a password."
            .to_string(),
    )
}

/// Begins single sign-on: to the OpenID Connect provider's sign-in page.
#[utoipa::path(get, path = "/session/oidc/login", tag = "session", security(()),
    responses((status = 303, description = "To the provider's sign-in page; a short-lived cookie \
        keeps the way back")))]
#[tracing::instrument(name = "session.oidc_login", level = "debug", skip_all)]
async fn oidc_login(State(state): State<AppState>) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or_else(sso_not_configured)?;
    let started = oidc.start().await.map_err(|why| sso_unavailable(&why))?;
    let secure = if state.origins.secure { "; Secure" } else { "" };
    // Lax: the provider's redirect back is a cross-site navigation.
    let set_cookie = format!(
        "{OIDC_COOKIE}={}.{}.{}; HttpOnly; SameSite=Lax; Path=/session/oidc; Max-Age=600{secure}",
        started.state, started.verifier, started.nonce
    );
    Ok((
        axum::http::StatusCode::SEE_OTHER,
        [
            (header::LOCATION, started.url),
            (header::SET_COOKIE, set_cookie),
        ],
    )
        .into_response())
}

/// What the provider sends the browser back with.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OidcCallback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The way back from the provider: checks the state, trades the code for an ID token, finds the
/// user by the verified e-mail address, and opens the same session the sign-in form does.
#[utoipa::path(get, path = "/session/oidc/callback", tag = "session", security(()),
    params(OidcCallback),
    responses((status = 200, description = "Signed in; the page goes on to the console",
        content_type = "text/html")))]
#[tracing::instrument(name = "session.oidc_callback", level = "debug", skip_all)]
async fn oidc_callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<OidcCallback>,
) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or_else(sso_not_configured)?;
    let ip = client_address(peer, &headers, &state.trusted_proxies);
    throttled(&state, ip, None)?;
    if let Some(error) = &query.error {
        return Err(ApiError::Forbidden(format!(
            "The provider did not sign you in ({}).",
            error.chars().take(100).collect::<String>()
        )));
    }
    let refused = |message: &str| {
        let _ = state.throttle.failure(Guess::SignIn, ip, None);
        ApiError::Forbidden(message.to_string())
    };
    let kept = crate::auth::cookie(&headers, OIDC_COOKIE).and_then(|value| {
        let mut parts = value.splitn(3, '.');
        Some((parts.next()?, parts.next()?, parts.next()?))
    });
    let (Some((expected, verifier, nonce)), Some(got), Some(code)) =
        (kept, query.state.as_deref(), query.code.as_deref())
    else {
        return Err(refused(
            "This sign-in was not started here, or took too long: start it again.",
        ));
    };
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        got.as_bytes(),
    )) {
        return Err(refused(
            "This sign-in was not started here, or took too long: start it again.",
        ));
    }
    let person = oidc
        .finish(code, verifier.to_string(), nonce.to_string())
        .await
        .map_err(|why| {
            tracing::warn!(why, "single sign-on refused");
            refused("The provider's answer does not check out: start the sign-in again.")
        })?;
    if !person.email_verified {
        return Err(ApiError::Forbidden(
            "The provider has not verified your e-mail address; Gatehouse matches people by a \
             verified address only."
                .to_string(),
        ));
    }
    let email = person.email.unwrap_or_default();
    let Some(user) = users::only_one_with_email(state.ctx(), &email).await? else {
        return Err(ApiError::Forbidden(
            "No Gatehouse user has your e-mail address: ask an admin to invite you.".to_string(),
        ));
    };
    let new = session::open(
        state.storage.as_ref(),
        Some(&user.user_id),
        None,
        state.session_ttl,
        state.now(),
    )
    .await?;
    let secure = if state.origins.secure { "; Secure" } else { "" };
    let done =
        format!("{OIDC_COOKIE}=; HttpOnly; SameSite=Lax; Path=/session/oidc; Max-Age=0{secure}");
    // A page of ours moves on to the console: the Strict session cookie goes with a
    // navigation Gatehouse starts, not with the provider's redirect.
    let page = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <meta http-equiv=\"refresh\" content=\"0;url=/\"><title>Signed in</title></head>\
        <body><p><a href=\"/\">Continue to Gatehouse</a></p></body></html>";
    Ok((
        axum::response::AppendHeaders([
            (
                header::SET_COOKIE,
                cookie(&state, &new.token, state.session_ttl.num_seconds()),
            ),
            (header::SET_COOKIE, done),
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
        ]),
        page,
    )
        .into_response())
}
