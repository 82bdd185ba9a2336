//! Anthropic's Messages API, translated to and from OpenAI's chat completions, the shape the
//! request path works in: `/v1/messages` requests become chat requests (and their answers and
//! streams Messages answers and events again); chat requests to `anthropic/` deployments
//! become Messages requests (and Anthropic's answers and events chat answers and chunks).
//! System prompts, images, tools and tool use (streamed as `input_json_delta`) go both ways;
//! usage keeps Anthropic's cache reads and writes (`cached_tokens`,
//! `cache_creation_input_tokens`), so either side is priced alike.

use super::{
    adapter::{Entry, Provider, Try},
    call::{Answer, UpstreamError},
    lines::{Lines, TooLong},
};
use crate::request::{Chat, Request};
use async_trait::async_trait;
use axum::body::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The Messages API version Gatehouse speaks upstream.
pub const VERSION: &str = "2023-06-01";

/// An output limit for chat requests that set none (the Messages API requires one).
const DEFAULT_MAX_TOKENS: u64 = 4_096;

/// A request that cannot be translated: what is wrong, in the caller's terms.
pub type Invalid = String;

/// Anthropic's Messages API: chat requests are translated there and back.
pub struct Anthropic {
    /// The whole endpoint, e.g. `https://api.anthropic.com/v1/messages`.
    url: String,
    api_key: Option<String>,
    model: String,
}

/// Never its key.
impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// As LiteLLM: the key from `ANTHROPIC_API_KEY` when the entry names none; the endpoint
/// completed from a bare host or a `/v1` base.
pub fn configure(entry: &Entry<'_>) -> anyhow::Result<Arc<dyn Provider>> {
    let base = entry.base_url(Some("https://api.anthropic.com"))?;
    let url = if base.ends_with("/v1/messages") {
        base
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    };
    Ok(Arc::new(Anthropic {
        url,
        api_key: entry.api_key_or_env("ANTHROPIC_API_KEY"),
        model: entry.model.to_string(),
    }))
}

#[async_trait]
impl Provider for Anthropic {
    fn kind(&self) -> &'static str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn api_base(&self) -> Option<&str> {
        Some(&self.url)
    }

    async fn send(&self, request: &Request, at: &Try<'_>) -> Result<Answer, UpstreamError> {
        let Request::Chat(chat) = request else {
            return Err(UpstreamError::Rejected {
                message: "This model serves chat only.".into(),
            });
        };
        let mut call = at
            .http
            .post(&self.url)
            .header("anthropic-version", VERSION)
            .json(&request_from_openai(chat, &self.model));
        if let Some(api_key) = &self.api_key {
            call = call.header("x-api-key", api_key);
        }
        let secret = self.api_key.as_deref();
        if chat.stream {
            let Answer::Stream(events) = at.post(call, true, secret).await? else {
                return Err(UpstreamError::BadAnswer);
            };
            // Chunks until Anthropic's `message_stop` (or its `error`), then the end.
            let chunks = ToOpenAiStream::new(at.request_id, at.created, at.caps.line);
            let translated = futures_util::stream::unfold(
                (events, chunks, false),
                |(mut events, mut chunks, ended)| async move {
                    if ended {
                        return None;
                    }
                    let item = events.next().await?;
                    let out = item.and_then(|bytes| chunks.feed(&bytes).map(Bytes::from));
                    let ended = out.is_err() || chunks.done();
                    Some((out, (events, chunks, ended)))
                },
            );
            return Ok(Answer::Stream(translated.boxed()));
        }
        let Answer::Json(bytes) = at.post(call, false, secret).await? else {
            return Err(UpstreamError::BadAnswer);
        };
        let answer = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or(UpstreamError::BadAnswer)?;
        let answer = answer_to_openai(&answer, at.request_id, at.created);
        Ok(Answer::Json(Bytes::from(answer.to_string())))
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

// ---- Messages request → chat request (`/v1/messages`) ----

/// A `/v1/messages` body as a chat completions body.
pub fn request_to_openai(request: &Value) -> Result<Value, Invalid> {
    let object = request
        .as_object()
        .ok_or("The body must be a JSON object.")?;
    let model = object
        .get("model")
        .and_then(Value::as_str)
        .ok_or("model: field required")?;
    let max_tokens = object
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or("max_tokens: field required (a whole number)")?;
    let mut messages = Vec::new();
    match object.get("system") {
        None | Some(Value::Null) => {}
        Some(system @ (Value::String(_) | Value::Array(_))) => {
            messages.push(json!({"role": "system", "content": text_of(system)}));
        }
        Some(_) => return Err("system: a string or a list of text blocks".into()),
    }
    let turns = object
        .get("messages")
        .and_then(Value::as_array)
        .filter(|turns| !turns.is_empty())
        .ok_or("messages: field required (a list of at least one message)")?;
    for (i, turn) in turns.iter().enumerate() {
        let role = turn.get("role").and_then(Value::as_str);
        let content = turn.get("content").unwrap_or(&Value::Null);
        match (role, content) {
            (Some(role @ ("user" | "assistant")), Value::String(text)) => {
                messages.push(json!({"role": role, "content": text}));
            }
            (Some("user"), Value::Array(blocks)) => user_blocks(blocks, &mut messages, i)?,
            (Some("assistant"), Value::Array(blocks)) => {
                messages.push(assistant_blocks(blocks, i)?)
            }
            _ => {
                return Err(format!(
                    "messages.{i}: role must be user or assistant, content a string or a list \
                     of blocks"
                ))
            }
        }
    }
    let mut out = json!({"model": model, "messages": messages, "max_tokens": max_tokens});
    let fields = out.as_object_mut().expect("an object");
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stream", "stream"),
        ("stop_sequences", "stop"),
    ] {
        if let Some(value) = object.get(from).filter(|v| !v.is_null()) {
            fields.insert(to.into(), value.clone());
        }
    }
    if let Some(user) = request.pointer("/metadata/user_id").and_then(Value::as_str) {
        fields.insert("user".into(), json!(user));
    }
    if let Some(tools) = object.get("tools").and_then(Value::as_array) {
        let tools = tools
            .iter()
            .enumerate()
            .map(|(i, tool)| {
                let name = tool.get("name").and_then(Value::as_str);
                match (name, tool.get("input_schema")) {
                    (Some(name), Some(schema)) => Ok(json!({"type": "function", "function": {
                        "name": name,
                        "description": tool.get("description").cloned().unwrap_or(json!("")),
                        "parameters": schema,
                    }})),
                    _ => Err(format!(
                        "tools.{i}: only client tools (name and input_schema) are supported"
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !tools.is_empty() {
            fields.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = object.get("tool_choice").filter(|v| v.is_object()) {
        let chosen = match choice.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {
                "name": choice.get("name").cloned().unwrap_or(json!(""))}}),
            _ => return Err("tool_choice.type: auto, any, tool or none".into()),
        };
        fields.insert("tool_choice".into(), chosen);
        if choice.get("disable_parallel_tool_use") == Some(&json!(true)) {
            fields.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    Ok(out)
}

fn image_url(block: &Value, at: &str) -> Result<Value, Invalid> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("image/png"),
            source.get("data").and_then(Value::as_str).unwrap_or("")
        ),
        Some("url") => source
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => return Err(format!("{at}.source: base64 or url")),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A user turn's blocks: tool results become tool messages (first, as OpenAI wants them
/// right after the call), the rest one user message.
fn user_blocks(blocks: &[Value], messages: &mut Vec<Value>, i: usize) -> Result<(), Invalid> {
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("messages.{i}.content.{j}");
        match block.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(json!({"type": "text",
                "text": block.get("text").and_then(Value::as_str).unwrap_or("")})),
            Some("image") => parts.push(image_url(block, &at)?),
            Some("tool_result") => {
                let id = block.get("tool_use_id").and_then(Value::as_str);
                let content = block.get("content").map(text_of).unwrap_or_default();
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            Some(other) => return Err(format!("{at}: block type {other:?} is not supported")),
            None => return Err(format!("{at}: type required")),
        }
    }
    if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn assistant_blocks(blocks: &[Value], i: usize) -> Result<Value, Invalid> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": block.get("id").cloned().unwrap_or(json!("")),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or(json!("")),
                    "arguments": block.get("input").unwrap_or(&json!({})).to_string(),
                },
            })),
            // The model's earlier reasoning: not something a chat model takes back.
            Some("thinking" | "redacted_thinking") => {}
            other => {
                return Err(format!(
                    "messages.{i}.content.{j}: block type {other:?} is not supported"
                ))
            }
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(message)
}

// ---- chat request → Messages request (`anthropic/` deployments) ----

/// A chat completions body (already prepared for its deployment) as a Messages body.
pub fn request_from_openai(request: &Chat, model: &str) -> Value {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for turn in &request.messages {
        let content = turn.get("content").unwrap_or(&Value::Null);
        match turn.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => system.push(text_of(content)),
            Some("assistant") => {
                let blocks = assistant_content(turn);
                messages.push(json!({"role": "assistant", "content": blocks}));
            }
            Some("tool") => {
                let result = json!({"type": "tool_result",
                    "tool_use_id": turn.get("tool_call_id").cloned().unwrap_or(json!("")),
                    "content": text_of(content)});
                // Consecutive results answer one turn's calls: one user message.
                match messages.last_mut() {
                    Some(last)
                        if last["role"] == "user"
                            && last["content"]
                                .as_array()
                                .is_some_and(|b| b.iter().all(|b| b["type"] == "tool_result")) =>
                    {
                        if let Some(blocks) = last["content"].as_array_mut() {
                            blocks.push(result);
                        }
                    }
                    _ => messages.push(json!({"role": "user", "content": [result]})),
                }
            }
            _ => messages.push(json!({"role": "user", "content": user_content(content)})),
        }
    }
    // The smaller of the two when both are set (a `null` is not a limit).
    let max_tokens = [request.max_tokens, request.max_completion_tokens]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let mut out = json!({"model": model, "messages": messages, "max_tokens": max_tokens});
    let fields = out.as_object_mut().expect("an object");
    if !system.is_empty() {
        fields.insert("system".into(), json!(system.join("\n")));
    }
    for field in ["temperature", "top_p"] {
        if let Some(value) = request.rest.get(field).filter(|v| !v.is_null()) {
            fields.insert(field.into(), value.clone());
        }
    }
    if request.stream {
        fields.insert("stream".into(), Value::Bool(true));
    }
    match request.rest.get("stop") {
        Some(Value::String(stop)) => {
            fields.insert("stop_sequences".into(), json!([stop]));
        }
        Some(stops @ Value::Array(_)) => {
            fields.insert("stop_sequences".into(), stops.clone());
        }
        _ => {}
    }
    if let Some(user) = request.user() {
        fields.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(tools) = request.tools.as_ref().and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|tool| tool.get("function"))
            .map(|f| {
                json!({
                    "name": f.get("name").cloned().unwrap_or(json!("")),
                    "description": f.get("description").cloned().unwrap_or(json!("")),
                    "input_schema": f.get("parameters").cloned()
                        .unwrap_or(json!({"type": "object"})),
                })
            })
            .collect();
        fields.insert("tools".into(), Value::Array(tools));
    }
    let choice = match &request.tool_choice {
        Some(Value::String(s)) if s == "required" => Some(json!({"type": "any"})),
        Some(Value::String(s)) if s == "none" => Some(json!({"type": "none"})),
        Some(Value::String(s)) if s == "auto" => Some(json!({"type": "auto"})),
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .map(|name| json!({"type": "tool", "name": name})),
        _ => None,
    };
    if let Some(mut choice) = choice {
        if request.rest.get("parallel_tool_calls") == Some(&json!(false)) {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        fields.insert("tool_choice".into(), choice);
    }
    out
}

/// An assistant's chat message as Anthropic's blocks: its text, then its tool calls as
/// `tool_use` (arguments that are not JSON become `{}`).
fn assistant_content(message: &Map<String, Value>) -> Vec<Value> {
    let mut blocks = Vec::new();
    let text = text_of(message.get("content").unwrap_or(&Value::Null));
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let arguments = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        blocks.push(json!({"type": "tool_use",
            "id": call.get("id").cloned().unwrap_or(json!("")),
            "name": call.pointer("/function/name").cloned().unwrap_or(json!("")),
            "input": serde_json::from_str::<Value>(arguments).unwrap_or(json!({})),
        }));
    }
    blocks
}

fn user_content(content: &Value) -> Value {
    let Some(parts) = content.as_array() else {
        return json!(text_of(content));
    };
    let blocks: Vec<Value> = parts
        .iter()
        .filter_map(|part| match part.get("type").and_then(Value::as_str) {
            Some("text") => Some(json!({"type": "text", "text": part.get("text")})),
            Some("image_url") => {
                let url = part
                    .pointer("/image_url/url")
                    .or_else(|| part.get("image_url"))
                    .and_then(Value::as_str)?;
                Some(
                    match url
                        .strip_prefix("data:")
                        .and_then(|r| r.split_once(";base64,"))
                    {
                        Some((media_type, data)) => json!({"type": "image", "source": {
                        "type": "base64", "media_type": media_type, "data": data}}),
                        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
                    },
                )
            }
            _ => None,
        })
        .collect();
    Value::Array(blocks)
}

// ---- answers ----

fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic's usage as OpenAI's: prompt tokens include the cache's, as OpenAI counts them.
fn usage_to_openai(usage: &Value) -> Value {
    let n = |field: &str| usage.get(field).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (n("input_tokens"), n("output_tokens"));
    let (read, written) = (
        n("cache_read_input_tokens"),
        n("cache_creation_input_tokens"),
    );
    let prompt = input.saturating_add(read).saturating_add(written);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt.saturating_add(output),
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    })
}

/// OpenAI's usage as Anthropic's.
fn usage_from_openai(usage: &Value) -> Value {
    let n = |path: &str| usage.pointer(path).and_then(Value::as_u64).unwrap_or(0);
    let read = n("/prompt_tokens_details/cached_tokens").max(n("/cache_read_input_tokens"));
    let written = n("/cache_creation_input_tokens");
    json!({
        "input_tokens": n("/prompt_tokens").saturating_sub(read).saturating_sub(written),
        "output_tokens": n("/completion_tokens"),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    })
}

/// An Anthropic answer as a chat completion.
pub fn answer_to_openai(answer: &Value, id: &str, created: i64) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in answer
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"),
                    "arguments": block.get("input").unwrap_or(&json!({})).to_string()},
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": answer.get("model"),
        "choices": [{"index": 0, "message": message,
            "finish_reason": finish_reason(answer.get("stop_reason").and_then(Value::as_str))}],
        "usage": usage_to_openai(answer.get("usage").unwrap_or(&Value::Null)),
    })
}

/// A chat completion as an Anthropic answer (its first choice), named `model`.
pub fn answer_from_openai(answer: &Value, model: &str) -> Value {
    let choice = answer.pointer("/choices/0").unwrap_or(&Value::Null);
    let empty = Map::new();
    let message = choice
        .get("message")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let content = assistant_content(message);
    json!({
        "id": message_id(answer.get("id").and_then(Value::as_str)),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": usage_from_openai(answer.get("usage").unwrap_or(&Value::Null)),
    })
}

fn message_id(id: Option<&str>) -> String {
    let id = id.unwrap_or_default();
    let bare = id.strip_prefix("chatcmpl-").unwrap_or(id);
    format!("msg_{bare}")
}

/// Anthropic's error body.
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Anthropic's error type for a status.
pub fn error_kind(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 | 403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

// ---- streams ----

fn sse(value: &Value) -> String {
    format!("data: {value}\n\n")
}

/// Anthropic's stream events, as chat completion chunks (ending with a usage chunk and
/// `[DONE]`), for the request path and its callers.
pub struct ToOpenAiStream {
    lines: Lines,
    id: String,
    created: i64,
    model: Value,
    usage: Map<String, Value>,
    /// Anthropic's block index → the tool call's index among this answer's.
    tools: Vec<(u64, usize)>,
    done: bool,
}

impl ToOpenAiStream {
    /// A stream of lines of at most `max_line` bytes (a longer one fails it).
    pub fn new(id: &str, created: i64, max_line: usize) -> Self {
        Self {
            lines: Lines::new(max_line),
            id: id.to_string(),
            created,
            model: Value::Null,
            usage: Map::new(),
            tools: Vec::new(),
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        sse(&json!({"id": self.id, "object": "chat.completion.chunk",
            "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}))
    }

    /// The chunks these bytes complete; an `error` event is the stream's failure (before its
    /// first chunk, the try's: it is retried).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<String, UpstreamError> {
        let mut out = String::new();
        let lines = self
            .lines
            .feed(bytes)
            .map_err(|TooLong(_)| UpstreamError::TooLarge)?;
        for data in lines {
            if self.done {
                break;
            }
            let Ok(event) = serde_json::from_slice::<Value>(&data) else {
                continue;
            };
            if event.get("type").and_then(Value::as_str) == Some("error") {
                return Err(match event.pointer("/error/type").and_then(Value::as_str) {
                    Some("rate_limit_error") => UpstreamError::RateLimited { retry_after: 1 },
                    Some("overloaded_error") => UpstreamError::Failed { status: 529 },
                    _ => UpstreamError::Failed { status: 500 },
                });
            }
            out.push_str(&self.event(&event));
        }
        Ok(out)
    }

    /// Whether `message_stop` went by: nothing after it counts.
    pub fn done(&self) -> bool {
        self.done
    }

    fn event(&mut self, event: &Value) -> String {
        let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let message = event.get("message").unwrap_or(&Value::Null);
                self.model = message.get("model").cloned().unwrap_or(Value::Null);
                if let Some(usage) = message.get("usage").and_then(Value::as_object) {
                    self.usage.extend(usage.clone());
                }
                self.chunk(json!({"role": "assistant", "content": ""}), None)
            }
            Some("content_block_start") => {
                let block = event.get("content_block").unwrap_or(&Value::Null);
                if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                    return String::new();
                }
                let call = self.tools.len();
                self.tools.push((index, call));
                self.chunk(
                    json!({"tool_calls": [{"index": call, "id": block.get("id"),
                        "type": "function",
                        "function": {"name": block.get("name"), "arguments": ""}}]}),
                    None,
                )
            }
            Some("content_block_delta") => {
                let delta = event.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => self.chunk(json!({"content": delta.get("text")}), None),
                    Some("thinking_delta") => {
                        self.chunk(json!({"reasoning_content": delta.get("thinking")}), None)
                    }
                    Some("input_json_delta") => {
                        let call = self
                            .tools
                            .iter()
                            .find(|(block, _)| *block == index)
                            .map_or(0, |(_, call)| *call);
                        self.chunk(
                            json!({"tool_calls": [{"index": call,
                                "function": {"arguments": delta.get("partial_json")}}]}),
                            None,
                        )
                    }
                    _ => String::new(),
                }
            }
            Some("message_delta") => {
                if let Some(usage) = event.get("usage").and_then(Value::as_object) {
                    self.usage.extend(usage.clone());
                }
                let stop = event.pointer("/delta/stop_reason").and_then(Value::as_str);
                self.chunk(json!({}), Some(finish_reason(stop)))
            }
            Some("message_stop") => {
                self.done = true;
                let usage = usage_to_openai(&Value::Object(self.usage.clone()));
                format!(
                    "{}data: [DONE]\n\n",
                    sse(&json!({"id": self.id, "object": "chat.completion.chunk",
                        "created": self.created, "model": self.model,
                        "choices": [], "usage": usage}))
                )
            }
            _ => String::new(),
        }
    }
}

/// What block the Messages stream has open.
#[derive(PartialEq)]
enum Open {
    Nothing,
    Text,
    /// A tool call, by its index among the chat answer's.
    Tool(u64),
}

/// Chat completion chunks as Anthropic's stream events, for `/v1/messages` callers.
pub struct FromOpenAiStream {
    lines: Lines,
    model: String,
    started: bool,
    open: Open,
    /// Blocks opened so far (the next one's index).
    blocks: u64,
    stop_reason: &'static str,
    usage: Value,
    finished: bool,
}

fn event(kind: &str, data: &Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

impl FromOpenAiStream {
    pub fn new(model: &str) -> Self {
        Self {
            // What it reads is the gateway's own stream, whose lines the meter has bounded.
            lines: Lines::new(usize::MAX),
            model: model.to_string(),
            started: false,
            open: Open::Nothing,
            blocks: 0,
            stop_reason: "end_turn",
            usage: Value::Null,
            finished: false,
        }
    }

    fn start(&mut self, id: Option<&str>, out: &mut String) {
        if self.started {
            return;
        }
        self.started = true;
        out.push_str(&event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(id), "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ));
    }

    fn close(&mut self, out: &mut String) {
        if self.open != Open::Nothing {
            out.push_str(&event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.blocks - 1}),
            ));
            self.open = Open::Nothing;
        }
    }

    fn open(&mut self, open: Open, block: Value, out: &mut String) {
        self.close(out);
        out.push_str(&event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.blocks,
                "content_block": block}),
        ));
        self.blocks += 1;
        self.open = open;
    }

    /// The events these bytes complete.
    pub fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        for data in self.lines.feed(bytes).unwrap_or_default() {
            if self.finished {
                break;
            }
            if data == b"[DONE]" {
                self.finish(&mut out);
                continue;
            }
            let Ok(chunk) = serde_json::from_slice::<Value>(&data) else {
                continue;
            };
            self.chunk(&chunk, &mut out);
        }
        out
    }

    fn chunk(&mut self, chunk: &Value, out: &mut String) {
        if let Some(error) = chunk.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            out.push_str(&event("error", &error_body("api_error", message)));
            self.finished = true;
            return;
        }
        self.start(chunk.get("id").and_then(Value::as_str), out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = usage.clone();
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            if self.open != Open::Text {
                self.open(Open::Text, json!({"type": "text", "text": ""}), out);
            }
            out.push_str(&event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": self.blocks - 1,
                    "delta": {"type": "text_delta", "text": text}}),
            ));
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            if self.open != Open::Tool(index) {
                self.open(
                    Open::Tool(index),
                    json!({"type": "tool_use", "id": call.get("id").cloned()
                        .unwrap_or(json!(format!("toolu_{index}"))),
                        "name": call.pointer("/function/name").cloned().unwrap_or(json!("")),
                        "input": {}}),
                    out,
                );
            }
            if let Some(arguments) = call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                out.push_str(&event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": self.blocks - 1,
                        "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                ));
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.stop_reason = stop_reason(Some(reason));
        }
    }

    fn finish(&mut self, out: &mut String) {
        if self.finished {
            return;
        }
        self.start(None, out);
        self.close(out);
        self.finished = true;
        out.push_str(&event(
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                "usage": usage_from_openai(&self.usage)}),
        ));
        out.push_str(&event("message_stop", &json!({"type": "message_stop"})));
    }

    /// What to send when the chunks end: the closing events, unless they went already (or
    /// the stream ended in an error).
    pub fn end(&mut self) -> String {
        let mut out = String::new();
        self.finish(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_with_tools_goes_both_ways() {
        let messages = json!({
            "model": "claude", "max_tokens": 100, "system": [{"type": "text", "text": "Be brief."}],
            "tools": [{"name": "weather", "description": "Weather", "input_schema":
                {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "any"},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Paris?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                        "data": "AAAA"}}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Looking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather",
                        "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                    "content": "Sunny"}]}
            ]
        });
        let chat = request_to_openai(&messages).expect("translates");
        assert_eq!(
            chat["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(
            chat["messages"][1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        assert_eq!(
            chat["messages"][2]["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Paris"}"#
        );
        assert_eq!(chat["messages"][3]["role"], "tool");
        assert_eq!(chat["tool_choice"], "required");
        assert_eq!(chat["tools"][0]["function"]["name"], "weather");
        // And back, as an `anthropic/` deployment gets it.
        let typed = Chat::from_fields(chat.as_object().cloned().expect("an object"))
            .expect("a chat request");
        let back = request_from_openai(&typed, "claude-upstream");
        assert_eq!(back["system"], "Be brief.");
        assert_eq!(back["model"], "claude-upstream");
        assert_eq!(back["messages"][0]["content"][1]["source"]["data"], "AAAA");
        assert_eq!(
            back["messages"][1]["content"][1]["input"],
            json!({"city": "Paris"})
        );
        assert_eq!(back["messages"][2]["content"][0]["tool_use_id"], "toolu_1");
        assert_eq!(back["tool_choice"], json!({"type": "any"}));
        assert_eq!(back["tools"][0]["input_schema"]["type"], "object");
        for bad in [
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user",
                "content": [{"type": "document"}]}]}),
            json!({"model": "m", "max_tokens": 5, "messages": [],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        ] {
            assert!(request_to_openai(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_tokens_are_kept_both_ways() {
        let usage = json!({"input_tokens": 10, "output_tokens": 5,
            "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20});
        let openai = usage_to_openai(&usage);
        assert_eq!(openai["prompt_tokens"], 130);
        assert_eq!(openai["prompt_tokens_details"]["cached_tokens"], 100);
        assert_eq!(usage_from_openai(&openai), usage);
    }

    #[test]
    fn streams_of_tool_calls_translate_both_ways() {
        let upstream = [
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude",
                "usage": {"input_tokens": 12, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block":
                {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta":
                {"type": "text_delta", "text": "Let me check."}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block":
                {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta":
                {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
            json!({"type": "content_block_delta", "index": 1, "delta":
                {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 20}}),
            json!({"type": "message_stop"}),
        ];
        let bytes: String = upstream
            .iter()
            .map(|e| {
                format!(
                    "event: {}\ndata: {e}\n\n",
                    e["type"].as_str().expect("type")
                )
            })
            .collect();
        let mut to = ToOpenAiStream::new("chatcmpl-1", 0, 1 << 20);
        // Cut anywhere: the same chunks come out.
        let (a, b) = bytes.split_at(77);
        let chunks =
            to.feed(a.as_bytes()).expect("no error") + &to.feed(b.as_bytes()).expect("no error");
        assert!(to.done());
        assert_eq!(
            to.feed(b"data: {\"type\": \"ping\"}\n\n"),
            Ok(String::new())
        );
        let mut failing = ToOpenAiStream::new("chatcmpl-2", 0, 1 << 20);
        let overloaded = "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
        assert_eq!(
            failing.feed(overloaded.as_bytes()),
            Err(UpstreamError::Failed { status: 529 })
        );
        assert!(chunks.ends_with("data: [DONE]\n\n"));
        let mut meter = crate::service::usage::StreamMeter::new(1 << 20);
        meter.feed(chunks.as_bytes()).expect("short lines");
        let usage = meter.usage.expect("usage");
        assert_eq!((usage.prompt, usage.completion), (12, 20));
        assert!(meter.delivered.contains("Let me check.") && meter.delivered.contains("Paris"));

        let mut from = FromOpenAiStream::new("claude");
        let events = from.feed(chunks.as_bytes()) + &from.end();
        let kinds: Vec<&str> = events
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(events.contains(r#""partial_json":"{\"city\": ""#));
        assert!(events.contains(r#""stop_reason":"tool_use""#));
        assert!(events.contains(r#""output_tokens":20"#));
    }
}
