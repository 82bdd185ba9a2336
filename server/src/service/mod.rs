//! What the API does, in plain async functions that know nothing of HTTP frameworks: handlers
//! extract and delegate here.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod budgets;
pub mod duration;
mod error;
pub mod estimate;
pub mod fields;
pub mod keys;
pub mod litellm_fields;
pub mod live;
pub mod members;
pub mod model_list;
pub mod money;
pub mod organizations;
pub mod proxy;
pub mod secrets;
pub mod session;
pub mod spend;
pub mod teams;
pub mod usage;
pub mod users;
pub mod validate;
pub mod work;

pub use error::Error;

use crate::{
    gate::Gate,
    storage::{BudgetOwner, Storage},
};
use chrono::{DateTime, SecondsFormat, Utc};

/// What the services work with. An admin change runs in a unit of work ([`work::Work`]):
/// `storage` is its transaction, and the request path's memory follows once it commits.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub storage: &'a dyn Storage,
    /// The change this runs in; `None` for reads and Gatehouse's own background work.
    pub work: Option<&'a work::Work>,
    pub gate: &'a Gate,
    /// Who is acting: what they may do is checked by the services.
    pub actor: &'a access::Actor,
    /// What the operator configured of budget alerts.
    pub alerts: &'a alerts::AlertSettings,
    pub quotas: &'a Quotas,
}

impl Ctx<'_> {
    /// Says that `owner` `id` is about to be written (made, changed or deleted): call it before
    /// the write. Once the change commits, this instance's gate reads it again and the fleet
    /// hears of it.
    pub async fn touch(self, owner: BudgetOwner, id: &str) {
        match self.work {
            Some(work) => work.touch(self, owner, id).await,
            None => tracing::error!(?owner, id, "a change outside a unit of work"),
        }
    }

    /// Reports a change that is no level (an invitation) for the audit log.
    pub fn report(self, changed: audit::Changed) {
        if let Some(work) = self.work {
            work.report(changed);
        }
    }
}

/// What one person may hold at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub keys_per_user: u64,
}

impl Quotas {
    /// For Gatehouse's own background work, which makes no keys.
    pub const NONE: Self = Self {
        keys_per_user: u64::MAX,
    };
}

/// Unix milliseconds as the API shows them: RFC 3339 in UTC, with milliseconds.
pub fn timestamp_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Unix seconds as the API shows them: RFC 3339 in UTC.
pub fn timestamp(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}
