//! What the API does, in plain async functions that know nothing of HTTP frameworks: handlers
//! extract and delegate here.

pub mod duration;
pub mod fields;
pub mod keys;
pub mod money;
pub mod secrets;
pub mod session;
pub mod teams;
pub mod validate;

use chrono::{DateTime, SecondsFormat, Utc};

/// Unix seconds as the API shows them: RFC 3339 in UTC.
pub fn timestamp(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}
