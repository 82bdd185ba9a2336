//! The budget chart: daily spend as bars, cumulative spend as a line against the budget line,
//! and a forecast of the day the budget runs out at the current rate. Drawn as plain SVG: it
//! renders on the server like the rest of the page, adds next to nothing to the WASM bundle,
//! and its figures are also given as a table for screen readers.

use crate::{components::usd, types::DailySpendEntry};
use leptos::prelude::*;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const PAD_LEFT: f64 = 64.0;
const PAD_BOTTOM: f64 = 28.0;
const PAD_TOP: f64 = 12.0;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (Howard Hinnant's civil-days algorithm).
pub fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The `YYYY-MM-DD` date of a day number.
pub fn date_of(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// When the budget runs out at the average daily spend of the last 7 days of `days`.
pub fn forecast(
    days: &[DailySpendEntry],
    spend: f64,
    max_budget: Option<f64>,
    reset_at: Option<&str>,
) -> String {
    let Some(max) = max_budget else {
        return "No budget is set: spend is not limited.".to_string();
    };
    if spend >= max {
        return "The budget is spent: requests are refused until it resets or is raised."
            .to_string();
    }
    let recent = &days[days.len().saturating_sub(7)..];
    let rate = recent.iter().map(|d| d.spend).sum::<f64>() / recent.len().max(1) as f64;
    let Some(today) = days.last().and_then(|d| day_number(&d.date)) else {
        return String::new();
    };
    if rate <= 0.0 {
        return "No spend in the last 7 days: at this rate the budget does not run out."
            .to_string();
    }
    let days_left = ((max - spend) / rate).ceil();
    if days_left > 3650.0 {
        return format!(
            "At the current rate ({}/day) the budget lasts more than ten years.",
            usd(rate)
        );
    }
    let runs_out = today + days_left as i64;
    let date = date_of(runs_out);
    let before_reset = reset_at
        .and_then(|r| day_number(r.get(..10)?))
        .is_none_or(|reset| runs_out < reset);
    if before_reset {
        format!(
            "At the current rate ({}/day) the budget runs out around {date}.",
            usd(rate)
        )
    } else {
        format!(
            "At the current rate ({}/day) the budget lasts until its next reset.",
            usd(rate)
        )
    }
}

/// How many models or keys a split chart shows on their own; the rest are "Other".
const SERIES: usize = 5;

/// The parts a split chart stacks: the most spent groups over the range (named), then "Other".
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// Each day's spend of this part.
    pub spend: Vec<f64>,
}

/// The stacked parts of `days` (none when they are not split), largest first.
pub fn series(days: &[DailySpendEntry], names: &[(String, String)]) -> Vec<Series> {
    let mut totals: Vec<(String, f64)> = Vec::new();
    for group in days.iter().flat_map(|d| d.groups.iter().flatten()) {
        match totals.iter_mut().find(|(id, _)| *id == group.id) {
            Some((_, total)) => *total += group.spend,
            None => totals.push((group.id.clone(), group.spend)),
        }
    }
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let named: Vec<String> = totals
        .iter()
        .take(SERIES)
        .map(|(id, _)| id.clone())
        .collect();
    let spend_of = |day: &DailySpendEntry, wanted: Option<&str>| -> f64 {
        day.groups
            .iter()
            .flatten()
            .filter(|g| match wanted {
                Some(id) => g.id == id,
                None => !named.contains(&g.id),
            })
            // From +0.0: an empty float sum is -0.0, shown as "$-0.00".
            .fold(0.0, |total, g| total + g.spend)
    };
    let label = |id: &str| {
        names
            .iter()
            .find(|(known, _)| known == id)
            .map_or_else(|| id.to_string(), |(_, name)| name.clone())
    };
    let mut parts: Vec<Series> = named
        .iter()
        .map(|id| Series {
            label: label(id),
            spend: days.iter().map(|d| spend_of(d, Some(id))).collect(),
        })
        .collect();
    if totals.len() > SERIES {
        parts.push(Series {
            label: "Other".to_string(),
            spend: days.iter().map(|d| spend_of(d, None)).collect(),
        });
    }
    parts
}

#[component]
pub fn SpendChart(
    days: Vec<DailySpendEntry>,
    max_budget: Option<f64>,
    /// Names for the groups of a split chart (keys by token); others show their id.
    #[prop(optional)]
    names: Vec<(String, String)>,
) -> impl IntoView {
    let parts = series(&days, &names);
    let n = days.len().max(1) as f64;
    let cumulative: Vec<f64> = days
        .iter()
        .scan(0.0, |total, d| {
            *total += d.spend;
            Some(*total)
        })
        .collect();
    let top_daily = days.iter().map(|d| d.spend).fold(0.0, f64::max).max(1e-9);
    let top_total = cumulative
        .last()
        .copied()
        .unwrap_or(0.0)
        .max(max_budget.unwrap_or(0.0))
        .max(1e-9);
    let plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM;
    let slot = (WIDTH - PAD_LEFT) / n;
    let x = move |i: usize| PAD_LEFT + slot * i as f64;
    let y_total = move |v: f64| PAD_TOP + plot_h * (1.0 - v / top_total);
    let height = move |spend: f64| plot_h * (spend / top_daily) * 0.6;
    // One bar a day, or with a split, one stacked piece a part.
    let bar = move |i: usize, bottom: f64, spend: f64, class: String, title: String| {
        let h = height(spend);
        view! {
            <rect class=class x=format!("{:.1}", x(i) + slot * 0.15) y=format!("{:.1}", PAD_TOP + plot_h - bottom - h)
                width=format!("{:.1}", slot * 0.7) height=format!("{h:.1}")>
                <title>{title}</title>
            </rect>
        }
    };
    let bars = days
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            if parts.is_empty() {
                return vec![bar(
                    i,
                    0.0,
                    d.spend,
                    "day-bar".into(),
                    format!("{}: {}", d.date, usd(d.spend)),
                )];
            }
            let mut bottom = 0.0;
            parts
                .iter()
                .enumerate()
                .filter(|(_, part)| part.spend[i] > 0.0)
                .map(|(p, part)| {
                    let piece = bar(
                        i,
                        bottom,
                        part.spend[i],
                        format!("day-bar series-{p}"),
                        format!("{}, {}: {}", d.date, part.label, usd(part.spend[i])),
                    );
                    bottom += height(part.spend[i]);
                    piece
                })
                .collect()
        })
        .collect_view();
    let line = cumulative
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i) + slot / 2.0, y_total(*v)))
        .collect::<Vec<_>>()
        .join(" ");
    let budget_line = max_budget.map(|max| {
        let y = y_total(max);
        view! {
            <line class="budget-line" x1=PAD_LEFT x2=WIDTH y1=format!("{y:.1}") y2=format!("{y:.1}")/>
            <text class="axis" x=PAD_LEFT + 4.0 y=format!("{:.1}", y - 4.0)>{format!("budget {}", usd(max))}</text>
        }
    });
    let first = days.first().map(|d| d.date.clone()).unwrap_or_default();
    let last = days.last().map(|d| d.date.clone()).unwrap_or_default();
    let total = cumulative.last().copied().unwrap_or(0.0);
    let label = format!(
        "Daily spend from {first} to {last}, {} in total, {}",
        usd(total),
        max_budget.map_or("no budget".to_string(), |m| format!(
            "against a budget of {}",
            usd(m)
        ))
    );
    let legend = if parts.is_empty() {
        view! { <span class="key key-bars">"Daily spend"</span> }.into_any()
    } else {
        parts
            .iter()
            .enumerate()
            .map(|(p, part)| view! { <span class=format!("key series-{p}")>{part.label.clone()}</span> })
            .collect_view()
            .into_any()
    };
    let part_heads = parts
        .iter()
        .map(|part| view! { <th scope="col">{part.label.clone()}</th> })
        .collect_view();
    let rows = days
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let pieces = parts
                .iter()
                .map(|part| view! { <td>{usd(part.spend[i])}</td> })
                .collect_view();
            view! { <tr><td>{d.date}</td><td>{usd(d.spend)}</td>{pieces}<td>{d.requests}</td><td>{d.tokens}</td></tr> }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=label preserveAspectRatio="none">
                <line class="axis-line" x1=PAD_LEFT x2=WIDTH y1=HEIGHT - PAD_BOTTOM y2=HEIGHT - PAD_BOTTOM/>
                {bars}
                <polyline class="cumulative" points=line/>
                {budget_line}
                <text class="axis" x="4" y=PAD_TOP + 10.0>{usd(top_total)}</text>
                <text class="axis" x=PAD_LEFT y=HEIGHT - 8.0>{first.clone()}</text>
                <text class="axis" x=WIDTH - 70.0 y=HEIGHT - 8.0>{last.clone()}</text>
            </svg>
            <figcaption>
                {legend}
                <span class="key key-cumulative">"Cumulative spend"</span>
                {max_budget.map(|_| view! { <span class="key key-budget">"Budget"</span> })}
            </figcaption>
            <details>
                <summary>"Daily figures"</summary>
                <div class="scroll-x">
                    <table>
                        <thead><tr><th scope="col">"Date"</th><th scope="col">"Spend"</th>{part_heads}<th scope="col">"Requests"</th><th scope="col">"Tokens"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            </details>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SpendGroup;

    fn day(date: &str, spend: f64) -> DailySpendEntry {
        DailySpendEntry {
            date: date.into(),
            spend,
            requests: 1,
            tokens: 1,
            groups: None,
        }
    }

    fn split_day(date: &str, groups: &[(&str, f64)]) -> DailySpendEntry {
        DailySpendEntry {
            groups: Some(
                groups
                    .iter()
                    .map(|(id, spend)| SpendGroup {
                        id: id.to_string(),
                        spend: *spend,
                        requests: 1,
                        tokens: 1,
                    })
                    .collect(),
            ),
            ..day(date, groups.iter().map(|(_, s)| s).sum())
        }
    }

    #[test]
    fn a_split_names_the_five_largest_parts_and_sums_the_rest() {
        assert!(series(&[day("2026-11-01", 1.0)], &[]).is_empty());
        let days = [
            split_day("2026-11-01", &[("a", 1.0), ("b", 2.0), ("c", 3.0)]),
            split_day(
                "2026-11-02",
                &[("d", 4.0), ("e", 5.0), ("f", 0.5), ("g", 0.25)],
            ),
        ];
        let parts = series(&days, &[("e".to_string(), "laptop".to_string())]);
        let labels: Vec<_> = parts.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["laptop", "d", "c", "b", "a", "Other"]);
        assert_eq!(parts[0].spend, [0.0, 5.0]);
        assert_eq!(parts[5].spend, [0.0, 0.75]);
        assert!(
            parts[0].spend[0].is_sign_positive(),
            "no -0.0 on a day without the part"
        );
        // Each day's parts add up to the day.
        for (i, d) in days.iter().enumerate() {
            let sum: f64 = parts.iter().map(|p| p.spend[i]).sum();
            assert!((sum - d.spend).abs() < 1e-12);
        }
    }

    #[test]
    fn dates_round_trip() {
        for date in ["1970-01-01", "2000-02-29", "2026-11-27", "2027-01-01"] {
            assert_eq!(date_of(day_number(date).expect("date")), date);
        }
        assert_eq!(
            day_number("2026-12-01").expect("d") - day_number("2026-11-27").expect("d"),
            4
        );
    }

    #[test]
    fn the_forecast_follows_the_last_week() {
        let days: Vec<_> = (20..=26)
            .map(|d| day(&format!("2026-11-{d}"), 10.0))
            .collect();
        // $60 left at $10/day: out on Dec 2nd, before a reset on Dec 5th.
        let text = forecast(&days, 40.0, Some(100.0), Some("2026-12-05T00:00:00Z"));
        assert!(text.contains("runs out around 2026-12-02"), "{text}");
        let lasts = forecast(&days, 40.0, Some(100.0), Some("2026-12-01T00:00:00Z"));
        assert!(lasts.contains("lasts until its next reset"), "{lasts}");
        assert!(forecast(&days, 100.0, Some(100.0), None).contains("spent"));
    }
}
