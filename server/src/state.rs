//! The state every handler shares.

use crate::{service::secrets::MasterKey, storage::Storage};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub master_key: Arc<MasterKey>,
    pub session_ttl: chrono::Duration,
    pub leptos_options: LeptosOptions,
}
