//! Live figures for the console's open pages: each team's and key's spend, budget, next reset
//! and block, read from the counters the request path charges (Redis in a fleet, so every
//! instance's spend shows on every instance's pages).
//!
//! However many pages are open, an instance reads each watched level once per period: one
//! task reads the union of what the pages watch and publishes it; each page's stream sends
//! only what changed for its own teams and keys.

use crate::gate::{admission::LevelId, Figures, Gate};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::sync::watch;

/// The most teams, and the most keys, one page may follow.
pub const MAX_WATCHED: usize = 100;

type Snapshot = Arc<HashMap<LevelId, Figures>>;

pub struct LiveTeams {
    gate: Arc<Gate>,
    /// How many open streams watch each level.
    watched: Mutex<HashMap<LevelId, usize>>,
    /// The latest reading of every watched level; `None` once the server is stopping.
    figures: watch::Sender<Option<Snapshot>>,
    /// How often a stream with nothing to say still sends a comment, so that proxies and
    /// browsers do not close it as idle.
    pub heartbeat: Duration,
}

impl LiveTeams {
    pub fn new(gate: Arc<Gate>, heartbeat: Duration) -> Arc<Self> {
        Arc::new(Self {
            gate,
            watched: Mutex::new(HashMap::new()),
            figures: watch::Sender::new(Some(Arc::default())),
            heartbeat,
        })
    }

    /// Reads the watched levels every `period` until [`LiveTeams::close`].
    pub async fn run(self: Arc<Self>, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if self.figures.borrow().is_none() {
                return;
            }
            let ids: Vec<LevelId> = self.lock().keys().cloned().collect();
            if ids.is_empty() {
                continue;
            }
            let mut snapshot = HashMap::with_capacity(ids.len());
            for id in ids {
                if let Some(figures) = self.gate.figures(&id).await {
                    snapshot.insert(id, figures);
                }
            }
            self.figures.send_if_modified(|current| match current {
                Some(old) if **old != snapshot => {
                    *current = Some(Arc::new(snapshot));
                    true
                }
                _ => false,
            });
        }
    }

    /// Ends every stream (the server is stopping: open streams must not hold it up).
    pub fn close(&self) {
        self.figures.send_replace(None);
    }

    /// Starts following `ids` for one stream.
    pub fn watch(self: &Arc<Self>, ids: Vec<LevelId>) -> Watch {
        {
            let mut watched = self.lock();
            for id in &ids {
                *watched.entry(id.clone()).or_default() += 1;
            }
        }
        Watch {
            hub: self.clone(),
            receiver: self.figures.subscribe(),
            ids,
            sent: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LevelId, usize>> {
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One stream's view: what it watches and what it has sent.
pub struct Watch {
    hub: Arc<LiveTeams>,
    receiver: watch::Receiver<Option<Snapshot>>,
    ids: Vec<LevelId>,
    sent: Option<HashMap<LevelId, Figures>>,
}

impl Watch {
    /// The watched levels' figures that changed since the last call (the first call: all of
    /// them, read now), in the order they were asked for. `None` once the server is stopping.
    pub async fn next(&mut self) -> Option<Vec<(LevelId, Figures)>> {
        self.receiver.borrow().as_ref()?;
        let Some(sent) = &mut self.sent else {
            let mut now = HashMap::with_capacity(self.ids.len());
            for id in &self.ids {
                if let Some(figures) = self.hub.gate.figures(id).await {
                    now.insert(id.clone(), figures);
                }
            }
            let all = self
                .ids
                .iter()
                .filter_map(|id| Some((id.clone(), *now.get(id)?)))
                .collect();
            self.sent = Some(now);
            self.receiver.mark_unchanged();
            return Some(all);
        };
        loop {
            self.receiver.changed().await.ok()?;
            let snapshot = self.receiver.borrow_and_update().clone()?;
            let changed: Vec<_> = self
                .ids
                .iter()
                .filter_map(|id| {
                    let figures = *snapshot.get(id)?;
                    (sent.get(id) != Some(&figures)).then(|| (id.clone(), figures))
                })
                .collect();
            if !changed.is_empty() {
                sent.extend(changed.iter().cloned());
                return Some(changed);
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = self.hub.lock();
        for id in &self.ids {
            if let Some(count) = watched.get_mut(id) {
                *count -= 1;
                if *count == 0 {
                    watched.remove(id);
                }
            }
        }
    }
}
