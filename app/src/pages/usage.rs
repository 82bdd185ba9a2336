//! `/usage`: spend per team over a chosen range, and the top models and keys.

use crate::{
    api,
    components::{loading, show, usd, Session},
    types::SpendGroup,
};
use leptos::prelude::*;

#[component]
pub fn UsagePage() -> impl IntoView {
    let session = Session::get();
    let start = RwSignal::new(String::new());
    let end = RwSignal::new(String::new());
    // Empty dates: the server's default range, the last 30 days.
    let summary = Resource::new(
        move || (session.version(), start.get(), end.get()),
        |(_, start, end)| api::spend_summary(start, end),
    );
    view! {
        <section>
            <Transition fallback=loading>
                {move || summary.get().map(|result| show(result, move |summary| {
                    // The server's answer names the range it used (its default when none was asked).
                    let (from, to) = (summary.start_date.clone(), summary.end_date.clone());
                    view! {
                        <h1 id="usage-title">"Usage"</h1>
                        <div class="filters">
                            <label for="usage-start">"From"</label>
                            <input id="usage-start" type="date" value=from on:change=move |ev| start.set(event_target_value(&ev))/>
                            <label for="usage-end">"To"</label>
                            <input id="usage-end" type="date" value=to on:change=move |ev| end.set(event_target_value(&ev))/>
                        </div>
                        <p class="hint">{format!("From {} to {} (UTC).", summary.start_date, summary.end_date)}</p>
                        <div class="card">
                            <h2>"Spend per team"</h2>
                            <Bars groups=summary.teams/>
                        </div>
                        <div class="cards">
                            <div class="card"><h2>"Top models"</h2><GroupTable groups=summary.top_models first="Model"/></div>
                            <div class="card"><h2>"Top keys"</h2><GroupTable groups=summary.top_keys first="Key token"/></div>
                        </div>
                    }.into_any()
                }))}
            </Transition>
        </section>
    }
}

#[component]
fn Bars(groups: Vec<SpendGroup>) -> impl IntoView {
    if groups.is_empty() {
        return view! { <p class="empty">"No requests in this range."</p> }.into_any();
    }
    let top = groups
        .iter()
        .map(|g| g.spend)
        .fold(0.0, f64::max)
        .max(1e-12);
    view! {
        <ul class="hbars">
            {groups.into_iter().map(|g| {
                let width = (g.spend / top * 100.0).clamp(0.5, 100.0);
                view! {
                    <li>
                        <a class="label" href=format!("/teams/{}", g.id)>{g.id.clone()}</a>
                        <svg class="track" aria-hidden="true"><rect class="fill" width=format!("{width:.1}%") height="100%"></rect></svg>
                        <span class="figures">{format!("{} · {} requests", usd(g.spend), g.requests)}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }.into_any()
}

#[component]
pub fn GroupTable(groups: Vec<SpendGroup>, first: &'static str) -> impl IntoView {
    if groups.is_empty() {
        return view! { <p class="empty">"No requests in this range."</p> }.into_any();
    }
    // Scrolls sideways on its own on a narrow screen, instead of widening the page.
    view! {
        <div class="scroll-x">
            <table>
                <thead><tr><th scope="col">{first}</th><th scope="col">"Spend"</th><th scope="col">"Requests"</th><th scope="col">"Tokens"</th></tr></thead>
                <tbody>
                    {groups.into_iter().map(|g| view! {
                        <tr><td>{g.id}</td><td>{usd(g.spend)}</td><td>{g.requests}</td><td>{g.tokens}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }.into_any()
}
