//! Spend persistence off the request path: handlers hand each finished request to a channel;
//! one writer task commits them in batches (group commit) with the keys' and teams' spend, and
//! runs the budget resets. A failed commit is retried and SIGTERM drains everything.
//!
//! Two durabilities: by default nothing waits on the database and a crash loses at most one
//! flush interval; `strict` answers a request only once its spend row is committed, and the
//! writer commits as soon as the previous commit is done (a group commit every few ms).
//!
//! The queue is bounded without dropping anything: while it holds `max_queued` rows answered
//! but not committed, new requests are refused (503) before they reach a provider; those
//! already admitted still queue theirs.

use crate::{
    gate::Gate,
    metrics::Metrics,
    service::{budgets, Ctx},
    storage::{SpendLog, Storage},
};
use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

/// How often the writer commits and checks for budget resets.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
const MAX_BATCH: usize = 4096;

/// When a request's answer may go out, relative to its spend row's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// At once; the writer commits every 200 ms (a crash loses at most that).
    Default,
    /// Only once its spend row is committed (a crash loses nothing answered).
    Strict,
}

struct SpendEvent {
    log: SpendLog,
    /// Told when the row is committed (strict durability).
    committed: Option<oneshot::Sender<()>>,
}

/// The handlers' end of the channel.
#[derive(Clone)]
pub struct SpendSink {
    tx: mpsc::UnboundedSender<SpendEvent>,
    durability: Durability,
    /// Whether the last commit went through.
    committing: Arc<AtomicBool>,
    /// Rows queued and not yet committed, and how many may be.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    metrics: Arc<Metrics>,
}

impl SpendSink {
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Whether a request may be admitted now: while the queue has room, and with strict
    /// durability only while spend can be committed (a request admitted while the database is
    /// down would wait for it).
    pub fn accepting(&self) -> bool {
        (self.durability == Durability::Default || self.committing.load(Ordering::Relaxed))
            && self.queued.load(Ordering::Relaxed) < self.max_queued
    }

    /// Queues a request's spend row; with strict durability, returns once it is committed.
    pub async fn record(&self, log: SpendLog) {
        let (committed, done) = match self.durability {
            Durability::Strict => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            Durability::Default => (None, None),
        };
        self.metrics.charged(&log);
        self.metrics.spend_queued();
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(SpendEvent { log, committed }).is_err() {
            tracing::error!("spend writer stopped; a spend record was dropped");
            return;
        }
        if let Some(done) = done {
            let _ = done.await;
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

pub fn start(
    storage: Arc<dyn Storage>,
    gate: Arc<Gate>,
    durability: Durability,
    max_queued: usize,
    metrics: Arc<Metrics>,
) -> (SpendSink, SpendWriter) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    let committing = Arc::new(AtomicBool::new(true));
    let queued = Arc::new(AtomicUsize::new(0));
    let writer = Writer {
        storage,
        committing: committing.clone(),
        queued: queued.clone(),
        metrics: metrics.clone(),
    };
    let task = tokio::spawn(run(writer, gate, rx, stopped, durability));
    (
        SpendSink {
            tx,
            durability,
            committing,
            queued,
            max_queued,
            metrics,
        },
        SpendWriter { stop, task },
    )
}

struct Writer {
    storage: Arc<dyn Storage>,
    committing: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

async fn run(
    writer: Writer,
    gate: Arc<Gate>,
    mut rx: mpsc::UnboundedReceiver<SpendEvent>,
    mut stopped: oneshot::Receiver<()>,
    durability: Durability,
) {
    let mut pending: Vec<SpendEvent> = Vec::new();
    let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            _ = ticker.tick() => {
                let ctx = Ctx {
                    storage: writer.storage.as_ref(),
                    work: None,
                    gate: &gate,
                    actor: &crate::service::access::SYSTEM,
                    alerts: &crate::service::alerts::NONE,
                    quotas: &crate::service::Quotas::NONE,
                };
                if let Err(err) = budgets::reset_due(ctx).await {
                    tracing::error!(%err, "budget resets failed; retrying");
                }
                writer.flush(&mut pending).await;
                writer.write_refusals(gate.clock.now_secs()).await;
            }
            Some(event) = rx.recv() => {
                pending.push(event);
                if durability == Durability::Strict {
                    // Everything queued while the last commit ran goes in this one.
                    while pending.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(event) => pending.push(event),
                            Err(_) => break,
                        }
                    }
                    writer.flush(&mut pending).await;
                } else if pending.len() >= MAX_BATCH {
                    writer.flush(&mut pending).await;
                }
            }
        }
    }
    while let Ok(event) = rx.try_recv() {
        pending.push(event);
    }
    writer.write_refusals(gate.clock.now_secs()).await;
    for _ in 0..10 {
        if writer.flush(&mut pending).await {
            return;
        }
        tokio::time::sleep(FLUSH_INTERVAL).await;
    }
    tracing::error!(
        records = pending.len(),
        "could not write spend before stopping"
    );
}

/// How long refusal counts are kept for the console.
const REFUSALS_KEPT_SECS: i64 = 7 * 24 * 3600;

impl Writer {
    /// Writes the refusals counted since the last time; keeps them for the next try when the
    /// database is away.
    async fn write_refusals(&self, now: i64) {
        let taken = self.metrics.take_refusals();
        if taken.is_empty() {
            return;
        }
        let rows = taken.rows();
        if let Err(err) = self
            .storage
            .record_refusals(&rows, now - REFUSALS_KEPT_SECS)
            .await
        {
            tracing::warn!(%err, "refusal counts not written; retrying");
            self.metrics.untake_refusals(taken);
        }
    }

    /// Commits everything pending; keeps it for the next try when the commit fails. A row
    /// committed twice counts once, so a retry after a lost acknowledgement charges nothing
    /// twice.
    async fn flush(&self, pending: &mut Vec<SpendEvent>) -> bool {
        if pending.is_empty() {
            return true;
        }
        let logs: Vec<SpendLog> = pending.iter().map(|e| e.log.clone()).collect();
        match self.storage.record_spend(&logs).await {
            Ok(()) => {
                let oldest = logs.iter().map(|l| l.ts_ms).min().unwrap_or_default();
                self.metrics.spend_committed(
                    logs.len(),
                    oldest,
                    chrono::Utc::now().timestamp_millis(),
                );
                self.queued.fetch_sub(logs.len(), Ordering::Relaxed);
                if !self.committing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(records = logs.len(), "spend commits work again");
                }
                for event in pending.drain(..) {
                    if let Some(committed) = event.committed {
                        let _ = committed.send(());
                    }
                }
                true
            }
            Err(err) => {
                self.committing.store(false, Ordering::Relaxed);
                tracing::error!(%err, records = logs.len(), "spend commit failed; retrying");
                false
            }
        }
    }
}
