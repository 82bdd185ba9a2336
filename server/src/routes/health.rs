//! Liveness, for load balancers and test harnesses: no auth, no database.

use crate::state::AppState;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Whether the server answers: `{"status": "ok"}`.
#[utoipa::path(get, path = "/health", tag = "operations", security(()),
    responses((status = 200, description = "The server is up", body = Object,
        example = json!({"status": "ok"}))))]
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
