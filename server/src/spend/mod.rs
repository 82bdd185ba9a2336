//! Spend persistence off the request path: handlers hand each finished request to a channel;
//! one writer task commits them in batches (group commit) with the keys' and teams' spend, and
//! runs the budget resets. Nothing waits on the database per request, a failed commit is
//! retried, SIGTERM drains everything, and a crash loses at most one flush interval.

use crate::{
    gate::{Gate, KeyLive},
    storage::{SpendBatch, SpendLog, SpendState, Storage},
};
use std::{collections::BTreeSet, sync::Arc, time::Duration};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

/// How often the writer commits and checks for budget resets.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
const MAX_BATCH: usize = 4096;

pub struct SpendEvent {
    pub log: SpendLog,
    pub key: Arc<KeyLive>,
}

/// The handlers' end of the channel.
#[derive(Clone)]
pub struct SpendSink {
    tx: mpsc::UnboundedSender<SpendEvent>,
}

impl SpendSink {
    pub fn record(&self, event: SpendEvent) {
        if self.tx.send(event).is_err() {
            tracing::error!("spend writer stopped; a spend record was dropped");
        }
    }
}

pub struct SpendWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl SpendWriter {
    /// Writes what is queued and stops.
    pub async fn drain(self) {
        let _ = self.stop.send(());
        if let Err(err) = self.task.await {
            tracing::error!(%err, "spend writer failed");
        }
    }
}

pub fn start(storage: Arc<dyn Storage>, gate: Arc<Gate>) -> (SpendSink, SpendWriter) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(storage, gate, rx, stopped));
    (SpendSink { tx }, SpendWriter { stop, task })
}

#[derive(Default)]
struct Pending {
    events: Vec<SpendEvent>,
    /// Ids of budgets reset since the last commit.
    team_resets: BTreeSet<String>,
    key_resets: BTreeSet<String>,
}

async fn run(
    storage: Arc<dyn Storage>,
    gate: Arc<Gate>,
    mut rx: mpsc::UnboundedReceiver<SpendEvent>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut pending = Pending::default();
    let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            _ = ticker.tick() => {
                gate.reset_due_budgets();
                flush(storage.as_ref(), &gate, &mut pending).await;
            }
            Some(event) = rx.recv() => {
                pending.events.push(event);
                if pending.events.len() >= MAX_BATCH {
                    flush(storage.as_ref(), &gate, &mut pending).await;
                }
            }
        }
    }
    while let Ok(event) = rx.try_recv() {
        pending.events.push(event);
    }
    for _ in 0..10 {
        if flush(storage.as_ref(), &gate, &mut pending).await {
            return;
        }
        tokio::time::sleep(FLUSH_INTERVAL).await;
    }
    tracing::error!(
        records = pending.events.len(),
        "could not write spend before stopping"
    );
}

/// Commits everything pending; keeps it for the next try when the commit fails.
async fn flush(storage: &dyn Storage, gate: &Gate, pending: &mut Pending) -> bool {
    let (teams, keys) = gate.take_resets();
    pending.team_resets.extend(teams);
    pending.key_resets.extend(keys);
    if pending.events.is_empty() && pending.team_resets.is_empty() && pending.key_resets.is_empty()
    {
        return true;
    }
    let batch = batch(gate, pending);
    match storage.record_spend(&batch).await {
        Ok(()) => {
            *pending = Pending::default();
            true
        }
        Err(err) => {
            tracing::error!(%err, records = batch.logs.len(), "spend commit failed; retrying");
            false
        }
    }
}

/// The logs, and the live spend and next reset of every key and team they touch or that reset.
fn batch(gate: &Gate, pending: &Pending) -> SpendBatch {
    let mut team_ids = pending.team_resets.clone();
    let mut key_ids = pending.key_resets.clone();
    for event in &pending.events {
        team_ids.insert(event.key.team.team_id.clone());
        key_ids.insert(event.key.key_id.clone());
    }
    let state = |id: String, budget: Option<(i64, Option<i64>)>| {
        budget.map(|(spend, reset_at)| SpendState {
            id,
            spend,
            reset_at,
        })
    };
    SpendBatch {
        logs: pending.events.iter().map(|e| e.log.clone()).collect(),
        teams: team_ids
            .into_iter()
            .filter_map(|id| {
                let budget = gate.team_budget(&id);
                state(id, budget)
            })
            .collect(),
        keys: key_ids
            .into_iter()
            .filter_map(|id| {
                let budget = gate.key_budget(&id);
                state(id, budget)
            })
            .collect(),
    }
}
