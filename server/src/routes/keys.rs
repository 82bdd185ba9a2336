//! `/key/*`: virtual keys, issued to team members.

use crate::{
    auth::Caller,
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    service::keys,
    state::AppState,
};
use app::types::{
    GeneratedKey, KeyDelete, KeyInfo, KeyInfoQuery, KeyInfoResponse, KeyList, KeyListQuery, KeyRef,
    KeyUpdate, KeysDeleted, NewKey,
};
use axum::{extract::State, Extension, Json};
use chrono::Utc;
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
}

/// Issues a virtual key in a team: the secret is in this answer only.
#[utoipa::path(post, path = "/key/generate", tag = "keys", request_body = NewKey,
    responses((status = 200, description = "The key, with its secret", body = GeneratedKey)))]
async fn generate(
    State(db): Db,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<Json<GeneratedKey>, ApiError> {
    keys::generate(db.ctx(), req, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// A key, named by its secret or its token.
#[utoipa::path(get, path = "/key/info", tag = "keys", params(KeyInfoQuery),
    responses((status = 200, description = "The key", body = KeyInfoResponse)))]
async fn info(
    State(db): Db,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<KeyInfoQuery>,
) -> Result<Json<KeyInfoResponse>, ApiError> {
    let reference = match (q.key, caller) {
        (Some(key), _) => key,
        (None, Caller::Key { key_id, .. }) => key_id,
        (None, Caller::Admin) => {
            return Err(ApiError::from(crate::service::Error::invalid(
                "key",
                "key names the key: its secret, its token or its SHA-256",
            )))
        }
    };
    let info = keys::info(db.ctx(), &reference).await?;
    Ok(Json(KeyInfoResponse {
        key: info.token.clone(),
        info,
    }))
}

/// A page of keys, by team or user.
#[utoipa::path(get, path = "/key/list", tag = "keys", params(KeyListQuery),
    responses((status = 200, description = "The keys", body = KeyList)))]
async fn list(
    State(db): Db,
    ApiQuery(q): ApiQuery<KeyListQuery>,
) -> Result<Json<KeyList>, ApiError> {
    keys::list(db.ctx(), q)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Changes the fields present; `null` clears one.
#[utoipa::path(post, path = "/key/update", tag = "keys", request_body = KeyUpdate,
    responses((status = 200, description = "The key as changed", body = KeyInfo)))]
async fn update(
    State(db): Db,
    ApiJson(req): ApiJson<KeyUpdate>,
) -> Result<Json<KeyInfo>, ApiError> {
    keys::update(db.ctx(), req, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Revokes keys.
#[utoipa::path(post, path = "/key/delete", tag = "keys", request_body = KeyDelete,
    responses((status = 200, description = "The revoked keys", body = KeysDeleted)))]
async fn delete(
    State(db): Db,
    ApiJson(req): ApiJson<KeyDelete>,
) -> Result<Json<KeysDeleted>, ApiError> {
    let deleted_keys = keys::delete(
        db.ctx(),
        req.keys.unwrap_or_default(),
        req.key_aliases.unwrap_or_default(),
    )
    .await?;
    Ok(Json(KeysDeleted { deleted_keys }))
}

/// Blocks a key until it is unblocked.
#[utoipa::path(post, path = "/key/block", tag = "keys", request_body = KeyRef,
    responses((status = 200, description = "The key", body = KeyInfo)))]
async fn block(State(db): Db, ApiJson(req): ApiJson<KeyRef>) -> Result<Json<KeyInfo>, ApiError> {
    keys::set_blocked(db.ctx(), &req.key, true, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Unblocks a key.
#[utoipa::path(post, path = "/key/unblock", tag = "keys", request_body = KeyRef,
    responses((status = 200, description = "The key", body = KeyInfo)))]
async fn unblock(State(db): Db, ApiJson(req): ApiJson<KeyRef>) -> Result<Json<KeyInfo>, ApiError> {
    keys::set_blocked(db.ctx(), &req.key, false, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}
