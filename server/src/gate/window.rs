//! A sliding 60-second window in one-second buckets, for RPM and TPM limits.
//!
//! A check at second `s` counts buckets `s-60 ..= s`. Two events less than 60 s apart are at
//! most 60 whole seconds apart, so whatever an admission could share a 60-second window with
//! is counted: no 60-second window ever holds more than the limit. The price is that an event
//! can weigh for up to 61 s.

const BUCKETS: usize = 61;

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKind {
    Requests,
    Tokens,
    /// Requests in flight at once (`max_parallel_requests`): not a window, but refused alike.
    Parallel,
}

impl RateKind {
    /// LiteLLM's word for it in messages ("Limit type: requests").
    pub fn label(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::Parallel => "max_parallel_requests",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Window {
    seconds: [i64; BUCKETS],
    counts: [u64; BUCKETS],
}

impl Default for Window {
    fn default() -> Self {
        Self {
            seconds: [i64::MIN; BUCKETS],
            counts: [0; BUCKETS],
        }
    }
}

fn slot(second: i64) -> usize {
    usize::try_from(second.rem_euclid(BUCKETS as i64)).unwrap_or(0)
}

fn live(bucket_second: i64, now: i64) -> bool {
    bucket_second > now - BUCKETS as i64 && bucket_second <= now
}

impl Window {
    /// What counts against the limit at second `now`.
    pub fn total(&self, now: i64) -> u64 {
        self.seconds
            .iter()
            .zip(&self.counts)
            .filter(|(second, _)| live(**second, now))
            .map(|(_, count)| *count)
            .fold(0, u64::saturating_add)
    }

    pub fn add(&mut self, now: i64, amount: u64) {
        let i = slot(now);
        if self.seconds[i] != now {
            self.seconds[i] = now;
            self.counts[i] = 0;
        }
        self.counts[i] = self.counts[i].saturating_add(amount);
    }

    /// Whole seconds until the total, plus `pending`, drops below `limit` (at least 1).
    pub fn retry_after(&self, now: i64, limit: u64, pending: u64) -> u64 {
        let mut total = self.total(now).saturating_add(pending);
        for age in (0..BUCKETS as i64).rev() {
            if total < limit {
                return (BUCKETS as i64 - 1 - age).max(1) as u64;
            }
            let second = now - age;
            let i = slot(second);
            if self.seconds[i] == second {
                total -= self.counts[i].min(total);
            }
        }
        BUCKETS as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_sixty_one_seconds() {
        let mut w = Window::default();
        w.add(100, 5);
        w.add(130, 2);
        assert_eq!(w.total(130), 7);
        assert_eq!(w.total(160), 7);
        assert_eq!(w.total(161), 2);
        assert_eq!(w.total(191), 0);
        // A bucket reused after wrapping around starts from zero.
        w.add(161 + 61, 1);
        assert_eq!(w.total(222), 1);
    }

    #[test]
    fn retry_after_waits_for_the_oldest_events_to_leave() {
        let mut w = Window::default();
        w.add(100, 3);
        w.add(110, 1);
        // Limit 4 is reached; the 3 at second 100 stop counting at 161.
        assert_eq!(w.retry_after(120, 4, 0), 41);
        assert_eq!(w.retry_after(120, 10, 0), 1);
    }
}
