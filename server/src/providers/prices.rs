//! Built-in prices (USD per token) for common models; a config's `model_info` overrides them.
//! Prices are kept in pico-dollars per token so the cheapest models stay exact.

/// `(model, input, output)` in USD per token.
const TABLE: &[(&str, f64, f64)] = &[
    ("gpt-4o", 2.5e-6, 1.0e-5),
    ("gpt-4o-mini", 1.5e-7, 6.0e-7),
    ("gpt-4.1", 2.0e-6, 8.0e-6),
    ("gpt-4.1-mini", 4.0e-7, 1.6e-6),
    ("gpt-4", 3.0e-5, 6.0e-5),
    ("gpt-4-turbo", 1.0e-5, 3.0e-5),
    ("gpt-3.5-turbo", 5.0e-7, 1.5e-6),
    ("claude-2", 8.0e-6, 2.4e-5),
    ("claude-3-haiku", 2.5e-7, 1.25e-6),
    ("claude-3-5-haiku", 8.0e-7, 4.0e-6),
    ("claude-3-5-sonnet", 3.0e-6, 1.5e-5),
    ("claude-3-7-sonnet", 3.0e-6, 1.5e-5),
    ("claude-sonnet-4", 3.0e-6, 1.5e-5),
    ("claude-sonnet-4-5", 3.0e-6, 1.5e-5),
    ("claude-haiku-4-5", 1.0e-6, 5.0e-6),
    ("claude-opus-4", 1.5e-5, 7.5e-5),
    ("claude-opus-4-1", 1.5e-5, 7.5e-5),
    ("text-embedding-3-small", 2.0e-8, 0.0),
    ("text-embedding-3-large", 1.3e-7, 0.0),
    ("text-embedding-ada-002", 1.0e-7, 0.0),
];

const PICOS_PER_USD: f64 = 1e12;

/// Price of one token in pico-dollars: (input, output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub input: i64,
    pub output: i64,
}

impl Price {
    pub fn from_usd(input: f64, output: f64) -> Option<Self> {
        let pico = |usd: f64| {
            (usd.is_finite() && (0.0..=1.0).contains(&usd))
                .then(|| (usd * PICOS_PER_USD).round() as i64)
        };
        Some(Self {
            input: pico(input)?,
            output: pico(output)?,
        })
    }

    /// The cost in nano-dollars, rounded up so no fraction of spend is dropped.
    pub fn cost_nanos(&self, prompt_tokens: u64, completion_tokens: u64) -> i64 {
        let pico = i128::from(self.input) * i128::from(prompt_tokens)
            + i128::from(self.output) * i128::from(completion_tokens);
        i64::try_from((pico + 999) / 1000).unwrap_or(i64::MAX)
    }
}

/// The built-in price of `model`, matched on the name without any `provider/` prefix and
/// without a trailing date (`claude-3-5-sonnet-20241022` prices as `claude-3-5-sonnet`).
pub fn builtin(model: &str) -> Option<Price> {
    let name = model.rsplit('/').next().unwrap_or(model);
    let exact = TABLE.iter().find(|(m, _, _)| *m == name);
    let dated = || {
        TABLE
            .iter()
            .filter(|(m, _, _)| {
                name.strip_prefix(m).is_some_and(|rest| {
                    rest.starts_with('-')
                        && rest[1..].chars().all(|c| c.is_ascii_digit() || c == '-')
                })
            })
            .max_by_key(|(m, _, _)| m.len())
    };
    exact
        .or_else(dated)
        .and_then(|(_, input, output)| Price::from_usd(*input, *output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_and_costs_round_up() {
        let mini = builtin("gpt-4o-mini").expect("priced");
        assert_eq!(
            mini,
            Price {
                input: 150_000,
                output: 600_000
            }
        );
        // 1000 prompt + 500 completion tokens of gpt-4o-mini: $0.00015 + $0.0003.
        assert_eq!(mini.cost_nanos(1000, 500), 450_000);
        let small = builtin("text-embedding-3-small").expect("priced");
        assert_eq!(small.cost_nanos(1, 0), 20);
        assert_eq!(
            Price {
                input: 1,
                output: 0
            }
            .cost_nanos(1, 0),
            1
        );
    }

    #[test]
    fn names_match_without_prefix_or_date() {
        assert_eq!(builtin("openai/gpt-4o"), builtin("gpt-4o"));
        assert_eq!(
            builtin("claude-3-5-sonnet-20241022"),
            builtin("claude-3-5-sonnet")
        );
        assert_ne!(builtin("gpt-4o-mini"), builtin("gpt-4o"));
        assert_eq!(builtin("llama-3"), None);
    }
}
