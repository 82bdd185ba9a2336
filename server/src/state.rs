//! The state every handler shares.

use crate::live::LiveTeams;
use crate::{
    auth::Origins,
    gate::Gate,
    metrics::Metrics,
    providers::router::Router,
    service::{secrets::MasterKey, Ctx},
    spend::SpendSink,
    storage::Storage,
    throttle::{Network, Throttle},
};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub gate: Arc<Gate>,
    /// The served models and which deployment answers.
    pub router: Arc<Router>,
    pub spend: SpendSink,
    /// Pooled connections to the upstream providers.
    pub http: reqwest::Client,
    /// What is read of a provider's answer at most.
    pub upstream_caps: crate::providers::call::Caps,
    pub master_key: Arc<MasterKey>,
    pub session_ttl: chrono::Duration,
    /// Failed authentication, per address and account.
    pub throttle: Arc<Throttle>,
    /// Where signed-in browsers may act from.
    pub origins: Arc<Origins>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[Network]>,
    pub leptos_options: LeptosOptions,
    pub metrics: Arc<Metrics>,
    /// May read /metrics besides the admin.
    pub metrics_token: Option<Arc<MasterKey>>,
    /// The figures the console's open pages follow.
    pub live: Arc<LiveTeams>,
    /// What the operator configured of budget alerts.
    pub alerts: Arc<crate::service::alerts::AlertSettings>,
    /// How fast each caller may change things.
    pub pace: Arc<crate::pace::Pace>,
    /// Keys one user may hold at most.
    pub quotas: crate::service::Quotas,
    /// Single sign-on, when configured.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
}

impl AppState {
    /// Now, on the clock budgets, expiries and sessions run on (tests set and move it).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.gate.clock.now()
    }

    /// Gatehouse acting for itself (or the admin key).
    pub fn ctx(&self) -> Ctx<'_> {
        self.ctx_as(&crate::service::access::SYSTEM)
    }

    /// `actor` making a change in `work`: the services write through its transaction.
    pub fn ctx_in<'a>(
        &'a self,
        actor: &'a crate::service::access::Actor,
        work: &'a crate::service::work::Work,
    ) -> Ctx<'a> {
        Ctx {
            storage: work.storage(),
            work: Some(work),
            ..self.ctx_as(actor)
        }
    }

    /// `actor` acting: the services check what it may do.
    pub fn ctx_as<'a>(&'a self, actor: &'a crate::service::access::Actor) -> Ctx<'a> {
        Ctx {
            storage: self.storage.as_ref(),
            work: None,
            gate: &self.gate,
            actor,
            alerts: &self.alerts,
            quotas: &self.quotas,
        }
    }
}
