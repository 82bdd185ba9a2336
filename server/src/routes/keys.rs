//! `/key/*`: virtual keys, issued to team members.

use crate::{
    error::ApiError,
    extract::{ApiBytes, ApiJson, ApiQuery},
    routes::audit::Unit,
    service::access::Actor,
    service::keys,
    state::AppState,
};
use app::types::{
    GeneratedKey, KeyDelete, KeyInfo, KeyInfoQuery, KeyInfoResponse, KeyList, KeyListQuery, KeyRef,
    KeyRegenerate, KeyUpdate, KeysDeleted, NewKey,
};
use axum::{extract::State, Extension, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

type Db = State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(generate))
        .routes(routes!(info))
        .routes(routes!(list))
        .routes(routes!(update))
        .routes(routes!(delete))
        .routes(routes!(block))
        .routes(routes!(unblock))
        .routes(routes!(regenerate))
        .routes(routes!(regenerate_named))
}

/// A new secret for a key (LiteLLM's key rotation): its id, budget, limits and spend stay; the
/// old secret keeps working for `grace_period` (e.g. `"24h"`; none: it stops at once).
#[utoipa::path(post, path = "/key/regenerate", tag = "keys", request_body = KeyRegenerate,
    responses((status = 200, description = "The key, with its new secret", body = GeneratedKey)))]
#[tracing::instrument(name = "keys.regenerate", level = "debug", skip_all)]
async fn regenerate(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<KeyRegenerate>,
) -> Result<Json<GeneratedKey>, ApiError> {
    let Some(reference) = req.key else {
        return Err(ApiError::invalid(
            "key",
            "key names the key to rotate: its token (or secret, or SHA-256)",
        ));
    };
    keys::regenerate(
        db.ctx_in(&actor, &unit.0),
        &reference,
        req.grace_period.as_deref(),
        db.now(),
    )
    .await
    .map(Json)
    .map_err(ApiError::from)
}

/// LiteLLM's form: the key named in the path by its token (or SHA-256). A secret is refused
/// there: paths end up in logs and proxies' histories.
#[utoipa::path(post, path = "/key/{key}/regenerate", tag = "keys",
    params(("key" = String, Path, description = "The key's token (or its SHA-256)")),
    request_body(content = Option<KeyRegenerate>),
    responses((status = 200, description = "The key, with its new secret", body = GeneratedKey)))]
#[tracing::instrument(name = "keys.regenerate_named", level = "debug", skip_all)]
async fn regenerate_named(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    axum::extract::Path(key): axum::extract::Path<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<GeneratedKey>, ApiError> {
    if crate::service::secrets::is_virtual_key(&key) {
        return Err(ApiError::invalid(
            "key",
            "name the key by its token in the path, never by its secret (a path is logged); \
             or send the secret in the body of POST /key/regenerate",
        ));
    }
    // LiteLLM's callers often send no body here.
    let req: KeyRegenerate = if body.iter().all(u8::is_ascii_whitespace) {
        KeyRegenerate::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    if req.key.as_ref().is_some_and(|named| *named != key) {
        return Err(ApiError::invalid(
            "key",
            "the body's key must be the key named in the path",
        ));
    }
    keys::regenerate(
        db.ctx_in(&actor, &unit.0),
        &key,
        req.grace_period.as_deref(),
        db.now(),
    )
    .await
    .map(Json)
    .map_err(ApiError::from)
}

/// Issues a virtual key in a team: the secret is in this answer only.
#[utoipa::path(post, path = "/key/generate", tag = "keys", request_body = NewKey,
    responses((status = 200, description = "The key, with its secret", body = GeneratedKey)))]
#[tracing::instrument(name = "keys.generate", level = "debug", skip_all)]
async fn generate(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<Json<GeneratedKey>, ApiError> {
    keys::generate(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// A key, named by its secret or its token.
#[utoipa::path(get, path = "/key/info", tag = "keys", params(KeyInfoQuery),
    responses((status = 200, description = "The key", body = KeyInfoResponse)))]
#[tracing::instrument(name = "keys.info", level = "debug", skip_all)]
async fn info(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<KeyInfoQuery>,
) -> Result<Json<KeyInfoResponse>, ApiError> {
    // Without `key`: the key that is calling.
    let Some(reference) = q.key.or_else(|| actor.key_id.clone()) else {
        return Err(ApiError::from(crate::service::Error::invalid(
            "key",
            "key names the key: its secret, its token or its SHA-256",
        )));
    };
    let info = keys::info(db.ctx_as(&actor), &reference).await?;
    Ok(Json(KeyInfoResponse {
        key: info.token.clone(),
        info,
    }))
}

/// A page of keys, by team or user.
#[utoipa::path(get, path = "/key/list", tag = "keys", params(KeyListQuery),
    responses((status = 200, description = "The keys", body = KeyList)))]
#[tracing::instrument(name = "keys.list", level = "debug", skip_all)]
async fn list(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<KeyListQuery>,
) -> Result<Json<KeyList>, ApiError> {
    keys::list(db.ctx_as(&actor), q)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Changes the fields present; `null` clears one.
#[utoipa::path(post, path = "/key/update", tag = "keys", request_body = KeyUpdate,
    responses((status = 200, description = "The key as changed", body = KeyInfo)))]
#[tracing::instrument(name = "keys.update", level = "debug", skip_all)]
async fn update(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<KeyUpdate>,
) -> Result<Json<KeyInfo>, ApiError> {
    keys::update(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Revokes keys.
#[utoipa::path(post, path = "/key/delete", tag = "keys", request_body = KeyDelete,
    responses((status = 200, description = "The revoked keys", body = KeysDeleted)))]
#[tracing::instrument(name = "keys.delete", level = "debug", skip_all)]
async fn delete(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<KeyDelete>,
) -> Result<Json<KeysDeleted>, ApiError> {
    let deleted_keys = keys::delete(
        db.ctx_in(&actor, &unit.0),
        req.keys.unwrap_or_default(),
        req.key_aliases.unwrap_or_default(),
    )
    .await?;
    Ok(Json(KeysDeleted { deleted_keys }))
}

/// Blocks a key until it is unblocked.
#[utoipa::path(post, path = "/key/block", tag = "keys", request_body = KeyRef,
    responses((status = 200, description = "The key", body = KeyInfo)))]
#[tracing::instrument(name = "keys.block", level = "debug", skip_all)]
async fn block(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<KeyRef>,
) -> Result<Json<KeyInfo>, ApiError> {
    keys::set_blocked(db.ctx_in(&actor, &unit.0), &req.key, true, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Unblocks a key.
#[utoipa::path(post, path = "/key/unblock", tag = "keys", request_body = KeyRef,
    responses((status = 200, description = "The key", body = KeyInfo)))]
#[tracing::instrument(name = "keys.unblock", level = "debug", skip_all)]
async fn unblock(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<KeyRef>,
) -> Result<Json<KeyInfo>, ApiError> {
    keys::set_blocked(db.ctx_in(&actor, &unit.0), &req.key, false, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}
