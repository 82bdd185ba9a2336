//! One adapter per provider. An adapter is made from its `model_list` entry, builds the
//! provider's request from the typed one, sends it within the try's limits, and decodes the
//! answer or the stream into OpenAI's chat shape (which the request path reads usage from and
//! charges by), its failures sorted into [`UpstreamError`]s. Retries, fallbacks, reservations
//! and charging sit above, in `service::proxy`, the same for every provider.
//!
//! Adding a provider is one file with a type that implements [`Provider`] and a `configure`
//! function, plus its line in [`PROVIDERS`].

use super::{
    anthropic,
    call::{self, Answer, Caps, UpstreamError},
    mock, openai,
};
use crate::request::Request;
use anyhow::{bail, Context};
use async_trait::async_trait;
use std::{sync::Arc, time::Duration};

/// A provider's `configure`: its adapter for one `model_list` entry.
pub type Configure = fn(&Entry<'_>) -> anyhow::Result<Arc<dyn Provider>>;

/// The providers a `litellm_params.model` prefix names (LiteLLM's names), and how each is
/// configured.
pub const PROVIDERS: &[(&[&str], Configure)] = &[
    (&["mock"], mock::configure),
    (
        &[
            "openai",
            "groq",
            "ollama",
            "ollama_chat",
            "hosted_vllm",
            "openai_compatible",
        ],
        openai::configure,
    ),
    (&["anthropic"], anthropic::configure),
];

/// The adapter for a `provider/model` entry.
pub fn configure(entry: &Entry<'_>) -> anyhow::Result<Arc<dyn Provider>> {
    let Some((_, configure)) = PROVIDERS
        .iter()
        .find(|(names, _)| names.contains(&entry.provider))
    else {
        bail!(
            "provider {:?} is not supported: use anthropic/<model>, or any OpenAI-compatible \
             server as openai/<model> with api_base",
            entry.provider
        )
    };
    configure(entry)
}

/// What a `model_list` entry says of its provider, its secrets resolved.
pub struct Entry<'a> {
    /// `openai` of `openai/gpt-4o`.
    pub provider: &'a str,
    /// `gpt-4o` of `openai/gpt-4o`.
    pub model: &'a str,
    /// The name callers use.
    pub model_name: &'a str,
    pub api_base: Option<String>,
    pub api_key: Option<String>,
}

impl Entry<'_> {
    /// `api_base`, or `default`, checked and without a trailing slash.
    pub fn base_url(&self, default: Option<&str>) -> anyhow::Result<String> {
        let base = match (&self.api_base, default) {
            (Some(base), _) => base.as_str(),
            (None, Some(default)) => default,
            (None, None) => bail!("provider {} needs litellm_params.api_base", self.provider),
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("api_base must start with http:// or https://");
        }
        Ok(base.trim_end_matches('/').to_string())
    }

    /// The key, or the one in the environment variable `var` when the entry names none.
    pub fn api_key_or_env(&self, var: &str) -> Option<String> {
        self.api_key.clone().or_else(|| std::env::var(var).ok())
    }
}

/// One deployment's provider.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Which adapter it is (`openai`, `anthropic`, `mock`).
    fn kind(&self) -> &'static str;

    /// The model the provider is asked for.
    fn model(&self) -> &str;

    /// Where it is, without its key; `None` in-process.
    fn api_base(&self) -> Option<&str>;

    /// One try of `request` (already carrying this deployment's model and output limit): the
    /// whole answer as an OpenAI chat (or embeddings) body, or a stream of OpenAI chunks.
    async fn send(&self, request: &Request, at: &Try<'_>) -> Result<Answer, UpstreamError>;
}

/// What one try may use.
pub struct Try<'a> {
    pub http: &'a reqwest::Client,
    /// The answer's id and creation time, for answers the gateway writes.
    pub request_id: &'a str,
    pub created: i64,
    /// A non-streamed call's whole time, and a stream's wait for each chunk (its
    /// deployment's).
    pub timeout: Duration,
    pub stream_timeout: Duration,
    /// What is left of the request's overall deadline: no answer, nor first chunk, past it.
    pub limit: Duration,
    pub caps: &'a Caps,
}

impl Try<'_> {
    /// Sends a built HTTP request: its whole answer within the timeout, or its stream of
    /// bytes; a failure status sorted, `secret` never in what a caller is told.
    pub async fn post(
        &self,
        call: reqwest::RequestBuilder,
        streaming: bool,
        secret: Option<&str>,
    ) -> Result<Answer, UpstreamError> {
        if streaming {
            call::stream(call, self.stream_timeout, self.limit, secret, self.caps).await
        } else {
            tokio::time::timeout(
                self.timeout.min(self.limit),
                call::whole(call, secret, self.caps),
            )
            .await
            .map_err(|_| UpstreamError::Timeout)?
        }
    }
}

/// The resolved value of LiteLLM's `os.environ/NAME` indirection.
pub fn resolve_secret(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix("os.environ/") {
        Some(var) => {
            std::env::var(var).with_context(|| format!("environment variable {var} is not set"))
        }
        None => Ok(value.to_string()),
    }
}
