//! What an answer used, read from the provider's `usage` (with its details: cached, audio and
//! reasoning tokens), or followed through an SSE stream as it passes.

use crate::providers::{
    catalog::Tokens,
    lines::{Lines, TooLong},
};
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
#[derive(Debug)]
pub struct StreamMeter {
    lines: Lines,
    pub usage: Option<Tokens>,
    /// Chunks that carried output.
    pub output_chunks: u64,
    /// The text, tool calls and refusals delivered, concatenated.
    pub delivered: String,
    /// Whether the stream's `data: [DONE]` line went by.
    pub done: bool,
}

impl StreamMeter {
    /// A meter of streams whose lines are at most `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            lines: Lines::new(max_line),
            usage: None,
            output_chunks: 0,
            delivered: String::new(),
            done: false,
        }
    }

    /// Reads the chunks these bytes complete. A line past the cap is [`TooLong`] (the stream
    /// is over: feed no more): the bytes of it that went by count as delivered output.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        let (lines, too_long) = match self.lines.feed(bytes) {
            Ok(lines) => (lines, false),
            Err(TooLong(lines)) => (lines, true),
        };
        for data in lines {
            self.data(&data);
        }
        if too_long {
            let cut = String::from_utf8_lossy(self.lines.pending()).into_owned();
            self.keep(&cut);
            return Err(TooLong(Vec::new()));
        }
        Ok(())
    }

    /// Whether the bytes so far end in the middle of a line.
    pub fn mid_line(&self) -> bool {
        !self.lines.pending().is_empty()
    }

    fn data(&mut self, data: &[u8]) {
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
                    self.keep(text);
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
                        self.keep(text);
                    }
                }
            }
        }
        if self.delivered.len() > before {
            self.output_chunks += 1;
        }
    }

    /// Keeps delivered text to count, up to the line cap: far more than any output limit, so
    /// what is not kept could never be charged (the bound caps the charge).
    fn keep(&mut self, text: &str) {
        if self.delivered.len() < self.lines.max() {
            self.delivered.push_str(text);
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
        let mut meter = StreamMeter::new(1 << 20);
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
        for piece in stream.as_bytes().chunks(7) {
            meter.feed(piece).expect("short lines");
        }
        assert_eq!(meter.usage, Some(Tokens::plain(7, 2)));
        assert_eq!(meter.output_chunks, 2);
        assert_eq!(meter.delivered, "Hi{}");
        assert!(meter.done);
    }
}
