//! The mock provider: deterministic OpenAI-shaped answers with usage computed from the input.
//! Served in-process for `mock/...` models, and over real HTTP by [`router`] (the
//! `mock-upstream` binary and the tests' upstream), which also answers Anthropic's
//! `/v1/messages` as Anthropic does (a tool call when tools are offered; usage with cache
//! reads and writes; model `overloaded` fails its stream with an `error` event).

use super::{
    adapter::{Entry, Provider, Try},
    call::{Answer, UpstreamError},
};
use crate::request::Request;
use async_trait::async_trait;
use axum::{
    body::Bytes,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;

const REPLY: &str = "This is a mock reply from Gatehouse.";

/// The in-process mock: answers at once, as the model its callers name.
#[derive(Debug)]
pub struct Mock {
    model: String,
}

impl Mock {
    /// The mock serving `model`.
    pub fn serving(model: &str) -> Arc<dyn Provider> {
        Arc::new(Self {
            model: model.to_string(),
        })
    }
}

pub fn configure(entry: &Entry<'_>) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Mock::serving(entry.model_name))
}

#[async_trait]
impl Provider for Mock {
    fn kind(&self) -> &'static str {
        "mock"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn api_base(&self) -> Option<&str> {
        None
    }

    async fn send(&self, request: &Request, at: &Try<'_>) -> Result<Answer, UpstreamError> {
        let body = request.to_json();
        let model = &self.model;
        if request.streaming() {
            let events = chat_stream(&body, model, at.request_id, at.created);
            return Ok(Answer::Stream(
                futures_util::stream::iter(events.into_iter().map(|e| Ok(Bytes::from(e)))).boxed(),
            ));
        }
        let answer = match request {
            Request::Chat(_) => chat_completion(&body, model, at.request_id, at.created),
            Request::Embeddings(_) => embeddings(&body, model),
        };
        Ok(Answer::Json(Bytes::from(answer.to_string())))
    }
}

/// Words in the messages' text, plus 3 per message: deterministic, and close to real counts.
pub fn prompt_tokens(body: &Value) -> u64 {
    let words = |text: &str| text.split_whitespace().count() as u64;
    let content_words = |content: &Value| match content {
        Value::String(text) => words(text),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(words)
            .sum(),
        _ => 0,
    };
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        return messages
            .iter()
            .map(|m| 3 + m.get("content").map_or(0, content_words))
            .sum::<u64>()
            .max(1);
    }
    match body.get("input") {
        Some(Value::String(text)) => words(text).max(1),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map_or(1, words))
            .sum::<u64>()
            .max(1),
        _ => 1,
    }
}

/// The reply's words, cut to `max_tokens` (or `max_completion_tokens`) when the caller set it.
fn reply_words(body: &Value) -> Vec<&'static str> {
    let limit = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    REPLY
        .split(' ')
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

pub fn chat_completion(body: &Value, model: &str, id: &str, created: i64) -> Value {
    let words = reply_words(body);
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": words.join(" ")},
            "finish_reason": "stop"
        }],
        "usage": usage(prompt_tokens(body), words.len() as u64),
    })
}

/// The SSE events of a streamed answer: one chunk per word, a final chunk, the usage chunk
/// when `stream_options.include_usage` asks for it, then `[DONE]`.
pub fn chat_stream(body: &Value, model: &str, id: &str, created: i64) -> Vec<String> {
    let words = reply_words(body);
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        })
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for (i, word) in words.iter().enumerate() {
        let text = if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        };
        events.push(chunk(json!({"content": text}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if include_usage {
        events.push(json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage(prompt_tokens(body), words.len() as u64)
        }));
    }
    let mut lines: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    lines.push("data: [DONE]\n\n".to_string());
    lines
}

pub fn embeddings(body: &Value, model: &str) -> Value {
    let count = match body.get("input") {
        Some(Value::Array(items)) => items.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..count)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.0, 0.5, 1.0]}))
        .collect();
    let prompt = prompt_tokens(body);
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    })
}

/// The mock as an OpenAI-compatible HTTP server.
pub fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(http_chat))
        .route("/v1/embeddings", post(http_embeddings))
        .route("/v1/messages", post(http_messages))
        .route(
            "/v1/models",
            get(|| async { Json(json!({"object": "list", "data": []})) }),
        )
}

/// Parses a body as OpenAI does, refusing arguments it does not know that gateways must not
/// forward.
fn parse(bytes: &Bytes) -> Result<Value, Box<Response>> {
    let refuse = |message: String| {
        let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
        Box::new((StatusCode::BAD_REQUEST, Json(body)).into_response())
    };
    let body: Value = serde_json::from_slice(bytes).map_err(|err| refuse(err.to_string()))?;
    let forbidden = ["api_base", "base_url", "api_key"];
    if let Some(field) = forbidden.iter().find(|f| body.get(**f).is_some()) {
        return Err(refuse(format!(
            "Unrecognized request argument supplied: {field}"
        )));
    }
    Ok(body)
}

async fn http_chat(bytes: Bytes) -> Response {
    let body = match parse(&bytes) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_string();
    if body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let events = chat_stream(&body, &model, "chatcmpl-mock", 0);
        let stream = futures_util::stream::iter(
            events
                .into_iter()
                .map(|event| Ok::<_, std::convert::Infallible>(Bytes::from(event))),
        );
        return (
            [(header::CONTENT_TYPE, "text/event-stream")],
            axum::body::Body::from_stream(stream),
        )
            .into_response();
    }
    Json(chat_completion(&body, &model, "chatcmpl-mock", 0)).into_response()
}

/// Prompt tokens the Anthropic mock reports read from and written to its cache, besides the
/// prompt's own.
pub const CACHE_READ_TOKENS: u64 = 4;
pub const CACHE_WRITE_TOKENS: u64 = 2;

/// An Anthropic answer's blocks, stop reason and output tokens: the first offered tool called
/// with `{"query": "mock"}`, else the reply's words.
fn messages_content(body: &Value, chat: &Value) -> (Vec<Value>, &'static str, u64) {
    let tool = body.pointer("/tools/0/name").and_then(Value::as_str);
    match tool {
        Some(name) => (
            vec![json!({"type": "tool_use", "id": "toolu_mock", "name": name,
                "input": {"query": "mock"}})],
            "tool_use",
            6,
        ),
        None => {
            let words = reply_words(chat);
            (
                vec![json!({"type": "text", "text": words.join(" ")})],
                "end_turn",
                words.len() as u64,
            )
        }
    }
}

async fn http_messages(headers: axum::http::HeaderMap, bytes: Bytes) -> Response {
    let refuse = |status: StatusCode, message: &str| {
        let body = json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": message}});
        (status, Json(body)).into_response()
    };
    if !headers.contains_key("anthropic-version") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "anthropic-version: header required",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let chat = match super::anthropic::request_to_openai(&body) {
        Ok(chat) => chat,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    let model = body.get("model").cloned().unwrap_or(json!("mock"));
    let input = prompt_tokens(&chat);
    let (content, stop, output) = messages_content(&body, &chat);
    let usage = json!({"input_tokens": input, "output_tokens": output,
        "cache_read_input_tokens": CACHE_READ_TOKENS,
        "cache_creation_input_tokens": CACHE_WRITE_TOKENS});
    if model == "overloaded" {
        // Anthropic's way of failing a stream it has begun: an `error` event after a 200.
        let error = json!({"type": "error", "error": {"type": "overloaded_error",
            "message": "Overloaded"}});
        return (
            [(header::CONTENT_TYPE, "text/event-stream")],
            format!("event: error\ndata: {error}\n\n"),
        )
            .into_response();
    }
    if body.get("stream") != Some(&json!(true)) {
        return Json(
            json!({"id": "msg_mock", "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": usage}),
        )
        .into_response();
    }
    let mut events = vec![
        json!({"type": "message_start", "message": {"id": "msg_mock",
        "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input,
        "output_tokens": 1, "cache_read_input_tokens": CACHE_READ_TOKENS,
        "cache_creation_input_tokens": CACHE_WRITE_TOKENS}}}),
    ];
    for (index, block) in content.iter().enumerate() {
        let (start, deltas) = match block["type"].as_str() {
            Some("tool_use") => (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"],
                    "input": {}}),
                ["{\"query\": ", "\"mock\"}"]
                    .iter()
                    .map(|part| json!({"type": "input_json_delta", "partial_json": part}))
                    .collect::<Vec<_>>(),
            ),
            _ => (
                json!({"type": "text", "text": ""}),
                block["text"]
                    .as_str()
                    .unwrap_or_default()
                    .split_inclusive(' ')
                    .map(|word| json!({"type": "text_delta", "text": word}))
                    .collect(),
            ),
        };
        events.push(json!({"type": "content_block_start", "index": index,
            "content_block": start}));
        for delta in deltas {
            events.push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    events.push(
        json!({"type": "message_delta", "delta": {"stop_reason": stop,
        "stop_sequence": null}, "usage": {"output_tokens": output}}),
    );
    events.push(json!({"type": "message_stop"}));
    let text: String = events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
        .collect();
    ([(header::CONTENT_TYPE, "text/event-stream")], text).into_response()
}

async fn http_embeddings(bytes: Bytes) -> Response {
    match parse(&bytes) {
        Ok(body) => {
            let model = body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("mock")
                .to_string();
            Json(embeddings(&body, &model)).into_response()
        }
        Err(response) => *response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_follows_the_input() {
        let body =
            json!({"messages": [{"role": "user", "content": "one two three"}], "max_tokens": 3});
        let answer = chat_completion(&body, "m", "id", 0);
        assert_eq!(answer["usage"]["prompt_tokens"], json!(6));
        assert_eq!(answer["usage"]["completion_tokens"], json!(3));
        assert_eq!(answer["choices"][0]["message"]["content"], "This is a");
        let streamed = chat_stream(
            &json!({"messages": [], "stream_options": {"include_usage": true}}),
            "m",
            "id",
            0,
        );
        assert!(streamed.iter().any(|e| e.contains("\"usage\"")));
        assert_eq!(
            streamed.last().map(String::as_str),
            Some("data: [DONE]\n\n")
        );
    }
}
