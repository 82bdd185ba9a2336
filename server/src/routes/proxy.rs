//! The OpenAI-compatible proxy: `/v1/chat/completions` (streaming too), `/v1/embeddings` and
//! `/v1/models`, with and without the `/v1` prefix. HTTP in and out; the request path itself
//! is `service::proxy`.

use crate::{
    auth::bearer_token,
    error::{rate_headers, ApiError},
    providers::call::Endpoint,
    service::{
        money::nanos_to_usd,
        proxy::{self, Meta, ProxyCtx, Reply},
    },
    state::AppState,
};
use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

/// Chat requests may carry images and long contexts.
const MAX_PROXY_BODY_BYTES: usize = 32 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PROXY_BODY_BYTES))
}

fn ctx(state: &AppState) -> ProxyCtx<'_> {
    ProxyCtx {
        gate: &state.gate,
        models: &state.models,
        http: &state.http,
        spend: &state.spend,
    }
}

async fn chat(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    forward(&state, &headers, &body, Endpoint::Chat).await
}

async fn embeddings(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    forward(&state, &headers, &body, Endpoint::Embeddings).await
}

async fn forward(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: Endpoint,
) -> Response {
    let token = match bearer_token(headers) {
        Ok(token) => token,
        Err(err) => return err.into_response(),
    };
    match proxy::forward(ctx(state), token, body, endpoint).await {
        Ok(Reply::Answer { body, meta }) => {
            let mut headers = meta_headers(&meta);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (headers, body).into_response()
        }
        Ok(Reply::Stream { chunks, meta }) => {
            let mut headers = meta_headers(&meta);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let stream = futures_util::stream::unfold(chunks, |mut chunks| async move {
                let bytes = chunks.recv().await?;
                Some((Ok::<_, std::convert::Infallible>(bytes), chunks))
            });
            (headers, Body::from_stream(stream)).into_response()
        }
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// `x-ratelimit-*`, `x-litellm-response-cost`, `x-litellm-key-spend`, and
/// `x-gatehouse-max-tokens` when the gateway chose the output limit to fit a budget.
fn meta_headers(meta: &Meta) -> HeaderMap {
    let mut headers = rate_headers(&meta.rate);
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    if let Some(cost) = meta.cost {
        put("x-litellm-response-cost", nanos_to_usd(cost).to_string());
    }
    if let Some(spend) = meta.key_spend {
        put("x-litellm-key-spend", nanos_to_usd(spend).to_string());
    }
    if let Some(limit) = meta.lowered_to {
        put("x-gatehouse-max-tokens", limit.to_string());
    }
    headers
}

async fn models(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = bearer_token(&headers)?;
    let data: Vec<Value> = proxy::models(ctx(&state), token)?
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "gatehouse"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}
