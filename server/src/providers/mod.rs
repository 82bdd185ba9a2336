//! The models Gatehouse serves and where each one goes: read once at start from a LiteLLM-style
//! YAML `model_list` (GATEHOUSE_CONFIG), or the built-in mock models when there is none.
//! Upstream addresses come only from here; a request can never redirect the gateway.

pub mod adapter;
pub mod anthropic;
pub mod call;
pub mod catalog;
pub mod lines;
pub mod mock;
pub mod openai;
pub mod router;

use crate::money::Picos;
use adapter::resolve_secret;
use anyhow::{bail, Context};
use catalog::{ModelSpec, Price, Tokenizer};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

/// How long a non-streamed call may take, and a stream may wait for its next chunk, when the
/// config says nothing (`litellm_params.timeout` / `stream_timeout`): the OpenAI SDK's default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Deployment {
    /// LiteLLM's `model_info.id`, or a hash of what the deployment is (the same on every
    /// instance of a fleet): `x-litellm-model-id`.
    pub id: String,
    /// Its place among all deployments ([`Models::deployments`]).
    pub index: usize,
    /// The name callers use: its group's.
    pub model_name: String,
    /// Its provider's adapter: where its requests go, and how.
    pub upstream: Arc<dyn adapter::Provider>,
    /// Prices, output limit, tokenizer: what a request's cost is bounded with.
    pub spec: ModelSpec,
    /// The whole of a non-streamed call, per try.
    pub timeout: Duration,
    /// A stream's wait for its first and for each next chunk.
    pub stream_timeout: Duration,
    /// `litellm_params.weight`: its share of `simple-shuffle`'s picks.
    pub weight: Option<f64>,
    /// `litellm_params.rpm` / `tpm`: never exceeded (fleet-wide in a fleet).
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

impl Deployment {
    /// The model the provider is asked for.
    pub fn upstream_model(&self) -> &str {
        self.upstream.model()
    }

    /// Where it is, without its key.
    pub fn api_base(&self) -> Option<&str> {
        self.upstream.api_base()
    }
}

/// The deployments that serve one model name, and what bounds a request to any of them.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub deployments: Vec<Arc<Deployment>>,
    /// The dearest prices, the largest output limit: a request bounded with it is bounded for
    /// every deployment of the group.
    pub spec: ModelSpec,
}

/// `router_settings.routing_strategy`, LiteLLM's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    SimpleShuffle,
    LeastBusy,
    LatencyBased,
    UsageBased,
    CostBased,
}

impl Strategy {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "simple-shuffle" => Self::SimpleShuffle,
            "least-busy" => Self::LeastBusy,
            "latency-based-routing" => Self::LatencyBased,
            "usage-based-routing" | "usage-based-routing-v2" => Self::UsageBased,
            "cost-based-routing" => Self::CostBased,
            _ => return None,
        })
    }
}

/// LiteLLM's `router_settings` (and the same keys of `litellm_settings`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouterSettings {
    pub strategy: Strategy,
    /// Tries after the first, within a group.
    pub num_retries: u32,
    /// Waited before each retry.
    pub retry_after: Duration,
    /// Other groups to try, in order, when a group fails.
    pub fallbacks: HashMap<String, Vec<String>>,
    /// Other groups to try when a prompt is too long for a group.
    pub context_window_fallbacks: HashMap<String, Vec<String>>,
    /// Failures a deployment may have in a minute before it cools down.
    pub allowed_fails: u32,
    pub cooldown_time: Duration,
    /// The whole request, every try and fallback included.
    pub timeout: Duration,
}

impl Default for RouterSettings {
    /// LiteLLM's defaults.
    fn default() -> Self {
        Self {
            strategy: Strategy::SimpleShuffle,
            num_retries: 2,
            retry_after: Duration::ZERO,
            fallbacks: HashMap::new(),
            context_window_fallbacks: HashMap::new(),
            allowed_fails: 3,
            cooldown_time: Duration::from_secs(5),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The served models, by the name callers use, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Models {
    groups: HashMap<String, Arc<Group>>,
    names: Vec<String>,
    deployments: Vec<Arc<Deployment>>,
    pub settings: RouterSettings,
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
                id: model_id(&[name, "mock"]),
                index: 0,
                weight: None,
                rpm: None,
                tpm: None,
                model_name: name.to_string(),
                upstream: mock::Mock::serving(name),
                spec: catalog::builtin(name).unwrap_or_else(|| catalog::unknown(name)),
                timeout: DEFAULT_TIMEOUT,
                stream_timeout: DEFAULT_TIMEOUT,
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
            let named = entry.model_info.as_ref().is_some_and(|i| i.id.is_some());
            let mut deployment = entry
                .into_deployment()
                .with_context(|| format!("model_name {name:?}"))?;
            let taken = |id: &str| models.deployments.iter().any(|d| d.id == id);
            if taken(&deployment.id) {
                if named {
                    bail!(
                        "model_name {name:?}: two deployments with the id {:?}",
                        deployment.id
                    );
                }
                // The same entry twice: the second one's id says so.
                let base = deployment.id.clone();
                let mut n = 2;
                while taken(&deployment.id) {
                    deployment.id = format!("{base}-{n}");
                    n += 1;
                }
            }
            models.add(deployment);
        }
        models.settings = file.router_settings.or(file.litellm_settings).settings()?;
        for (kind, map) in [
            ("fallbacks", &models.settings.fallbacks),
            (
                "context_window_fallbacks",
                &models.settings.context_window_fallbacks,
            ),
        ] {
            for (from, to) in map {
                for name in std::iter::once(from).chain(to) {
                    if !models.groups.contains_key(name) {
                        bail!("router_settings.{kind}: {name:?} is not a model_name of model_list");
                    }
                }
            }
        }
        Ok(models)
    }

    fn add(&mut self, mut deployment: Deployment) {
        deployment.index = self.deployments.len();
        let deployment = Arc::new(deployment);
        self.deployments.push(deployment.clone());
        let name = deployment.model_name.clone();
        match self.groups.get_mut(&name) {
            Some(group) => {
                let group = Arc::make_mut(group);
                group.spec = catalog::either(&group.spec, &deployment.spec);
                group.deployments.push(deployment);
            }
            None => {
                self.names.push(name.clone());
                let group = Group {
                    name: name.clone(),
                    spec: deployment.spec,
                    deployments: vec![deployment],
                };
                self.groups.insert(name, Arc::new(group));
            }
        }
    }

    pub fn group(&self, name: &str) -> Option<&Arc<Group>> {
        self.groups.get(name)
    }

    /// Every deployment, in configuration order.
    pub fn deployments(&self) -> &[Arc<Deployment>] {
        &self.deployments
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The tokenizers the served models count with, each once.
    pub fn tokenizers(&self) -> Vec<Tokenizer> {
        let mut used: Vec<Tokenizer> = Vec::new();
        for deployment in &self.deployments {
            if !used.contains(&deployment.spec.tokenizer) {
                used.push(deployment.spec.tokenizer);
            }
        }
        used
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    model_list: Vec<ModelEntry>,
    #[serde(default)]
    router_settings: RouterEntry,
    #[serde(default)]
    litellm_settings: RouterEntry,
}

/// `router_settings` as written; `litellm_settings` may hold some of the same keys.
#[derive(Deserialize, Default)]
struct RouterEntry {
    routing_strategy: Option<String>,
    num_retries: Option<u32>,
    retry_after: Option<f64>,
    fallbacks: Option<Vec<HashMap<String, Vec<String>>>>,
    context_window_fallbacks: Option<Vec<HashMap<String, Vec<String>>>>,
    allowed_fails: Option<u32>,
    cooldown_time: Option<f64>,
    timeout: Option<f64>,
    request_timeout: Option<f64>,
}

impl RouterEntry {
    /// `self` where it says something, else `other`.
    fn or(self, other: RouterEntry) -> RouterEntry {
        RouterEntry {
            routing_strategy: self.routing_strategy.or(other.routing_strategy),
            num_retries: self.num_retries.or(other.num_retries),
            retry_after: self.retry_after.or(other.retry_after),
            fallbacks: self.fallbacks.or(other.fallbacks),
            context_window_fallbacks: self
                .context_window_fallbacks
                .or(other.context_window_fallbacks),
            allowed_fails: self.allowed_fails.or(other.allowed_fails),
            cooldown_time: self.cooldown_time.or(other.cooldown_time),
            timeout: self.timeout.or(other.timeout),
            request_timeout: self.request_timeout.or(other.request_timeout),
        }
    }

    fn settings(self) -> anyhow::Result<RouterSettings> {
        let defaults = RouterSettings::default();
        let strategy = match self.routing_strategy {
            None => defaults.strategy,
            Some(name) => Strategy::parse(&name).with_context(|| {
                format!(
                    "router_settings.routing_strategy {name:?}: use simple-shuffle, least-busy, \
                     latency-based-routing, usage-based-routing or cost-based-routing"
                )
            })?,
        };
        let num_retries = self.num_retries.unwrap_or(defaults.num_retries);
        if num_retries > 10 {
            bail!("router_settings.num_retries must be at most 10");
        }
        let merged = |lists: Option<Vec<HashMap<String, Vec<String>>>>| {
            let mut map: HashMap<String, Vec<String>> = HashMap::new();
            for (from, to) in lists.into_iter().flatten().flatten() {
                map.entry(from).or_default().extend(to);
            }
            map
        };
        // 0 (no wait) is allowed here, unlike the other durations.
        let retry_after = seconds(
            "router_settings.retry_after",
            self.retry_after.filter(|secs| *secs != 0.0),
        )?;
        Ok(RouterSettings {
            strategy,
            num_retries,
            retry_after: retry_after.unwrap_or(defaults.retry_after),
            fallbacks: merged(self.fallbacks),
            context_window_fallbacks: merged(self.context_window_fallbacks),
            allowed_fails: self.allowed_fails.unwrap_or(defaults.allowed_fails),
            cooldown_time: seconds("router_settings.cooldown_time", self.cooldown_time)?
                .unwrap_or(defaults.cooldown_time),
            timeout: seconds(
                "router_settings.timeout",
                self.timeout.or(self.request_timeout),
            )?
            .unwrap_or(defaults.timeout),
        })
    }
}

#[derive(Deserialize)]
struct ModelEntry {
    model_name: String,
    litellm_params: LitellmParams,
    #[serde(default)]
    model_info: Option<ModelInfo>,
}

#[derive(Deserialize)]
struct LitellmParams {
    model: String,
    api_base: Option<String>,
    api_key: Option<String>,
    timeout: Option<f64>,
    stream_timeout: Option<f64>,
    weight: Option<f64>,
    rpm: Option<u64>,
    tpm: Option<u64>,
    #[serde(flatten)]
    info: ModelInfo,
}

/// LiteLLM's `model_info` keys (also accepted in `litellm_params`), plus Gatehouse's
/// `tokenizer` and `max_tokens_per_image`. USD per token.
#[derive(Deserialize, Default)]
struct ModelInfo {
    /// The deployment's id (`x-litellm-model-id`); only in `model_info`.
    id: Option<String>,
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
    input_cost_per_audio_token: Option<f64>,
    output_cost_per_audio_token: Option<f64>,
    cache_read_input_token_cost: Option<f64>,
    cache_creation_input_token_cost: Option<f64>,
    output_cost_per_reasoning_token: Option<f64>,
    max_output_tokens: Option<u64>,
    /// LiteLLM's older name for the output limit.
    max_tokens: Option<u64>,
    tokenizer: Option<String>,
    max_tokens_per_image: Option<u64>,
}

impl ModelInfo {
    /// `self` where it says something, else `other`.
    fn or(self, other: ModelInfo) -> ModelInfo {
        ModelInfo {
            id: self.id.or(other.id),
            input_cost_per_token: self.input_cost_per_token.or(other.input_cost_per_token),
            output_cost_per_token: self.output_cost_per_token.or(other.output_cost_per_token),
            input_cost_per_audio_token: self
                .input_cost_per_audio_token
                .or(other.input_cost_per_audio_token),
            output_cost_per_audio_token: self
                .output_cost_per_audio_token
                .or(other.output_cost_per_audio_token),
            cache_read_input_token_cost: self
                .cache_read_input_token_cost
                .or(other.cache_read_input_token_cost),
            cache_creation_input_token_cost: self
                .cache_creation_input_token_cost
                .or(other.cache_creation_input_token_cost),
            output_cost_per_reasoning_token: self
                .output_cost_per_reasoning_token
                .or(other.output_cost_per_reasoning_token),
            max_output_tokens: self.max_output_tokens.or(other.max_output_tokens),
            max_tokens: self.max_tokens.or(other.max_tokens),
            tokenizer: self.tokenizer.or(other.tokenizer),
            max_tokens_per_image: self.max_tokens_per_image.or(other.max_tokens_per_image),
        }
    }

    /// The built-in knowledge of the model with this entry's overrides applied.
    fn apply(self, mut spec: ModelSpec, known: bool, name: &str) -> anyhow::Result<ModelSpec> {
        let usd = |field: &str, value: Option<f64>| -> anyhow::Result<Option<Picos>> {
            value
                .map(|usd| {
                    Picos::from_usd(usd)
                        .with_context(|| format!("{field} must be between 0 and 1 USD"))
                })
                .transpose()
        };
        let p = &mut spec.price;
        if let Some(v) = usd("input_cost_per_token", self.input_cost_per_token)? {
            p.input = v;
        }
        if let Some(v) = usd("output_cost_per_token", self.output_cost_per_token)? {
            p.output = v;
        }
        let audio_in = usd(
            "input_cost_per_audio_token",
            self.input_cost_per_audio_token,
        )?;
        p.input_audio = audio_in.or(p.input_audio);
        let audio_out = usd(
            "output_cost_per_audio_token",
            self.output_cost_per_audio_token,
        )?;
        p.output_audio = audio_out.or(p.output_audio);
        let cache_read = usd(
            "cache_read_input_token_cost",
            self.cache_read_input_token_cost,
        )?;
        p.cache_read = cache_read.or(p.cache_read);
        let cache_write = usd(
            "cache_creation_input_token_cost",
            self.cache_creation_input_token_cost,
        )?;
        p.cache_write = cache_write.or(p.cache_write);
        let reasoning = usd(
            "output_cost_per_reasoning_token",
            self.output_cost_per_reasoning_token,
        )?;
        p.output_reasoning = reasoning.or(p.output_reasoning);
        match self.max_output_tokens.or(self.max_tokens) {
            Some(0) => bail!("max_output_tokens must be at least 1"),
            Some(limit) => spec.max_output_tokens = limit,
            None if !known => tracing::warn!(
                model = %name,
                limit = catalog::DEFAULT_MAX_OUTPUT_TOKENS,
                "output limit unknown: requests without max_tokens are sent with this one; set model_info.max_output_tokens"
            ),
            None => {}
        }
        if let Some(tokenizer) = self.tokenizer {
            spec.tokenizer = Tokenizer::parse(&tokenizer).with_context(|| {
                format!("tokenizer {tokenizer:?}: use o200k_base, cl100k_base or bytes")
            })?;
        }
        if let Some(image) = self.max_tokens_per_image {
            spec.image_tokens = catalog::ImageTokens {
                low: image,
                high: image,
            };
        }
        Ok(spec)
    }
}

/// A deployment's id when its `model_info` names none: the same wherever the same entry is
/// configured, so a fleet agrees on it.
fn model_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

fn seconds(field: &str, value: Option<f64>) -> anyhow::Result<Option<Duration>> {
    value
        .map(|secs| {
            if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 {
                Ok(Duration::from_secs_f64(secs))
            } else {
                bail!("{field} must be a number of seconds between 0 and 86400")
            }
        })
        .transpose()
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
        let resolve = |value: Option<&String>| value.map(|v| resolve_secret(v)).transpose();
        let upstream = adapter::configure(&adapter::Entry {
            provider,
            model,
            model_name: &self.model_name,
            api_base: resolve(params.api_base.as_ref())?,
            api_key: resolve(params.api_key.as_ref())?,
        })?;
        let builtin = catalog::builtin(model).or_else(|| catalog::builtin(&self.model_name));
        let known = builtin.is_some();
        let base = builtin.unwrap_or_else(|| catalog::unknown(model));
        // In `litellm_params`, `max_tokens` is a default for requests, not the model's limit.
        let from_params = ModelInfo {
            max_tokens: None,
            id: None,
            ..params.info
        };
        let mut info = self.model_info.unwrap_or_default().or(from_params);
        let id = match info.id.take() {
            Some(id) if id.is_empty() || id.len() > 200 => {
                bail!("model_info.id must be 1 to 200 characters")
            }
            Some(id) => id,
            None => {
                let base = upstream.api_base();
                // The key as written (`os.environ/NAME`, or the key itself, as LiteLLM hashes
                // it): deployments of one model on several keys each get their own id.
                let key = params.api_key.as_deref().unwrap_or_default();
                model_id(&[
                    &self.model_name,
                    &params.model,
                    base.unwrap_or_default(),
                    key,
                ])
            }
        };
        if let Some(weight) = params.weight {
            if !(weight.is_finite() && weight > 0.0 && weight <= 1e6) {
                bail!("weight must be a number above 0");
            }
        }
        if params.rpm == Some(0) || params.tpm == Some(0) {
            bail!("rpm and tpm must be at least 1");
        }
        let spec = info.apply(base, known, &self.model_name)?;
        if spec.price == Price::default() {
            tracing::warn!(model = %self.model_name, "no price known: its requests cost $0; set model_info.input_cost_per_token");
        }
        let timeout = seconds("timeout", params.timeout)?.unwrap_or(DEFAULT_TIMEOUT);
        Ok(Deployment {
            id,
            index: 0,
            weight: params.weight,
            rpm: params.rpm,
            tpm: params.tpm,
            model_name: self.model_name,
            upstream,
            spec,
            timeout,
            stream_timeout: seconds("stream_timeout", params.stream_timeout)?.unwrap_or(timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first<'a>(models: &'a Models, name: &str) -> &'a Arc<Deployment> {
        &models.group(name).expect(name).deployments[0]
    }

    /// Which adapter a deployment has, the model it asks for, and where.
    fn target(deployment: &Deployment) -> (&'static str, &str, Option<&str>) {
        (
            deployment.upstream.kind(),
            deployment.upstream_model(),
            deployment.api_base(),
        )
    }

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
      timeout: 2.5
      stream_timeout: 30
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      output_cost_per_reasoning_token: 0.000003
      cache_read_input_token_cost: 0.0000001
      max_output_tokens: 2048
  - model_name: fake
    litellm_params:
      model: mock/anything
litellm_settings:
  drop_params: true
"#,
        )
        .expect("valid config");
        assert_eq!(models.names(), ["gpt-4o", "local-llama", "fake"]);
        let gpt = first(&models, "gpt-4o");
        assert_eq!(
            target(gpt),
            ("openai", "gpt-4o", Some("https://api.openai.com/v1"))
        );
        assert_eq!(gpt.spec, catalog::builtin("gpt-4o").expect("known"));
        assert_eq!(gpt.timeout, DEFAULT_TIMEOUT);
        let llama = first(&models, "local-llama");
        assert_eq!(
            llama.spec.price,
            Price {
                output_reasoning: Some(Picos(3_000_000)),
                cache_read: Some(Picos(100_000)),
                ..Price::plain(Picos(1_000_000), Picos(2_000_000))
            }
        );
        assert_eq!(llama.spec.max_output_tokens, 2048);
        assert_eq!(llama.spec.tokenizer, Tokenizer::Bytes);
        assert_eq!(llama.timeout, Duration::from_millis(2500));
        assert_eq!(llama.stream_timeout, Duration::from_secs(30));
        assert_eq!(
            target(llama),
            (
                "openai",
                "meta-llama/Llama-3-8B",
                Some("http://127.0.0.1:8000/v1")
            )
        );
        assert_eq!(target(first(&models, "fake")), ("mock", "fake", None));
    }

    #[test]
    fn reads_router_settings_and_groups_deployments() {
        std::env::set_var("GATEHOUSE_TEST_KEY_A", "sk-a");
        // The README's example.
        let models = Models::from_yaml(
            r#"
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/GATEHOUSE_TEST_KEY_A, weight: 3, rpm: 600}
    model_info: {id: gpt-4o-east}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: https://west.example/v1, weight: 1}
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: sk-ant}
router_settings:
  routing_strategy: latency-based-routing
  num_retries: 1
  retry_after: 0
  fallbacks: [{gpt-4o: [claude]}]
  context_window_fallbacks: [{gpt-4o: [claude]}]
  allowed_fails: 1
  cooldown_time: 30
  timeout: 60
"#,
        )
        .expect("valid config");
        assert_eq!(models.names(), ["gpt-4o", "claude"]);
        let group = models.group("gpt-4o").expect("group");
        assert_eq!(group.deployments.len(), 2);
        assert_eq!(group.deployments[0].id, "gpt-4o-east");
        assert_eq!(group.deployments[0].rpm, Some(600));
        assert_eq!(group.deployments[1].weight, Some(1.0));
        assert_eq!(group.deployments[1].id.len(), 64);
        assert_eq!(
            target(first(&models, "claude")),
            (
                "anthropic",
                "claude-sonnet-4-5",
                Some("https://api.anthropic.com/v1/messages")
            )
        );
        let settings = &models.settings;
        assert_eq!(settings.strategy, Strategy::LatencyBased);
        assert_eq!(settings.num_retries, 1);
        assert_eq!(settings.retry_after, Duration::ZERO);
        assert_eq!(settings.fallbacks["gpt-4o"], ["claude"]);
        assert_eq!(settings.context_window_fallbacks["gpt-4o"], ["claude"]);
        assert_eq!(settings.allowed_fails, 1);
        assert_eq!(settings.cooldown_time, Duration::from_secs(30));
        assert_eq!(settings.timeout, Duration::from_secs(60));
        // Without router_settings: LiteLLM's defaults.
        let plain = Models::from_yaml(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: mock/m\n",
        )
        .expect("valid");
        assert_eq!(plain.settings, RouterSettings::default());
        assert_eq!(plain.settings.num_retries, 2);
        // One model over two keys, or the same entry twice: a deployment each.
        let spread = Models::from_yaml(
            "model_list:\n\
             - {model_name: m, litellm_params: {model: openai/m, api_key: sk-one}}\n\
             - {model_name: m, litellm_params: {model: openai/m, api_key: sk-two}}\n\
             - {model_name: m, litellm_params: {model: openai/m, api_key: sk-two}}\n",
        )
        .expect("valid");
        let ids: Vec<&str> = spread
            .group("m")
            .expect("m")
            .deployments
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(ids.len(), 3);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(ids[2], format!("{}-2", ids[1]));
        let named_twice = "model_list:\n\
             - {model_name: m, litellm_params: {model: mock/m}, model_info: {id: x}}\n\
             - {model_name: m, litellm_params: {model: mock/m}, model_info: {id: x}}\n";
        assert!(Models::from_yaml(named_twice).is_err());
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
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: mock/m\n      timeout: -1",
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: mock/m\n    model_info:\n      tokenizer: gpt2",
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: mock/m\n    model_info:\n      max_output_tokens: 0",
        ] {
            assert!(Models::from_yaml(bad).is_err(), "{bad}");
        }
    }
}
