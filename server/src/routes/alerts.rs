//! `/alert/list`: budget alerts and their delivery.

use crate::{
    error::ApiError, extract::ApiQuery, service::access::Actor, service::alerts, state::AppState,
};
use app::types::{AlertList, AlertQuery};
use axum::{extract::State, Extension, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Budget alerts, newest first: each event (`budget_threshold`, `budget_forecast`,
/// `soft_budget`), the body sent, and its delivery to each webhook (attempts, last error,
/// next try).
#[utoipa::path(get, path = "/alert/list", tag = "audit", params(AlertQuery),
    responses((status = 200, description = "A page of alerts", body = AlertList)))]
#[tracing::instrument(name = "alerts.list", level = "debug", skip_all)]
async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> Result<Json<AlertList>, ApiError> {
    alerts::list(state.ctx_as(&actor), query)
        .await
        .map(Json)
        .map_err(ApiError::from)
}
