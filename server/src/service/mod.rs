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

pub use error::Error;

use crate::{gate::Gate, storage::Storage};
use chrono::{DateTime, SecondsFormat, Utc};

/// What the admin services change: the database first, then the request path's memory, both
/// before the caller gets an answer.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub storage: &'a dyn Storage,
    pub gate: &'a Gate,
    /// Who is acting: what they may do is checked by the services.
    pub actor: &'a access::Actor,
    /// What the operator configured of budget alerts.
    pub alerts: &'a alerts::AlertSettings,
    pub quotas: &'a Quotas,
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
