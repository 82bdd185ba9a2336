//! The HTTP surface: one module per resource, merged here.

mod health;
mod keys;
mod session;
mod teams;

use crate::{auth::Admin, error::ApiError, state::AppState};
use axum::{extract::DefaultBodyLimit, middleware, Router};

/// Admin request bodies are small JSON documents.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Path prefixes of the REST API: unknown paths under them get a JSON 404, not the console's page.
pub const API_PREFIXES: &[&str] = &["/team/", "/key/", "/session/", "/health", "/v1/"];

pub fn router(state: &AppState) -> Router<AppState> {
    let admin = Router::new()
        .merge(teams::router())
        .merge(keys::router())
        .route_layer(middleware::from_extractor_with_state::<Admin, AppState>(
            state.clone(),
        ));
    Router::new()
        .merge(admin)
        .merge(session::router())
        .merge(health::router())
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn method_not_allowed() -> ApiError {
    ApiError::Status {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        message: "Method not allowed on this path; see the README for each endpoint's method."
            .to_string(),
    }
}
