//! `/spend/*`: the request log and per-team daily spend.

use crate::{error::ApiError, extract::ApiQuery, service::spend, state::AppState};
use app::types::{
    DailySpend, DailySpendQuery, Refusals, RefusalsQuery, SpendLogList, SpendLogQuery,
    SpendSummary, SpendSummaryQuery,
};
use axum::{extract::State, routing::get, Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/spend/logs", get(logs))
        .route("/spend/daily", get(daily))
        .route("/spend/summary", get(summary))
        .route("/spend/refusals", get(refusals))
}

async fn logs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SpendLogQuery>,
) -> Result<Json<SpendLogList>, ApiError> {
    spend::logs(state.ctx(), q)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn daily(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DailySpendQuery>,
) -> Result<Json<DailySpend>, ApiError> {
    let today = state.gate.clock.now().date_naive();
    spend::daily(state.ctx(), q, today)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn summary(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SpendSummaryQuery>,
) -> Result<Json<SpendSummary>, ApiError> {
    let today = state.gate.clock.now().date_naive();
    spend::summary(state.ctx(), q, today)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn refusals(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RefusalsQuery>,
) -> Result<Json<Refusals>, ApiError> {
    spend::refusals(state.ctx(), q, state.gate.clock.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}
