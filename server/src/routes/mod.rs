//! The HTTP surface: one module per resource, merged here.

mod alerts;
mod audit;
mod health;
mod keys;
mod metrics;
mod models;
pub mod openapi;
mod organizations;
mod proxy;
mod session;
mod spend;
mod teams;
mod users;

use crate::{auth::Admin, error::ApiError, state::AppState};
use axum::{extract::DefaultBodyLimit, middleware, Router};
use utoipa_axum::router::OpenApiRouter;

/// Admin request bodies are small JSON documents.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Path prefixes of the REST API: unknown paths under them get a JSON 404, not the console's page.
pub const API_PREFIXES: &[&str] = &[
    "/team/",
    "/key/",
    "/user/",
    "/organization/",
    "/spend/",
    "/session/",
    "/invitation/",
    "/audit",
    "/alert/",
    "/health",
    "/v1/",
    "/chat/",
    "/embeddings",
    "/models",
    "/metrics",
    "/openapi.json",
    "/docs",
];

/// Paths of the OpenAI-compatible proxy.
pub fn is_proxy_path(path: &str) -> bool {
    path.starts_with("/v1/") || matches!(path, "/chat/completions" | "/embeddings" | "/models")
}

/// The API's routes and their OpenAPI document, built together from the handlers'
/// annotations: a route cannot be mounted without being described.
pub fn router(state: &AppState) -> Router<AppState> {
    let admin = OpenApiRouter::new()
        .merge(teams::router())
        .merge(keys::router())
        .merge(users::router())
        .merge(organizations::router())
        .merge(spend::router())
        .merge(models::router())
        .merge(session::signed_in_router())
        .merge(audit::router())
        .merge(alerts::router())
        .merge(health::deployments_router())
        // Layers run outermost last-added first: the caller is known before the change runs.
        .route_layer(middleware::from_fn_with_state(state.clone(), audit::record))
        .route_layer(middleware::from_extractor_with_state::<Admin, AppState>(
            state.clone(),
        ));
    let (routes, document) = OpenApiRouter::with_openapi(openapi::base())
        .merge(admin)
        .merge(session::router())
        .merge(health::router())
        .merge(metrics::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(proxy::router())
        .split_for_parts();
    routes
        .merge(openapi::serve(openapi::finish(document, &proxy::ALIASES)))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed() -> ApiError {
    ApiError::Status {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        message: "Method not allowed on this path; see the README for each endpoint's method."
            .to_string(),
    }
}
