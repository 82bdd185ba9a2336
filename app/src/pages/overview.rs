//! `/overview`: the gateway at a glance — spend over the last 30 days, the teams nearest their
//! budget or forecast to run out before it resets, the top models and keys, and the requests
//! refused in the last 24 hours.

use crate::{
    api,
    components::{loading, show, usd, when, BudgetBar, Session},
    pages::{
        chart::{date_of, day_number},
        usage::GroupTable,
    },
    types::{Refusals, RefusalsQuery, SpendSummary, Team, TeamListQuery},
};
use leptos::prelude::*;
use leptos_router::components::A;

/// Teams looked at for "nearest their budget" and the forecast: those that used most of it.
const WATCHED: u64 = 100;

/// A team whose 30-day rate spends its budget before the reset, and the day it runs out.
fn runs_out_before_reset(team: &Team, daily_rate: f64, today: i64) -> Option<String> {
    let max = team.budget.max_budget?;
    if daily_rate <= 0.0 || team.budget.spend >= max {
        return None;
    }
    let runs_out = today + ((max - team.budget.spend) / daily_rate).ceil() as i64;
    let reset = team
        .budget
        .budget_reset_at
        .as_deref()
        .and_then(|r| day_number(r.get(..10)?));
    reset
        .is_none_or(|reset| runs_out < reset)
        .then(|| date_of(runs_out))
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    let session = Session::get();
    // The server's default range: the last 30 days.
    let summary = Resource::new(
        move || session.version(),
        |_| api::spend_summary(String::new(), String::new()),
    );
    let watched = Resource::new(
        move || session.version(),
        |_| {
            api::list_teams(TeamListQuery {
                sort: Some("-used".into()),
                size: Some(WATCHED),
                ..TeamListQuery::default()
            })
        },
    );
    let refusals = Resource::new(
        move || session.version(),
        |_| api::refusals(RefusalsQuery::default()),
    );
    view! {
        <section>
            <Transition fallback=loading>
                {move || {
                    let (Some(summary), Some(watched), Some(refusals)) = (summary.get(), watched.get(), refusals.get()) else {
                        return None;
                    };
                    let all = summary.and_then(|s| watched.map(|w| (s, w.teams))).and_then(|sw| refusals.map(|r| (sw, r)));
                    Some(show(all, |((summary, teams), refusals)| view! { <Overview summary=summary teams=teams refusals=refusals/> }.into_any()))
                }}
            </Transition>
        </section>
    }
}

#[component]
fn Overview(summary: SpendSummary, teams: Vec<Team>, refusals: Refusals) -> impl IntoView {
    let total: f64 = summary.teams.iter().map(|g| g.spend).sum();
    let requests: u64 = summary.teams.iter().map(|g| g.requests).sum();
    let days = match (
        day_number(&summary.start_date),
        day_number(&summary.end_date),
    ) {
        (Some(start), Some(end)) => (end - start + 1).max(1),
        _ => 30,
    };
    let today = day_number(&summary.end_date).unwrap_or_default();
    let rate = |team_id: &str| {
        summary
            .teams
            .iter()
            .find(|g| g.id == team_id)
            .map_or(0.0, |g| g.spend / days as f64)
    };
    let nearest: Vec<Team> = teams
        .iter()
        .filter(|t| t.budget.max_budget.is_some_and(|m| m > 0.0))
        .take(5)
        .cloned()
        .collect();
    let at_risk: Vec<(Team, String)> = teams
        .iter()
        .filter_map(|t| runs_out_before_reset(t, rate(&t.team_id), today).map(|d| (t.clone(), d)))
        .take(5)
        .collect();
    let name = |t: &Team| t.team_alias.clone().unwrap_or_else(|| t.team_id.clone());
    view! {
        <h1 id="overview-title">"Overview"</h1>
        <div class="cards">
            <div class="card">
                <h2>"Spend, last 30 days"</h2>
                <p class="big-figure">{usd(total)}</p>
                <p class="hint">{format!("{requests} requests from {} to {} (UTC).", summary.start_date, summary.end_date)}</p>
            </div>
            <div class="card">
                <h2>"Refused, last 24 hours"</h2>
                <p class="big-figure">{refusals.total}</p>
                {if refusals.totals.is_empty() {
                    view! { <p class="empty">"Nothing was refused."</p> }.into_any()
                } else {
                    view! {
                        <div class="scroll-x"><table>
                            <caption class="visually-hidden">"Refusals by reason"</caption>
                            <thead><tr><th scope="col">"Reason"</th><th scope="col">"Level"</th><th scope="col">"Requests"</th></tr></thead>
                            <tbody>
                                {refusals.totals.into_iter().map(|t| view! {
                                    <tr><td>{t.reason.replace('_', " ")}</td><td>{t.level}</td><td>{t.count}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any()
                }}
            </div>
        </div>
        <div class="cards">
            <div class="card">
                <h2>"Nearest their budget"</h2>
                {if nearest.is_empty() {
                    view! { <p class="empty">"No team has a budget yet."</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain">
                            {nearest.into_iter().map(|t| {
                                let (href, label) = (format!("/teams/{}", api::encode(&t.team_id)), name(&t));
                                view! {
                                    <li>
                                        <A href=href>{label}</A>
                                        <BudgetBar spend=t.budget.spend max_budget=t.budget.max_budget/>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </div>
            <div class="card">
                <h2>"Forecast to run out before reset"</h2>
                {if at_risk.is_empty() {
                    view! { <p class="empty">"At the last 30 days' rates, every budget lasts until its reset."</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain">
                            {at_risk.into_iter().map(|(t, day)| {
                                let (href, label) = (format!("/teams/{}", api::encode(&t.team_id)), name(&t));
                                let reset = t.budget.budget_reset_at.as_deref().map_or_else(|| "never".to_string(), when);
                                view! {
                                    <li>
                                        <A href=href>{label}</A>
                                        {format!(" runs out around {day}; resets {reset}.")}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </div>
        </div>
        <div class="cards">
            <div class="card"><h2>"Top models"</h2><GroupTable groups=summary.top_models first="Model"/></div>
            <div class="card"><h2>"Top keys"</h2><GroupTable groups=summary.top_keys first="Key token"/></div>
        </div>
    }
}
