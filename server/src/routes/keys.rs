//! `/key/*`: virtual keys, issued to team members.

use crate::{
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    service::keys,
    state::AppState,
};
use app::types::{
    GeneratedKey, KeyDelete, KeyInfo, KeyInfoResponse, KeyList, KeyListQuery, KeyRef, KeyUpdate,
    KeysDeleted, NewKey,
};
use axum::{
    extract::State,
    routing::{get, post},
    Json, Router,
};
use chrono::Utc;

type Db = State<AppState>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/key/generate", post(generate))
        .route("/key/info", get(info))
        .route("/key/list", get(list))
        .route("/key/update", post(update))
        .route("/key/delete", post(delete))
        .route("/key/block", post(block))
        .route("/key/unblock", post(unblock))
}

async fn generate(
    State(db): Db,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<Json<GeneratedKey>, ApiError> {
    keys::generate(db.ctx(), req, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn info(
    State(db): Db,
    ApiQuery(q): ApiQuery<KeyRef>,
) -> Result<Json<KeyInfoResponse>, ApiError> {
    let info = keys::info(db.ctx(), &q.key).await?;
    Ok(Json(KeyInfoResponse {
        key: info.token.clone(),
        info,
    }))
}

async fn list(
    State(db): Db,
    ApiQuery(q): ApiQuery<KeyListQuery>,
) -> Result<Json<KeyList>, ApiError> {
    keys::list(db.ctx(), q)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn update(
    State(db): Db,
    ApiJson(req): ApiJson<KeyUpdate>,
) -> Result<Json<KeyInfo>, ApiError> {
    keys::update(db.ctx(), req, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn delete(
    State(db): Db,
    ApiJson(req): ApiJson<KeyDelete>,
) -> Result<Json<KeysDeleted>, ApiError> {
    let deleted_keys = keys::delete(db.ctx(), req.keys).await?;
    Ok(Json(KeysDeleted { deleted_keys }))
}

async fn block(State(db): Db, ApiJson(req): ApiJson<KeyRef>) -> Result<Json<KeyInfo>, ApiError> {
    keys::set_blocked(db.ctx(), &req.key, true, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn unblock(State(db): Db, ApiJson(req): ApiJson<KeyRef>) -> Result<Json<KeyInfo>, ApiError> {
    keys::set_blocked(db.ctx(), &req.key, false, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}
