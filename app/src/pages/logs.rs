//! `/logs`: the request log, newest first, filtered by team, key, model, status and time, and
//! `/logs/:request_id`: one request's figures. Prompts and answers are never stored: there is
//! nothing of them to show.

use crate::{
    api,
    components::{columns, loading, show, usd, when, Pager, Session},
    types::{SpendLogEntry, SpendLogList, SpendLogQuery},
};
use leptos::prelude::*;
use leptos_router::{
    components::{Form, A},
    hooks::{use_params_map, use_query_map},
    params::ParamsMap,
};

/// Rows per page of the log.
const PAGE_SIZE: u64 = 50;

/// The statuses the filter offers (any other can be typed into the address).
const STATUSES: [(u16, &str); 8] = [
    (200, "200 OK"),
    (400, "400 Bad request"),
    (401, "401 Refused key"),
    (429, "429 Rate limited"),
    (499, "499 Client left"),
    (502, "502 Provider error"),
    (503, "503 Unavailable"),
    (504, "504 Timed out"),
];

/// The filters live in the address, like the teams table's.
fn log_query(params: &ParamsMap) -> SpendLogQuery {
    let text = |name: &str| params.get(name).filter(|v| !v.trim().is_empty());
    SpendLogQuery {
        team_id: text("team_id"),
        key: text("key"),
        model: text("model"),
        status: text("status").and_then(|s| s.parse().ok()),
        request_id: None,
        start: text("start"),
        end: text("end"),
        page: text("page").and_then(|p| p.parse().ok()).filter(|p| *p > 0),
        size: Some(PAGE_SIZE),
    }
}

fn href(query: &SpendLogQuery, page: u64) -> String {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    api::with_query(
        "/logs",
        &[
            ("team_id", text(&query.team_id)),
            ("key", text(&query.key)),
            ("model", text(&query.model)),
            (
                "status",
                query.status.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("start", text(&query.start)),
            ("end", text(&query.end)),
            (
                "page",
                if page > 1 {
                    page.to_string()
                } else {
                    String::new()
                },
            ),
        ],
    )
}

#[component]
pub fn LogsPage() -> impl IntoView {
    let session = Session::get();
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(log_query));
    let logs = Resource::new(
        move || (session.version(), query.get()),
        |(_, query)| api::spend_logs(query),
    );
    view! {
        <section>
            <Transition fallback=loading>
                {move || logs.get().map(|result| show(result, move |list| {
                    let current = query.get_untracked();
                    view! {
                        <h1 id="logs-title">"Request log"</h1>
                        <LogFilters query=current.clone()/>
                        <LogTable list=list query=current/>
                    }.into_any()
                }))}
            </Transition>
        </section>
    }
}

#[component]
fn LogFilters(query: SpendLogQuery) -> impl IntoView {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let status = query.status;
    view! {
        <Form method="GET" action="/logs" attr:class="filters" attr:role="search" attr:aria-label="Filter the log">
            <label for="log-team">"Team"</label>
            <input id="log-team" name="team_id" placeholder="Team id" value=text(&query.team_id)/>
            <label for="log-key">"Key"</label>
            <input id="log-key" name="key" placeholder="Key token" value=text(&query.key)/>
            <label for="log-model">"Model"</label>
            <input id="log-model" name="model" placeholder="Any" value=text(&query.model)/>
            <label for="log-status">"Status"</label>
            <select id="log-status" name="status">
                <option value="" selected=status.is_none()>"Any"</option>
                {STATUSES
                    .iter()
                    .map(|(code, label)| view! { <option value=code.to_string() selected={status == Some(*code)}>{*label}</option> })
                    .collect_view()}
            </select>
            <label for="log-start">"From"</label>
            <input id="log-start" name="start" type="date" value=text(&query.start)/>
            <label for="log-end">"Before"</label>
            <input id="log-end" name="end" type="date" value=text(&query.end)/>
            <button type="submit" class="secondary">"Show"</button>
        </Form>
    }
}

#[component]
fn LogTable(list: SpendLogList, query: SpendLogQuery) -> impl IntoView {
    let page = list.current_page;
    let (total, pages) = (list.total_count, list.total_pages);
    let shown = list.logs.len() as u64;
    let rows = if list.logs.is_empty() {
        view! { <tr><td colspan="8" class="empty">"No request matches."</td></tr> }.into_any()
    } else {
        list.logs
            .into_iter()
            .map(|entry| view! { <LogRow entry=entry/> })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"Requests, newest first"</caption>
                {columns(&["Time", "Team", "Key", "Model", "Status", "Tokens", "Cost", "Latency"])}
                <tbody>{rows}</tbody>
            </table>
        </div>
        <Pager label="Pages of the log" noun="requests" page=page pages=pages page_size=PAGE_SIZE shown=shown total=total
            links=("Newer", "Older") href=Callback::new(move |page: u64| href(&query, page))/>
    }
}

fn status_badge(status: u16) -> impl IntoView {
    let class = if (200..300).contains(&status) {
        "badge active"
    } else {
        "badge blocked"
    };
    view! { <span class=class>{status}</span> }
}

#[component]
fn LogRow(entry: SpendLogEntry) -> impl IntoView {
    view! {
        <tr>
            <td><A href=format!("/logs/{}", api::encode(&entry.request_id))>{when(&entry.time)}</A></td>
            <td><A href=format!("/teams/{}", api::encode(&entry.team_id))>{entry.team_id.clone()}</A></td>
            <td><code>{entry.token.clone()}</code></td>
            <td>{entry.model.clone()}</td>
            <td>{status_badge(entry.status)}</td>
            <td>{entry.total_tokens}</td>
            <td>{usd(entry.spend)}</td>
            <td>{format!("{} ms", entry.latency_ms)}</td>
        </tr>
    }
}

/// `/logs/:request_id`.
#[component]
pub fn LogEntryPage() -> impl IntoView {
    let session = Session::get();
    let params = use_params_map();
    let request_id = move || params.read().get("request_id").unwrap_or_default();
    let entry = Resource::new(
        move || (session.version(), request_id()),
        |(_, request_id)| {
            api::spend_logs(SpendLogQuery {
                request_id: Some(request_id),
                ..SpendLogQuery::default()
            })
        },
    );
    view! {
        <Transition fallback=loading>
            {move || entry.get().map(|result| show(result, move |list| {
                match list.logs.into_iter().next() {
                    None => view! { <p class="error" role="alert">"No request with this id in the log."</p> }.into_any(),
                    Some(e) => view! {
                        <nav class="crumbs" aria-label="Breadcrumb"><A href="/logs">"Request log"</A>" / "{e.request_id.clone()}</nav>
                        <h1>"Request"</h1>
                        <div class="card">
                            <dl class="facts">
                                <dt>"Request id"</dt><dd><code>{e.request_id.clone()}</code></dd>
                                <dt>"Time"</dt><dd>{e.time.clone()}</dd>
                                <dt>"Team"</dt><dd><A href=format!("/teams/{}", api::encode(&e.team_id))>{e.team_id.clone()}</A></dd>
                                <dt>"Key"</dt><dd><code>{e.token.clone()}</code></dd>
                                <dt>"User"</dt><dd>{e.user_id.clone().unwrap_or_else(|| "—".into())}</dd>
                                <dt>"Model"</dt><dd>{e.model.clone()}</dd>
                                <dt>"Status"</dt><dd>{status_badge(e.status)}</dd>
                                <dt>"Prompt tokens"</dt><dd>{e.prompt_tokens}</dd>
                                <dt>"Completion tokens"</dt><dd>{e.completion_tokens}</dd>
                                <dt>"Total tokens"</dt><dd>{e.total_tokens}</dd>
                                <dt>"Cost"</dt><dd>{usd(e.spend)}</dd>
                                <dt>"Latency"</dt><dd>{format!("{} ms", e.latency_ms)}</dd>
                            </dl>
                            <p class="hint">"Prompts and answers are never stored."</p>
                        </div>
                    }.into_any(),
                }
            }))}
        </Transition>
    }
}
