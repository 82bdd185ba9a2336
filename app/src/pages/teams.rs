//! `/`: every team at a glance (spend against budget, next reset, limits, status) with search,
//! sort, block/unblock, delete, and the new-team form.

use crate::{
    api,
    components::{limit, loading, show, when, BudgetBar, ConfirmButton, Session},
    pages::team_form::TeamForm,
    types::Team,
};
use leptos::{prelude::*, task::spawn_local};
use leptos_router::components::A;

#[derive(Clone, Copy, PartialEq)]
enum SortBy {
    Name,
    Spend,
    BudgetUsed,
    Reset,
}

impl SortBy {
    fn parse(value: &str) -> Self {
        match value {
            "spend" => Self::Spend,
            "used" => Self::BudgetUsed,
            "reset" => Self::Reset,
            _ => Self::Name,
        }
    }

    fn sort(self, teams: &mut [Team]) {
        let name = |t: &Team| {
            t.team_alias
                .clone()
                .unwrap_or_else(|| t.team_id.clone())
                .to_lowercase()
        };
        let used = |t: &Team| {
            t.budget
                .max_budget
                .filter(|m| *m > 0.0)
                .map_or(0.0, |m| t.budget.spend / m)
        };
        match self {
            Self::Name => teams.sort_by_key(name),
            Self::Spend => teams.sort_by(|a, b| b.budget.spend.total_cmp(&a.budget.spend)),
            Self::BudgetUsed => teams.sort_by(|a, b| used(b).total_cmp(&used(a))),
            Self::Reset => teams.sort_by_key(|t| {
                t.budget
                    .budget_reset_at
                    .clone()
                    .unwrap_or_else(|| "~".into())
            }),
        }
    }
}

#[component]
pub fn TeamsPage() -> impl IntoView {
    let session = Session::get();
    let teams = LocalResource::new(move || {
        session.track();
        api::list_teams()
    });
    let reload = move || teams.refetch();
    let search = RwSignal::new(String::new());
    let sort = RwSignal::new(SortBy::Name);
    let creating = RwSignal::new(false);
    let editing = RwSignal::new(None::<Team>);
    let notice = RwSignal::new(None::<String>);

    view! {
        <section>
            <Suspense fallback=loading>
                {move || {
                    teams
                        .get()
                        .map(|result| {
                            show(
                                result,
                                move |list| {
                                    view! {
                                        <div class="page-head">
                                            <h1 id="teams-title">"Teams"</h1>
                                            <button type="button" on:click=move |_| creating.update(|c| *c = !*c)>"New team"</button>
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
                                        <div class="filters">
                                            <label for="team-search">"Search teams"</label>
                                            <input id="team-search" type="search" placeholder="Name or id"
                                                prop:value=move || search.get()
                                                on:input=move |ev| search.set(event_target_value(&ev))/>
                                            <label for="team-sort">"Sort by"</label>
                                            <select id="team-sort" on:change=move |ev| sort.set(SortBy::parse(&event_target_value(&ev)))>
                                                <option value="name">"Name"</option>
                                                <option value="spend">"Spend"</option>
                                                <option value="used">"Budget used"</option>
                                                <option value="reset">"Next reset"</option>
                                            </select>
                                        </div>
                                        <TeamTable teams=list.teams search=search sort=sort notice=notice editing=editing on_change=Callback::new(move |()| reload())/>
                                    }
                                        .into_any()
                                },
                            )
                        })
                }}
            </Suspense>
        </section>
    }
}

#[component]
fn TeamTable(
    teams: Vec<Team>,
    search: RwSignal<String>,
    sort: RwSignal<SortBy>,
    notice: RwSignal<Option<String>>,
    editing: RwSignal<Option<Team>>,
    on_change: Callback<()>,
) -> impl IntoView {
    if teams.is_empty() {
        return view! { <p class="empty">"No teams yet. Create one with “New team”."</p> }
            .into_any();
    }
    let shown = move || {
        let needle = search.get().to_lowercase();
        let mut list: Vec<Team> = teams
            .iter()
            .filter(|t| {
                needle.is_empty()
                    || t.team_id.to_lowercase().contains(&needle)
                    || t.team_alias
                        .as_deref()
                        .unwrap_or("")
                        .to_lowercase()
                        .contains(&needle)
            })
            .cloned()
            .collect();
        sort.get().sort(&mut list);
        list
    };
    view! {
        <div class="table-wrap">
            <table>
                <caption class="visually-hidden">"Teams, their spend, limits and status"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Team"</th>
                        <th scope="col">"Models"</th>
                        <th scope="col">"Spend / budget"</th>
                        <th scope="col">"Next reset"</th>
                        <th scope="col">"TPM"</th>
                        <th scope="col">"RPM"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        let rows = shown();
                        if rows.is_empty() {
                            return view! { <tr><td colspan="8" class="empty">"No team matches the search."</td></tr> }.into_any();
                        }
                        rows.into_iter()
                            .map(|team| view! { <TeamRow team=team notice=notice editing=editing on_change=on_change/> })
                            .collect_view()
                            .into_any()
                    }}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn TeamRow(
    team: Team,
    notice: RwSignal<Option<String>>,
    editing: RwSignal<Option<Team>>,
    on_change: Callback<()>,
) -> impl IntoView {
    let name = team
        .team_alias
        .clone()
        .unwrap_or_else(|| team.team_id.clone());
    let id = team.team_id.clone();
    let blocked = team.blocked;
    let toggle_block = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
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
    let block_label = format!("{} {name}", if blocked { "Unblock" } else { "Block" });
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
            <td><BudgetBar spend=team.budget.spend max_budget=team.budget.max_budget/></td>
            <td>{team.budget.budget_reset_at.as_deref().map_or_else(|| "never".to_string(), when)}</td>
            <td>{limit(team.budget.tpm_limit)}</td>
            <td>{limit(team.budget.rpm_limit)}</td>
            <td>
                {if blocked {
                    view! { <span class="badge blocked">"Blocked"</span> }.into_any()
                } else {
                    view! { <span class="badge active">"Active"</span> }.into_any()
                }}
            </td>
            <td class="row-actions">
                <button type="button" class="secondary" aria-label=edit_label on:click=edit>"Edit"</button>
                <button type="button" class="secondary" aria-label=block_label on:click=toggle_block>
                    {if blocked { "Unblock" } else { "Block" }}
                </button>
                <ConfirmButton label="Delete" name=format!("Delete {name}") question="Delete this team and its keys? "
                    confirm="Yes, delete" group="Confirm deletion" on_confirm=delete/>
            </td>
        </tr>
    }
}
