//! `/user/*`: LiteLLM's users, with their shapes.

use crate::{
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    routes::audit::Unit,
    service::access::Actor,
    service::users,
    state::AppState,
};
use app::types::{
    NewUser, UserCreated, UserDelete, UserInfo, UserInfoQuery, UserList, UserListQuery, UserUpdate,
    UserUpdated,
};
use axum::{extract::State, Extension, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

type Db = State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(info))
        .routes(routes!(list))
        .routes(routes!(update))
        .routes(routes!(delete))
}

/// Creates a user and, unless `auto_create_key` is false, issues the user a key in the team
/// named by `teams` (the secret is in this answer only).
#[utoipa::path(post, path = "/user/new", tag = "users", request_body = NewUser,
    responses((status = 200, description = "The new user, with the key's secret", body = UserCreated)))]
#[tracing::instrument(name = "users.create", level = "debug", skip_all)]
async fn create(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<Json<UserCreated>, ApiError> {
    users::create(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// A user with their keys and teams.
#[utoipa::path(get, path = "/user/info", tag = "users", params(UserInfoQuery),
    responses((status = 200, description = "The user", body = UserInfo)))]
#[tracing::instrument(name = "users.info", level = "debug", skip_all)]
async fn info(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<UserInfoQuery>,
) -> Result<Json<UserInfo>, ApiError> {
    // Without `user_id`: the user who is calling.
    let Some(user_id) = q.user_id.or_else(|| actor.user_id.clone()) else {
        return Err(ApiError::from(crate::service::Error::invalid(
            "user_id",
            "user_id names the user",
        )));
    };
    users::info(db.ctx_as(&actor), &user_id)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// A page of users (`page`, `page_size`), filtered by `role`, `user_ids`, `user_email`.
#[utoipa::path(get, path = "/user/list", tag = "users", params(UserListQuery),
    responses((status = 200, description = "The users", body = UserList)))]
#[tracing::instrument(name = "users.list", level = "debug", skip_all)]
async fn list(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<UserListQuery>,
) -> Result<Json<UserList>, ApiError> {
    users::list(db.ctx_as(&actor), q)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Changes the fields present; `null` clears one.
#[utoipa::path(post, path = "/user/update", tag = "users", request_body = UserUpdate,
    responses((status = 200, description = "The user as changed", body = UserUpdated)))]
#[tracing::instrument(name = "users.update", level = "debug", skip_all)]
async fn update(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<UserUpdate>,
) -> Result<Json<UserUpdated>, ApiError> {
    users::update(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Deletes the users and their keys, all or none; answers how many users (LiteLLM's shape).
#[utoipa::path(post, path = "/user/delete", tag = "users", request_body = UserDelete,
    responses((status = 200, description = "How many users were deleted", body = u64)))]
#[tracing::instrument(name = "users.delete", level = "debug", skip_all)]
async fn delete(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<UserDelete>,
) -> Result<Json<u64>, ApiError> {
    users::delete(db.ctx_in(&actor, &unit.0), req.user_ids)
        .await
        .map(Json)
        .map_err(ApiError::from)
}
