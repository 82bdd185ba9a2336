//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Recorded on the request path: HTTP answers by route and status (a latency histogram), each
//! charged request by team, key and model (requests, tokens, spend, latency), refusals by
//! reason and level, and the spend writer's queue. Read at scrape time: budgets and what is left
//! of them, per team and key, from the same state admission uses (in a fleet, the shared one).
//! Recording takes no lock another request holds: each worker thread records into a shard of
//! its own (a map per family), and a scrape adds the shards up. Label values are kept as given.

use crate::money::Nanos;
use crate::{
    gate::admission::{Denial, LevelKind},
    storage::{RefusalCount, SpendLog},
};
use std::{
    collections::HashMap,
    fmt::Write,
    hash::Hash,
    sync::{
        atomic::{AtomicI64, AtomicUsize, Ordering},
        Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

/// Histogram bucket bounds, in seconds (LiteLLM's latency buckets, widened to ten minutes).
const BOUNDS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 300.0, 600.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last counts those above every bound.
    buckets: [u64; BOUNDS.len() + 1],
    count: u64,
    sum_micros: u64,
}

impl Histogram {
    fn add(&mut self, other: &Self) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
    }

    fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BOUNDS.len());
        if let Some(slot) = self.buckets.get_mut(bucket) {
            *slot = slot.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// `name_bucket{labels,le=…}` lines, then `_sum` and `_count`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (bound, count) in BOUNDS.iter().zip(self.buckets.iter()) {
            cumulative = cumulative.saturating_add(*count);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_micros as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// One series of charged requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct UsageSeries {
    team: String,
    /// Empty when per-key series are off.
    key: String,
    model: String,
    status: u16,
}

/// Series by a label's value.
type ByName<V> = HashMap<String, V>;

/// Team → key → model → status → figures.
type UsageTree = ByName<ByName<ByName<HashMap<u16, Usage>>>>;

/// How a figure of [`Usage`] is written.
type UsageValue = fn(&Usage) -> String;

#[derive(Debug, Clone, Default)]
struct Usage {
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    spend_nanos: u64,
    latency: Histogram,
}

impl Usage {
    fn add(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.spend_nanos = self.spend_nanos.saturating_add(other.spend_nanos);
        self.latency.add(&other.latency);
    }
}

/// How many shards each family has: more than the worker threads of any machine this runs on,
/// so threads rarely share one.
const SHARDS: usize = 64;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard of every family.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// A family's figures in shards, one per recording thread: a thread locks only its own, which
/// only a scrape also takes.
#[derive(Debug)]
struct Sharded<T> {
    shards: Vec<Mutex<T>>,
}

impl<T: Default> Default for Sharded<T> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl<T> Sharded<T> {
    /// The calling thread's shard.
    fn mine(&self) -> MutexGuard<'_, T> {
        let index = SHARD.with(|shard| *shard);
        locked(&self.shards[index % self.shards.len()])
    }

    /// Every shard in turn, for a scrape.
    fn each(&self) -> impl Iterator<Item = MutexGuard<'_, T>> {
        self.shards.iter().map(locked)
    }
}

/// A budget as a scrape reports it.
#[derive(Debug, Clone)]
pub struct BudgetGauge {
    pub id: String,
    pub alias: Option<String>,
    pub team: String,
    /// Nano-dollars.
    pub spend: Nanos,
    pub max_budget: Option<Nanos>,
    /// Seconds until the budget resets, if it does.
    pub resets_in: Option<i64>,
}

/// What a scrape reads from the budgets.
#[derive(Debug, Clone, Default)]
pub struct Budgets {
    pub teams: Vec<BudgetGauge>,
    /// Empty when per-key series are off.
    pub keys: Vec<BudgetGauge>,
}

/// Refusals per minute, level and reason, taken to be written.
#[derive(Debug, Default)]
pub struct TakenRefusals(HashMap<(i64, &'static str, &'static str), u64>);

impl TakenRefusals {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn rows(&self) -> Vec<RefusalCount> {
        self.0
            .iter()
            .map(|((minute, level, reason), count)| RefusalCount {
                minute: *minute,
                level: (*level).to_string(),
                reason: (*reason).to_string(),
                count: i64::try_from(*count).unwrap_or(i64::MAX),
            })
            .collect()
    }
}

/// The recorded metrics of this instance.
#[derive(Debug)]
pub struct Metrics {
    per_key: bool,
    /// Route pattern → status → latencies.
    http: Sharded<HashMap<String, HashMap<u16, Histogram>>>,
    /// Team → key → model → status → figures: looked up by reference, so recording a
    /// request allocates nothing once its series exists.
    usage: Sharded<UsageTree>,
    refusals: Sharded<HashMap<(&'static str, &'static str), u64>>,
    /// Refusals per minute not yet written to the database (for the console's overview).
    unwritten_refusals: Sharded<HashMap<(i64, &'static str, &'static str), u64>>,
    spend_queue: AtomicI64,
    /// Age of the oldest row in the last committed batch, milliseconds.
    spend_lag_ms: AtomicI64,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The value under `key`, made when missing; looked up by reference first.
fn entry<'a, V: Default>(map: &'a mut HashMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key)
        .unwrap_or_else(|| unreachable!("inserted just above"))
}

fn bump<K: Hash + Eq>(map: &mut HashMap<K, u64>, key: K) {
    let count = map.entry(key).or_default();
    *count = count.saturating_add(1);
}

/// A label value, escaped as the exposition format wants.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The reason and level a refusal is counted under.
pub fn refusal_labels(denial: &Denial) -> (&'static str, &'static str) {
    let level = |kind: LevelKind| kind.name();
    match denial {
        Denial::KeyBlocked => ("blocked", "key"),
        Denial::KeyExpired => ("expired", "key"),
        Denial::Blocked { level: l } => ("blocked", level(l.kind)),
        Denial::ModelNotAllowed { level: l, .. } => ("model_not_allowed", level(l.kind)),
        Denial::OverBudget { level: l, .. } => ("budget", level(l.kind)),
        Denial::RateLimited { level: l, .. } => ("rate_limit", level(l.kind)),
        Denial::Unavailable(_) => ("unavailable", "gateway"),
    }
}

impl Metrics {
    /// `per_key`: whether series carry the key (one series per key and model: turn it off when
    /// keys are many).
    pub fn new(per_key: bool) -> Self {
        Self {
            per_key,
            http: Sharded::default(),
            usage: Sharded::default(),
            refusals: Sharded::default(),
            unwritten_refusals: Sharded::default(),
            spend_queue: AtomicI64::new(0),
            spend_lag_ms: AtomicI64::new(0),
        }
    }

    pub fn per_key(&self) -> bool {
        self.per_key
    }

    /// An HTTP answer: the route pattern it matched (`/team/info`), its status and how long it
    /// took.
    pub fn answered(&self, route: &str, status: u16, elapsed: Duration) {
        let mut http = self.http.mine();
        entry(&mut http, route)
            .entry(status)
            .or_default()
            .observe(elapsed);
    }

    /// A request that reached a provider and was charged (its spend row).
    pub fn charged(&self, log: &SpendLog) {
        let key = if self.per_key {
            log.key_id.as_str()
        } else {
            ""
        };
        let status = u16::try_from(log.status).unwrap_or(0);
        let to_u64 = |n: i64| u64::try_from(n).unwrap_or(0);
        let mut usage = self.usage.mine();
        let models = entry(entry(&mut usage, &log.team_id), key);
        let figures = entry(models, &log.model).entry(status).or_default();
        figures.requests = figures.requests.saturating_add(1);
        figures.prompt_tokens = figures
            .prompt_tokens
            .saturating_add(to_u64(log.prompt_tokens));
        figures.completion_tokens = figures
            .completion_tokens
            .saturating_add(to_u64(log.completion_tokens));
        figures.spend_nanos = figures.spend_nanos.saturating_add(to_u64(log.cost.0));
        figures
            .latency
            .observe(Duration::from_millis(to_u64(log.latency_ms)));
    }

    /// A request refused before it reached a provider, at `now` (unix seconds).
    pub fn refused(&self, denial: &Denial, now: i64) {
        let (reason, level) = refusal_labels(denial);
        bump(&mut self.refusals.mine(), (reason, level));
        bump(
            &mut self.unwritten_refusals.mine(),
            (now - now.rem_euclid(60), level, reason),
        );
    }

    /// The refusals counted since the last call, per minute, to be written.
    pub fn take_refusals(&self) -> TakenRefusals {
        let mut taken: HashMap<(i64, &'static str, &'static str), u64> = HashMap::new();
        for mut shard in self.unwritten_refusals.each() {
            for (labels, count) in shard.drain() {
                let total = taken.entry(labels).or_default();
                *total = total.saturating_add(count);
            }
        }
        TakenRefusals(taken)
    }

    /// Counts taken but not written (the database was away): kept for the next try.
    pub fn untake_refusals(&self, taken: TakenRefusals) {
        let mut unwritten = self.unwritten_refusals.mine();
        for (labels, count) in taken.0 {
            let slot = unwritten.entry(labels).or_default();
            *slot = slot.saturating_add(count);
        }
    }

    /// A spend row joined the writer's queue.
    pub fn spend_queued(&self) {
        self.spend_queue.fetch_add(1, Ordering::Relaxed);
    }

    /// The writer committed `rows`, the oldest of them recorded at `oldest_ms` (unix ms).
    pub fn spend_committed(&self, rows: usize, oldest_ms: i64, now_ms: i64) {
        self.spend_queue
            .fetch_sub(i64::try_from(rows).unwrap_or(i64::MAX), Ordering::Relaxed);
        self.spend_lag_ms
            .store(now_ms.saturating_sub(oldest_ms).max(0), Ordering::Relaxed);
    }

    /// The exposition text: what was recorded, then `budgets` as gauges.
    pub fn render(&self, budgets: &Budgets) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_http(&mut out);
        self.render_usage(&mut out);
        self.render_refusals(&mut out);
        self.render_spend_writer(&mut out);
        render_budgets(&mut out, budgets);
        out
    }

    fn render_http(&self, out: &mut String) {
        let mut merged: HashMap<(String, u16), Histogram> = HashMap::new();
        for shard in self.http.each() {
            for (route, statuses) in shard.iter() {
                for (status, histogram) in statuses {
                    merged
                        .entry((route.clone(), *status))
                        .or_default()
                        .add(histogram);
                }
            }
        }
        let mut series: Vec<((String, u16), Histogram)> = merged.into_iter().collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        header(
            out,
            "gatehouse_http_requests_total",
            "counter",
            "HTTP answers by route pattern and status.",
        );
        for ((route, status), histogram) in &series {
            let _ = writeln!(
                out,
                "gatehouse_http_requests_total{{route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                histogram.count
            );
        }
        header(
            out,
            "gatehouse_http_request_duration_seconds",
            "histogram",
            "Time to answer (to the first byte of a stream), by route pattern and status.",
        );
        for ((route, status), histogram) in &series {
            let labels = format!("route=\"{}\",status=\"{status}\"", escape(route));
            histogram.render(out, "gatehouse_http_request_duration_seconds", &labels);
        }
    }

    fn render_usage(&self, out: &mut String) {
        let mut all: HashMap<UsageSeries, Usage> = HashMap::new();
        for shard in self.usage.each() {
            for (team, keys) in shard.iter() {
                for (key, models) in keys {
                    for (model, statuses) in models {
                        for (status, usage) in statuses {
                            let s = UsageSeries {
                                team: team.clone(),
                                key: key.clone(),
                                model: model.clone(),
                                status: *status,
                            };
                            all.entry(s).or_default().add(usage);
                        }
                    }
                }
            }
        }
        let mut series: Vec<(UsageSeries, Usage)> = all.into_iter().collect();
        series.sort_by(|a, b| {
            (&a.0.team, &a.0.key, &a.0.model, a.0.status)
                .cmp(&(&b.0.team, &b.0.key, &b.0.model, b.0.status))
        });
        let ours = |s: &UsageSeries| {
            let key = if self.per_key {
                format!(",key=\"{}\"", escape(&s.key))
            } else {
                String::new()
            };
            format!(
                "team=\"{}\"{key},model=\"{}\"",
                escape(&s.team),
                escape(&s.model)
            )
        };
        // LiteLLM's label set for the same figures, so its dashboards work unchanged.
        let litellm = |s: &UsageSeries| {
            format!(
                "end_user=\"\",hashed_api_key=\"{}\",api_key_alias=\"\",model=\"{}\",team=\"{}\",team_alias=\"\",user=\"\"",
                escape(&s.key),
                escape(&s.model),
                escape(&s.team)
            )
        };
        let families: [(&str, &str, &str, UsageValue); 4] = [
            (
                "gatehouse_proxy_requests_total",
                "counter",
                "Requests that reached a provider, by team, key, model and status.",
                |u| u.requests.to_string(),
            ),
            (
                "gatehouse_prompt_tokens_total",
                "counter",
                "Prompt tokens charged.",
                |u| u.prompt_tokens.to_string(),
            ),
            (
                "gatehouse_completion_tokens_total",
                "counter",
                "Completion tokens charged.",
                |u| u.completion_tokens.to_string(),
            ),
            (
                "gatehouse_spend_usd_total",
                "counter",
                "Spend charged, USD.",
                |u| {
                    Nanos(i64::try_from(u.spend_nanos).unwrap_or(i64::MAX))
                        .usd()
                        .to_string()
                },
            ),
        ];
        for (name, kind, help, value) in families {
            header(out, name, kind, help);
            for (s, u) in &series {
                let _ = writeln!(
                    out,
                    "{name}{{{},status=\"{}\"}} {}",
                    ours(s),
                    s.status,
                    value(u)
                );
            }
        }
        header(
            out,
            "gatehouse_proxy_request_duration_seconds",
            "histogram",
            "Time from request to the answer's last byte, by team, key, model and status.",
        );
        for (s, u) in &series {
            let labels = format!("{},status=\"{}\"", ours(s), s.status);
            u.latency
                .render(out, "gatehouse_proxy_request_duration_seconds", &labels);
        }

        // LiteLLM's names: summed over statuses (its label sets have none).
        let mut merged: HashMap<String, Usage> = HashMap::new();
        for (s, u) in &series {
            let entry = merged.entry(litellm(s)).or_default();
            entry.requests = entry.requests.saturating_add(u.requests);
            entry.prompt_tokens = entry.prompt_tokens.saturating_add(u.prompt_tokens);
            entry.completion_tokens = entry.completion_tokens.saturating_add(u.completion_tokens);
            entry.spend_nanos = entry.spend_nanos.saturating_add(u.spend_nanos);
        }
        let mut merged: Vec<_> = merged.into_iter().collect();
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        let litellm_families: [(&str, &str, UsageValue); 5] = [
            (
                "litellm_spend_metric",
                "Total spend, USD (LiteLLM's name).",
                |u| {
                    Nanos(i64::try_from(u.spend_nanos).unwrap_or(i64::MAX))
                        .usd()
                        .to_string()
                },
            ),
            (
                "litellm_requests_metric",
                "Total requests (LiteLLM's name).",
                |u| u.requests.to_string(),
            ),
            (
                "litellm_total_tokens_metric",
                "Input plus output tokens (LiteLLM's name).",
                |u| {
                    u.prompt_tokens
                        .saturating_add(u.completion_tokens)
                        .to_string()
                },
            ),
            (
                "litellm_input_tokens_metric",
                "Input tokens (LiteLLM's name).",
                |u| u.prompt_tokens.to_string(),
            ),
            (
                "litellm_output_tokens_metric",
                "Output tokens (LiteLLM's name).",
                |u| u.completion_tokens.to_string(),
            ),
        ];
        for (name, help, value) in litellm_families {
            header(out, name, "counter", help);
            for (labels, u) in &merged {
                let _ = writeln!(out, "{name}{{{labels}}} {}", value(u));
            }
        }
    }

    fn render_refusals(&self, out: &mut String) {
        let mut counts: HashMap<(&'static str, &'static str), u64> = HashMap::new();
        for shard in self.refusals.each() {
            for (labels, count) in shard.iter() {
                let total = counts.entry(*labels).or_default();
                *total = total.saturating_add(*count);
            }
        }
        let mut refusals: Vec<_> = counts.into_iter().collect();
        refusals.sort();
        header(
            out,
            "gatehouse_refusals_total",
            "counter",
            "Requests refused before reaching a provider, by reason and the level that refused.",
        );
        for ((reason, level), count) in refusals {
            let _ = writeln!(
                out,
                "gatehouse_refusals_total{{reason=\"{reason}\",level=\"{level}\"}} {count}"
            );
        }
    }

    fn render_spend_writer(&self, out: &mut String) {
        header(
            out,
            "gatehouse_spend_queue_rows",
            "gauge",
            "Spend rows waiting to be committed.",
        );
        let _ = writeln!(
            out,
            "gatehouse_spend_queue_rows {}",
            self.spend_queue.load(Ordering::Relaxed).max(0)
        );
        header(
            out,
            "gatehouse_spend_commit_lag_seconds",
            "gauge",
            "Age of the oldest row of the last committed batch.",
        );
        let _ = writeln!(
            out,
            "gatehouse_spend_commit_lag_seconds {}",
            self.spend_lag_ms.load(Ordering::Relaxed) as f64 / 1e3
        );
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render_budgets(out: &mut String, budgets: &Budgets) {
    let usd = |amount: Nanos| amount.usd().to_string();
    let remaining = |b: &BudgetGauge| b.max_budget.map(|max| usd(max.saturating_sub(b.spend)));
    let team_labels = |b: &BudgetGauge| {
        format!(
            "team=\"{}\",team_alias=\"{}\"",
            escape(&b.id),
            escape(b.alias.as_deref().unwrap_or(""))
        )
    };
    let key_labels = |b: &BudgetGauge| {
        format!(
            "hashed_api_key=\"{}\",api_key_alias=\"{}\",team=\"{}\"",
            escape(&b.id),
            escape(b.alias.as_deref().unwrap_or("")),
            escape(&b.team)
        )
    };
    type Labels<'a> = &'a dyn Fn(&BudgetGauge) -> String;
    type Value<'a> = &'a dyn Fn(&BudgetGauge) -> Option<String>;
    let gauges: [(&str, &str, &[BudgetGauge], Labels, Value); 8] = [
        (
            "gatehouse_team_spend_usd",
            "A team's spend this budget period, USD.",
            &budgets.teams,
            &team_labels,
            &|b| Some(usd(b.spend)),
        ),
        (
            "gatehouse_team_budget_remaining_usd",
            "What is left of a team's budget this period, USD.",
            &budgets.teams,
            &team_labels,
            &remaining,
        ),
        (
            "litellm_remaining_team_budget_metric",
            "Remaining team budget (LiteLLM's name).",
            &budgets.teams,
            &team_labels,
            &remaining,
        ),
        (
            "litellm_team_max_budget_metric",
            "Maximum team budget (LiteLLM's name).",
            &budgets.teams,
            &team_labels,
            &|b| b.max_budget.map(usd),
        ),
        (
            "litellm_team_budget_remaining_hours_metric",
            "Hours until the team budget resets (LiteLLM's name).",
            &budgets.teams,
            &team_labels,
            &|b| b.resets_in.map(|s| (s as f64 / 3600.0).to_string()),
        ),
        (
            "gatehouse_key_budget_remaining_usd",
            "What is left of a key's budget this period, USD.",
            &budgets.keys,
            &key_labels,
            &remaining,
        ),
        (
            "litellm_remaining_api_key_budget_metric",
            "Remaining API key budget (LiteLLM's name).",
            &budgets.keys,
            &key_labels,
            &remaining,
        ),
        (
            "litellm_api_key_max_budget_metric",
            "Maximum API key budget (LiteLLM's name).",
            &budgets.keys,
            &key_labels,
            &|b| b.max_budget.map(usd),
        ),
    ];
    for (name, help, list, labels, value) in gauges {
        header(out, name, "gauge", help);
        for budget in list {
            if let Some(value) = value(budget) {
                let _ = writeln!(out, "{name}{{{}}} {value}", labels(budget));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_into_cumulative_buckets() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(70));
        h.observe(Duration::from_secs(4000));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"600\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{a=\"b\"} 4000.073\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
