//! Admin changes reach every instance of a fleet: the instance that made one commits it, reads
//! it again into its own memory and publishes a notice naming the level; every other instance
//! reads that row again from the database the same way ([`budgets::follow`]). Redis pub/sub carries the notices. A notice is lost while an
//! instance is disconnected, so after every (re)subscription the instance reloads everything.
//! One instance without Redis publishes nothing: its memory is the only one.

use crate::{
    gate::Gate,
    providers::router::Router,
    service::{budgets, Ctx},
    storage::{BudgetOwner, Storage},
};
use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use std::{sync::Arc, time::Duration};

/// A team or key whose row changed (created, updated, blocked, deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub owner: BudgetOwner,
    pub id: String,
}

impl Change {
    fn encode(&self) -> String {
        format!("{}:{}", self.owner.name(), self.id)
    }

    fn decode(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once(':')?;
        Some(Self {
            owner: BudgetOwner::from_name(kind)?,
            id: id.to_string(),
        })
    }
}

#[async_trait]
pub trait Notices: Send + Sync {
    /// Tells the other instances; a failure is logged, never the caller's error (the change
    /// is committed, and instances reload everything after they reconnect).
    async fn publish(&self, change: &Change);

    /// Tells the other instances that a deployment cools down until `until_ms` (a notice lost
    /// only lets them find out for themselves).
    async fn cooldown(&self, _deployment_id: &str, _until_ms: i64) {}
}

/// The notice of a cooldown: `cooldown:<until_ms>:<deployment id>` (no change's owner is named
/// `cooldown`).
fn encode_cooldown(deployment_id: &str, until_ms: i64) -> String {
    format!("cooldown:{until_ms}:{deployment_id}")
}

fn decode_cooldown(text: &str) -> Option<(i64, &str)> {
    let rest = text.strip_prefix("cooldown:")?;
    let (until, id) = rest.split_once(':')?;
    Some((until.parse().ok()?, id))
}

/// One instance: nobody to tell.
pub struct Alone;

#[async_trait]
impl Notices for Alone {
    async fn publish(&self, _: &Change) {}
}

pub struct RedisNotices {
    con: ConnectionManager,
    channel: String,
}

fn channel(prefix: &str) -> String {
    format!("{prefix}:changes")
}

impl RedisNotices {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("invalid REDIS_URL")?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let con = client
            .get_connection_manager_with_config(config)
            .await
            .context("cannot reach Redis")?;
        Ok(Self {
            con,
            channel: channel(prefix),
        })
    }
}

#[async_trait]
impl Notices for RedisNotices {
    async fn publish(&self, change: &Change) {
        let sent = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(change.encode())
            .query_async::<i64>(&mut self.con.clone())
            .await;
        if let Err(err) = sent {
            tracing::warn!(%err, ?change, "cannot tell the other instances of a change");
        }
    }

    async fn cooldown(&self, deployment_id: &str, until_ms: i64) {
        let sent = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(encode_cooldown(deployment_id, until_ms))
            .query_async::<i64>(&mut self.con.clone())
            .await;
        if let Err(err) = sent {
            tracing::warn!(%err, "cannot tell the other instances of a cooldown");
        }
    }
}

/// Applies the fleet's notices to this instance for as long as it runs: subscribes, reloads
/// everything (what changed while it was not subscribed), then reads each notice's row again.
/// `subscribed` is told after the first subscription and reload.
pub async fn listen(
    url: String,
    prefix: String,
    storage: Arc<dyn Storage>,
    gate: Arc<Gate>,
    router: Arc<Router>,
    subscribed: tokio::sync::oneshot::Sender<()>,
) {
    let mut subscribed = Some(subscribed);
    let channel = channel(&prefix);
    let mut lost = false;
    loop {
        match subscribe(&url, &channel).await {
            Ok(mut pubsub) => {
                let ctx = Ctx {
                    storage: storage.as_ref(),
                    work: None,
                    gate: &gate,
                    actor: &crate::service::access::SYSTEM,
                    alerts: &crate::service::alerts::NONE,
                    quotas: &crate::service::Quotas::NONE,
                };
                match budgets::reload_all(ctx).await {
                    Ok(()) if lost => tracing::warn!(
                        "change notices are back: reloaded every team and key, and their spend"
                    ),
                    Ok(()) => {}
                    Err(err) => tracing::error!(%err, "cannot reload teams and keys"),
                }
                if let Some(tx) = subscribed.take() {
                    let _ = tx.send(());
                }
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let Ok(text) = message.get_payload::<String>() else {
                        continue;
                    };
                    if let Some((until_ms, id)) = decode_cooldown(&text) {
                        router.cool(id, until_ms);
                        continue;
                    }
                    let Some(change) = Change::decode(&text) else {
                        continue;
                    };
                    if let Err(err) = budgets::follow(ctx, &change).await {
                        tracing::error!(%err, ?change, "cannot apply a change notice");
                    }
                }
                tracing::warn!("lost the connection for change notices; reconnecting");
            }
            Err(err) => {
                tracing::warn!(%err, "cannot subscribe to change notices; retrying")
            }
        }
        lost = true;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn subscribe(url: &str, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let client = redis::Client::open(url)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
        })??;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_what_changed() {
        for change in [
            Change {
                owner: BudgetOwner::Team,
                id: "team:with:colons".into(),
            },
            Change {
                owner: BudgetOwner::Key,
                id: "abc".into(),
            },
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("org:x"), None);
        let cooldown = encode_cooldown("id:with:colons", 1_234);
        assert_eq!(decode_cooldown(&cooldown), Some((1_234, "id:with:colons")));
        assert_eq!(Change::decode(&cooldown), None);
    }
}
