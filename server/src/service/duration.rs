//! Durations such as `30s`, `5m`, `1h`, `1d`, `30d`, `1mo`: a key's lifetime (counted from now)
//! and a budget's reset period (aligned to UTC boundaries, see the README).

use super::Error;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Timelike, Utc};

/// Large enough for any real period (100,000 days is 273 years), small enough that no date
/// arithmetic overflows.
const MAX_COUNT: u32 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Months,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub count: u32,
    pub unit: Unit,
}

impl Period {
    /// Parses `<N><unit>` with unit one of `s`, `m`, `h`, `d`, `mo` and 1 <= N <= 100000.
    pub fn parse(param: &str, text: &str) -> Result<Self, Error> {
        let invalid = || {
            Error::invalid(
                param,
                format!(
                    "{param} must look like 30s, 15m, 1h, 1d, 30d or 1mo (a whole number from 1 \
                     to {MAX_COUNT} and a unit: s, m, h, d, mo), or be null"
                ),
            )
        };
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let (digits, suffix) = text.split_at(split);
        let unit = match suffix {
            "s" => Unit::Seconds,
            "m" => Unit::Minutes,
            "h" => Unit::Hours,
            "d" => Unit::Days,
            "mo" => Unit::Months,
            _ => return Err(invalid()),
        };
        let count: u32 = digits.parse().map_err(|_| invalid())?;
        if count == 0 || count > MAX_COUNT {
            return Err(invalid());
        }
        Ok(Self { count, unit })
    }

    /// `now` plus the period: when a key created now expires.
    pub fn after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let n = i64::from(self.count);
        match self.unit {
            Unit::Seconds => now + Duration::seconds(n),
            Unit::Minutes => now + Duration::minutes(n),
            Unit::Hours => now + Duration::hours(n),
            Unit::Days => now + Duration::days(n),
            Unit::Months => now
                .checked_add_months(Months::new(self.count))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// The next budget reset strictly after `now`, on a UTC boundary:
    /// `Ns`/`Nm` the next multiple of N seconds/minutes since the epoch; `Nh` the next hour of
    /// the day divisible by N (N > 24: this hour + N); `1d` next midnight; `7d` next Monday
    /// 00:00; `30d` the 1st of next month; other `Nd` today's midnight + N days; `Nmo` the 1st
    /// of the month N months on.
    pub fn next_reset(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let n = i64::from(self.count);
        let midnight = start_of_day(now);
        match (self.unit, self.count) {
            (Unit::Seconds, _) => next_multiple(now, n),
            (Unit::Minutes, _) => next_multiple(now, n * 60),
            (Unit::Hours, count) if count <= 24 => {
                let hour = now
                    .with_minute(0)
                    .and_then(|t| t.with_second(0))
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap_or(now);
                (1..=24)
                    .map(|step| hour + Duration::hours(step))
                    .find(|t| t.hour() % count == 0)
                    .unwrap_or(midnight + Duration::days(1))
            }
            (Unit::Hours, _) => start_of_hour(now) + Duration::hours(n),
            (Unit::Days, 1) => midnight + Duration::days(1),
            (Unit::Days, 7) => {
                let days_to_monday = 7 - i64::from(now.weekday().num_days_from_monday());
                midnight + Duration::days(days_to_monday)
            }
            (Unit::Days, 30) => first_of_month(now, 1),
            (Unit::Days, _) => midnight + Duration::days(n),
            (Unit::Months, count) => first_of_month(now, count),
        }
    }
}

fn next_multiple(now: DateTime<Utc>, step: i64) -> DateTime<Utc> {
    let next = (now.timestamp().div_euclid(step) + 1) * step;
    Utc.timestamp_opt(next, 0).single().unwrap_or(now)
}

fn start_of_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(now.timestamp().div_euclid(3600) * 3600, 0)
        .single()
        .unwrap_or(now)
}

fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}

/// 00:00 UTC on the 1st of the month `months` after `now`'s month.
fn first_of_month(now: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
        .and_then(|first| first.checked_add_months(Months::new(months)))
        .map(|date| date.and_time(chrono::NaiveTime::MIN).and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid timestamp")
            .with_timezone(&Utc)
    }

    fn reset(period: &str, now: &str) -> String {
        Period::parse("budget_duration", period)
            .expect("valid period")
            .next_reset(at(now))
            .to_rfc3339()
    }

    #[test]
    fn parses_the_documented_grammar() {
        for ok in [
            "1s", "30s", "15m", "1h", "1d", "30d", "1mo", "12mo", "100000d",
        ] {
            assert!(Period::parse("d", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "d", "0d", "1", "1w", "1 d", "-1d", "1D", "1.5d", "100001d", "1dd", "mo",
        ] {
            assert!(Period::parse("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resets_align_to_utc_boundaries() {
        // 2026-11-27 is a Friday.
        let now = "2026-11-27T15:29:27Z";
        assert_eq!(reset("1d", now), "2026-11-28T00:00:00+00:00");
        assert_eq!(reset("7d", now), "2026-11-30T00:00:00+00:00");
        assert_eq!(reset("30d", now), "2026-12-01T00:00:00+00:00");
        assert_eq!(reset("1mo", now), "2026-12-01T00:00:00+00:00");
        assert_eq!(reset("2mo", now), "2027-01-01T00:00:00+00:00");
        assert_eq!(reset("3d", now), "2026-11-30T00:00:00+00:00");
        assert_eq!(reset("1h", now), "2026-11-27T16:00:00+00:00");
        assert_eq!(reset("6h", now), "2026-11-27T18:00:00+00:00");
        assert_eq!(reset("15m", now), "2026-11-27T15:30:00+00:00");
        assert_eq!(reset("30s", now), "2026-11-27T15:29:30+00:00");
        // Exactly on a boundary: the next one, never now.
        assert_eq!(
            reset("1d", "2026-11-28T00:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        assert_eq!(
            reset("7d", "2026-11-30T00:00:00Z"),
            "2026-12-07T00:00:00+00:00"
        );
        assert_eq!(
            reset("1mo", "2026-12-31T23:59:59Z"),
            "2027-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn key_lifetimes_count_from_now() {
        let now = at("2026-01-31T10:00:00Z");
        let after = |p: &str| {
            Period::parse("duration", p)
                .expect("valid")
                .after(now)
                .to_rfc3339()
        };
        assert_eq!(after("30d"), "2026-03-02T10:00:00+00:00");
        assert_eq!(after("1mo"), "2026-02-28T10:00:00+00:00");
        assert_eq!(after("90s"), "2026-01-31T10:01:30+00:00");
    }
}
