//! `/spend/*`: the request log and per-team daily spend.

use crate::{
    error::ApiError, extract::ApiQuery, service::access::Actor, service::spend, state::AppState,
};
use app::types::{
    DailySpend, DailySpendQuery, Refusals, RefusalsQuery, SpendLogList, SpendLogQuery,
    SpendSummary, SpendSummaryQuery,
};
use axum::{extract::State, Extension, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logs))
        .routes(routes!(daily))
        .routes(routes!(summary))
        .routes(routes!(refusals))
}

/// The request log, newest first, filtered and paged.
#[utoipa::path(get, path = "/spend/logs", tag = "spend", params(SpendLogQuery),
    responses((status = 200, description = "A page of the log", body = SpendLogList)))]
#[tracing::instrument(name = "spend.logs", level = "debug", skip_all)]
async fn logs(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<SpendLogQuery>,
) -> Result<Json<SpendLogList>, ApiError> {
    spend::logs(state.ctx_as(&actor), q)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// A team's spend per day, optionally split by model or key.
#[utoipa::path(get, path = "/spend/daily", tag = "spend", params(DailySpendQuery),
    responses((status = 200, description = "Every day of the range", body = DailySpend)))]
#[tracing::instrument(name = "spend.daily", level = "debug", skip_all)]
async fn daily(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<DailySpendQuery>,
) -> Result<Json<DailySpend>, ApiError> {
    let today = state.gate.clock.now().date_naive();
    spend::daily(state.ctx_as(&actor), q, today)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Spend per team, and the top models and keys, over a range.
#[utoipa::path(get, path = "/spend/summary", tag = "spend", params(SpendSummaryQuery),
    responses((status = 200, description = "The summary", body = SpendSummary)))]
#[tracing::instrument(name = "spend.summary", level = "debug", skip_all)]
async fn summary(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<SpendSummaryQuery>,
) -> Result<Json<SpendSummary>, ApiError> {
    let today = state.gate.clock.now().date_naive();
    spend::summary(state.ctx_as(&actor), q, today)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Refused requests per minute, level and reason.
#[utoipa::path(get, path = "/spend/refusals", tag = "spend", params(RefusalsQuery),
    responses((status = 200, description = "The refusals", body = Refusals)))]
#[tracing::instrument(name = "spend.refusals", level = "debug", skip_all)]
async fn refusals(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<RefusalsQuery>,
) -> Result<Json<Refusals>, ApiError> {
    spend::refusals(state.ctx_as(&actor), q, state.gate.clock.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}
