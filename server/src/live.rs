//! Live figures for the console's open pages: each team's and key's spend, budget, next reset
//! and block, read from the counters the request path charges (Redis in a fleet, so every
//! instance's spend shows on every instance's pages).
//!
//! However many pages are open, an instance reads each watched level once per period: one
//! task reads the union of what the pages watch and publishes it; each page's stream sends
//! only what changed for its own teams and keys, and looks only at the levels that changed.
//! Each caller holds a few streams at most, so nobody's pages can starve everyone else's.

use crate::gate::{admission::LevelId, Figures, Gate};
use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::sync::watch;

/// The most teams, and the most keys, one page may follow.
pub const MAX_WATCHED: usize = 100;

/// The latest reading of every watched level, and which of them changed since the last one.
#[derive(Default)]
struct Reading {
    /// Counts readings: a stream that missed one looks at all its levels.
    seq: u64,
    figures: HashMap<LevelId, Figures>,
    changed: HashSet<LevelId>,
}

type Snapshot = Arc<Reading>;

/// Who holds a stream: each is allowed a few at once. (A key of no one's cannot follow a team.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    /// A person, through a session or any of their keys.
    Person(String),
    /// The admin key (or a session it opened), counted per client address.
    Address(IpAddr),
}

/// How many streams each holder may have open at once.
#[derive(Debug, Clone, Copy)]
pub struct StreamCaps {
    /// A person.
    pub per_caller: usize,
    /// The admin key, per client address.
    pub per_address: usize,
}

/// A holder already has its share of streams open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtCap(pub usize);

pub struct LiveTeams {
    gate: Arc<Gate>,
    /// How many open streams watch each level.
    watched: Mutex<HashMap<LevelId, usize>>,
    /// How many streams each holder has open.
    held: Mutex<HashMap<Holder, usize>>,
    caps: StreamCaps,
    /// The latest reading of every watched level; `None` once the server is stopping.
    figures: watch::Sender<Option<Snapshot>>,
    /// How often a stream with nothing to say still sends a comment, so that proxies and
    /// browsers do not close it as idle.
    pub heartbeat: Duration,
}

impl LiveTeams {
    pub fn new(gate: Arc<Gate>, heartbeat: Duration, caps: StreamCaps) -> Arc<Self> {
        Arc::new(Self {
            gate,
            watched: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            caps,
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
            let mut figures = HashMap::with_capacity(ids.len());
            for id in ids {
                if let Some(now) = self.gate.figures(&id).await {
                    figures.insert(id, now);
                }
            }
            self.figures.send_if_modified(|current| match current {
                Some(old) => {
                    let changed: HashSet<LevelId> = figures
                        .iter()
                        .filter(|(id, now)| old.figures.get(*id) != Some(*now))
                        .map(|(id, _)| id.clone())
                        .collect();
                    if changed.is_empty() && figures.len() == old.figures.len() {
                        return false;
                    }
                    let seq = old.seq + 1;
                    *current = Some(Arc::new(Reading {
                        seq,
                        figures,
                        changed,
                    }));
                    true
                }
                None => false,
            });
        }
    }

    /// Ends every stream (the server is stopping: open streams must not hold it up).
    pub fn close(&self) {
        self.figures.send_replace(None);
    }

    /// Starts following `ids` for one stream held by `holder`, unless it has its share of
    /// streams open already.
    pub fn watch(self: &Arc<Self>, ids: Vec<LevelId>, holder: Holder) -> Result<Watch, AtCap> {
        {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            let cap = self.cap(&holder);
            let count = held.entry(holder.clone()).or_default();
            if *count >= cap {
                return Err(AtCap(cap));
            }
            *count += 1;
        }
        {
            let mut watched = self.lock();
            for id in &ids {
                *watched.entry(id.clone()).or_default() += 1;
            }
        }
        Ok(Watch {
            hub: self.clone(),
            receiver: self.figures.subscribe(),
            own: ids.iter().cloned().collect(),
            ids,
            holder,
            sent: None,
            seen: 0,
        })
    }

    fn cap(&self, holder: &Holder) -> usize {
        match holder {
            Holder::Address(_) => self.caps.per_address,
            Holder::Person(_) => self.caps.per_caller,
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
    /// `ids`, to look up.
    own: HashSet<LevelId>,
    holder: Holder,
    sent: Option<HashMap<LevelId, Figures>>,
    /// The reading `sent` is as new as.
    seen: u64,
}

impl Watch {
    /// The watched levels' figures that changed since the last call (the first call: all of
    /// them, read now), in the order they were asked for. `None` once the server is stopping.
    pub async fn next(&mut self) -> Option<Vec<(LevelId, Figures)>> {
        self.receiver.borrow().as_ref()?;
        let Some(sent) = &mut self.sent else {
            // What this first answer reads is at least as new as the reading now.
            let seen = self.receiver.borrow_and_update().as_ref()?.seq;
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
            self.seen = seen;
            return Some(all);
        };
        loop {
            self.receiver.changed().await.ok()?;
            let reading = self.receiver.borrow_and_update().clone()?;
            // The levels that changed since the reading this stream saw last: only those are
            // looked at, unless readings were skipped (then all of its own).
            let mut candidates: Vec<&LevelId> =
                if reading.seq == self.seen + 1 && reading.changed.len() < self.ids.len() {
                    let mut mine: Vec<&LevelId> = reading
                        .changed
                        .iter()
                        .filter(|id| self.own.contains(*id))
                        .collect();
                    mine.sort_by_key(|id| self.ids.iter().position(|own| own == *id));
                    mine
                } else if reading.seq == self.seen + 1 {
                    self.ids
                        .iter()
                        .filter(|id| reading.changed.contains(*id))
                        .collect()
                } else {
                    self.ids.iter().collect()
                };
            self.seen = reading.seq;
            let changed: Vec<_> = candidates
                .drain(..)
                .filter_map(|id| {
                    let figures = *reading.figures.get(id)?;
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
        {
            let mut held = self.hub.held.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = held.get_mut(&self.holder) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    held.remove(&self.holder);
                }
            }
        }
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
