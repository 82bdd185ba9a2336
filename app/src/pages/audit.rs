//! `/audit-log`: every change made through the API, newest first: who, through which route, to
//! what, and the target before and after; filtered by target, actor and time.

use crate::{
    api,
    components::{columns, loading, show, when, Pager, Session},
    types::{AuditEntry, AuditList, AuditQuery},
};
use leptos::prelude::*;
use leptos_router::{hooks::use_query_map, params::ParamsMap};

const PAGE_SIZE: u64 = 50;

fn audit_query(params: &ParamsMap) -> AuditQuery {
    let text = |name: &str| params.get(name).filter(|v| !v.trim().is_empty());
    AuditQuery {
        target_type: text("target_type"),
        target_id: text("target_id"),
        actor: text("actor"),
        start: text("start"),
        end: text("end"),
        page: text("page").and_then(|p| p.parse().ok()).filter(|p| *p > 0),
        size: Some(PAGE_SIZE),
    }
}

fn href(query: &AuditQuery, page: u64) -> String {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    api::with_query(
        "/audit-log",
        &[
            ("target_type", text(&query.target_type)),
            ("target_id", text(&query.target_id)),
            ("actor", text(&query.actor)),
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
pub fn AuditPage() -> impl IntoView {
    let session = Session::get();
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(audit_query));
    let log = Resource::new(
        move || (session.version(), query.get()),
        |(_, query)| api::audit(query),
    );
    view! {
        <section>
            <h1 id="audit-title">"Audit log"</h1>
            <Transition fallback=loading>
                {move || log.get().map(|result| show(result, move |list| {
                    let current = query.get_untracked();
                    view! {
                        <AuditFilters query=current.clone()/>
                        <AuditTable list=list query=current/>
                    }.into_any()
                }))}
            </Transition>
        </section>
    }
}

const TARGETS: [&str; 6] = [
    "team",
    "key",
    "user",
    "member",
    "organization",
    "invitation",
];

#[component]
fn AuditFilters(query: AuditQuery) -> impl IntoView {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let target = query.target_type.clone();
    view! {
        // A plain GET form: the filters live in the address, and the server renders the page.
        <form method="get" action="/audit-log" class="filters" role="search" aria-label="Filter the audit log">
            <label for="audit-type">"Target"</label>
            <select id="audit-type" name="target_type">
                <option value="" selected=target.is_none()>"Any"</option>
                {TARGETS.iter().map(|t| view! { <option value=*t selected={target.as_deref() == Some(*t)}>{*t}</option> }).collect_view()}
            </select>
            <label for="audit-id">"Id"</label>
            <input id="audit-id" name="target_id" placeholder="Any" value=text(&query.target_id)/>
            <label for="audit-actor">"Who"</label>
            <input id="audit-actor" name="actor" placeholder="User id or admin" value=text(&query.actor)/>
            <label for="audit-start">"From"</label>
            <input id="audit-start" name="start" type="date" value=text(&query.start)/>
            <label for="audit-end">"Before"</label>
            <input id="audit-end" name="end" type="date" value=text(&query.end)/>
            <button type="submit" class="secondary">"Show"</button>
        </form>
    }
}

#[component]
fn AuditTable(list: AuditList, query: AuditQuery) -> impl IntoView {
    let (page, pages, total) = (list.current_page, list.total_pages, list.total_count);
    let shown = list.entries.len() as u64;
    let rows = if list.entries.is_empty() {
        view! { <tr><td colspan="5" class="empty">"No change matches."</td></tr> }.into_any()
    } else {
        list.entries
            .into_iter()
            .map(|entry| view! { <AuditRow entry=entry/> })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"Changes, newest first"</caption>
                {columns(&["Time", "Who", "Change", "Target", "Before → after"])}
                <tbody>{rows}</tbody>
            </table>
        </div>
        <Pager label="Pages of the audit log" noun="changes" page=page pages=pages page_size=PAGE_SIZE shown=shown total=total
            links=("Newer", "Older") href=Callback::new(move |page: u64| href(&query, page))/>
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let changes = entry.changes.clone();
    let who = match &entry.changed_by {
        Some(by) if *by != entry.actor => format!("{} ({by})", entry.actor),
        _ => entry.actor.clone(),
    };
    view! {
        <tr>
            <td>{when(&entry.time)}</td>
            <td>{who}<div class="team-id">{entry.address.clone().unwrap_or_default()}</div></td>
            <td><code>{format!("{} {}", entry.method, entry.route)}</code></td>
            <td>{entry.target_type.clone()} " " <code>{entry.target_id.clone()}</code></td>
            <td>{changes.into_iter().map(|c| view! { <div>{c}</div> }).collect_view()}</td>
        </tr>
    }
}
