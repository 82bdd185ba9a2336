//! `GET /metrics`: Prometheus' text format, for the admin, a signed-in session or the holder of
//! `GATEHOUSE_METRICS_TOKEN`.

use crate::{
    auth::MetricsReader,
    error::ApiError,
    gate::admission::LevelKind,
    metrics::{BudgetGauge, Budgets},
    state::AppState,
    storage::{BudgetRow, KeyFilter},
};
use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus metrics, for the admin or the holder of `GATEHOUSE_METRICS_TOKEN`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus' text format", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")))]
#[tracing::instrument(name = "metrics.metrics", level = "debug", skip_all)]
async fn metrics(
    _reader: MetricsReader,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let budgets = budgets(&state).await?;
    let text = state.metrics.render(&budgets);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// One budget as admission sees it now: in a fleet, the shared figures.
struct Owner<'a> {
    kind: LevelKind,
    id: &'a str,
    alias: &'a Option<String>,
    team: &'a str,
    budget: &'a BudgetRow,
}

async fn gauge(state: &AppState, owner: Owner<'_>, now: i64) -> BudgetGauge {
    let live = state.gate.budget(owner.kind, owner.id).await;
    let spend = live.unwrap_or(owner.budget.spend);
    let reset_at = owner.budget.budget_reset_at;
    BudgetGauge {
        id: owner.id.to_string(),
        alias: owner.alias.clone(),
        team: owner.team.to_string(),
        spend,
        max_budget: owner.budget.max_budget,
        resets_in: reset_at.map(|at| at.saturating_sub(now).max(0)),
    }
}

/// Every team's budget (and every key's, when per-key series are on), with the live spend
/// admission sees: in a fleet, the same on every instance.
async fn budgets(state: &AppState) -> Result<Budgets, ApiError> {
    let now = state.now().timestamp();
    let mut budgets = Budgets::default();
    for t in state.storage.teams().await? {
        let owner = Owner {
            kind: LevelKind::Team,
            id: &t.team_id,
            alias: &t.team_alias,
            team: &t.team_id,
            budget: &t.budget,
        };
        budgets.teams.push(gauge(state, owner, now).await);
    }
    if state.metrics.per_key() {
        let (keys, _) = state
            .storage
            .keys(&KeyFilter::default(), 0, i64::MAX as u64)
            .await?;
        for k in keys {
            let owner = Owner {
                kind: LevelKind::Key,
                id: &k.key_id,
                alias: &k.key_alias,
                team: &k.team_id,
                budget: &k.budget,
            };
            budgets.keys.push(gauge(state, owner, now).await);
        }
    }
    Ok(budgets)
}
