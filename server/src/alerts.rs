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
                deliver(
                    storage.as_ref(),
                    &http,
                    &settings,
                    secret.as_deref(),
                    &clock,
                )
                .await;
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
    settings: &AlertSettings,
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
        let outcome = send(http, settings, secret, &row).await;
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

/// A client that reaches `url`'s host only at the addresses it resolves to now, once every one
/// is public and the port is 80 or 443.
async fn pinned_to_public(url: &str) -> Result<reqwest::Client, String> {
    let url = reqwest::Url::parse(url).map_err(|_| "the webhook's address is not a URL")?;
    let host = url.host_str().ok_or("the webhook's address has no host")?;
    let port = url
        .port_or_known_default()
        .ok_or("the webhook's address has no port")?;
    if port != 80 && port != 443 {
        return Err(format!(
            "a team's webhook must use port 80 or 443, not {port} \
             (GATEHOUSE_ALERT_WEBHOOK_ALLOW_PRIVATE allows it)"
        ));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let unresolved = || format!("the webhook's host {host} does not resolve");
    let addresses: Vec<std::net::SocketAddr> = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((bare, port)),
    )
    .await
    .map_err(|_| unresolved())?
    .map_err(|_| unresolved())?
    .collect();
    if addresses.is_empty() {
        return Err(format!("the webhook's host {host} does not resolve"));
    }
    if let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "the webhook's host {host} resolves to {}, which is not a public address \
             (GATEHOUSE_ALERT_WEBHOOK_ALLOW_PRIVATE allows it)",
            private.ip()
        ));
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name again, itself.
        .no_proxy()
        .resolve_to_addrs(bare, &addresses)
        .build()
        .map_err(|err| format!("{err}"))
}

/// Whether `ip` is an address of the public internet: not loopback, private, link-local,
/// shared, documentation, multicast, reserved or unspecified, nor an IPv6 form that carries
/// or translates to an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo).
fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4() {
                // Mapped (::ffff:a.b.c.d) and compatible (::a.b.c.d, ::1 among them).
                return !v6.is_loopback() && is_public(IpAddr::V4(v4));
            }
            let [first, second, ..] = v6.segments();
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && second == 0x0db8)
                || (first == 0x2001 && second == 0)
                || first == 0x2002
                || (first == 0x0064 && second == 0xff9b))
        }
    }
}

async fn send(
    http: &reqwest::Client,
    settings: &AlertSettings,
    secret: Option<&str>,
    row: &AlertRow,
) -> Result<(), String> {
    let Some(secret) = secret else {
        return Err(
            "GATEHOUSE_ALERT_WEBHOOK_SECRET is not set: alerts are not sent unsigned".into(),
        );
    };
    // A team's webhook goes only to the public address its host resolves to now, and the
    // request is pinned to it (a second lookup cannot point it elsewhere).
    let operators = settings.webhook_url.as_deref() == Some(row.destination.as_str());
    let pinned;
    let http = if operators || settings.allow_private {
        http
    } else {
        pinned = pinned_to_public(&row.destination).await?;
        &pinned
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

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
            "192.0.0.8",
            "64:ff9b::a9fe:a9fe",
            "2002:a00:1::1",
            "::10.0.0.1",
            "fec0::1",
            "2001:0:4136::1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }
}
