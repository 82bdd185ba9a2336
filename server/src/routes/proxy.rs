//! The OpenAI-compatible proxy: `/v1/chat/completions` (streaming too), `/v1/embeddings` and
//! `/v1/models`, with and without the `/v1` prefix; and Anthropic's `/v1/messages` (streaming
//! too) and `/v1/messages/count_tokens`, translated to chat requests and back. HTTP in and
//! out; the request path itself is `service::proxy`.

use crate::{
    auth::{bearer_token, wrong},
    error::{rate_headers, ApiError},
    extract::ApiBytes,
    providers::anthropic,
    request::{Chat, Endpoint, Request},
    service::{
        proxy::{self, Meta, ProxyCtx, ProxyError, Reply},
        secrets,
    },
    state::AppState,
    throttle::{client_address, Guess},
};
use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json,
};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Chat requests may carry images and long contexts.
const MAX_PROXY_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Each `/v1/...` path is also served without its prefix, as OpenAI's clients and LiteLLM allow
/// (the document lists both).
pub const ALIASES: [(&str, &str); 3] = [
    ("/v1/chat/completions", "/chat/completions"),
    ("/v1/embeddings", "/embeddings"),
    ("/v1/models", "/models"),
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat))
        .routes(routes!(embeddings))
        .routes(routes!(models))
        .routes(routes!(messages))
        .routes(routes!(count_tokens))
        .route(ALIASES[0].1, post(chat))
        .route(ALIASES[1].1, post(embeddings))
        .route(ALIASES[2].1, get(models))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PROXY_BODY_BYTES))
}

fn ctx(state: &AppState) -> ProxyCtx<'_> {
    ProxyCtx {
        storage: &state.storage,
        gate: &state.gate,
        router: &state.router,
        http: &state.http,
        caps: state.upstream_caps,
        spend: &state.spend,
    }
}

/// OpenAI's chat completions, with a virtual key; `"stream": true` answers server-sent events.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "proxy",
    request_body(content = Object, description = "OpenAI's chat completion request"),
    responses((status = 200, description = "OpenAI's chat completion, or its stream of chunks",
        content((Object = "application/json"), (String = "text/event-stream")))))]
#[tracing::instrument(name = "proxy.chat", level = "debug", skip_all)]
async fn chat(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Response {
    forward(&state, peer, &headers, &body, Endpoint::Chat).await
}

/// OpenAI's embeddings, with a virtual key.
#[utoipa::path(post, path = "/v1/embeddings", tag = "proxy",
    request_body(content = Object, description = "OpenAI's embeddings request"),
    responses((status = 200, description = "OpenAI's embeddings answer", body = Object)))]
#[tracing::instrument(name = "proxy.embeddings", level = "debug", skip_all)]
async fn embeddings(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Response {
    forward(&state, peer, &headers, &body, Endpoint::Embeddings).await
}

/// How `/v1/messages` refuses: Anthropic's error shape.
const ANTHROPIC_ERROR: &str = "Anthropic's error: its type and message";

/// Anthropic's error body (built by `providers::anthropic::error_body`; described here).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AnthropicError {
    /// Always `error`.
    #[schema(rename = "type")]
    kind: String,
    error: AnthropicErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AnthropicErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `request_too_large`, `rate_limit_error`, `overloaded_error` or
    /// `api_error`.
    #[schema(rename = "type")]
    kind: String,
    message: String,
}

/// Anthropic's Messages API, with a virtual key in `x-api-key` (or `Authorization: Bearer`);
/// `"stream": true` answers Anthropic's server-sent events. Errors come in Anthropic's shape.
#[utoipa::path(post, path = "/v1/messages", tag = "proxy",
    request_body(content = Object, description = "Anthropic's Messages request"),
    responses((status = 200, description = "Anthropic's message, or its stream of events",
        content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = ANTHROPIC_ERROR, body = AnthropicError),
        (status = 401, description = ANTHROPIC_ERROR, body = AnthropicError),
        (status = "default", description = ANTHROPIC_ERROR, body = AnthropicError)))]
#[tracing::instrument(name = "proxy.messages", level = "debug", skip_all)]
async fn messages(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<ApiBytes, ApiError>,
) -> Response {
    let caller = match body.and_then(|body| Ok((body, Caller::anthropic(&state, peer, &headers)?)))
    {
        Ok((ApiBytes(body), caller)) => (body, caller),
        Err(err) => return err.into_anthropic(),
    };
    let (body, caller) = caller;
    let (chat, model) = match to_chat(&body) {
        Ok(translated) => translated,
        Err(err) => return err.into_anthropic(),
    };
    let reply = proxy::forward_request(ctx(&state), caller.token, chat, body.len()).await;
    match caller.outcome(&state, reply) {
        Ok(Reply::Answer { body, meta }) => {
            let answer = serde_json::from_slice::<Value>(&body).unwrap_or_default();
            let mut headers = meta_headers(&meta);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (
                headers,
                Json(anthropic::answer_from_openai(&answer, &model)),
            )
                .into_response()
        }
        Ok(Reply::Stream { chunks, meta }) => {
            let events = anthropic::FromOpenAiStream::new(&model);
            let stream = futures_util::stream::unfold(
                (chunks, Some(events)),
                |(mut chunks, events)| async move {
                    let mut events = events?;
                    let out = match chunks.recv().await {
                        Some(bytes) => {
                            let out = events.feed(&bytes);
                            (out, Some(events))
                        }
                        None => (events.end(), None),
                    };
                    Some((
                        Ok::<_, std::convert::Infallible>(Bytes::from(out.0)),
                        (chunks, out.1),
                    ))
                },
            );
            event_stream(meta, Body::from_stream(stream))
        }
        Err(err) => err.into_anthropic(),
    }
}

/// Anthropic's token count: the prompt as the gateway bounds it (an upper bound of what the
/// model counts), `{"input_tokens": n}`.
#[utoipa::path(post, path = "/v1/messages/count_tokens", tag = "proxy",
    request_body(content = Object, description = "Anthropic's token counting request"),
    responses((status = 200, description = "The prompt's tokens", body = Object,
        example = json!({"input_tokens": 14})),
        (status = 400, description = ANTHROPIC_ERROR, body = AnthropicError),
        (status = 401, description = ANTHROPIC_ERROR, body = AnthropicError),
        (status = "default", description = ANTHROPIC_ERROR, body = AnthropicError)))]
#[tracing::instrument(name = "proxy.count_tokens", level = "debug", skip_all)]
async fn count_tokens(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<ApiBytes, ApiError>,
) -> Response {
    let counted = async {
        let ApiBytes(body) = body?;
        let caller = Caller::anthropic(&state, peer, &headers)?;
        let mut request = serde_json::from_slice::<Value>(&body)
            .map_err(|err| ApiError::bad_request(format!("Invalid JSON body: {err}")))?;
        if let Some(fields) = request.as_object_mut() {
            fields.entry("max_tokens").or_insert(json!(1));
        }
        let chat = chat_of(anthropic::request_to_openai(&request))?;
        let tokens = proxy::count_tokens(ctx(&state), caller.token, chat).await;
        caller.outcome(&state, tokens)
    };
    match counted.await {
        Ok(tokens) => Json(json!({ "input_tokens": tokens })).into_response(),
        Err(err) => err.into_anthropic(),
    }
}

/// A Messages body as a chat request, and the model it named.
fn to_chat(body: &[u8]) -> Result<(Request, String), ApiError> {
    let request = serde_json::from_slice::<Value>(body)
        .map_err(|err| ApiError::bad_request(format!("Invalid JSON body: {err}")))?;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let chat = chat_of(anthropic::request_to_openai(&request))?;
    Ok((Request::Chat(chat), model))
}

/// A translated chat body, typed.
fn chat_of(translated: Result<Value, anthropic::Invalid>) -> Result<Chat, ApiError> {
    let Value::Object(fields) = translated.map_err(ApiError::bad_request)? else {
        return Err(ApiError::bad_request("The body must be a JSON object."));
    };
    Chat::from_fields(fields).map_err(|invalid| ApiError::bad_request(invalid.message))
}

/// A stream's response: its meta headers and server-sent events.
fn event_stream(meta: Meta, body: Body) -> Response {
    let mut headers = meta_headers(&meta);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (headers, body).into_response()
}

/// Who is calling, for throttling addresses and keys that keep failing to authenticate.
struct Caller<'a> {
    token: Option<&'a str>,
    ip: IpAddr,
    account: Option<&'a str>,
    /// How its failures count: a token of no virtual key's shape as a try at the admin key,
    /// as on the management routes.
    guess: Guess,
}

impl<'a> Caller<'a> {
    /// The caller, unless it has failed too often to be heard now.
    fn new(state: &AppState, peer: SocketAddr, headers: &'a HeaderMap) -> Result<Self, ApiError> {
        Self::with(state, peer, headers, bearer_token(headers)?)
    }

    /// An Anthropic client: its key in `x-api-key`, or as a bearer token.
    fn anthropic(
        state: &AppState,
        peer: SocketAddr,
        headers: &'a HeaderMap,
    ) -> Result<Self, ApiError> {
        let token = match headers.get("x-api-key") {
            Some(value) => Some(value.to_str().map_err(|_| {
                ApiError::Unauthorized("x-api-key must be a key (sk-...)".to_string())
            })?)
            .filter(|token| !token.is_empty()),
            None => bearer_token(headers)?,
        };
        Self::with(state, peer, headers, token)
    }

    fn with(
        state: &AppState,
        peer: SocketAddr,
        headers: &'a HeaderMap,
        token: Option<&'a str>,
    ) -> Result<Self, ApiError> {
        let ip = client_address(peer, headers, &state.trusted_proxies);
        let account = token.and_then(secrets::virtual_key_id);
        let guess = if token.is_some() && account.is_none() {
            Guess::AdminKey
        } else {
            Guess::Key
        };
        // A caller that failed too often is heard with any key but one looked up and found
        // nowhere lately (a valid key is never refused, one made a moment ago on another
        // instance included); those are refused before anything looks them up again.
        if let Some(token) = token {
            if state.throttle.check(guess, ip, account).is_err()
                && state.gate.surely_unknown(&secrets::sha256_hex(token))
            {
                return Err(wrong(state, guess, ip, account, "Invalid API key."));
            }
        }
        Ok(Self {
            token,
            ip,
            account,
            guess,
        })
    }

    /// Counts a presented key that is not one of ours (401, then 429); forgives one that is;
    /// counts refusals.
    fn outcome<T>(&self, state: &AppState, result: Result<T, ProxyError>) -> Result<T, ApiError> {
        if let Err(ProxyError::Denied(denial)) = &result {
            state.metrics.refused(denial, state.gate.clock.now_secs());
        }
        match result {
            Err(ProxyError::Unauthenticated(why)) if self.token.is_some() => {
                Err(wrong(state, self.guess, self.ip, self.account, why))
            }
            Err(err) => Err(ApiError::from(err)),
            Ok(answer) => {
                state.throttle.success(self.account);
                Ok(answer)
            }
        }
    }
}

#[tracing::instrument(name = "proxy.forward", level = "debug", skip_all)]
async fn forward(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: Endpoint,
) -> Response {
    let caller = match Caller::new(state, peer, headers) {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    let reply = proxy::forward(ctx(state), caller.token, body, endpoint).await;
    match caller.outcome(state, reply) {
        Ok(Reply::Answer { body, meta }) => {
            let mut headers = meta_headers(&meta);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (headers, body).into_response()
        }
        Ok(Reply::Stream { chunks, meta }) => {
            let stream = futures_util::stream::unfold(chunks, |mut chunks| async move {
                let bytes = chunks.recv().await?;
                Some((Ok::<_, std::convert::Infallible>(bytes), chunks))
            });
            event_stream(meta, Body::from_stream(stream))
        }
        Err(err) => err.into_response(),
    }
}

/// `x-ratelimit-*`, `x-litellm-response-cost`, `x-litellm-key-spend`, the deployment that
/// answered and the tries it took (`x-litellm-model-id`, `x-litellm-attempted-retries`,
/// `x-litellm-attempted-fallbacks`), and `x-gatehouse-max-tokens` when the gateway chose the
/// output limit to fit a budget.
fn meta_headers(meta: &Meta) -> HeaderMap {
    let mut headers = rate_headers(&meta.rate);
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    if let Some(cost) = meta.cost {
        put("x-litellm-response-cost", cost.usd().to_string());
    }
    if let Some(spend) = meta.key_spend {
        put("x-litellm-key-spend", spend.usd().to_string());
    }
    if let Some(limit) = meta.lowered_to {
        put("x-gatehouse-max-tokens", limit.to_string());
    }
    if let Some(id) = &meta.model_id {
        put("x-litellm-model-id", id.clone());
        put("x-litellm-attempted-retries", meta.retries.to_string());
        put("x-litellm-attempted-fallbacks", meta.fallbacks.to_string());
    }
    headers
}

/// The models the virtual key may use, as OpenAI lists models.
#[utoipa::path(get, path = "/v1/models", tag = "proxy",
    responses((status = 200, description = "OpenAI's model list", body = Object)))]
#[tracing::instrument(name = "proxy.models", level = "debug", skip_all)]
async fn models(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = Caller::new(&state, peer, &headers)?;
    let models = caller.outcome(&state, proxy::models(ctx(&state), caller.token).await)?;
    let data: Vec<Value> = models
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "gatehouse"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}
