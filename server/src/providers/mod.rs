//! The models Gatehouse serves and where each one goes: read once at start from a LiteLLM-style
//! YAML `model_list` (GATEHOUSE_CONFIG), or the built-in mock models when there is none.
//! Upstream addresses come only from here; a request can never redirect the gateway.

pub mod mock;
pub mod prices;

use anyhow::{bail, Context};
use prices::Price;
use serde::Deserialize;
use std::{collections::HashMap, path::Path, sync::Arc};

/// Where a model's requests go.
#[derive(Debug, Clone, PartialEq)]
pub enum Upstream {
    /// Any OpenAI-compatible server (OpenAI, vLLM, Ollama, Groq, ...).
    OpenAi {
        /// Without a trailing slash, e.g. `https://api.openai.com/v1`.
        base_url: String,
        api_key: Option<String>,
        /// The model name the upstream knows.
        model: String,
    },
    /// Answers in-process, deterministically, with usage computed from the input.
    Mock,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    /// The name callers use.
    pub model_name: String,
    pub upstream: Upstream,
    pub price: Price,
}

/// The served models, by the name callers use, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Models {
    by_name: HashMap<String, Arc<Deployment>>,
    names: Vec<String>,
}

/// Models served when no configuration is given: the spec's and a few current ones, all on the
/// mock provider, priced from the built-in table.
const MOCK_MODELS: &[&str] = &[
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4",
    "gpt-3.5-turbo",
    "claude-2",
    "claude-sonnet-4-5",
    "text-embedding-3-small",
];

impl Models {
    pub fn builtin_mock() -> Self {
        let mut models = Self::default();
        for name in MOCK_MODELS {
            models.add(Deployment {
                model_name: name.to_string(),
                upstream: Upstream::Mock,
                price: prices::builtin(name).unwrap_or_default(),
            });
        }
        models
    }

    /// Reads a LiteLLM-style config file; every problem is reported with the model it is in.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("GATEHOUSE_CONFIG: cannot read {}", path.display()))?;
        Self::from_yaml(&text).with_context(|| format!("GATEHOUSE_CONFIG {}", path.display()))
    }

    pub fn from_yaml(text: &str) -> anyhow::Result<Self> {
        let file: ConfigFile = serde_yaml::from_str(text).context("invalid YAML")?;
        if file.model_list.is_empty() {
            bail!("model_list is empty: list at least one model");
        }
        let mut models = Self::default();
        for entry in file.model_list {
            let name = entry.model_name.clone();
            let deployment = entry
                .into_deployment()
                .with_context(|| format!("model_name {name:?}"))?;
            if models.by_name.contains_key(&name) {
                tracing::warn!(model = %name, "model listed twice: the first entry is used");
                continue;
            }
            models.add(deployment);
        }
        Ok(models)
    }

    fn add(&mut self, deployment: Deployment) {
        self.names.push(deployment.model_name.clone());
        self.by_name
            .insert(deployment.model_name.clone(), Arc::new(deployment));
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Deployment>> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    model_list: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    model_name: String,
    litellm_params: LitellmParams,
    #[serde(default)]
    model_info: Option<CostInfo>,
}

#[derive(Deserialize)]
struct LitellmParams {
    model: String,
    api_base: Option<String>,
    api_key: Option<String>,
    #[serde(flatten)]
    cost: CostInfo,
}

#[derive(Deserialize, Default)]
struct CostInfo {
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
}

/// Resolves LiteLLM's `os.environ/NAME` indirection.
fn resolve_secret(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix("os.environ/") {
        Some(var) => {
            std::env::var(var).with_context(|| format!("environment variable {var} is not set"))
        }
        None => Ok(value.to_string()),
    }
}

impl ModelEntry {
    fn into_deployment(self) -> anyhow::Result<Deployment> {
        if self.model_name.is_empty() || self.model_name.chars().any(char::is_whitespace) {
            bail!("model_name must be a name without spaces");
        }
        let params = self.litellm_params;
        let (provider, model) = params.model.split_once('/').with_context(|| {
            format!(
                "litellm_params.model {:?} must be provider/model, e.g. openai/gpt-4o",
                params.model
            )
        })?;
        let default_base = match provider {
            "mock" => None,
            "openai" => Some("https://api.openai.com/v1"),
            "groq" => Some("https://api.groq.com/openai/v1"),
            "ollama" | "ollama_chat" => Some("http://localhost:11434/v1"),
            "hosted_vllm" | "openai_compatible" => None,
            other => bail!(
                "provider {other:?} is not supported; any OpenAI-compatible server works as \
                 openai/<model> with api_base"
            ),
        };
        let upstream = if provider == "mock" {
            Upstream::Mock
        } else {
            let base_url = match params.api_base.as_deref().map(resolve_secret).transpose()? {
                Some(base) => base,
                None => default_base
                    .with_context(|| format!("provider {provider} needs litellm_params.api_base"))?
                    .to_string(),
            };
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                bail!("api_base must start with http:// or https://");
            }
            Upstream::OpenAi {
                base_url: base_url.trim_end_matches('/').to_string(),
                api_key: params.api_key.as_deref().map(resolve_secret).transpose()?,
                model: model.to_string(),
            }
        };
        let info = self.model_info.unwrap_or_default();
        let builtin = prices::builtin(model)
            .or_else(|| prices::builtin(&self.model_name))
            .unwrap_or_default();
        let input = info
            .input_cost_per_token
            .or(params.cost.input_cost_per_token);
        let output = info
            .output_cost_per_token
            .or(params.cost.output_cost_per_token);
        let price = match (input, output) {
            (None, None) => builtin,
            (input, output) => Price::from_usd(
                input.unwrap_or(builtin.input as f64 / 1e12),
                output.unwrap_or(builtin.output as f64 / 1e12),
            )
            .context("costs per token must be between 0 and 1 USD")?,
        };
        if price == Price::default() {
            tracing::warn!(model = %self.model_name, "no price known: its requests cost $0; set model_info.input_cost_per_token");
        }
        Ok(Deployment {
            model_name: self.model_name,
            upstream,
            price,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_litellm_model_list() {
        std::env::set_var("GATEHOUSE_TEST_UPSTREAM_KEY", "sk-upstream");
        let models = Models::from_yaml(
            r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/GATEHOUSE_TEST_UPSTREAM_KEY
  - model_name: local-llama
    litellm_params:
      model: openai/meta-llama/Llama-3-8B
      api_base: http://127.0.0.1:8000/v1/
      rpm: 60
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: fake
    litellm_params:
      model: mock/anything
litellm_settings:
  drop_params: true
"#,
        )
        .expect("valid config");
        assert_eq!(models.names(), ["gpt-4o", "local-llama", "fake"]);
        let gpt = models.get("gpt-4o").expect("gpt-4o");
        assert_eq!(
            gpt.upstream,
            Upstream::OpenAi {
                base_url: "https://api.openai.com/v1".into(),
                api_key: Some("sk-upstream".into()),
                model: "gpt-4o".into()
            }
        );
        assert_eq!(gpt.price, prices::builtin("gpt-4o").expect("priced"));
        let llama = models.get("local-llama").expect("llama");
        assert_eq!(
            llama.price,
            Price {
                input: 1_000_000,
                output: 2_000_000
            }
        );
        match &llama.upstream {
            Upstream::OpenAi {
                base_url, model, ..
            } => {
                assert_eq!(base_url, "http://127.0.0.1:8000/v1");
                assert_eq!(model, "meta-llama/Llama-3-8B");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(models.get("fake").expect("fake").upstream, Upstream::Mock);
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        for bad in [
            "model_list: []",
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: gpt-4o",
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: bedrock/claude",
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: hosted_vllm/m",
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: openai/m\n      api_key: os.environ/GATEHOUSE_UNSET_VAR_XYZ",
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: openai/m\n      api_base: ftp://host",
            "not: [valid",
        ] {
            assert!(Models::from_yaml(bad).is_err(), "{bad}");
        }
    }
}
