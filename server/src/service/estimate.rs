//! The most a request can use, counted before it runs: its prompt with the model's tokenizer
//! plus a fixed overhead per message, its images, audio and files by a bound per part, and its
//! output as `n` choices of at most `max_tokens` each (or the model's limit). The reservation
//! a request makes is this bound at the dearest price of each side, so what the provider later
//! reports can never cost more.
//!
//! The same counting serves the other direction: an answer that arrives without usage is
//! charged by counting what it delivered.

use crate::{
    gate::admission::Estimate,
    providers::catalog::{ModelSpec, Price, Tokenizer},
    request::{invalid, Chat, Embeddings, Input, Invalid, Request},
};
use serde_json::{Map, Value};

/// Tokens a chat format adds around every message (`<|start|>role<|message|>…<|end|>`).
pub const TOKENS_PER_MESSAGE: u64 = 4;
/// Tokens a chat format adds to prime the reply (`<|start|>assistant<|message|>`).
pub const TOKENS_PER_REPLY: u64 = 3;
/// Tokens providers add when a request carries tools: the hidden system prompt that describes
/// them (Anthropic documents up to 346) and OpenAI's namespace wrapper.
pub const TOKENS_FOR_TOOLS: u64 = 512;
/// Pages a file can have (OpenAI's limit for PDFs); each may be read as an image and its text.
pub const MAX_FILE_PAGES: u64 = 100;
/// Text longer than this is bounded by its byte length instead of being tokenized: every token
/// of a byte-level tokenizer covers at least one byte, and counting megabytes would stall the
/// request path.
const MAX_TOKENIZED_BYTES: usize = 256 * 1024;

/// Which field carries a request's output limit upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitField {
    MaxTokens,
    MaxCompletionTokens,
    /// Both were sent: both get the granted limit.
    Both,
}

/// What a request can use at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The prompt, counted (an upper bound of what the provider will count).
    pub prompt_tokens: u64,
    /// `n`.
    pub choices: u64,
    /// Output tokens per choice: the request's limit, or the model's when it set none.
    pub output_tokens: u64,
    /// Tokens a choice may write beyond its limit (rejected prediction tokens).
    pub extra_output_tokens: u64,
    /// Whether the request set its own limit (then the gateway may not lower it).
    pub explicit_limit: bool,
    pub limit_field: LimitField,
}

impl Bound {
    /// The reservation this bound makes: every prompt token at the dearest prompt price, every
    /// output token of every choice at the dearest output price.
    pub fn estimate(&self, price: &Price) -> Estimate {
        Estimate {
            prompt_tokens: self.prompt_tokens,
            prompt_picos: price.dearest_input().times(self.prompt_tokens),
            output_picos: price.dearest_output().times(self.choices),
            choices: self.choices,
            output_tokens: self.output_tokens,
            extra_output_tokens: self.extra_output_tokens,
            lowerable: !self.explicit_limit,
        }
    }
}

/// Loads the tables of `tokenizers` now rather than on the first request that needs one
/// (about 30 MiB and half a second each; only what the served models use is loaded).
pub fn warm_up(tokenizers: &[Tokenizer]) {
    for tokenizer in tokenizers {
        count(*tokenizer, "");
    }
}

/// Tokens of `text`: exact for OpenAI's encodings, its byte length otherwise (and for text too
/// long to tokenize on the request path).
pub fn count(tokenizer: Tokenizer, text: &str) -> u64 {
    let tokens = match tokenizer {
        Tokenizer::O200k | Tokenizer::Cl100k if text.len() > MAX_TOKENIZED_BYTES => text.len(),
        Tokenizer::Bytes => text.len(),
        Tokenizer::O200k => tiktoken_rs::o200k_base_singleton().count_ordinary(text),
        Tokenizer::Cl100k => tiktoken_rs::cl100k_base_singleton().count_ordinary(text),
    };
    u64::try_from(tokens).unwrap_or(u64::MAX)
}

/// Tokens of a JSON value as its compact text.
fn count_json(tokenizer: Tokenizer, value: &Value) -> u64 {
    match value {
        Value::Null => 0,
        Value::String(text) => count(tokenizer, text),
        other => count(tokenizer, &other.to_string()),
    }
}

/// The bound of a request on a model described by `spec`.
pub fn bound(request: &Request, spec: &ModelSpec) -> Result<Bound, Invalid> {
    match request {
        Request::Chat(chat) => chat_bound(chat, spec),
        Request::Embeddings(embeddings) => Ok(Bound {
            prompt_tokens: embeddings_prompt(embeddings, spec.tokenizer),
            choices: 1,
            output_tokens: 0,
            extra_output_tokens: 0,
            explicit_limit: true,
            limit_field: LimitField::MaxTokens,
        }),
    }
}

fn chat_bound(request: &Chat, spec: &ModelSpec) -> Result<Bound, Invalid> {
    let tokenizer = spec.tokenizer;
    let mut prompt = TOKENS_PER_REPLY;
    for message in &request.messages {
        prompt = prompt.saturating_add(message_tokens(message, spec)?);
    }
    let tools: u64 = [&request.tools, &request.functions]
        .into_iter()
        .flatten()
        .map(|v| count_json(tokenizer, v))
        .fold(0, u64::saturating_add);
    if tools > 0 {
        prompt = prompt
            .saturating_add(tools)
            .saturating_add(TOKENS_FOR_TOOLS);
    }
    for value in [&request.tool_choice, &request.response_format]
        .into_iter()
        .flatten()
        .filter(|v| v.is_object())
    {
        prompt = prompt.saturating_add(count_json(tokenizer, value));
    }
    let (max_tokens, max_completion) = (request.max_tokens, request.max_completion_tokens);
    let (requested, limit_field) = match (max_tokens, max_completion) {
        (Some(a), Some(b)) => (Some(a.max(b)), LimitField::Both),
        (Some(a), None) => (Some(a), LimitField::MaxTokens),
        (None, Some(b)) => (Some(b), LimitField::MaxCompletionTokens),
        (None, None) => (None, limit_field_for(&request.model)),
    };
    if let Some(requested) = requested {
        if requested > spec.max_output_tokens {
            let param = if max_completion.is_some_and(|b| b == requested) {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            return Err(invalid(
                param,
                format!(
                    "{param} is too large: {requested}. This model supports at most {} \
                     completion tokens.",
                    spec.max_output_tokens
                ),
            ));
        }
    }
    let extra = request
        .prediction
        .as_ref()
        .and_then(|prediction| prediction.get("content"))
        .map_or(0, |content| count_json(tokenizer, content));
    Ok(Bound {
        prompt_tokens: prompt,
        choices: request.choices(),
        output_tokens: requested.unwrap_or(spec.max_output_tokens),
        extra_output_tokens: extra,
        explicit_limit: requested.is_some(),
        limit_field,
    })
}

/// The field a model takes its output limit in: OpenAI's reasoning models refuse
/// `max_tokens`; everything else knows it.
pub fn limit_field_for(model: &str) -> LimitField {
    let name = model.rsplit('/').next().unwrap_or(model);
    let reasoning = ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|prefix| name.starts_with(prefix));
    if reasoning {
        LimitField::MaxCompletionTokens
    } else {
        LimitField::MaxTokens
    }
}

fn message_tokens(message: &Map<String, Value>, spec: &ModelSpec) -> Result<u64, Invalid> {
    let tokenizer = spec.tokenizer;
    let mut tokens = TOKENS_PER_MESSAGE;
    for (field, value) in message {
        let counted = match field.as_str() {
            "content" => content_tokens(value, spec)?,
            "name" => count_json(tokenizer, value).saturating_add(1),
            _ => count_json(tokenizer, value),
        };
        tokens = tokens.saturating_add(counted);
    }
    Ok(tokens)
}

fn content_tokens(content: &Value, spec: &ModelSpec) -> Result<u64, Invalid> {
    let tokenizer = spec.tokenizer;
    let Value::Array(parts) = content else {
        return Ok(count_json(tokenizer, content));
    };
    let mut tokens = 0u64;
    for part in parts {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        let counted = match kind {
            "text" | "refusal" => part.get(kind).map_or(0, |text| count_json(tokenizer, text)),
            "image_url" => {
                let low = part.pointer("/image_url/detail").and_then(Value::as_str) == Some("low");
                if low {
                    spec.image_tokens.low
                } else {
                    spec.image_tokens.high
                }
            }
            // Audio tokens are a few dozen a second; base64 carries at least 250 bytes a second
            // even at 2 kbit/s, so a token per 4 characters of it is far above any codec's count.
            "input_audio" => {
                let data = part
                    .pointer("/input_audio/data")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                u64::try_from(data.len() / 4 + 1).unwrap_or(u64::MAX)
            }
            "file" => {
                if part.pointer("/file/file_id").is_some() {
                    return Err(invalid(
                        "messages",
                        "files given by file_id cannot be priced before they are read; send \
                         the file inline as file_data",
                    ));
                }
                let data = part.pointer("/file/file_data").map_or(0, |d| {
                    u64::try_from(d.as_str().map_or(0, str::len)).unwrap_or(u64::MAX)
                });
                data.saturating_add(MAX_FILE_PAGES.saturating_mul(spec.image_tokens.high))
            }
            // A part this gateway does not know (video, say): its text, plus one image.
            _ => count(Tokenizer::Bytes, &part.to_string()).saturating_add(spec.image_tokens.high),
        };
        tokens = tokens.saturating_add(counted);
    }
    Ok(tokens)
}

fn embeddings_prompt(request: &Embeddings, tokenizer: Tokenizer) -> u64 {
    let tokens = |item: &Value| -> u64 {
        match item {
            Value::String(text) => count(tokenizer, text),
            Value::Array(ids) => u64::try_from(ids.len()).unwrap_or(u64::MAX),
            _ => 1,
        }
    };
    match &request.input {
        Input::Text(text) => count(tokenizer, text),
        Input::Items(items) => items.iter().map(tokens).fold(0, u64::saturating_add),
    }
}

/// Output tokens of a non-streamed chat answer that came without usage: its choices' text,
/// tool calls and refusals, counted.
pub fn answer_tokens(answer: &Value, tokenizer: Tokenizer) -> u64 {
    let Some(choices) = answer.get("choices").and_then(Value::as_array) else {
        return 0;
    };
    choices
        .iter()
        .filter_map(|choice| choice.get("message"))
        .map(|message| {
            [
                "content",
                "refusal",
                "reasoning_content",
                "tool_calls",
                "function_call",
                "audio",
            ]
            .iter()
            .filter_map(|field| message.get(*field))
            .map(|value| count_json(tokenizer, value))
            .fold(0, u64::saturating_add)
        })
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        providers::catalog::{builtin, unknown},
        request::Endpoint,
    };
    use serde_json::json;

    /// The bound of a body as it comes, parsed first.
    fn bound(endpoint: Endpoint, body: &Value, spec: &ModelSpec) -> Result<Bound, Invalid> {
        super::bound(
            &Request::parse(endpoint, body.to_string().as_bytes())?,
            spec,
        )
    }

    fn gpt4o() -> ModelSpec {
        builtin("gpt-4o").expect("known")
    }

    #[test]
    fn a_chat_prompt_is_its_tokens_plus_the_overheads() {
        let request = json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello, how are you today?"}
        ]});
        let b = bound(Endpoint::Chat, &request, &gpt4o()).expect("valid");
        let text = count(Tokenizer::O200k, "You are terse.")
            + count(Tokenizer::O200k, "Hello, how are you today?")
            + count(Tokenizer::O200k, "system")
            + count(Tokenizer::O200k, "user");
        assert_eq!(
            b.prompt_tokens,
            TOKENS_PER_REPLY + 2 * TOKENS_PER_MESSAGE + text
        );
        assert_eq!(b.output_tokens, 16_384);
        assert!(!b.explicit_limit);
        assert_eq!(b.choices, 1);
        // OpenAI's own count of this conversation (its cookbook's formula) is 22.
        assert!(b.prompt_tokens >= 22, "{}", b.prompt_tokens);
    }

    #[test]
    fn images_audio_and_choices_raise_the_bound() {
        let spec = builtin("gpt-4o-mini").expect("known");
        let image = |detail: &str| {
            json!({"model": "m", "n": 3, "max_tokens": 10, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": detail}}
            ]}]})
        };
        let high = bound(Endpoint::Chat, &image("high"), &spec).expect("valid");
        let low = bound(Endpoint::Chat, &image("low"), &spec).expect("valid");
        assert_eq!(high.prompt_tokens - low.prompt_tokens, 48_169 - 2_833);
        assert!(high.prompt_tokens > 48_169);
        assert_eq!((high.choices, high.output_tokens), (3, 10));
        assert!(high.explicit_limit);
        let audio = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "A".repeat(4000), "format": "wav"}}
        ]}]});
        assert!(
            bound(Endpoint::Chat, &audio, &spec)
                .expect("valid")
                .prompt_tokens
                > 1000
        );
    }

    #[test]
    fn limits_are_checked_against_the_model() {
        let spec = gpt4o();
        let ask = |extra: Value| {
            let mut r = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in extra.as_object().expect("object") {
                r[k] = v.clone();
            }
            bound(Endpoint::Chat, &r, &spec)
        };
        let huge = ask(json!({"max_tokens": u64::MAX})).expect_err("too large");
        assert_eq!(huge.param, Some("max_tokens"));
        assert!(huge.message.contains("16384"), "{}", huge.message);
        assert_eq!(
            ask(json!({"max_tokens": 0})).expect_err("zero").param,
            Some("max_tokens")
        );
        assert_eq!(
            ask(json!({"max_tokens": -1})).expect_err("negative").param,
            Some("max_tokens")
        );
        assert_eq!(
            ask(json!({"max_tokens": "5"})).expect_err("text").param,
            Some("max_tokens")
        );
        assert_eq!(
            ask(json!({"n": 129})).expect_err("too many").param,
            Some("n")
        );
        assert_eq!(ask(json!({"n": 0})).expect_err("none").param, Some("n"));
        let both = ask(json!({"max_tokens": 5, "max_completion_tokens": 9})).expect("valid");
        assert_eq!(
            (both.output_tokens, both.limit_field),
            (9, LimitField::Both)
        );
        let reasoning = bound(
            Endpoint::Chat,
            &json!({"model": "openai/o3-mini", "messages": [{"role": "user", "content": "hi"}]}),
            &unknown("o3-mini"),
        )
        .expect("valid");
        assert_eq!(reasoning.limit_field, LimitField::MaxCompletionTokens);
        assert_eq!(
            bound(Endpoint::Chat, &json!({"model": "m"}), &spec)
                .expect_err("no messages")
                .param,
            Some("messages")
        );
    }

    #[test]
    fn bytes_bound_any_byte_level_tokenizer() {
        let text = "naïve café — 東京 🙂";
        assert!(count(Tokenizer::Bytes, text) >= count(Tokenizer::O200k, text));
        assert!(count(Tokenizer::Bytes, text) >= count(Tokenizer::Cl100k, text));
        let long = "word ".repeat(60_000);
        assert_eq!(count(Tokenizer::O200k, &long), long.len() as u64);
    }

    #[test]
    fn embeddings_count_every_input() {
        let spec = builtin("text-embedding-3-small").expect("known");
        let b = bound(
            Endpoint::Embeddings,
            &json!({"model": "e", "input": ["one two", [1, 2, 3]]}),
            &spec,
        )
        .expect("valid");
        assert_eq!(b.prompt_tokens, 2 + 3);
        assert_eq!(b.output_tokens, 0);
        assert!(bound(
            Endpoint::Embeddings,
            &json!({"model": "e", "input": {}}),
            &spec
        )
        .is_err());
        assert!(bound(
            Endpoint::Embeddings,
            &json!({"model": "e", "input": []}),
            &spec
        )
        .is_err());
    }

    #[test]
    fn an_answer_without_usage_is_counted() {
        let answer = json!({"choices": [
            {"message": {"role": "assistant", "content": "Hello there, friend."}},
            {"message": {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}}
        ]});
        let tokens = answer_tokens(&answer, Tokenizer::O200k);
        assert!(
            tokens >= count(Tokenizer::O200k, "Hello there, friend.") + 3,
            "{tokens}"
        );
    }
}
