//! The OpenAI-compatible proxy: `/v1/chat/completions` (streaming too), `/v1/embeddings` and
//! `/v1/models`, with and without the `/v1` prefix. Each request is checked and its maximum
//! cost reserved in memory, forwarded, priced from its usage, settled, and logged off-path.

use crate::{
    auth::bearer_token,
    error::{rate_headers, ApiError},
    extract::parse_json,
    gate::{KeyLive, Ticket},
    providers::{mock, Deployment, Upstream},
    service::{
        money::nanos_to_usd,
        proxy::{estimate, Endpoint, StreamMeter, Usage},
        secrets,
    },
    spend::{SpendEvent, SpendSink},
    state::AppState,
    storage::SpendLog,
};
use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use futures_util::{stream::BoxStream, Stream, StreamExt};
use serde_json::{json, Value};
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

/// Fields LiteLLM clients may send that address or authenticate an upstream: dropped, not
/// forwarded.
const GATEWAY_ONLY_FIELDS: &[&str] = &[
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "organization",
];

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

async fn chat(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    proxy(state, &headers, body, Endpoint::Chat)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn embeddings(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    proxy(state, &headers, body, Endpoint::Embeddings)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The caller's virtual key, from `Authorization: Bearer sk-...`.
fn virtual_key(state: &AppState, headers: &HeaderMap) -> Result<Arc<KeyLive>, ApiError> {
    let token = bearer_token(headers)?.ok_or_else(|| {
        ApiError::Unauthorized("No API key: send `Authorization: Bearer sk-...`.".to_string())
    })?;
    state
        .gate
        .key_by_hash(&secrets::sha256_hex(token))
        .ok_or_else(|| ApiError::Unauthorized("Invalid API key.".to_string()))
}

async fn models(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = virtual_key(&state, &headers)?;
    let data: Vec<Value> = state
        .gate
        .allowed_models(&key, state.models.names())
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "gatehouse"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// What is known about a request when its answer is done.
struct Outcome {
    ticket: Ticket,
    deployment: Arc<Deployment>,
    sink: SpendSink,
    request_id: String,
    started: Instant,
    ts_ms: i64,
}

impl Outcome {
    /// Charges `usage` to key and team, logs the request, and returns the headers to send.
    fn finish(self, usage: Usage, status: u16) -> HeaderMap {
        let cost = self
            .deployment
            .price
            .cost_nanos(usage.prompt_tokens, usage.completion_tokens);
        let rate = self.ticket.rate.clone();
        let key = self.ticket.key.clone();
        let settled = self.ticket.settle(cost, usage.total());
        let user_id = key.lock().user_id.clone();
        self.sink.record(SpendEvent {
            log: SpendLog {
                request_id: self.request_id,
                ts_ms: self.ts_ms,
                key_id: key.key_id.clone(),
                team_id: key.team.team_id.clone(),
                user_id,
                model: self.deployment.model_name.clone(),
                prompt_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
                completion_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
                cost,
                latency_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
                status: i64::from(status),
            },
            key,
        });
        let mut headers = rate_headers(&rate);
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        put("x-litellm-response-cost", nanos_to_usd(cost).to_string());
        put(
            "x-litellm-key-spend",
            nanos_to_usd(settled.key_spend).to_string(),
        );
        headers
    }
}

async fn proxy(
    state: AppState,
    headers: &HeaderMap,
    body: Bytes,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let key = virtual_key(&state, headers)?;
    let mut request: Value = parse_json(&body)?;
    if !request.is_object() {
        return Err(ApiError::bad_request("The body must be a JSON object."));
    }
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("model", "model is required"))?
        .to_string();
    let deployment = state.models.get(&model).cloned().ok_or_else(|| {
        ApiError::invalid(
            "model",
            format!("Model '{model}' is not served here; GET /v1/models lists the models your key may use."),
        )
    })?;
    let streaming =
        endpoint == Endpoint::Chat && request.get("stream").and_then(Value::as_bool) == Some(true);
    if streaming {
        // Ask for the usage chunk: it is what the stream is charged by.
        request["stream_options"] = json!({"include_usage": true});
    }
    let ticket = state
        .gate
        .admit(
            &key,
            &model,
            estimate(&request, body.len(), deployment.price, endpoint),
        )
        .map_err(ApiError::Refused)?;
    let outcome = Outcome {
        ticket,
        deployment: deployment.clone(),
        sink: state.spend.clone(),
        request_id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        started,
        ts_ms: state.gate.clock.now_ms(),
    };

    match &deployment.upstream {
        Upstream::Mock => {
            let created = outcome.ts_ms / 1000;
            if streaming {
                let events = mock::chat_stream(&request, &model, &outcome.request_id, created);
                let stream = futures_util::stream::iter(
                    events
                        .into_iter()
                        .map(|e| Ok::<_, std::io::Error>(Bytes::from(e))),
                );
                return Ok(metered_stream(outcome, StatusCode::OK, stream.boxed()));
            }
            let answer = match endpoint {
                Endpoint::Chat => {
                    mock::chat_completion(&request, &model, &outcome.request_id, created)
                }
                Endpoint::Embeddings => mock::embeddings(&request, &model),
            };
            let usage = Usage::from_json(&answer).unwrap_or_default();
            let headers = outcome.finish(usage, 200);
            Ok((headers, Json(answer)).into_response())
        }
        Upstream::OpenAi {
            base_url,
            api_key,
            model: upstream_model,
        } => {
            request["model"] = Value::String(upstream_model.clone());
            if let Some(fields) = request.as_object_mut() {
                // Where a request goes is the configuration's call, never the caller's.
                for field in GATEWAY_ONLY_FIELDS {
                    fields.remove(*field);
                }
            }
            let mut call = state
                .http
                .post(format!("{base_url}/{}", endpoint.path()))
                .json(&request);
            if let Some(api_key) = api_key {
                call = call.bearer_auth(api_key);
            }
            let response = match call.send().await {
                Ok(response) => response,
                Err(err) => {
                    tracing::warn!(model = %model, error = %err.without_url(), "upstream unreachable");
                    outcome.finish(Usage::default(), 502);
                    return Err(upstream_error(
                        StatusCode::BAD_GATEWAY,
                        "The model's provider could not be reached.",
                    ));
                }
            };
            let status = response.status();
            if !status.is_success() {
                let bytes = response.bytes().await.unwrap_or_default();
                outcome.finish(Usage::default(), status.as_u16());
                return Ok(upstream_failure(status, bytes));
            }
            if streaming {
                let stream = response
                    .bytes_stream()
                    .map(|chunk| chunk.map_err(std::io::Error::other))
                    .boxed();
                return Ok(metered_stream(outcome, status, stream));
            }
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(_) => {
                    outcome.finish(Usage::default(), 502);
                    return Err(upstream_error(
                        StatusCode::BAD_GATEWAY,
                        "The model's provider broke off its answer.",
                    ));
                }
            };
            let usage = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|answer| Usage::from_json(&answer))
                .unwrap_or_default();
            let mut headers = outcome.finish(usage, status.as_u16());
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok((status, headers, bytes).into_response())
        }
    }
}

fn upstream_error(status: StatusCode, message: &str) -> ApiError {
    ApiError::Status {
        status,
        message: message.to_string(),
    }
}

/// An upstream's own error: passed on when it is JSON (with 502 for its auth failures, which
/// are the gateway's configuration, not the caller's), a 502 otherwise.
fn upstream_failure(status: StatusCode, bytes: Bytes) -> Response {
    let is_json = serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v.get("error").is_some());
    if !is_json {
        return upstream_error(StatusCode::BAD_GATEWAY, "The model's provider failed.")
            .into_response();
    }
    let status = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StatusCode::BAD_GATEWAY,
        other => other,
    };
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Streams the answer through as it comes, and charges it when it ends.
fn metered_stream(
    outcome: Outcome,
    status: StatusCode,
    inner: BoxStream<'static, Result<Bytes, std::io::Error>>,
) -> Response {
    let rate = rate_headers(&outcome.ticket.rate);
    let stream = Metered {
        inner,
        meter: StreamMeter::default(),
        outcome: Some(outcome),
    };
    let mut response = (status, rate, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

struct Metered {
    inner: BoxStream<'static, Result<Bytes, std::io::Error>>,
    meter: StreamMeter,
    outcome: Option<Outcome>,
}

impl Metered {
    /// Charges the usage the stream reported or, without one, what was seen of it.
    fn charge(&mut self, status: u16) {
        if let Some(outcome) = self.outcome.take() {
            let usage = self.meter.usage.unwrap_or(Usage {
                prompt_tokens: 0,
                completion_tokens: self.meter.content_chunks,
            });
            outcome.finish(usage, status);
        }
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(bytes))) => self.meter.feed(bytes),
            Poll::Ready(Some(Err(_))) => self.charge(502),
            Poll::Ready(None) => self.charge(200),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Metered {
    /// The client went away mid-stream: charge what was streamed so far.
    fn drop(&mut self) {
        self.charge(499);
    }
}
