//! What Gatehouse knows of a model without asking its provider: the price of each kind of token,
//! the most it writes in one answer, how its prompts are counted and what an image can cost.
//! A config's `model_info` (or `litellm_params`) overrides each. Prices are [`Picos`] per
//! token so the cheapest models stay exact.

use crate::money::{Nanos, Picos};

/// Output tokens assumed for a model whose limit is known neither here nor from its config.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4_096;

/// How a model's prompt is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokenizer {
    /// OpenAI's `o200k_base` (GPT-4o, GPT-4.1, GPT-5, o-series): an exact count.
    O200k,
    /// OpenAI's `cl100k_base` (GPT-4, GPT-3.5, the embeddings models): an exact count.
    Cl100k,
    /// One token per byte of UTF-8: a true upper bound for every byte-level tokenizer (Claude,
    /// Llama, Mistral, Qwen, ...), whose tokens each cover at least one byte.
    Bytes,
}

impl Tokenizer {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "o200k_base" => Some(Self::O200k),
            "cl100k_base" => Some(Self::Cl100k),
            "bytes" => Some(Self::Bytes),
            _ => None,
        }
    }

    /// The tokenizer a model's name implies: OpenAI's families by prefix, bytes for the rest.
    pub fn for_model(name: &str) -> Self {
        let name = base_name(name);
        const O200K: &[&str] = &[
            "gpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "chatgpt-4o",
            "o1",
            "o3",
            "o4",
            "gpt-oss",
        ];
        const CL100K: &[&str] = &["gpt-4", "gpt-3.5", "text-embedding-"];
        if O200K.iter().any(|p| name.starts_with(p)) {
            Self::O200k
        } else if CL100K.iter().any(|p| name.starts_with(p)) {
            Self::Cl100k
        } else {
            Self::Bytes
        }
    }
}

/// The price of one token of each kind, pico-dollars. Components a model does not price
/// separately cost what a plain input or output token costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub input: Picos,
    pub output: Picos,
    pub input_audio: Option<Picos>,
    pub output_audio: Option<Picos>,
    /// Prompt tokens read from the provider's cache.
    pub cache_read: Option<Picos>,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: Option<Picos>,
    /// Completion tokens spent reasoning.
    pub output_reasoning: Option<Picos>,
}

/// Tokens of an answer, split by what they are priced as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    /// All prompt tokens, whatever their kind.
    pub prompt: u64,
    /// Of `prompt`: audio, read from cache, written to cache.
    pub prompt_audio: u64,
    pub prompt_cached: u64,
    pub prompt_cache_write: u64,
    /// All completion tokens (reasoning included).
    pub completion: u64,
    /// Of `completion`: audio, reasoning.
    pub completion_audio: u64,
    pub completion_reasoning: u64,
}

impl Tokens {
    pub fn plain(prompt: u64, completion: u64) -> Self {
        Self {
            prompt,
            completion,
            ..Self::default()
        }
    }

    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

impl Price {
    pub fn plain(input: Picos, output: Picos) -> Self {
        Self {
            input,
            output,
            ..Self::default()
        }
    }

    pub fn is_free(&self) -> bool {
        self.dearest_input() == Picos::ZERO && self.dearest_output() == Picos::ZERO
    }

    /// The most a prompt token can cost, whatever kind it turns out to be.
    pub fn dearest_input(&self) -> Picos {
        [self.input_audio, self.cache_read, self.cache_write]
            .into_iter()
            .flatten()
            .fold(self.input, Picos::max)
    }

    /// The most an output token can cost.
    pub fn dearest_output(&self) -> Picos {
        [self.output_audio, self.output_reasoning]
            .into_iter()
            .flatten()
            .fold(self.output, Picos::max)
    }

    /// The cost of an answer's tokens, each kind at its own price. Never more than the same
    /// counts at the dearest prices.
    pub fn cost_picos(&self, t: &Tokens) -> Picos {
        let audio_in = t.prompt_audio.min(t.prompt);
        let cached = t.prompt_cached.min(t.prompt - audio_in);
        let written = t.prompt_cache_write.min(t.prompt - audio_in - cached);
        let text_in = t.prompt - audio_in - cached - written;
        let audio_out = t.completion_audio.min(t.completion);
        let reasoning = t.completion_reasoning.min(t.completion - audio_out);
        let text_out = t.completion - audio_out - reasoning;
        [
            self.input.times(text_in),
            self.input_audio.unwrap_or(self.input).times(audio_in),
            self.cache_read.unwrap_or(self.input).times(cached),
            self.cache_write.unwrap_or(self.input).times(written),
            self.output.times(text_out),
            self.output_audio.unwrap_or(self.output).times(audio_out),
            self.output_reasoning
                .unwrap_or(self.output)
                .times(reasoning),
        ]
        .into_iter()
        .sum()
    }

    /// [`Price::cost_picos`] in nano-dollars, rounded up.
    pub fn cost(&self, t: &Tokens) -> Nanos {
        self.cost_picos(t).to_nanos()
    }
}

/// A spec that bounds requests to either model: each price the dearest of the two (a component
/// one of them does not price separately costs its plain price there), the larger output
/// limit (each try sends at most its own deployment's), the larger image bound, and a
/// tokenizer that counts at least what either does.
pub fn either(a: &ModelSpec, b: &ModelSpec) -> ModelSpec {
    let (p, q) = (&a.price, &b.price);
    let part = |x: Option<Picos>, x_plain: Picos, y: Option<Picos>, y_plain: Picos| {
        (x.is_some() || y.is_some()).then(|| x.unwrap_or(x_plain).max(y.unwrap_or(y_plain)))
    };
    ModelSpec {
        price: Price {
            input: p.input.max(q.input),
            output: p.output.max(q.output),
            input_audio: part(p.input_audio, p.input, q.input_audio, q.input),
            output_audio: part(p.output_audio, p.output, q.output_audio, q.output),
            cache_read: part(p.cache_read, p.input, q.cache_read, q.input),
            cache_write: part(p.cache_write, p.input, q.cache_write, q.input),
            output_reasoning: part(p.output_reasoning, p.output, q.output_reasoning, q.output),
        },
        max_output_tokens: a.max_output_tokens.max(b.max_output_tokens),
        tokenizer: if a.tokenizer == b.tokenizer {
            a.tokenizer
        } else {
            Tokenizer::Bytes
        },
        image_tokens: ImageTokens {
            low: a.image_tokens.low.max(b.image_tokens.low),
            high: a.image_tokens.high.max(b.image_tokens.high),
        },
    }
}

/// The most one image in a prompt can count as, in prompt tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageTokens {
    /// `detail: "low"`.
    pub low: u64,
    /// `detail: "high"` or `"auto"` (or none).
    pub high: u64,
}

/// Images of models this table does not know: above every rule published for the models here
/// and for the common open multimodal models served by vLLM.
pub const DEFAULT_IMAGE_TOKENS: ImageTokens = ImageTokens {
    low: 16_384,
    high: 16_384,
};

/// OpenAI's tile rule (GPT-4o, GPT-4.1, GPT-4 Turbo): 85 + 170 per 512-pixel tile, at most 8
/// tiles after the image is fitted to 2048 and its short side to 768 pixels.
const OPENAI_TILES: ImageTokens = ImageTokens {
    low: 85,
    high: 85 + 170 * 8,
};
/// GPT-4o mini's tile rule: 2,833 + 5,667 per tile.
const MINI_TILES: ImageTokens = ImageTokens {
    low: 2_833,
    high: 2_833 + 5_667 * 8,
};
/// OpenAI's patch rule (GPT-4.1 mini and nano, o4-mini): at most 1,536 patches of 32 pixels,
/// times the model's multiplier (at most 2.46).
const OPENAI_PATCHES: ImageTokens = ImageTokens {
    low: 3_780,
    high: 3_780,
};
/// Anthropic: about width × height / 750, images above 1.15 megapixels scaled down.
const CLAUDE_IMAGES: ImageTokens = ImageTokens {
    low: 1_600,
    high: 1_600,
};

/// What is known of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    pub price: Price,
    /// The most output tokens one choice of one answer can have.
    pub max_output_tokens: u64,
    pub tokenizer: Tokenizer,
    pub image_tokens: ImageTokens,
}

/// `(model, input USD, output USD, max output tokens, images)`.
type Row = (&'static str, f64, f64, u64, ImageTokens);

const TABLE: &[Row] = &[
    ("gpt-4o", 2.5e-6, 1.0e-5, 16_384, OPENAI_TILES),
    ("gpt-4o-mini", 1.5e-7, 6.0e-7, 16_384, MINI_TILES),
    ("gpt-4.1", 2.0e-6, 8.0e-6, 32_768, OPENAI_TILES),
    ("gpt-4.1-mini", 4.0e-7, 1.6e-6, 32_768, OPENAI_PATCHES),
    ("gpt-4.1-nano", 1.0e-7, 4.0e-7, 32_768, OPENAI_PATCHES),
    ("gpt-4", 3.0e-5, 6.0e-5, 8_192, OPENAI_TILES),
    ("gpt-4-turbo", 1.0e-5, 3.0e-5, 4_096, OPENAI_TILES),
    ("gpt-3.5-turbo", 5.0e-7, 1.5e-6, 4_096, OPENAI_TILES),
    ("claude-2", 8.0e-6, 2.4e-5, 4_096, CLAUDE_IMAGES),
    ("claude-3-haiku", 2.5e-7, 1.25e-6, 4_096, CLAUDE_IMAGES),
    ("claude-3-5-haiku", 8.0e-7, 4.0e-6, 8_192, CLAUDE_IMAGES),
    ("claude-3-5-sonnet", 3.0e-6, 1.5e-5, 8_192, CLAUDE_IMAGES),
    ("claude-3-7-sonnet", 3.0e-6, 1.5e-5, 64_000, CLAUDE_IMAGES),
    ("claude-sonnet-4", 3.0e-6, 1.5e-5, 64_000, CLAUDE_IMAGES),
    ("claude-sonnet-4-5", 3.0e-6, 1.5e-5, 64_000, CLAUDE_IMAGES),
    ("claude-haiku-4-5", 1.0e-6, 5.0e-6, 64_000, CLAUDE_IMAGES),
    ("claude-opus-4", 1.5e-5, 7.5e-5, 32_000, CLAUDE_IMAGES),
    ("claude-opus-4-1", 1.5e-5, 7.5e-5, 32_000, CLAUDE_IMAGES),
    (
        "text-embedding-3-small",
        2.0e-8,
        0.0,
        0,
        DEFAULT_IMAGE_TOKENS,
    ),
    (
        "text-embedding-3-large",
        1.3e-7,
        0.0,
        0,
        DEFAULT_IMAGE_TOKENS,
    ),
    (
        "text-embedding-ada-002",
        1.0e-7,
        0.0,
        0,
        DEFAULT_IMAGE_TOKENS,
    ),
];

/// The name without a `provider/` prefix.
fn base_name(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

/// The table's row for `model`, matched on the name without any `provider/` prefix and without
/// a trailing date (`claude-3-5-sonnet-20241022` is `claude-3-5-sonnet`).
fn row(model: &str) -> Option<&'static Row> {
    let name = base_name(model);
    let exact = TABLE.iter().find(|(m, ..)| *m == name);
    let dated = || {
        TABLE
            .iter()
            .filter(|(m, ..)| {
                name.strip_prefix(m).is_some_and(|rest| {
                    rest.starts_with('-')
                        && rest[1..].chars().all(|c| c.is_ascii_digit() || c == '-')
                })
            })
            .max_by_key(|(m, ..)| m.len())
    };
    exact.or_else(dated)
}

/// The built-in knowledge of `model`, `None` for a model the table does not know.
pub fn builtin(model: &str) -> Option<ModelSpec> {
    let (_, input, output, max_output, images) = row(model)?;
    Some(ModelSpec {
        price: Price::plain(Picos::from_usd(*input)?, Picos::from_usd(*output)?),
        max_output_tokens: *max_output,
        tokenizer: Tokenizer::for_model(model),
        image_tokens: *images,
    })
}

/// What is assumed of a model nobody described: free, [`DEFAULT_MAX_OUTPUT_TOKENS`], counted
/// by its name's tokenizer.
pub fn unknown(model: &str) -> ModelSpec {
    ModelSpec {
        price: Price::default(),
        max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
        tokenizer: Tokenizer::for_model(model),
        image_tokens: DEFAULT_IMAGE_TOKENS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_and_costs_round_up() {
        let mini = builtin("gpt-4o-mini").expect("known").price;
        assert_eq!(mini, Price::plain(Picos(150_000), Picos(600_000)));
        // 1000 prompt + 500 completion tokens of gpt-4o-mini: $0.00015 + $0.0003.
        assert_eq!(mini.cost(&Tokens::plain(1000, 500)), Nanos(450_000));
        let small = builtin("text-embedding-3-small").expect("known").price;
        assert_eq!(small.cost(&Tokens::plain(1, 0)), Nanos(20));
        assert_eq!(
            Price::plain(Picos(1), Picos(0)).cost(&Tokens::plain(1, 0)),
            Nanos(1)
        );
    }

    #[test]
    fn names_match_without_prefix_or_date() {
        assert_eq!(builtin("openai/gpt-4o"), builtin("gpt-4o"));
        assert_eq!(
            builtin("claude-3-5-sonnet-20241022").map(|s| s.price),
            builtin("claude-3-5-sonnet").map(|s| s.price)
        );
        assert_ne!(builtin("gpt-4o-mini"), builtin("gpt-4o"));
        assert_eq!(builtin("llama-3"), None);
        assert_eq!(
            Tokenizer::for_model("openai/gpt-4o-2024-08-06"),
            Tokenizer::O200k
        );
        assert_eq!(Tokenizer::for_model("gpt-3.5-turbo"), Tokenizer::Cl100k);
        assert_eq!(Tokenizer::for_model("claude-sonnet-4-5"), Tokenizer::Bytes);
    }

    #[test]
    fn components_cost_their_own_price_and_never_more_than_the_dearest() {
        let price = Price {
            input: Picos(10),
            output: Picos(20),
            input_audio: Some(Picos(100)),
            output_audio: Some(Picos(200)),
            cache_read: Some(Picos(1)),
            cache_write: Some(Picos(15)),
            output_reasoning: Some(Picos(30)),
        };
        assert_eq!(price.dearest_input(), Picos(100));
        assert_eq!(price.dearest_output(), Picos(200));
        let t = Tokens {
            prompt: 10,
            prompt_audio: 2,
            prompt_cached: 3,
            prompt_cache_write: 1,
            completion: 5,
            completion_audio: 1,
            completion_reasoning: 2,
        };
        assert_eq!(
            price.cost_picos(&t),
            Picos(4 * 10 + 2 * 100 + 3 + 15 + 2 * 20 + 200 + 2 * 30)
        );
        // Two deployments' spec bounds each of them.
        let cheap = ModelSpec {
            price: Price::plain(Picos(5), Picos(50)),
            max_output_tokens: 100,
            tokenizer: Tokenizer::O200k,
            image_tokens: DEFAULT_IMAGE_TOKENS,
        };
        let dear = ModelSpec {
            price,
            max_output_tokens: 50,
            tokenizer: Tokenizer::Cl100k,
            image_tokens: DEFAULT_IMAGE_TOKENS,
        };
        let both = either(&cheap, &dear);
        assert_eq!(both.price.dearest_input(), Picos(100));
        assert_eq!(both.price.dearest_output(), Picos(200));
        assert_eq!(both.price.cache_read, Some(Picos(5)));
        assert!(both.price.cost_picos(&t) >= cheap.price.cost_picos(&t));
        assert!(both.price.cost_picos(&t) >= dear.price.cost_picos(&t));
        assert_eq!(both.max_output_tokens, 100);
        assert_eq!(both.tokenizer, Tokenizer::Bytes);
        // Details that claim more than the total are cut to it.
        let lying = Tokens {
            prompt: 2,
            prompt_audio: 50,
            completion: 1,
            completion_audio: 9,
            ..Tokens::default()
        };
        assert!(price.cost_picos(&lying) <= Picos(2 * 100 + 200));
    }
}
