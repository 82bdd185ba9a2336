//! `/organization/*`: LiteLLM's organizations, with its shapes and methods.

use crate::{
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    routes::audit::Unit,
    service::access::Actor,
    service::organizations,
    state::AppState,
};
use app::types::{
    NewOrganization, OrgMemberAdd, OrgMembersAdded, Organization, OrganizationDelete,
    OrganizationInfoQuery, OrganizationUpdate,
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
        .routes(routes!(member_add))
}

/// Creates an organization: a budget, limits and models over all of its teams.
#[utoipa::path(post, path = "/organization/new", tag = "organizations",
    request_body = NewOrganization,
    responses((status = 200, description = "The new organization", body = Organization)))]
#[tracing::instrument(name = "organizations.create", level = "debug", skip_all)]
async fn create(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<NewOrganization>,
) -> Result<Json<Organization>, ApiError> {
    organizations::create(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// An organization with its members and teams.
#[utoipa::path(get, path = "/organization/info", tag = "organizations",
    params(OrganizationInfoQuery),
    responses((status = 200, description = "The organization", body = Organization)))]
#[tracing::instrument(name = "organizations.info", level = "debug", skip_all)]
async fn info(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<OrganizationInfoQuery>,
) -> Result<Json<Organization>, ApiError> {
    organizations::info(db.ctx_as(&actor), &q.organization_id)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Every organization, oldest first (LiteLLM's bare list).
#[utoipa::path(get, path = "/organization/list", tag = "organizations",
    responses((status = 200, description = "The organizations", body = Vec<Organization>)))]
#[tracing::instrument(name = "organizations.list", level = "debug", skip_all)]
async fn list(
    State(db): Db,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Vec<Organization>>, ApiError> {
    organizations::list(db.ctx_as(&actor))
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Changes the fields present; `null` clears one (LiteLLM's method: PATCH).
#[utoipa::path(patch, path = "/organization/update", tag = "organizations",
    request_body = OrganizationUpdate,
    responses((status = 200, description = "The organization as changed", body = Organization)))]
#[tracing::instrument(name = "organizations.update", level = "debug", skip_all)]
async fn update(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<OrganizationUpdate>,
) -> Result<Json<Organization>, ApiError> {
    organizations::update(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Deletes the organizations, their teams and those teams' keys, all or none (LiteLLM's
/// method: DELETE).
#[utoipa::path(delete, path = "/organization/delete", tag = "organizations",
    request_body = OrganizationDelete,
    responses((status = 200, description = "The organizations deleted, as they were", body = Vec<Organization>)))]
#[tracing::instrument(name = "organizations.delete", level = "debug", skip_all)]
async fn delete(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<OrganizationDelete>,
) -> Result<Json<Vec<Organization>>, ApiError> {
    organizations::delete(db.ctx_in(&actor, &unit.0), req.organization_ids)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Adds one member or a list (`member`: `user_id` or `user_email`, and `role`); users that do
/// not exist are made.
#[utoipa::path(post, path = "/organization/member_add", tag = "organizations",
    request_body = OrgMemberAdd,
    responses((status = 200, description = "The members added", body = OrgMembersAdded)))]
#[tracing::instrument(name = "organizations.member_add", level = "debug", skip_all)]
async fn member_add(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<OrgMemberAdd>,
) -> Result<Json<OrgMembersAdded>, ApiError> {
    organizations::member_add(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}
