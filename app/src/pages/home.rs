//! `/`: the teams at a glance (read-only for now), or the sign-in form when there is no valid
//! session.

use crate::{api, pages::sign_in::SignIn, types::Team};
use leptos::{prelude::*, task::spawn_local};

#[component]
pub fn HomePage() -> impl IntoView {
    // Bumped to fetch again after signing in or out.
    let generation = RwSignal::new(0u32);
    let teams = LocalResource::new(move || {
        generation.track();
        api::list_teams()
    });
    let refresh = Callback::new(move |()| generation.update(|n| *n += 1));
    let sign_out = move |_| {
        spawn_local(async move {
            // Signed out either way: a failed call leaves an unusable cookie at worst.
            let _ = api::logout().await;
            refresh.run(());
        });
    };

    view! {
        <Suspense fallback=|| view! { <p class="loading" aria-live="polite">"Loading teams…"</p> }>
            {move || {
                teams
                    .get()
                    .map(|result| match result {
                        Ok(list) => {
                            view! {
                                <section aria-labelledby="teams-title">
                                    <div class="page-head">
                                        <h1 id="teams-title">"Teams"</h1>
                                        <button type="button" class="secondary" on:click=sign_out>
                                            "Sign out"
                                        </button>
                                    </div>
                                    <TeamTable teams=list.teams/>
                                </section>
                            }
                                .into_any()
                        }
                        Err(err) if err.is_unauthorized() => {
                            view! { <SignIn on_signed_in=refresh/> }.into_any()
                        }
                        Err(err) => {
                            view! {
                                <p class="error" role="alert">
                                    {format!("Could not load the teams: {}", err.message)}
                                </p>
                            }
                                .into_any()
                        }
                    })
            }}
        </Suspense>
    }
}

fn money(usd: f64) -> String {
    format!("${usd:.2}")
}

fn limit(value: Option<u64>) -> String {
    value.map_or_else(|| "—".to_string(), |n| n.to_string())
}

#[component]
fn TeamTable(teams: Vec<Team>) -> impl IntoView {
    if teams.is_empty() {
        return view! {
            <p class="empty">"No teams yet. Create one with " <code>"POST /team/new"</code> "."</p>
        }
        .into_any();
    }
    view! {
        <div class="table-wrap">
            <table>
                <thead>
                    <tr>
                        <th scope="col">"Team"</th>
                        <th scope="col">"Models"</th>
                        <th scope="col">"Spend / budget"</th>
                        <th scope="col">"Resets"</th>
                        <th scope="col">"TPM"</th>
                        <th scope="col">"RPM"</th>
                        <th scope="col">"Status"</th>
                    </tr>
                </thead>
                <tbody>
                    {teams
                        .into_iter()
                        .map(|team| {
                            let budget = team
                                .max_budget
                                .map_or_else(|| "no budget".to_string(), money);
                            let models = if team.models.is_empty() {
                                "all models".to_string()
                            } else {
                                team.models.join(", ")
                            };
                            view! {
                                <tr>
                                    <td>
                                        <div class="team-alias">
                                            {team.team_alias.clone().unwrap_or_else(|| team.team_id.clone())}
                                        </div>
                                        <div class="team-id">{team.team_id.clone()}</div>
                                    </td>
                                    <td>{models}</td>
                                    <td>{format!("{} / {}", money(team.spend), budget)}</td>
                                    <td>{team.budget_reset_at.clone().unwrap_or_else(|| "never".to_string())}</td>
                                    <td>{limit(team.tpm_limit)}</td>
                                    <td>{limit(team.rpm_limit)}</td>
                                    <td>
                                        {if team.blocked {
                                            view! { <span class="badge blocked">"Blocked"</span> }.into_any()
                                        } else {
                                            view! { <span class="badge active">"Active"</span> }.into_any()
                                        }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
        .into_any()
}
