//! The arithmetic of the request path: what a request may cost at most before it runs, and
//! what it used once it has, read from the answer or from its SSE stream.

use crate::{gate::Estimate, providers::prices::Price};
use serde_json::Value;

/// Completion tokens assumed when a request sets no `max_tokens`.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Embeddings,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "chat/completions",
            Self::Embeddings => "embeddings",
        }
    }
}

/// Tokens reported by the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Reads `usage` from an OpenAI-shaped answer or stream chunk.
    pub fn from_json(value: &Value) -> Option<Self> {
        let usage = value.get("usage").filter(|u| u.is_object())?;
        let field = |name: &str| usage.get(name).and_then(Value::as_u64).unwrap_or(0);
        Some(Self {
            prompt_tokens: field("prompt_tokens"),
            completion_tokens: field("completion_tokens"),
        })
    }
}

/// The most a request can cost: every token of the prompt is at least one byte of the body,
/// and the answer is at most `max_tokens` (or the default).
pub fn estimate(request: &Value, body_len: usize, price: Price, endpoint: Endpoint) -> Estimate {
    let prompt = body_len as u64;
    let output = match endpoint {
        Endpoint::Embeddings => 0,
        Endpoint::Chat => request
            .get("max_completion_tokens")
            .or_else(|| request.get("max_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS),
    };
    Estimate {
        cost: price.cost_nanos(prompt, output),
        tokens: prompt + output,
    }
}

/// Follows an SSE stream as it passes through: keeps the last `usage` seen and counts content
/// chunks, the fallback when an upstream sends no usage.
#[derive(Debug, Default)]
pub struct StreamMeter {
    pending: Vec<u8>,
    pub usage: Option<Usage>,
    pub content_chunks: u64,
}

impl StreamMeter {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.line(&line);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" || data.is_empty() {
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(usage) = Usage::from_json(&chunk) {
            self.usage = Some(usage);
        }
        let has_content = chunk
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            .is_some_and(|text| !text.is_empty());
        if has_content {
            self.content_chunks += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_estimate_bounds_the_real_cost() {
        let price = Price {
            input: 1000,
            output: 2000,
        };
        let request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10});
        let body = serde_json::to_vec(&request).expect("json");
        let e = estimate(&request, body.len(), price, Endpoint::Chat);
        assert_eq!(e.tokens, body.len() as u64 + 10);
        assert!(e.cost >= price.cost_nanos(5, 10));
        let unbounded = estimate(&json!({}), 2, price, Endpoint::Chat);
        assert_eq!(unbounded.tokens, 2 + DEFAULT_MAX_OUTPUT_TOKENS);
    }

    #[test]
    fn the_meter_reads_usage_across_split_chunks() {
        let mut meter = StreamMeter::default();
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
        for piece in stream.as_bytes().chunks(7) {
            meter.feed(piece);
        }
        assert_eq!(
            meter.usage,
            Some(Usage {
                prompt_tokens: 7,
                completion_tokens: 2
            })
        );
        assert_eq!(meter.content_chunks, 1);
    }
}
