//! `/`: every team at a glance (spend against budget, next reset, limits, status), searched,
//! sorted and paged by the server, with block/unblock, delete, and the new-team form.

use crate::{
    api,
    components::{
        columns, limit, loading, show, status_badge, when, BudgetBar, ConfirmButton, Pager,
        Session, Viewer,
    },
    live::Live,
    pages::team_form::TeamForm,
    types::{Team, TeamList, TeamListQuery},
};
use leptos::{prelude::*, task::spawn_local};
use leptos_router::{
    components::{Form, A},
    hooks::{use_navigate, use_query_map},
};

/// Rows per page of the teams table.
const PAGE_SIZE: u64 = 50;

/// The orders the table offers, as `/team/list?sort=` takes them.
const SORTS: [(&str, &str); 5] = [
    ("name", "Name"),
    ("-spend", "Spend"),
    ("-used", "Budget used"),
    ("reset", "Next reset"),
    ("created", "Created"),
];

/// The page's state lives in its address (`/?search=ml&sort=-spend&page=2`), so a search is a
/// link, the server renders exactly what the browser shows, and the form works before (or
/// without) the WebAssembly bundle.
fn list_query(query: &leptos_router::params::ParamsMap) -> TeamListQuery {
    let sort = query
        .get("sort")
        .filter(|s| SORTS.iter().any(|(value, _)| value == s))
        .unwrap_or_else(|| "name".to_string());
    TeamListQuery {
        page: query
            .get("page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p > 0),
        size: Some(PAGE_SIZE),
        sort: Some(sort),
        search: query.get("search").filter(|s| !s.trim().is_empty()),
    }
}

/// The address of the table with this query.
fn href(query: &TeamListQuery) -> String {
    let sort = query.sort.clone().filter(|s| s != "name");
    let page = query.page.filter(|p| *p > 1).map(|p| p.to_string());
    api::with_query(
        "/",
        &[
            ("search", query.search.clone().unwrap_or_default()),
            ("sort", sort.unwrap_or_default()),
            ("page", page.unwrap_or_default()),
        ],
    )
}

#[component]
pub fn TeamsPage() -> impl IntoView {
    let session = Session::get();
    let viewer = Viewer::get();
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(list_query));
    let version = RwSignal::new(0u32);
    let teams = Resource::new(
        move || (session.version(), version.get(), query.get()),
        |(_, _, query)| api::list_teams(query),
    );
    let reload = move || version.update(|v| *v += 1);
    let creating = RwSignal::new(false);
    let editing = RwSignal::new(None::<Team>);
    let notice = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let sort_changed = move |ev: leptos::ev::Event| {
        let mut next = query.get_untracked();
        next.sort = Some(event_target_value(&ev));
        next.page = None;
        navigate(&href(&next), Default::default());
    };

    view! {
        <section>
            <Transition fallback=loading>
                {move || {
                    teams
                        .get()
                        .map(|result| {
                            let sort_changed = sort_changed.clone();
                            show(
                                result,
                                move |list| {
                                    let current = query.get_untracked();
                                    let search = current.search.clone().unwrap_or_default();
                                    let sort = current.sort.clone().unwrap_or_default();
                                    view! {
                                        <div class="page-head">
                                            <h1 id="teams-title">"Teams"</h1>
                                            {(viewer.me().changes_all || !viewer.me().admin_orgs.is_empty()).then(|| view! {
                                                <button type="button" on:click=move |_| creating.update(|c| *c = !*c)>"New team"</button>
                                            })}
                                        </div>
                                        {move || notice.get().map(|text| view! { <p class="notice" role="status">{text}</p> })}
                                        <Show when=move || creating.get()>
                                            <TeamForm
                                                existing=None
                                                on_saved=Callback::new(move |team: Team| {
                                                    creating.set(false);
                                                    notice.set(Some(format!("Team {} created.", team.team_id)));
                                                    reload();
                                                })
                                                on_cancel=Callback::new(move |()| creating.set(false))
                                            />
                                        </Show>
                                        {move || editing.get().map(|team| view! {
                                            <TeamForm
                                                existing=Some(team)
                                                on_saved=Callback::new(move |team: Team| {
                                                    editing.set(None);
                                                    notice.set(Some(format!("Team {} saved.", team.team_id)));
                                                    reload();
                                                })
                                                on_cancel=Callback::new(move |()| editing.set(None))
                                            />
                                        })}
                                        <Form method="GET" action="/" attr:class="filters" attr:role="search">
                                            <label for="team-search">"Search teams"</label>
                                            <input id="team-search" name="search" type="search" placeholder="Name or id" value=search/>
                                            <label for="team-sort">"Sort by"</label>
                                            <select id="team-sort" name="sort" on:change=sort_changed>
                                                {SORTS
                                                    .iter()
                                                    .map(|(value, label)| view! { <option value=*value selected={sort == *value}>{*label}</option> })
                                                    .collect_view()}
                                            </select>
                                            <button type="submit" class="secondary">"Search"</button>
                                        </Form>
                                        <TeamTable list=list query=current notice=notice editing=editing on_change=Callback::new(move |()| reload())/>
                                    }
                                        .into_any()
                                },
                            )
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn TeamTable(
    list: TeamList,
    query: TeamListQuery,
    notice: RwSignal<Option<String>>,
    editing: RwSignal<Option<Team>>,
    on_change: Callback<()>,
) -> impl IntoView {
    let total = list.total_count.unwrap_or(list.teams.len() as u64);
    if total == 0 && query.search.is_none() {
        return view! { <p class="empty">"No teams yet. Create one with “New team”."</p> }
            .into_any();
    }
    let page = list.current_page.unwrap_or(1);
    let pages = list.total_pages.unwrap_or(1);
    let shown = list.teams.len() as u64;
    let live = Live::follow(&list.teams, &[]);
    let rows = if list.teams.is_empty() {
        view! { <tr><td colspan="8" class="empty">"No team matches the search."</td></tr> }
            .into_any()
    } else {
        list.teams
            .into_iter()
            .map(|team| {
                let governs = Viewer::get().of_team(&team).governs;
                view! { <TeamRow team=team governs=governs live=live notice=notice editing=editing on_change=on_change/> }
            })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"Teams, their spend, limits and status"</caption>
                {columns(&["Team", "Models", "Spend / budget", "Next reset", "TPM", "RPM", "Status", "Actions"])}
                <tbody>{rows}</tbody>
            </table>
        </div>
        <Pager label="Pages of teams" noun="teams" page=page pages=pages page_size=PAGE_SIZE shown=shown total=total
            href=Callback::new(move |page: u64| href(&TeamListQuery { page: Some(page), ..query.clone() }))/>
    }
    .into_any()
}

#[component]
fn TeamRow(
    team: Team,
    /// Shows edit, block and delete.
    governs: bool,
    live: Live,
    notice: RwSignal<Option<String>>,
    editing: RwSignal<Option<Team>>,
    on_change: Callback<()>,
) -> impl IntoView {
    let name = team
        .team_alias
        .clone()
        .unwrap_or_else(|| team.team_id.clone());
    let id = team.team_id.clone();
    let figures = live.team(&team);
    let blocked = move || figures.with(|f| f.blocked);
    let toggle_block = {
        let id = id.clone();
        move |_| {
            let (id, blocked) = (id.clone(), blocked());
            spawn_local(async move {
                match api::set_team_blocked(id.clone(), !blocked).await {
                    Ok(_) => notice.set(Some(format!(
                        "Team {id} {}.",
                        if blocked { "unblocked" } else { "blocked" }
                    ))),
                    Err(err) => notice.set(Some(err.message)),
                }
                on_change.run(());
            });
        }
    };
    let delete = {
        let id = id.clone();
        Callback::new(move |()| {
            let id = id.clone();
            spawn_local(async move {
                match api::delete_team(id.clone()).await {
                    Ok(_) => notice.set(Some(format!("Team {id} deleted."))),
                    Err(err) => notice.set(Some(err.message)),
                }
                on_change.run(());
            });
        })
    };
    let models = if team.models.is_empty() {
        "all models".to_string()
    } else {
        team.models.join(", ")
    };
    let block_label = {
        let name = name.clone();
        move || format!("{} {name}", if blocked() { "Unblock" } else { "Block" })
    };
    let display = name.clone();
    let edit_label = format!("Edit {name}");
    let edit = {
        let team = team.clone();
        move |_| editing.set(Some(team.clone()))
    };
    view! {
        <tr>
            <td>
                <A href=format!("/teams/{}", team.team_id) attr:class="team-alias">{display}</A>
                <div class="team-id">{team.team_id.clone()}</div>
            </td>
            <td>{models}</td>
            <td><BudgetBar spend=Signal::derive(move || figures.with(|f| f.spend)) max_budget=Signal::derive(move || figures.with(|f| f.max_budget))/></td>
            <td>{move || figures.with(|f| f.budget_reset_at.as_deref().map_or_else(|| "never".to_string(), when))}</td>
            <td>{limit(team.budget.tpm_limit)}</td>
            <td>{limit(team.budget.rpm_limit)}</td>
            <td>{move || status_badge(blocked())}</td>
            <td class="row-actions">
                {governs.then(|| view! {
                    <button type="button" class="secondary" aria-label=edit_label.clone() on:click=edit.clone()>"Edit"</button>
                    <button type="button" class="secondary" aria-label=block_label.clone() on:click=toggle_block.clone()>
                        {move || if blocked() { "Unblock" } else { "Block" }}
                    </button>
                    <ConfirmButton label="Delete" name=format!("Delete {name}") question="Delete this team and its keys? "
                        confirm="Yes, delete" group="Confirm deletion" on_confirm=delete/>
                })}
            </td>
        </tr>
    }
}
