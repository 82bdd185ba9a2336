//! Liveness, for load balancers and test harnesses: no auth, no database. And the deployments'
//! health, for operators.

use crate::state::AppState;
use axum::{extract::State, Json};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Whether the server answers: `{"status": "ok"}`.
#[utoipa::path(get, path = "/health", tag = "operations", security(()),
    responses((status = 200, description = "The server is up", body = Object,
        example = json!({"status": "ok"}))))]
#[tracing::instrument(name = "health.health", level = "debug", skip_all)]
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `/health/deployments`: mounted with the admin routes.
pub fn deployments_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(deployments))
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Each deployment as this instance sees it: healthy or cooling down (and until when, the
/// fleet's cooldowns included), requests in flight, average latency, its last errors.
#[utoipa::path(get, path = "/health/deployments", tag = "operations",
    responses((status = 200, description = "Every deployment's state", body = Object,
        example = json!({"healthy_count": 1, "unhealthy_count": 0, "deployments": [{
            "model_name": "gpt-4o", "model_id": "a1b2", "model": "gpt-4o",
            "api_base": "https://api.openai.com/v1", "status": "healthy",
            "cooling_down_until": null, "in_flight": 0, "latency_ms": 412.5,
            "weight": null, "rpm": null, "tpm": null, "recent_errors": []}]}))))]
#[tracing::instrument(name = "health.deployments", level = "debug", skip_all)]
async fn deployments(State(state): State<AppState>) -> Json<Value> {
    let states = state.router.states();
    let unhealthy = states
        .iter()
        .filter(|s| s.cooling_until_ms.is_some())
        .count();
    let deployments: Vec<Value> = states
        .iter()
        .map(|s| {
            let d = &s.deployment;
            json!({
                "model_name": d.model_name,
                "model_id": d.id,
                "model": d.upstream_model(),
                "api_base": d.api_base(),
                "status": if s.cooling_until_ms.is_some() { "cooling_down" } else { "healthy" },
                "cooling_down_until": s.cooling_until_ms.map(at),
                "in_flight": s.in_flight,
                "latency_ms": s.latency_ms,
                "weight": d.weight,
                "rpm": d.rpm,
                "tpm": d.tpm,
                "recent_errors": s.recent_errors.iter().map(|e| json!({
                    "at": at(e.at_ms),
                    "status": e.status,
                    "message": e.message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "healthy_count": states.len() - unhealthy,
        "unhealthy_count": unhealthy,
        "deployments": deployments,
    }))
}
