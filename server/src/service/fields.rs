//! The budget and limit fields that teams and keys share, converted from the API to storage:
//! `None` leaves a field unchanged in an update, `Some(None)` clears it.

use super::{duration::Period, money::usd_to_nanos, validate};
use crate::error::ApiError;
use chrono::{DateTime, Utc};

/// A budget period as stored, and the first reset it implies.
pub fn budget_period(
    duration: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Option<String>, Option<i64>), ApiError> {
    match duration {
        None => Ok((None, None)),
        Some(text) => {
            let period = Period::parse("budget_duration", text)?;
            Ok((
                Some(text.to_string()),
                Some(period.next_reset(now).timestamp()),
            ))
        }
    }
}

/// [`budget_period`] for an update: a changed period moves the next reset, spend stays.
#[allow(clippy::type_complexity)]
pub fn budget_period_update(
    duration: Option<Option<String>>,
    now: DateTime<Utc>,
) -> Result<(Option<Option<String>>, Option<Option<i64>>), ApiError> {
    match duration {
        None => Ok((None, None)),
        Some(duration) => {
            let (duration, reset) = budget_period(duration.as_deref(), now)?;
            Ok((Some(duration), Some(reset)))
        }
    }
}

pub fn budget(usd: Option<f64>) -> Result<Option<i64>, ApiError> {
    usd.map(|usd| usd_to_nanos("max_budget", usd)).transpose()
}

pub fn budget_update(usd: Option<Option<f64>>) -> Result<Option<Option<i64>>, ApiError> {
    usd.map(budget).transpose()
}

pub fn limit_update(
    param: &str,
    limit: Option<Option<u64>>,
) -> Result<Option<Option<i64>>, ApiError> {
    limit.map(|limit| validate::limit(param, limit)).transpose()
}

pub fn models_update(models: Option<Option<Vec<String>>>) -> Result<Option<Vec<String>>, ApiError> {
    models
        .map(|models| validate::models("models", models.unwrap_or_default()))
        .transpose()
}
