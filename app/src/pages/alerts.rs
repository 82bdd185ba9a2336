//! `/alerts`: budget alerts — each threshold crossing, soft budget and forecast — and their
//! delivery to each webhook (attempts, the last error, the next try).

use crate::{
    api,
    components::{columns, loading, show, usd, when, Pager, Session},
    types::{AlertEntry, AlertList, AlertQuery},
};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

const PAGE_SIZE: u64 = 50;

#[component]
pub fn AlertsPage() -> impl IntoView {
    let session = Session::get();
    let params = use_query_map();
    let page = Memo::new(move |_| {
        params.with(|p| {
            p.get("page")
                .and_then(|v| v.parse().ok())
                .filter(|p| *p > 0)
        })
    });
    let alerts = Resource::new(
        move || (session.version(), page.get()),
        |(_, page)| {
            api::alerts(AlertQuery {
                page,
                size: Some(PAGE_SIZE),
                ..AlertQuery::default()
            })
        },
    );
    view! {
        <section>
            <h1 id="alerts-title">"Budget alerts"</h1>
            <p class="hint">"Sent when spend crosses a threshold of a budget, a soft budget, or is on course to run out before the reset."</p>
            <Transition fallback=loading>
                {move || alerts.get().map(|result| show(result, |list| view! { <AlertTable list=list/> }.into_any()))}
            </Transition>
        </section>
    }
}

#[component]
fn AlertTable(list: AlertList) -> impl IntoView {
    let (page, pages, total) = (list.current_page, list.total_pages, list.total_count);
    let shown = list.alerts.len() as u64;
    let rows = if list.alerts.is_empty() {
        view! { <tr><td colspan="5" class="empty">"No alert yet."</td></tr> }.into_any()
    } else {
        list.alerts
            .into_iter()
            .map(|alert| view! { <AlertRow alert=alert/> })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"Budget alerts, newest first"</caption>
                {columns(&["Time", "Alert", "Where", "Spend / budget", "Delivery"])}
                <tbody>{rows}</tbody>
            </table>
        </div>
        <Pager label="Pages of alerts" noun="alerts" page=page pages=pages page_size=PAGE_SIZE shown=shown total=total
            links=("Newer", "Older") href=Callback::new(|page: u64| format!("/alerts?page={page}"))/>
    }
}

#[component]
fn AlertRow(alert: AlertEntry) -> impl IntoView {
    let spend = alert.event["spend"].as_f64().unwrap_or(0.0);
    let budget = alert.event["max_budget"]
        .as_f64()
        .map_or_else(|| "no budget".to_string(), usd);
    let (class, delivery) = match (&alert.destination, &alert.delivered_at) {
        (None, _) => ("badge", "no webhook configured".to_string()),
        (Some(_), Some(at)) => ("badge active", format!("delivered {}", when(at))),
        (Some(_), None) => (
            "badge blocked",
            format!(
                "{} tries; next {}{}",
                alert.attempts,
                alert
                    .next_attempt_at
                    .as_deref()
                    .map_or_else(String::new, when),
                alert
                    .last_error
                    .as_deref()
                    .map_or_else(String::new, |e| format!(" ({e})"))
            ),
        ),
    };
    view! {
        <tr>
            <td>{when(&alert.created_at)}</td>
            <td>{alert.summary.clone()}<div class="team-id">{alert.event_id.clone()}</div></td>
            <td>{alert.scope.clone()} " " <code>{alert.id.clone()}</code></td>
            <td>{usd(spend)} " / " {budget}</td>
            <td><span class=class>{delivery}</span>
                <div class="team-id">{alert.destination.clone().unwrap_or_default()}</div></td>
        </tr>
    }
}
