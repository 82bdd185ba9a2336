//! The budget and limits every level holds (teams, keys, and the levels to come), between the
//! API and storage, with their rules: checked once here for every level. In an update `None`
//! leaves a field unchanged and `Some(None)` clears it.

use super::Error;
use super::{duration::Period, money::usd_to_nanos, timestamp, validate};
use crate::money::Nanos;
use crate::storage::{BudgetPatch, BudgetRow};
use app::types::{Budget, BudgetUpdate, NewBudget};
use chrono::{DateTime, Utc};

/// A budget period as stored, and the first reset it implies.
fn budget_period(
    duration: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Option<String>, Option<i64>), Error> {
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

fn max_budget(usd: Option<f64>) -> Result<Option<Nanos>, Error> {
    usd_field("max_budget", usd)
}

/// An amount in USD a request sets (checked: finite, not negative).
fn usd_field(param: &str, usd: Option<f64>) -> Result<Option<Nanos>, Error> {
    usd.map(|usd| usd_to_nanos(param, usd)).transpose()
}

/// A new level's budget: nothing spent, in its first window.
pub fn new_budget(b: &NewBudget, now: DateTime<Utc>) -> Result<BudgetRow, Error> {
    let (budget_duration, budget_reset_at) = budget_period(b.budget_duration.as_deref(), now)?;
    Ok(BudgetRow {
        max_budget: max_budget(b.max_budget)?,
        soft_budget: usd_field("soft_budget", b.soft_budget)?,
        spend: Nanos::ZERO,
        tpm_limit: validate::limit("tpm_limit", b.tpm_limit)?,
        rpm_limit: validate::limit("rpm_limit", b.rpm_limit)?,
        max_parallel_requests: validate::limit("max_parallel_requests", b.max_parallel_requests)?,
        budget_duration,
        budget_reset_at,
        budget_window: 0,
    })
}

/// What an update changes of a budget. A changed period moves the next reset; spend stays.
pub fn budget_patch(b: &BudgetUpdate, now: DateTime<Utc>) -> Result<BudgetPatch, Error> {
    let (budget_duration, budget_reset_at) = match &b.budget_duration {
        None => (None, None),
        Some(duration) => {
            let (duration, reset) = budget_period(duration.as_deref(), now)?;
            (Some(duration), Some(reset))
        }
    };
    let limit = |param: &str, value: Option<Option<u64>>| {
        value.map(|v| validate::limit(param, v)).transpose()
    };
    Ok(BudgetPatch {
        max_budget: b.max_budget.map(max_budget).transpose()?,
        soft_budget: b
            .soft_budget
            .map(|v| usd_field("soft_budget", v))
            .transpose()?,
        tpm_limit: limit("tpm_limit", b.tpm_limit)?,
        rpm_limit: limit("rpm_limit", b.rpm_limit)?,
        max_parallel_requests: limit("max_parallel_requests", b.max_parallel_requests)?,
        budget_duration,
        budget_reset_at,
    })
}

/// `row` with `patch`'s limits applied (spend and windows as they are).
pub fn patched(row: &BudgetRow, patch: &BudgetPatch) -> BudgetRow {
    BudgetRow {
        max_budget: patch.max_budget.unwrap_or(row.max_budget),
        soft_budget: patch.soft_budget.unwrap_or(row.soft_budget),
        tpm_limit: patch.tpm_limit.unwrap_or(row.tpm_limit),
        rpm_limit: patch.rpm_limit.unwrap_or(row.rpm_limit),
        max_parallel_requests: patch
            .max_parallel_requests
            .unwrap_or(row.max_parallel_requests),
        ..row.clone()
    }
}

/// A level's budget as the API shows it, with the request path's spend when the gate has it
/// (ahead of the database by up to one flush).
pub fn budget_view(row: &BudgetRow, live_spend: Option<Nanos>) -> Budget {
    let spend = live_spend.unwrap_or(row.spend);
    Budget {
        max_budget: row.max_budget.map(Nanos::usd),
        soft_budget: row.soft_budget.map(Nanos::usd),
        spend: spend.usd(),
        tpm_limit: row.tpm_limit.and_then(|v| u64::try_from(v).ok()),
        rpm_limit: row.rpm_limit.and_then(|v| u64::try_from(v).ok()),
        max_parallel_requests: row
            .max_parallel_requests
            .and_then(|v| u64::try_from(v).ok()),
        budget_duration: row.budget_duration.clone(),
        budget_reset_at: row.budget_reset_at.map(timestamp),
    }
}

pub fn models_update(models: Option<Option<Vec<String>>>) -> Result<Option<Vec<String>>, Error> {
    models
        .map(|models| validate::models("models", models.unwrap_or_default()))
        .transpose()
}
