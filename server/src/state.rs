//! The state every handler shares.

use crate::{
    gate::Gate, providers::Models, service::secrets::MasterKey, service::Ctx, spend::SpendSink,
    storage::Storage,
};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub gate: Arc<Gate>,
    pub models: Arc<Models>,
    pub spend: SpendSink,
    /// Pooled connections to the upstream providers.
    pub http: reqwest::Client,
    pub master_key: Arc<MasterKey>,
    pub session_ttl: chrono::Duration,
    pub leptos_options: LeptosOptions,
}

impl AppState {
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            storage: self.storage.as_ref(),
            gate: &self.gate,
        }
    }
}
