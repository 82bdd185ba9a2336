//! `/audit`: the audit log, and the middleware that writes it. Every request that changes
//! something runs in one unit of work ([`Work`]) with its audit rows: both land, or neither,
//! and memory follows only what landed.

use crate::{
    error::ApiError,
    extract::{ApiBytes, ApiQuery},
    service::{access::Actor, audit, budgets, work::Work},
    state::AppState,
    throttle::client_address,
};
use app::types::{AuditList, AuditQuery};
use axum::{
    extract::{ConnectInfo, FromRequest, MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
    Extension, Json,
};
use std::{net::SocketAddr, sync::Arc};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The audit log, newest first: one entry per target each successful change touched, with the
/// target before and after (secrets and hashes redacted). Filters: `target_type` and
/// `target_id`, `actor`, `start`/`end`; paged by `page` and `size`.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "A page of the log", body = AuditList)))]
#[tracing::instrument(name = "audit.list", level = "debug", skip_all)]
async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    audit::list(state.ctx_as(&actor), query)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Runs a changing admin request (any method but GET/HEAD/OPTIONS) and its audit rows in one
/// transaction: committed when the answer is a success and the rows are written, rolled back
/// otherwise. This instance and the fleet follow the change once it is committed.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method().is_safe() {
        return next.run(req).await;
    }
    let Some(actor) = req.extensions().get::<Actor>().cloned() else {
        return next.run(req).await;
    };
    if let Err(retry_after) = state.pace.take(&actor, state.now().timestamp_millis()) {
        return ApiError::SlowDown(retry_after).into_response();
    }
    // The body arrives before the transaction begins: a slow client holds no lock.
    let (parts, body) = req.into_parts();
    let body = match ApiBytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(ApiBytes(bytes)) => bytes,
        Err(err) => return err.into_response(),
    };
    let req = Request::from_parts(parts, axum::body::Body::from(body));
    let facts = audit::RequestFacts {
        request_id: uuid::Uuid::new_v4().to_string(),
        at_ms: state.now().timestamp_millis(),
        actor: actor.name(),
        changed_by: actor.changed_by.clone(),
        address: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|peer| client_address(peer.0, req.headers(), &state.trusted_proxies).to_string()),
        method: req.method().to_string(),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string()),
    };
    // Its own task: a client that leaves mid-change cannot cut the commit or what follows it.
    let task = tokio::spawn(change(state, req, next, facts));
    task.await.unwrap_or_else(|_| unavailable())
}

/// The unit of work a changing request runs in, for its handler ([`record`] opens it).
#[derive(Clone)]
pub struct Unit(pub Arc<Work>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Unit {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("a change outside a unit of work".to_string()))
    }
}

/// Runs one change and its audit rows in one transaction, then has this instance's gate follow
/// what it touched (as a fleet peer does) and tells the fleet.
async fn change(
    state: AppState,
    mut req: Request,
    next: Next,
    facts: audit::RequestFacts,
) -> Response {
    let work = match Work::begin(state.storage.as_ref()).await {
        Ok(work) => Arc::new(work),
        Err(err) => return ApiError::from(crate::service::Error::from(err)).into_response(),
    };
    req.extensions_mut().insert(Unit(work.clone()));
    let response = next.run(req).await;
    if !response.status().is_success() {
        return response;
    }
    let changes = work.changes(state.ctx()).await;
    if let Err(err) = work
        .storage()
        .insert_audit(&audit::rows(&facts, changes))
        .await
    {
        tracing::error!(%err, "cannot write the audit log; the change is rolled back");
        return ApiError::from(crate::service::Error::from(err)).into_response();
    }
    let Ok(work) = Arc::try_unwrap(work) else {
        return unavailable();
    };
    match work.commit().await {
        Ok(touched) => {
            for change in &touched {
                if let Err(err) = budgets::follow(state.ctx(), change).await {
                    tracing::error!(%err, ?change, "cannot read a committed change again");
                }
            }
            state.gate.publish(&touched).await;
            response
        }
        Err(err) => {
            tracing::error!(%err, "cannot commit a change");
            ApiError::from(crate::service::Error::from(err)).into_response()
        }
    }
}

fn unavailable() -> Response {
    ApiError::Internal("the change's outcome was lost".to_string()).into_response()
}
