//! `/audit`: the audit log, and the middleware that writes it. Every request that changes
//! something runs in one database transaction with its audit rows: both land, or neither.

use crate::{
    error::ApiError,
    extract::{ApiBytes, ApiQuery},
    notices,
    service::{access::Actor, audit, budgets},
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
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The audit log, newest first: one entry per target each successful change touched, with the
/// target before and after (secrets and hashes redacted). Filters: `target_type` and
/// `target_id`, `actor`, `start`/`end`; paged by `page` and `size`.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "A page of the log", body = AuditList)))]
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

/// What one audited request leaves behind for the code after its transaction.
type Outcome = Arc<Mutex<Option<(Response, Vec<notices::Change>)>>>;

/// Runs a changing admin request (any method but GET/HEAD/OPTIONS) and its audit rows in one
/// transaction: committed when the answer is a success and the rows are written, rolled back
/// otherwise. The fleet hears of the change once it is committed.
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
    // Its own task: a client that leaves mid-change cannot cut the transaction, the fleet's
    // notice or the undo short.
    let task = tokio::spawn(change(state, req, next, facts));
    task.await.unwrap_or_else(|_| unavailable())
}

/// Runs one change and its audit rows in one transaction (one change at a time here).
async fn change(state: AppState, req: Request, next: Next, facts: audit::RequestFacts) -> Response {
    let Ok(_turn) = state.changes.clone().acquire_owned().await else {
        return unavailable();
    };
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let work = {
        let (outcome, storage, state) = (outcome.clone(), state.storage.clone(), state.clone());
        async move {
            let ((response, changes), held) =
                notices::deferring(audit::collect(next.run(req))).await;
            let mut response = response;
            let mut keep = response.status().is_success();
            if keep {
                let mut all = before_and_after(&state, &held).await;
                all.extend(changes);
                if let Err(err) = storage.insert_audit(&audit::rows(&facts, all)).await {
                    tracing::error!(%err, "cannot write the audit log; the change is undone");
                    keep = false;
                    response = ApiError::from(crate::service::Error::from(err)).into_response();
                }
            }
            if let Ok(mut slot) = outcome.lock() {
                *slot = Some((response, held));
            }
            keep
        }
    };
    let committed = state.storage.atomically(Box::pin(work)).await;
    let (response, held) = outcome
        .lock()
        .ok()
        .and_then(|mut slot| slot.take())
        .unwrap_or_else(|| (unavailable(), Vec::new()));
    match committed {
        Ok(true) => {
            state.gate.publish(&held).await;
            response
        }
        Ok(false) => {
            undo(&state, &held).await;
            response
        }
        Err(err) => {
            tracing::error!(%err, "cannot commit a change");
            undo(&state, &held).await;
            ApiError::from(crate::service::Error::from(err)).into_response()
        }
    }
}

/// Each level the request changed, before (as committed, read outside the transaction) and
/// after (inside it).
async fn before_and_after(state: &AppState, held: &[notices::Change]) -> Vec<audit::Changed> {
    let mut seen: Vec<&notices::Change> = Vec::with_capacity(held.len());
    let mut changes = Vec::with_capacity(held.len());
    for change in held {
        if seen.contains(&change) {
            continue;
        }
        seen.push(change);
        let after = audit::view(state.ctx(), change.owner, &change.id).await;
        let before = {
            let (state, change) = (state.clone(), change.clone());
            // Another task: another connection, outside the transaction.
            tokio::spawn(async move { audit::view(state.ctx(), change.owner, &change.id).await })
                .await
                .ok()
                .flatten()
        };
        changes.push(audit::Changed {
            target_type: change.owner.name(),
            target_id: change.id.clone(),
            before,
            after,
        });
    }
    changes
}

fn unavailable() -> Response {
    ApiError::Internal("the change's outcome was lost".to_string()).into_response()
}

/// After a rollback: what this instance's memory took from the undone change is read again
/// from the database.
async fn undo(state: &AppState, held: &[notices::Change]) {
    for change in held {
        if let Err(err) = budgets::reload(state.ctx(), change.owner, &change.id).await {
            tracing::error!(%err, ?change, "cannot reload after a rollback");
        }
    }
}
