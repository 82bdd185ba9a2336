//! Budget alerts in the background: every tick, crossings become events in the outbox
//! ([`crate::service::alerts::detect`]), and due events are POSTed to their webhook, signed;
//! a failed delivery is retried with backoff (1 s, 2 s, 4 s … at most an hour apart), from
//! any instance and across restarts, until the receiver answers 2xx.

use crate::{
    gate::clock::Clock,
    service::alerts::{detect, signature, AlertSettings},
    storage::{AlertRow, Storage},
};
use std::{collections::HashSet, sync::Arc, time::Duration};
use tokio::task::JoinHandle;

/// How often crossings are looked for and due events sent.
const TICK: Duration = Duration::from_millis(500);
/// Events sent per tick at most.
const BATCH: u64 = 50;
/// How long an instance holds an event it is sending before another may try.
const LEASE_MS: i64 = 30_000;
const MAX_BACKOFF_MS: i64 = 3_600_000;

pub struct Alerts {
    task: JoinHandle<()>,
}

impl Alerts {
    pub fn start(
        storage: Arc<dyn Storage>,
        settings: Arc<AlertSettings>,
        secret: Option<String>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // A webhook cannot send the request on to an address nobody allowed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let task = tokio::spawn(async move {
            let mut alerted = HashSet::new();
            let mut ticker = tokio::time::interval(TICK);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(err) =
                    detect(storage.as_ref(), &settings, &mut alerted, clock.now()).await
                {
                    tracing::warn!(%err, "cannot look for budget alerts; retrying");
                }
                deliver(storage.as_ref(), &http, secret.as_deref(), &clock).await;
            }
        });
        Ok(Self { task })
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn deliver(
    storage: &dyn Storage,
    http: &reqwest::Client,
    secret: Option<&str>,
    clock: &Clock,
) {
    let now = clock.now_ms();
    let due = match storage.due_alerts(now, BATCH).await {
        Ok(due) => due,
        Err(err) => {
            tracing::warn!(%err, "cannot read the alert outbox; retrying");
            return;
        }
    };
    for row in due {
        if !storage
            .claim_alert(&row, now + LEASE_MS)
            .await
            .unwrap_or(false)
        {
            continue;
        }
        let outcome = send(http, secret, &row).await;
        let now = clock.now_ms();
        let recorded = match outcome {
            Ok(()) => storage.alert_attempted(&row, Some(now), now, None).await,
            Err(error) => {
                let backoff = 1_000_i64
                    .saturating_mul(1_i64 << row.attempts.clamp(0, 22))
                    .min(MAX_BACKOFF_MS);
                tracing::warn!(event_id = %row.event_id, %error, "alert not delivered; will retry");
                storage
                    .alert_attempted(&row, None, now.saturating_add(backoff), Some(&error))
                    .await
            }
        };
        if let Err(err) = recorded {
            tracing::warn!(%err, "cannot record an alert delivery");
        }
    }
}

async fn send(http: &reqwest::Client, secret: Option<&str>, row: &AlertRow) -> Result<(), String> {
    let Some(secret) = secret else {
        return Err(
            "GATEHOUSE_ALERT_WEBHOOK_SECRET is not set: alerts are not sent unsigned".into(),
        );
    };
    let body = row.payload.clone().into_bytes();
    let response = http
        .post(&row.destination)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Gatehouse-Signature", signature(secret, &body))
        .header("X-Gatehouse-Event-Id", &row.event_id)
        .body(body)
        .send()
        .await
        .map_err(|err| format!("{}", err.without_url()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", response.status()))
    }
}
