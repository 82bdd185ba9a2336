//! What an answer used, read from the provider's `usage` (with its details: cached, audio and
//! reasoning tokens), or followed through an SSE stream as it passes.

use crate::providers::catalog::Tokens;
use serde_json::Value;

/// Reads `usage` from an OpenAI-shaped answer or stream chunk; `None` when it has none.
/// Missing or malformed counts read as 0.
pub fn from_json(value: &Value) -> Option<Tokens> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    let field = |path: &str| usage.pointer(path).and_then(Value::as_u64).unwrap_or(0);
    Some(Tokens {
        prompt: field("/prompt_tokens"),
        prompt_audio: field("/prompt_tokens_details/audio_tokens"),
        prompt_cached: field("/prompt_tokens_details/cached_tokens")
            .max(field("/cache_read_input_tokens")),
        prompt_cache_write: field("/cache_creation_input_tokens"),
        completion: field("/completion_tokens"),
        completion_audio: field("/completion_tokens_details/audio_tokens"),
        completion_reasoning: field("/completion_tokens_details/reasoning_tokens"),
    })
}

/// Follows an SSE stream as it passes through: keeps the last `usage` seen, and what the
/// choices delivered, to count when no usage comes.
#[derive(Debug, Default)]
pub struct StreamMeter {
    pending: Vec<u8>,
    pub usage: Option<Tokens>,
    /// Chunks that carried output.
    pub output_chunks: u64,
    /// The text, tool calls and refusals delivered, concatenated.
    pub delivered: String,
    /// Whether the stream's `data: [DONE]` line went by.
    pub done: bool,
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
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(usage) = from_json(&chunk) {
            self.usage = Some(usage);
        }
        let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
            return;
        };
        let before = self.delivered.len();
        for delta in choices.iter().filter_map(|c| c.get("delta")) {
            for field in ["content", "refusal", "reasoning_content"] {
                if let Some(text) = delta.get(field).and_then(Value::as_str) {
                    self.delivered.push_str(text);
                }
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for part in ["/function/name", "/function/arguments"] {
                    if let Some(text) = call.pointer(part).and_then(Value::as_str) {
                        self.delivered.push_str(text);
                    }
                }
            }
        }
        if self.delivered.len() > before {
            self.output_chunks += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_details_are_read() {
        let tokens = from_json(&json!({"usage": {
            "prompt_tokens": 100, "completion_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 30, "audio_tokens": 5},
            "completion_tokens_details": {"audio_tokens": 7, "reasoning_tokens": 3}
        }}))
        .expect("usage");
        assert_eq!(
            tokens,
            Tokens {
                prompt: 100,
                prompt_audio: 5,
                prompt_cached: 30,
                prompt_cache_write: 0,
                completion: 20,
                completion_audio: 7,
                completion_reasoning: 3
            }
        );
        assert_eq!(from_json(&json!({"usage": null})), None);
        let odd = from_json(&json!({"usage": {"prompt_tokens": -4, "completion_tokens": "x"}}));
        assert_eq!(odd, Some(Tokens::default()));
    }

    #[test]
    fn the_meter_reads_usage_and_output_across_split_chunks() {
        let mut meter = StreamMeter::default();
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
        for piece in stream.as_bytes().chunks(7) {
            meter.feed(piece);
        }
        assert_eq!(meter.usage, Some(Tokens::plain(7, 2)));
        assert_eq!(meter.output_chunks, 2);
        assert_eq!(meter.delivered, "Hi{}");
        assert!(meter.done);
    }
}
