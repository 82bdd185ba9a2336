//! The request, parsed once: a typed envelope of what the gateway reasons about (the model, the
//! output limits, `n`, streaming, the messages or input, the tools, the caller's `user` and
//! `metadata`), and everything else carried as the caller sent it, in the caller's order.
//!
//! Limits, estimation, routing and each provider's adapter read the envelope; nothing after
//! [`Request::parse`] reads a field by its name again. The envelope is parsed from a JSON object,
//! its fields checked here with messages that name the field, so a bad request gets a 400 in the
//! caller's API's shape before anything is admitted.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// Choices one request may ask for (`n`), as OpenAI allows.
pub const MAX_CHOICES: u64 = 128;

/// Fields LiteLLM clients may send that address or authenticate an upstream: dropped at parse,
/// never forwarded. Where a request goes is the configuration's call, never the caller's.
const GATEWAY_ONLY_FIELDS: &[&str] = &[
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "organization",
];

/// The APIs a request can come in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Embeddings,
}

impl Endpoint {
    /// Its path under an OpenAI-compatible base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "chat/completions",
            Self::Embeddings => "embeddings",
        }
    }
}

/// A request that cannot be parsed: the field and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub param: Option<&'static str>,
    pub message: String,
}

pub(crate) fn invalid(param: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        param: Some(param),
        message: message.into(),
    }
}

/// One request to one of the gateway's APIs.
// One a call, moved a handful of times: not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Chat(Chat),
    Embeddings(Embeddings),
}

impl Request {
    /// Parses a body sent to `endpoint`.
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<Self, Invalid> {
        let value: Value = serde_json::from_slice(body).map_err(|err| Invalid {
            param: None,
            message: format!("Invalid JSON body: {err}"),
        })?;
        let Value::Object(fields) = value else {
            return Err(Invalid {
                param: None,
                message: "The body must be a JSON object.".into(),
            });
        };
        match endpoint {
            Endpoint::Chat => Chat::from_fields(fields).map(Self::Chat),
            Endpoint::Embeddings => Embeddings::from_fields(fields).map(Self::Embeddings),
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        match self {
            Self::Chat(_) => Endpoint::Chat,
            Self::Embeddings(_) => Endpoint::Embeddings,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            Self::Chat(chat) => &chat.model,
            Self::Embeddings(embeddings) => &embeddings.model,
        }
    }

    /// Names the model the provider is asked for.
    pub fn set_model(&mut self, model: &str) {
        let slot = match self {
            Self::Chat(chat) => &mut chat.model,
            Self::Embeddings(embeddings) => &mut embeddings.model,
        };
        model.clone_into(slot);
    }

    /// Whether the answer comes as server-sent events.
    pub fn streaming(&self) -> bool {
        matches!(self, Self::Chat(chat) if chat.stream)
    }

    /// The body an OpenAI-compatible server takes.
    pub fn to_json(&self) -> Value {
        let written = match self {
            Self::Chat(chat) => serde_json::to_value(chat),
            Self::Embeddings(embeddings) => serde_json::to_value(embeddings),
        };
        // Maps of strings to JSON values always serialize.
        written.unwrap_or_default()
    }
}

/// A chat completion request (OpenAI's `/v1/chat/completions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Chat {
    pub model: String,
    /// Each one a JSON object; never empty.
    pub messages: Vec<Map<String, Value>>,
    /// `n`: how many choices (1 when unset).
    pub n: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub stream: bool,
    /// `stream_options`, as sent (an object).
    pub stream_options: Option<Map<String, Value>>,
    /// `tools`, and the older `functions`.
    pub tools: Option<Value>,
    pub functions: Option<Value>,
    pub tool_choice: Option<Value>,
    pub response_format: Option<Value>,
    /// `prediction`: its content may be written back beyond the output limit.
    pub prediction: Option<Value>,
    pub user: Option<Value>,
    pub metadata: Option<Value>,
    /// Everything else, as the caller sent it and in its order.
    pub rest: Map<String, Value>,
}

impl Chat {
    /// The envelope of a request's fields; the rest kept as they are.
    pub fn from_fields(mut fields: Map<String, Value>) -> Result<Self, Invalid> {
        for field in GATEWAY_ONLY_FIELDS {
            fields.shift_remove(*field);
        }
        let mut take = |name: &str| fields.shift_remove(name).filter(|v| !v.is_null());
        let model = model(take("model"))?;
        let messages = match take("messages") {
            Some(Value::Array(messages)) if !messages.is_empty() => messages
                .into_iter()
                .map(|message| match message {
                    Value::Object(message) => Ok(message),
                    _ => Err(invalid("messages", "each message must be an object")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(invalid(
                    "messages",
                    "messages must be a non-empty list of messages",
                ))
            }
        };
        let n = positive("n", take("n"))?;
        if n.is_some_and(|n| n > MAX_CHOICES) {
            return Err(invalid("n", format!("n must be at most {MAX_CHOICES}")));
        }
        let max_tokens = positive("max_tokens", take("max_tokens"))?;
        let max_completion_tokens =
            positive("max_completion_tokens", take("max_completion_tokens"))?;
        let stream = match take("stream") {
            None => false,
            Some(Value::Bool(stream)) => stream,
            Some(_) => return Err(invalid("stream", "stream must be true or false")),
        };
        let stream_options = match take("stream_options") {
            None => None,
            Some(Value::Object(options)) => Some(options),
            Some(_) => {
                return Err(invalid(
                    "stream_options",
                    "stream_options must be an object",
                ))
            }
        };
        let chat = Self {
            model,
            messages,
            n,
            max_tokens,
            max_completion_tokens,
            stream,
            stream_options,
            tools: take("tools"),
            functions: take("functions"),
            tool_choice: take("tool_choice"),
            response_format: take("response_format"),
            prediction: take("prediction"),
            user: take("user"),
            metadata: take("metadata"),
            rest: fields,
        };
        Ok(chat)
    }

    /// `n`, 1 when unset.
    pub fn choices(&self) -> u64 {
        self.n.unwrap_or(1)
    }

    /// Asks a stream for its usage chunk (what it is charged by).
    pub fn include_usage(&mut self) {
        self.stream_options
            .get_or_insert_with(Map::new)
            .insert("include_usage".into(), Value::Bool(true));
    }

    /// The `user` a caller named, when it is a string.
    pub fn user(&self) -> Option<&str> {
        self.user.as_ref().and_then(Value::as_str)
    }
}

impl Serialize for Chat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", &self.model)?;
        map.serialize_entry("messages", &self.messages)?;
        let optional = [
            ("n", self.n),
            ("max_tokens", self.max_tokens),
            ("max_completion_tokens", self.max_completion_tokens),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.serialize_entry(name, &value)?;
            }
        }
        if self.stream {
            map.serialize_entry("stream", &true)?;
        }
        if let Some(options) = &self.stream_options {
            map.serialize_entry("stream_options", options)?;
        }
        let values = [
            ("tools", &self.tools),
            ("functions", &self.functions),
            ("tool_choice", &self.tool_choice),
            ("response_format", &self.response_format),
            ("prediction", &self.prediction),
            ("user", &self.user),
            ("metadata", &self.metadata),
        ];
        for (name, value) in values {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        for (name, value) in &self.rest {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// An embeddings request (OpenAI's `/v1/embeddings`).
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub model: String,
    pub input: Input,
    pub rest: Map<String, Value>,
}

/// What is to be embedded.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Text(String),
    /// Strings, token ids or lists of token ids, each an item: never empty.
    Items(Vec<Value>),
}

impl Embeddings {
    pub fn from_fields(mut fields: Map<String, Value>) -> Result<Self, Invalid> {
        for field in GATEWAY_ONLY_FIELDS {
            fields.shift_remove(*field);
        }
        let model = model(fields.shift_remove("model").filter(|v| !v.is_null()))?;
        let bad = || {
            invalid(
                "input",
                "input must be a string, a list of strings, or a list of token lists",
            )
        };
        let input = match fields.shift_remove("input") {
            Some(Value::String(text)) => Input::Text(text),
            Some(Value::Array(items)) if !items.is_empty() => {
                let item_ok = |item: &Value| match item {
                    Value::String(_) | Value::Number(_) => true,
                    Value::Array(ids) => ids.iter().all(Value::is_number),
                    _ => false,
                };
                if !items.iter().all(item_ok) {
                    return Err(bad());
                }
                Input::Items(items)
            }
            _ => return Err(bad()),
        };
        Ok(Self {
            model,
            input,
            rest: fields,
        })
    }
}

impl Serialize for Embeddings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", &self.model)?;
        match &self.input {
            Input::Text(text) => map.serialize_entry("input", text)?,
            Input::Items(items) => map.serialize_entry("input", items)?,
        }
        for (name, value) in &self.rest {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

fn model(value: Option<Value>) -> Result<String, Invalid> {
    match value {
        Some(Value::String(model)) if !model.is_empty() => Ok(model),
        _ => Err(invalid("model", "model is required")),
    }
}

/// A positive integer field, `None` when absent or null.
fn positive(param: &'static str, value: Option<Value>) -> Result<Option<u64>, Invalid> {
    match value {
        None => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(invalid(
                param,
                format!("{param} must be a whole number of at least 1"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<Chat, Invalid> {
        match Request::parse(Endpoint::Chat, body.as_bytes())? {
            Request::Chat(chat) => Ok(chat),
            Request::Embeddings(_) => unreachable!("parsed as chat"),
        }
    }

    #[test]
    fn what_the_gateway_does_not_read_is_carried_and_what_redirects_it_is_dropped() {
        let body = r#"{"zeta": 1, "model": "m", "alpha": {"y": 1, "b": [2, "x"]},
            "messages": [{"role": "user", "content": "hi"}], "api_base": "http://evil",
            "base_url": "http://evil", "api_key": "sk-x", "temperature": 0.5}"#;
        let parsed = chat(body).expect("valid");
        let sent = serde_json::to_value(&parsed).expect("serializes");
        let expected = serde_json::json!({"zeta": 1, "model": "m",
            "alpha": {"y": 1, "b": [2, "x"]}, "temperature": 0.5,
            "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(sent, expected);
    }

    #[test]
    fn bad_fields_are_named() {
        let param = |body: &str| chat(body).expect_err(body).param;
        let messages = r#""messages": [{"role": "user", "content": "hi"}]"#;
        assert_eq!(param(&format!("{{{messages}}}")), Some("model"));
        assert_eq!(param(r#"{"model": "m", "messages": []}"#), Some("messages"));
        assert_eq!(
            param(r#"{"model": "m", "messages": ["hi"]}"#),
            Some("messages")
        );
        for field in ["n", "max_tokens", "max_completion_tokens"] {
            let body = format!(r#"{{"model": "m", {messages}, "{field}": 0}}"#);
            assert_eq!(param(&body), Some(field));
        }
        let body = format!(r#"{{"model": "m", {messages}, "n": 129}}"#);
        assert_eq!(param(&body), Some("n"));
        let body = format!(r#"{{"model": "m", {messages}, "stream": "yes"}}"#);
        assert_eq!(param(&body), Some("stream"));
        assert_eq!(chat("[1]").expect_err("array").param, None);
        let nulls = format!(r#"{{"model": "m", {messages}, "max_tokens": null, "n": null}}"#);
        let parsed = chat(&nulls).expect("nulls are unset");
        assert_eq!((parsed.max_tokens, parsed.choices()), (None, 1));
    }
}
