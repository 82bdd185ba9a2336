//! Reading spend back: the request log and a team's spend per day, for the console's charts
//! and for callers.

use super::{access::Actor, Error};
use super::{keys, teams, validate, Ctx};
use crate::money::Nanos;
use crate::storage::{DailySpend as DailySpendRow, GroupSpend, SpendFilter, SpendGrouping};
use app::types::{
    DailySpend, DailySpendEntry, DailySpendQuery, RefusalCount, RefusalTotal, Refusals,
    RefusalsQuery, SpendGroup, SpendLogEntry, SpendLogList, SpendLogQuery, SpendSummary,
    SpendSummaryQuery,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The longest range `/spend/daily` answers.
const MAX_DAYS: i64 = 366;

/// An RFC 3339 time, or a date meaning its 00:00 UTC; in unix milliseconds.
/// A time a query names: RFC 3339, or a date (its midnight, UTC); Unix milliseconds.
pub(super) fn instant(param: &str, text: &str) -> Result<i64, Error> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    date(param, text).map(|d| {
        d.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis()
    })
}

fn date(param: &str, text: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            param,
            format!("{param} must be a date like 2026-11-27 (UTC) or an RFC 3339 time"),
        )
    })
}

pub async fn logs(ctx: Ctx<'_>, query: SpendLogQuery) -> Result<SpendLogList, Error> {
    let (page, size, offset) = validate::page(query.page, query.size)?;
    if let Some(team_id) = &query.team_id {
        validate::team_id("team_id", team_id)?;
    }
    // Who does not read everything reads the logs of a team it sees every key of, or of a
    // key of its own.
    let actor = ctx.actor;
    let what = "read these logs (name a team_id you manage, or a key of yours)";
    let key = match &query.key {
        Some(reference) => Some(
            keys::resolve(ctx, "key", reference)
                .await
                .map_err(|err| actor.unseen(err, what))?,
        ),
        None => None,
    };
    if !actor.reads_all() {
        let team_wide = match &query.team_id {
            Some(team_id) => teams::allows(ctx, team_id, Actor::sees_team_keys).await?,
            None => false,
        };
        let own_key = match &key {
            Some(key) => actor.sees_key(key, &teams::existing(ctx, "team_id", &key.team_id).await?),
            None => false,
        };
        actor.check(team_wide || own_key, what)?;
    }
    let key_id = key.map(|key| key.key_id);
    for (param, value) in [("model", &query.model), ("request_id", &query.request_id)] {
        if let Some(value) = value {
            validate::label(param, value)?;
        }
    }
    let filter = SpendFilter {
        team_id: query.team_id,
        key_id,
        model: query.model,
        status: query.status.map(i64::from),
        request_id: query.request_id,
        from_ms: query
            .start
            .as_deref()
            .map(|t| instant("start", t))
            .transpose()?,
        to_ms: query
            .end
            .as_deref()
            .map(|t| instant("end", t))
            .transpose()?,
    };
    let (rows, total) = ctx.storage.spend_logs(&filter, offset, size).await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(SpendLogList {
        logs: rows
            .into_iter()
            .map(|r| SpendLogEntry {
                time: DateTime::<Utc>::from_timestamp_millis(r.ts_ms)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                request_id: r.request_id,
                token: r.key_id,
                team_id: r.team_id,
                user_id: r.user_id,
                model: r.model,
                prompt_tokens: count(r.prompt_tokens),
                completion_tokens: count(r.completion_tokens),
                total_tokens: count(r.prompt_tokens + r.completion_tokens),
                spend: r.cost.usd(),
                latency_ms: count(r.latency_ms),
                status: u16::try_from(r.status).unwrap_or(0),
                model_id: r.model_id,
                retries: count(r.retries),
                fallbacks: count(r.fallbacks),
            })
            .collect(),
        total_count: total,
        current_page: page,
        total_pages: total.div_ceil(size),
    })
}

/// A range of whole UTC days, both ends included: the last 30 days by default.
struct DayRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl DayRange {
    fn parse(start: Option<&str>, end: Option<&str>, today: NaiveDate) -> Result<Self, Error> {
        let end = end
            .map(|d| date("end_date", d))
            .transpose()?
            .unwrap_or(today);
        let start = start
            .map(|d| date("start_date", d))
            .transpose()?
            .unwrap_or(end - Duration::days(29));
        let days = (end - start).num_days() + 1;
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(Error::invalid(
                "start_date",
                format!("start_date must be on or before end_date, at most {MAX_DAYS} days before"),
            ));
        }
        Ok(Self { start, end })
    }

    /// `[from, to)` in unix milliseconds.
    fn millis(&self) -> (i64, i64) {
        let at = |d: NaiveDate| {
            d.and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_millis()
        };
        (at(self.start), at(self.end + Duration::days(1)))
    }
}

/// What `/spend/daily`'s `group_by` splits each day by.
fn split(group_by: Option<&str>) -> Result<Option<SpendGrouping>, Error> {
    match group_by.map(str::trim) {
        None | Some("") => Ok(None),
        Some("model") => Ok(Some(SpendGrouping::Model)),
        Some("key" | "api_key") => Ok(Some(SpendGrouping::Key)),
        Some(_) => Err(Error::invalid(
            "group_by",
            "group_by must be 'model' or 'key'".to_string(),
        )),
    }
}

fn group(row: &DailySpendRow) -> SpendGroup {
    SpendGroup {
        id: row.group_id.clone(),
        spend: row.spend.usd(),
        requests: u64::try_from(row.requests).unwrap_or(0),
        tokens: u64::try_from(row.tokens).unwrap_or(0),
    }
}

pub async fn daily(
    ctx: Ctx<'_>,
    query: DailySpendQuery,
    today: NaiveDate,
) -> Result<DailySpend, Error> {
    let what = "read this team's spend";
    let team = teams::existing(ctx, "team_id", &query.team_id)
        .await
        .map_err(|err| ctx.actor.unseen(err, what))?;
    ctx.actor.check(ctx.actor.sees_team_keys(&team), what)?;
    let split = split(query.group_by.as_deref())?;
    let range = DayRange::parse(
        query.start_date.as_deref(),
        query.end_date.as_deref(),
        today,
    )?;
    let (start, end) = (range.start, range.end);
    let (from, to) = range.millis();
    let rows = ctx
        .storage
        .daily_spend(&team.team_id, from, to, split)
        .await?;
    let days = start
        .iter_days()
        .take_while(|d| *d <= end)
        .map(|d| {
            let date = d.format("%Y-%m-%d").to_string();
            let parts: Vec<&DailySpendRow> = rows.iter().filter(|r| r.day == date).collect();
            let sum = |field: fn(&DailySpendRow) -> i64| {
                parts
                    .iter()
                    .fold(0i64, |total, r| total.saturating_add(field(r)))
            };
            let groups = split.map(|_| {
                let mut groups: Vec<SpendGroup> = parts.iter().map(|r| group(r)).collect();
                groups.sort_by(|a, b| b.spend.total_cmp(&a.spend).then(a.id.cmp(&b.id)));
                groups
            });
            DailySpendEntry {
                spend: parts.iter().map(|r| r.spend).sum::<Nanos>().usd(),
                requests: u64::try_from(sum(|r| r.requests)).unwrap_or(0),
                tokens: u64::try_from(sum(|r| r.tokens)).unwrap_or(0),
                groups,
                date,
            }
        })
        .collect();
    Ok(DailySpend {
        team_id: team.team_id,
        start_date: start.format("%Y-%m-%d").to_string(),
        end_date: end.format("%Y-%m-%d").to_string(),
        days,
    })
}

/// How many models and keys the summary names.
const TOP: u64 = 10;

pub async fn summary(
    ctx: Ctx<'_>,
    query: SpendSummaryQuery,
    today: NaiveDate,
) -> Result<SpendSummary, Error> {
    let range = DayRange::parse(
        query.start_date.as_deref(),
        query.end_date.as_deref(),
        today,
    )?;
    let (from, to) = range.millis();
    let groups = |rows: Vec<GroupSpend>| -> Vec<SpendGroup> {
        rows.into_iter()
            .map(|r| SpendGroup {
                id: r.id,
                spend: r.spend.usd(),
                requests: u64::try_from(r.requests).unwrap_or(0),
                tokens: u64::try_from(r.tokens).unwrap_or(0),
            })
            .collect()
    };
    Ok(SpendSummary {
        start_date: range.start.format("%Y-%m-%d").to_string(),
        end_date: range.end.format("%Y-%m-%d").to_string(),
        teams: groups(
            ctx.storage
                .spend_by(SpendGrouping::Team, from, to, i64::MAX as u64)
                .await?,
        ),
        top_models: groups(
            ctx.storage
                .spend_by(SpendGrouping::Model, from, to, TOP)
                .await?,
        ),
        top_keys: groups(
            ctx.storage
                .spend_by(SpendGrouping::Key, from, to, TOP)
                .await?,
        ),
    })
}

/// Refusals recorded in `[start, end)`: the last 24 hours by default. Counts are written every
/// 200 ms, off the request path.
pub async fn refusals(
    ctx: Ctx<'_>,
    query: RefusalsQuery,
    now: DateTime<Utc>,
) -> Result<Refusals, Error> {
    let end_ms = match query.end.as_deref() {
        Some(text) => instant("end", text)?,
        None => now.timestamp_millis(),
    };
    let start_ms = match query.start.as_deref() {
        Some(text) => instant("start", text)?,
        None => end_ms - 24 * 3600 * 1000,
    };
    if start_ms > end_ms {
        return Err(Error::invalid("start", "start must not be after end"));
    }
    let rows = ctx.storage.refusals(start_ms.div_euclid(1000)).await?;
    let time = |secs: i64| {
        DateTime::<Utc>::from_timestamp(secs, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut totals: Vec<RefusalTotal> = Vec::new();
    let mut per_minute = Vec::new();
    for row in rows.into_iter().filter(|r| r.minute * 1000 < end_ms) {
        let count = u64::try_from(row.count).unwrap_or(0);
        match totals
            .iter_mut()
            .find(|t| t.level == row.level && t.reason == row.reason)
        {
            Some(total) => total.count = total.count.saturating_add(count),
            None => totals.push(RefusalTotal {
                level: row.level.clone(),
                reason: row.reason.clone(),
                count,
            }),
        }
        per_minute.push(RefusalCount {
            minute: time(row.minute),
            level: row.level,
            reason: row.reason,
            count,
        });
    }
    totals.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    Ok(Refusals {
        start: time(start_ms.div_euclid(1000)),
        end: time(end_ms.div_euclid(1000)),
        total: totals.iter().map(|t| t.count).sum(),
        totals,
        per_minute,
    })
}
