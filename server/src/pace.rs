//! How fast one caller may change things through the admin API: a bucket of changes per
//! person (or per key of no one's) that fills at a steady rate, so that nobody's script can
//! slow everyone's admin changes down. The admin key and proxy admins are not paced: they may
//! change everything anyway. Each instance paces what it serves.

use crate::service::access::{Actor, Role};
use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

/// Buckets kept at most; the fullest (least recently used) go first.
const MAX_CALLERS: usize = 100_000;

pub struct Pace {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// One change, in the bucket's units: a bucket of `per_minute` changes gains `per_minute` units
/// a millisecond, so it refills exactly.
const CHANGE: u64 = 60_000;

#[derive(Clone, Copy)]
struct Bucket {
    /// Changes left, in [`CHANGE`]s.
    units: u64,
    at_ms: i64,
}

impl Pace {
    /// At most `per_minute` changes a minute per caller, in bursts of as many.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one change for `actor` at `now_ms`: `Err(seconds)` to wait when its bucket is
    /// empty.
    pub fn take(&self, actor: &Actor, now_ms: i64) -> Result<(), u64> {
        let Some(caller) = caller(actor) else {
            return Ok(());
        };
        let per_minute = u64::from(self.per_minute);
        let full = per_minute.saturating_mul(CHANGE);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(&caller) {
            let oldest = buckets
                .iter()
                .min_by_key(|(_, bucket)| bucket.at_ms)
                .map(|(caller, _)| caller.clone());
            if let Some(oldest) = oldest {
                buckets.remove(&oldest);
            }
        }
        let bucket = buckets.entry(caller).or_insert(Bucket {
            units: full,
            at_ms: now_ms,
        });
        let elapsed = u64::try_from(now_ms.saturating_sub(bucket.at_ms)).unwrap_or(0);
        bucket.units = bucket
            .units
            .saturating_add(elapsed.saturating_mul(per_minute))
            .min(full);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.units < CHANGE {
            let wait_ms = (CHANGE - bucket.units).div_ceil(per_minute.max(1));
            return Err(wait_ms.div_ceil(1000).max(1));
        }
        bucket.units -= CHANGE;
        Ok(())
    }
}

/// Whose bucket a change comes out of; `None`: not paced.
fn caller(actor: &Actor) -> Option<String> {
    if actor.role == Role::ProxyAdmin {
        return None;
    }
    match (&actor.user_id, &actor.key_id) {
        (Some(user), _) => Some(format!("user:{user}")),
        (None, Some(key)) => Some(format!("key:{key}")),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(user: &str) -> Actor {
        let mut actor = Actor::admin();
        actor.user_id = Some(user.into());
        actor.role = Role::InternalUser;
        actor
    }

    #[test]
    fn a_caller_gets_a_burst_then_the_steady_rate() {
        let pace = Pace::new(60);
        let ada = member("ada");
        for _ in 0..60 {
            assert_eq!(pace.take(&ada, 0), Ok(()));
        }
        assert_eq!(pace.take(&ada, 0), Err(1));
        // Someone else's bucket is their own; the admin key is not paced.
        assert_eq!(pace.take(&member("bob"), 0), Ok(()));
        for _ in 0..100 {
            assert_eq!(pace.take(&Actor::admin(), 0), Ok(()));
        }
        // One a second comes back.
        assert_eq!(pace.take(&ada, 1_000), Ok(()));
        assert_eq!(pace.take(&ada, 1_500), Err(1));
    }
}
