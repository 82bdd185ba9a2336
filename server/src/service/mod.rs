//! What the API does, in plain async functions that know nothing of HTTP frameworks: handlers
//! extract and delegate here.

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
}

/// Unix seconds as the API shows them: RFC 3339 in UTC.
pub fn timestamp(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}
