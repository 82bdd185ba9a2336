//! Any OpenAI-compatible server (OpenAI, vLLM, Ollama, Groq, ...): the request goes as it is,
//! the answer comes back as it is.

use super::{
    adapter::{Entry, Provider, Try},
    call::{Answer, UpstreamError},
};
use crate::request::Request;
use async_trait::async_trait;
use std::sync::Arc;

pub struct OpenAi {
    /// Without a trailing slash, e.g. `https://api.openai.com/v1`.
    base_url: String,
    api_key: Option<String>,
    /// The model name the upstream knows.
    model: String,
}

/// Never its key.
impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

pub fn configure(entry: &Entry<'_>) -> anyhow::Result<Arc<dyn Provider>> {
    let default_base = match entry.provider {
        "openai" => Some("https://api.openai.com/v1"),
        "groq" => Some("https://api.groq.com/openai/v1"),
        "ollama" | "ollama_chat" => Some("http://localhost:11434/v1"),
        _ => None,
    };
    Ok(Arc::new(OpenAi {
        base_url: entry.base_url(default_base)?,
        api_key: entry.api_key.clone(),
        model: entry.model.to_string(),
    }))
}

#[async_trait]
impl Provider for OpenAi {
    fn kind(&self) -> &'static str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn api_base(&self) -> Option<&str> {
        Some(&self.base_url)
    }

    async fn send(&self, request: &Request, at: &Try<'_>) -> Result<Answer, UpstreamError> {
        let path = request.endpoint().path();
        let body = match request {
            Request::Chat(chat) => serde_json::to_vec(chat),
            Request::Embeddings(embeddings) => serde_json::to_vec(embeddings),
        }
        .map_err(|_| UpstreamError::BadAnswer)?;
        let mut call = at
            .http
            .post(format!("{}/{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(api_key) = &self.api_key {
            call = call.bearer_auth(api_key);
        }
        at.post(call, request.streaming(), self.api_key.as_deref())
            .await
    }
}
