//! Budget alerts: when a level's spend crosses a threshold of its `max_budget` (50, 80 and
//! 100 % unless configured), its `soft_budget`, or when the current rate runs the budget out
//! before its reset, an event goes to the operator's webhook (and the team's own). Each event
//! is made once per (scope, id, budget window, threshold) — its id is derived from those, the
//! database keeps one row per event and destination — and is kept in the outbox until a
//! delivery succeeds, so a receiver sees each crossing once, with retries across restarts.

use super::{duration::Period, secrets, timestamp, timestamp_ms, validate};
use super::{Ctx, Error};
use crate::money::Nanos;
use crate::storage::{AlertFilter, AlertRow, BudgetLevel, BudgetOwner, Storage, StorageError};
use app::types::{AlertEntry, AlertList, AlertQuery};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// What the operator configured.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    /// Percentages of `max_budget`.
    pub thresholds: Vec<u32>,
    /// The operator's webhook.
    pub webhook_url: Option<String>,
    /// Hosts a team's webhook may name.
    pub team_hosts: Vec<String>,
    /// Whether a team's webhook may reach an address that is not public, or another port.
    pub allow_private: bool,
    /// Whether a secret to sign with is configured (a team's webhook needs one).
    pub signing: bool,
}

/// No alerts (start-up and background work never set a team's webhook).
pub static NONE: AlertSettings = AlertSettings {
    thresholds: Vec::new(),
    webhook_url: None,
    team_hosts: Vec::new(),
    allow_private: false,
    signing: false,
};

/// A team's `alert_webhook_url`: http(s), to a host the operator allows, and only when alerts
/// are signed.
pub fn check_team_webhook(settings: &AlertSettings, url: &str) -> Result<(), Error> {
    let param = "alert_webhook_url";
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| Error::invalid(param, "alert_webhook_url must be an http(s) URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    if !settings
        .team_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(host))
    {
        return Err(Error::invalid(
            param,
            "alert_webhook_url must name a host the operator allows \
             (GATEHOUSE_ALERT_WEBHOOK_HOSTS)",
        ));
    }
    if !settings.signing {
        return Err(Error::invalid(
            param,
            "alerts cannot be sent before the operator sets GATEHOUSE_ALERT_WEBHOOK_SECRET",
        ));
    }
    Ok(())
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`: the `X-Gatehouse-Signature` header.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One crossing of one level.
struct Crossing {
    event: &'static str,
    /// The threshold's name in the dedup key: `50`, `soft`, `forecast`.
    label: String,
    fields: Value,
}

/// What `level` has crossed in its current window at `now`.
fn crossings(settings: &AlertSettings, level: &BudgetLevel, now: DateTime<Utc>) -> Vec<Crossing> {
    let b = &level.budget;
    let spend = i128::from(b.spend);
    let mut found = Vec::new();
    if let Some(max) = b.max_budget.filter(|m| *m > Nanos::ZERO) {
        for threshold in &settings.thresholds {
            if spend * 100 >= i128::from(max) * i128::from(*threshold) {
                found.push(Crossing {
                    event: "budget_threshold",
                    label: threshold.to_string(),
                    fields: json!({ "threshold": threshold }),
                });
            }
        }
        if let Some(projected) = forecast(level, now).filter(|p| *p > i128::from(max)) {
            if spend < i128::from(max) {
                let projected = Nanos(i64::try_from(projected).unwrap_or(i64::MAX));
                found.push(Crossing {
                    event: "budget_forecast",
                    label: "forecast".to_string(),
                    fields: json!({ "forecast_spend": projected.usd() }),
                });
            }
        }
    }
    if let Some(soft) = b.soft_budget {
        if spend >= i128::from(soft) {
            found.push(Crossing {
                event: "soft_budget",
                label: "soft".to_string(),
                fields: json!({ "soft_budget": soft.usd() }),
            });
        }
    }
    found
}

/// The spend the window ends with at the current rate, once a tenth of it has passed.
fn forecast(level: &BudgetLevel, now: DateTime<Utc>) -> Option<i128> {
    let b = &level.budget;
    let reset = DateTime::<Utc>::from_timestamp(b.budget_reset_at?, 0)?;
    let period = Period::parse("budget_duration", b.budget_duration.as_deref()?).ok()?;
    let length = (period.after(reset) - reset).num_seconds();
    let elapsed = length - (reset - now).num_seconds();
    if length <= 0 || b.spend <= Nanos::ZERO || elapsed * 10 < length {
        return None;
    }
    Some(i128::from(b.spend) * i128::from(length) / i128::from(elapsed))
}

/// Finds every crossing not alerted yet and puts its events in the outbox. `alerted` holds
/// the dedup keys this instance already stored (the database refuses the others anyway).
pub async fn detect(
    storage: &dyn Storage,
    settings: &AlertSettings,
    alerted: &mut HashSet<String>,
    now: DateTime<Utc>,
) -> Result<u64, StorageError> {
    let mut team_hooks: Option<HashMap<String, String>> = None;
    let mut made = 0;
    for owner in BudgetOwner::ALL {
        for level in storage.budget_levels(owner).await? {
            let mut rows = Vec::new();
            let mut keys = Vec::new();
            for crossing in crossings(settings, &level, now) {
                let dedup = format!(
                    "{}:{}:{}:{}",
                    owner.name(),
                    level.id,
                    level.budget.budget_window,
                    crossing.label
                );
                if alerted.contains(&dedup) {
                    continue;
                }
                if team_hooks.is_none() {
                    let teams = storage.teams().await?;
                    team_hooks = Some(
                        teams
                            .into_iter()
                            .filter_map(|t| t.alert_webhook_url.map(|url| (t.team_id, url)))
                            .collect(),
                    );
                }
                let team_hook = level
                    .team_id
                    .as_ref()
                    .and_then(|team| team_hooks.as_ref().and_then(|hooks| hooks.get(team)));
                let destinations: Vec<String> = settings
                    .webhook_url
                    .iter()
                    .chain(team_hook)
                    .cloned()
                    .collect();
                let event_id = format!("evt_{}", &secrets::sha256_hex(&dedup)[..32]);
                let b = &level.budget;
                let mut payload = json!({
                    "event_id": event_id,
                    "event": crossing.event,
                    "scope": owner.name(),
                    "id": level.id,
                    "spend": b.spend.usd(),
                    "max_budget": b.max_budget.map(Nanos::usd),
                    "budget_reset_at": b.budget_reset_at.map(timestamp),
                });
                if let (Some(payload), Some(fields)) =
                    (payload.as_object_mut(), crossing.fields.as_object())
                {
                    payload.extend(fields.clone());
                }
                let body = payload.to_string();
                let at = now.timestamp_millis();
                let to = if destinations.is_empty() {
                    vec![String::new()]
                } else {
                    destinations
                };
                for destination in to {
                    rows.push(AlertRow {
                        event_id: event_id.clone(),
                        destination,
                        dedup_key: dedup.clone(),
                        event: crossing.event.to_string(),
                        scope: owner.name().to_string(),
                        target_id: level.id.clone(),
                        payload: body.clone(),
                        created_at: at,
                        attempts: 0,
                        next_attempt_at: at,
                        delivered_at: None,
                        last_error: None,
                    });
                }
                keys.push(dedup);
            }
            if !rows.is_empty() {
                made += storage.insert_alerts(&rows).await?;
                alerted.extend(keys);
            }
        }
    }
    Ok(made)
}

/// An alert in words, for the console.
fn summary(kind: &str, event: &Value) -> String {
    let usd = |field: &str| format!("${:.2}", event[field].as_f64().unwrap_or(0.0));
    match kind {
        "budget_threshold" => format!("{}% of the budget", event["threshold"]),
        "soft_budget" => format!("soft budget {}", usd("soft_budget")),
        "budget_forecast" => format!("on course for {} before the reset", usd("forecast_spend")),
        other => other.to_string(),
    }
}

/// A page of the alerts, newest first, with their delivery.
pub async fn list(ctx: Ctx<'_>, query: AlertQuery) -> Result<AlertList, Error> {
    ctx.actor.must_read_all("read the budget alerts")?;
    let (page, size, offset) = validate::page(query.page, query.size)?;
    if let Some(scope) = &query.scope {
        if BudgetOwner::from_name(scope).is_none() {
            return Err(Error::invalid(
                "scope",
                "scope is one of organization, team, member, user, key",
            ));
        }
    }
    if let Some(id) = &query.id {
        validate::label("id", id)?;
    }
    let filter = AlertFilter {
        scope: query.scope,
        target_id: query.id,
    };
    let (rows, total) = ctx.storage.alerts(&filter, offset, size).await?;
    Ok(AlertList {
        alerts: rows
            .into_iter()
            .map(|r| {
                let event: Value = serde_json::from_str(&r.payload).unwrap_or(Value::Null);
                (r, event)
            })
            .map(|(r, event)| AlertEntry {
                summary: summary(&r.event, &event),
                event,
                event_id: r.event_id,
                kind: r.event,
                scope: r.scope,
                id: r.target_id,
                destination: (!r.destination.is_empty()).then_some(r.destination),
                created_at: timestamp_ms(r.created_at),
                attempts: u64::try_from(r.attempts).unwrap_or(0),
                delivered_at: r.delivered_at.map(timestamp_ms),
                next_attempt_at: r
                    .delivered_at
                    .is_none()
                    .then(|| timestamp_ms(r.next_attempt_at)),
                last_error: r.last_error,
            })
            .collect(),
        total_count: total,
        current_page: page,
        total_pages: total.div_ceil(size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::BudgetRow;

    fn level(spend: i64, max: Option<i64>, soft: Option<i64>) -> BudgetLevel {
        BudgetLevel {
            id: "t".to_string(),
            team_id: Some("t".to_string()),
            budget: BudgetRow {
                max_budget: max.map(Nanos),
                soft_budget: soft.map(Nanos),
                spend: Nanos(spend),
                ..BudgetRow::default()
            },
        }
    }

    fn labels(level: &BudgetLevel) -> Vec<String> {
        let settings = AlertSettings {
            thresholds: vec![50, 80, 100],
            ..AlertSettings::default()
        };
        crossings(&settings, level, Utc::now())
            .into_iter()
            .map(|c| c.label)
            .collect()
    }

    #[test]
    fn thresholds_are_crossed_at_their_percentage_exactly() {
        assert!(labels(&level(499, Some(1000), None)).is_empty());
        assert_eq!(labels(&level(500, Some(1000), None)), ["50"]);
        assert_eq!(labels(&level(1000, Some(1000), None)), ["50", "80", "100"]);
        assert_eq!(labels(&level(10, None, Some(10))), ["soft"]);
        assert!(labels(&level(i64::MAX, Some(i64::MAX), None)).len() == 3);
    }

    #[test]
    fn a_forecast_needs_a_tenth_of_the_window_and_a_rate_that_runs_out() {
        let now = Utc::now();
        let window = |spend: i64, days_left: i64| BudgetLevel {
            budget: BudgetRow {
                max_budget: Some(Nanos(1000)),
                spend: Nanos(spend),
                budget_duration: Some("10d".to_string()),
                budget_reset_at: Some((now + chrono::Duration::days(days_left)).timestamp()),
                ..BudgetRow::default()
            },
            ..level(0, None, None)
        };
        let settings = AlertSettings::default();
        let forecasts = |l: &BudgetLevel| {
            crossings(&settings, l, now)
                .into_iter()
                .filter(|c| c.event == "budget_forecast")
                .count()
        };
        // 2 of 10 days gone, 300 spent: 1,500 by the reset.
        assert_eq!(forecasts(&window(300, 8)), 1);
        // Same days, 150 spent: 750, within the budget.
        assert_eq!(forecasts(&window(150, 8)), 0);
        // Too early to tell (half a day of ten).
        assert_eq!(forecasts(&window(300, 10)), 0);
        // Already over: the 100 % threshold says it, not a forecast.
        assert_eq!(forecasts(&window(1000, 8)), 0);
    }

    #[test]
    fn a_signature_is_the_hmac_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
