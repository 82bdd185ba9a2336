//! `/teams/:id`: one team's budget, limits, models and metadata, its spend chart with a
//! forecast, its members' keys (block, revoke), issuing a key, editing and deleting the team.

use crate::{
    api,
    components::{
        limit, loading, number, optional, show, status_badge, usd, when, BudgetBar, ConfirmButton,
        Session, TeamRights, TextField, Viewer,
    },
    live::Live,
    pages::{
        chart::{forecast, SpendChart},
        team_form::TeamForm,
    },
    types::{
        GeneratedKey, InvitationNew, KeyInfo, MemberAdd, MemberRole, MemberUpdate, Members, NewKey,
        Team, TeamInfo, TeamMembership,
    },
};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

#[component]
pub fn TeamPage() -> impl IntoView {
    let params = use_params_map();
    let team_id = move || params.read().get("id").unwrap_or_default();
    let session = Session::get();
    let viewer = Viewer::get();
    let version = RwSignal::new(0u32);
    let info = Resource::new(
        move || (session.version(), version.get(), team_id()),
        |(_, _, team_id)| api::team_info(team_id),
    );
    let reload = Callback::new(move |()| version.update(|v| *v += 1));
    // Outlives the reloads that follow an action, so its outcome stays visible.
    let notice = RwSignal::new(None::<String>);

    view! {
        {move || notice.get().map(|text| view! { <p class="notice" role="status">{text}</p> })}
        <Transition fallback=loading>
            {move || info.get().map(|result| show(result, move |info| {
                let rights = viewer.of_team(&info.team);
                view! { <TeamView info=info rights=rights reload=reload notice=notice/> }.into_any()
            }))}
        </Transition>
    }
}

#[component]
fn TeamView(
    info: TeamInfo,
    rights: TeamRights,
    reload: Callback<()>,
    notice: RwSignal<Option<String>>,
) -> impl IntoView {
    let team = info.team.clone();
    let editing = RwSignal::new(false);
    let navigate = use_navigate();
    let name = team
        .team_alias
        .clone()
        .unwrap_or_else(|| team.team_id.clone());
    let live = Live::follow(std::slice::from_ref(&team), &info.keys);
    let figures = live.team(&team);
    let remaining = move || {
        figures.with(|f| {
            f.max_budget.map_or_else(
                || "unlimited".to_string(),
                |max| usd((max - f.spend).max(0.0)),
            )
        })
    };
    let blocked = move || figures.with(|f| f.blocked);

    let toggle_block = {
        let id = team.team_id.clone();
        move |_| {
            let (id, blocked) = (id.clone(), blocked());
            spawn_local(async move {
                if let Err(err) = api::set_team_blocked(id, !blocked).await {
                    notice.set(Some(err.message));
                }
                reload.run(());
            });
        }
    };
    let delete = {
        let id = team.team_id.clone();
        Callback::new(move |()| {
            let (id, navigate) = (id.clone(), navigate.clone());
            spawn_local(async move {
                match api::delete_team(id).await {
                    Ok(_) => navigate("/", Default::default()),
                    Err(err) => notice.set(Some(err.message)),
                }
            });
        })
    };
    let metadata: Vec<(String, String)> = team
        .metadata
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), String::from),
            )
        })
        .collect();

    view! {
        <section aria-labelledby="team-title">
            <p class="crumbs"><a href="/">"Teams"</a> " / " {team.team_id.clone()}</p>
            <div class="page-head">
                <h1 id="team-title">{name.clone()}</h1>
                <div class="row-actions">
                    {move || status_badge(blocked())}
                    {rights.governs.then(|| view! {
                        <button type="button" class="secondary" on:click=move |_| editing.update(|e| *e = !*e)>"Edit team"</button>
                        <button type="button" class="secondary" on:click=toggle_block.clone()>{move || if blocked() { "Unblock team" } else { "Block team" }}</button>
                        <ConfirmButton label="Delete team" name="Delete team".to_string() question="Delete this team and all its keys? "
                            confirm="Yes, delete" group="Confirm deletion" on_confirm=delete/>
                    })}
                </div>
            </div>
            <Show when=move || editing.get()>
                <TeamForm
                    existing=Some(team.clone())
                    on_saved=Callback::new(move |_| { editing.set(false); reload.run(()); })
                    on_cancel=Callback::new(move |()| editing.set(false))
                />
            </Show>
            <div class="cards">
                <div class="card">
                    <h2>"Budget"</h2>
                    <BudgetBar spend=Signal::derive(move || figures.with(|f| f.spend)) max_budget=Signal::derive(move || figures.with(|f| f.max_budget))/>
                    <dl>
                        <dt>"Remaining"</dt><dd>{remaining}</dd>
                        <dt>"Resets"</dt><dd>{info.team.budget.budget_duration.clone().unwrap_or_else(|| "never".into())}</dd>
                        <dt>"Next reset"</dt><dd>{move || figures.with(|f| f.budget_reset_at.as_deref().map_or_else(|| "never".to_string(), when))}</dd>
                    </dl>
                </div>
                <div class="card">
                    <h2>"Limits"</h2>
                    <dl>
                        <dt>"Tokens per minute"</dt><dd>{limit(info.team.budget.tpm_limit)}</dd>
                        <dt>"Requests per minute"</dt><dd>{limit(info.team.budget.rpm_limit)}</dd>
                        <dt>"Models"</dt><dd>{if info.team.models.is_empty() { "all models".to_string() } else { info.team.models.join(", ") }}</dd>
                    </dl>
                </div>
                <div class="card">
                    <h2>"Metadata"</h2>
                    {if metadata.is_empty() {
                        view! { <p class="empty">"None"</p> }.into_any()
                    } else {
                        view! { <dl>{metadata.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}</dl> }.into_any()
                    }}
                </div>
            </div>
            <SpendSection team=info.team.clone() keys=info.keys.clone()/>
            <MembersSection team_id=info.team.team_id.clone() members=info.team_memberships.clone() manages=rights.manages reload=reload notice=notice/>
            <KeysSection team=info.team.clone() keys=info.keys.clone() rights=rights.clone() live=live reload=reload notice=notice/>
        </section>
    }
}

/// How the chart can split each day: `?split=` values and their labels.
const SPLITS: [(&str, &str); 3] = [("", "Total"), ("model", "By model"), ("key", "By key")];

/// The last 30 days of spend, charted (each day split by model or key when the address says
/// `?split=model` or `?split=key`), with the forecast.
#[component]
fn SpendSection(team: Team, keys: Vec<KeyInfo>) -> impl IntoView {
    let query = use_query_map();
    let split = Memo::new(move |_| {
        query.with(|q| {
            q.get("split")
                .filter(|s| SPLITS.iter().any(|(value, _)| value == s))
                .unwrap_or_default()
        })
    });
    // The server's "today" decides the range: ask for its default (the last 30 days).
    let daily = Resource::new(
        {
            let id = team.team_id.clone();
            move || (id.clone(), split.get())
        },
        |(id, split)| api::daily_spend(id, split),
    );
    // Keys by token, named as the keys table names them; a revoked key by its token.
    let names: Vec<(String, String)> = keys
        .iter()
        .map(|k| {
            (
                k.token.clone(),
                k.key_alias.clone().unwrap_or_else(|| k.key_name.clone()),
            )
        })
        .collect();
    let base = format!("/teams/{}", team.team_id);
    view! {
        <section class="card" aria-labelledby="spend-title">
            <div class="page-head">
                <h2 id="spend-title">"Spend, last 30 days"</h2>
                <nav class="segmented" aria-label="Split the chart">
                    {SPLITS.iter().map(|(value, label)| {
                        let href = api::with_query(&base, &[("split", value.to_string())]);
                        view! {
                            <a href=href aria-current=move || (split.get() == *value).then_some("true")>{*label}</a>
                        }
                    }).collect_view()}
                </nav>
            </div>
            <Transition fallback=loading>
                {move || {
                    let (team, names) = (team.clone(), names.clone());
                    daily.get().map(move |result| show(result, move |daily| {
                        let outlook = forecast(&daily.days, team.budget.spend, team.budget.max_budget, team.budget.budget_reset_at.as_deref());
                        view! {
                            <p class="forecast">{outlook}</p>
                            <SpendChart days=daily.days max_budget=team.budget.max_budget names=names/>
                        }.into_any()
                    }))
                }}
            </Transition>
        </section>
    }
}

#[component]
fn KeysSection(
    team: Team,
    keys: Vec<KeyInfo>,
    rights: TeamRights,
    live: Live,
    reload: Callback<()>,
    notice: RwSignal<Option<String>>,
) -> impl IntoView {
    let issued = RwSignal::new(None::<GeneratedKey>);
    let rotated = RwSignal::new(None::<GeneratedKey>);
    let copied = RwSignal::new(false);
    let copy = move |_| {
        if let Some(key) = rotated.get_untracked() {
            copy_to_clipboard(key.key);
            copied.set(true);
        }
    };
    view! {
        <section class="card" aria-labelledby="keys-title">
            <h2 id="keys-title">"Keys"</h2>
            {move || rotated.get().map(|key| view! {
                <div class="new-key" role="alert">
                    <h3>"New secret for " {key.info.key_alias.clone().unwrap_or_else(|| key.info.token.clone())} " — copy it now"</h3>
                    <p>"This is the only time it is shown. The old secret works until its grace period ends."</p>
                    <code class="secret" data-testid="rotated-key">{key.key.clone()}</code>
                    <div class="actions">
                        <button type="button" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy key" }}</button>
                        <button type="button" class="secondary" on:click=move |_| { rotated.set(None); copied.set(false); reload.run(()); }>"Done"</button>
                    </div>
                </div>
            })}
            {if keys.is_empty() {
                view! { <p class="empty">"No keys yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table>
                            <thead>
                                <tr>
                                    <th scope="col">"User"</th><th scope="col">"Key"</th><th scope="col">"Alias"</th>
                                    <th scope="col">"Spend"</th><th scope="col">"Expires"</th><th scope="col">"Status"</th><th scope="col">"Actions"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {keys.into_iter().map(|key| {
                                    let may_change = rights.manages_key(&key);
                                    view! { <KeyRow key=key may_change=may_change live=live notice=notice reload=reload rotated=rotated/> }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            {rights.issues_keys.then(|| view! { <IssueKey team=team for_self=!rights.manages issued=issued reload=reload/> })}
        </section>
    }
}

#[component]
fn KeyRow(
    key: KeyInfo,
    /// Shows block, rotate and revoke.
    may_change: bool,
    live: Live,
    notice: RwSignal<Option<String>>,
    reload: Callback<()>,
    rotated: RwSignal<Option<GeneratedKey>>,
) -> impl IntoView {
    let figures = live.key(&key);
    let blocked = move || figures.with(|f| f.blocked);
    let label = key
        .key_alias
        .clone()
        .unwrap_or_else(|| key.key_name.clone());
    let toggle = {
        let token = key.token.clone();
        move |_| {
            let (token, blocked) = (token.clone(), blocked());
            spawn_local(async move {
                if let Err(err) = api::set_key_blocked(token, !blocked).await {
                    notice.set(Some(err.message));
                }
                reload.run(());
            });
        }
    };
    let revoke = {
        let token = key.token.clone();
        Callback::new(move |()| {
            let token = token.clone();
            spawn_local(async move {
                match api::delete_key(token).await {
                    Ok(_) => notice.set(Some("Key revoked.".to_string())),
                    Err(err) => notice.set(Some(err.message)),
                }
                reload.run(());
            });
        })
    };
    view! {
        <tr>
            <td>{key.user_id.clone().unwrap_or_else(|| "—".into())}</td>
            <td><code>{key.key_name.clone()}</code></td>
            <td>{key.key_alias.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{move || figures.with(|f| usd(f.spend))}</td>
            <td>{key.expires.as_deref().map_or_else(|| "never".to_string(), when)}</td>
            <td>{move || status_badge(blocked())}</td>
            <td class="row-actions">
                {may_change.then(|| view! {
                    <button type="button" class="secondary" aria-label={
                        let label = label.clone();
                        move || format!("{} key {label}", if blocked() { "Unblock" } else { "Block" })
                    } on:click=toggle.clone()>
                        {move || if blocked() { "Unblock" } else { "Block" }}
                    </button>
                    <RotateKey token=key.token.clone() label=label.clone() notice=notice rotated=rotated/>
                    <ConfirmButton label="Revoke" name=format!("Revoke key {label}") question=""
                        confirm="Yes, revoke" group="Confirm revocation" on_confirm=revoke/>
                })}
            </td>
        </tr>
    }
}

/// How long a rotated key's old secret keeps working.
const GRACE_PERIODS: &[(&str, &str)] = &[
    ("", "Stops at once"),
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
];

/// "Rotate": a new secret for the key, shown once; the old one works for the grace chosen.
#[component]
fn RotateKey(
    token: String,
    label: String,
    notice: RwSignal<Option<String>>,
    rotated: RwSignal<Option<GeneratedKey>>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let grace = RwSignal::new("24h".to_string());
    let rotate = move |_| {
        let (token, grace) = (token.clone(), optional(&grace.get_untracked()));
        spawn_local(async move {
            match api::regenerate_key(token, grace).await {
                Ok(key) => {
                    open.set(false);
                    rotated.set(Some(key));
                }
                Err(err) => notice.set(Some(err.message)),
            }
        });
    };
    let select_id = format!("grace-{label}");
    view! {
        <Show when=move || open.get() fallback={
            let label = label.clone();
            move || view! { <button type="button" class="secondary" aria-label=format!("Rotate key {label}") on:click=move |_| open.set(true)>"Rotate"</button> }
        }>
            <span class="confirm" role="group" aria-label="Confirm rotation">
                <label for=select_id.clone()>"Old secret:"</label>
                <select id=select_id.clone() on:change=move |ev| grace.set(event_target_value(&ev))>
                    {GRACE_PERIODS.iter().map(|(value, text)| view! { <option value=*value selected=*value == "24h">{*text}</option> }).collect_view()}
                </select>
                <button type="button" on:click=rotate.clone()>"Rotate now"</button>
                <button type="button" class="secondary" on:click=move |_| open.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}

/// The team's members: each one's role and budget in the team (both changeable), removal, and
/// the form that adds one.
#[component]
fn MembersSection(
    team_id: String,
    members: Vec<TeamMembership>,
    /// Shows the controls that change members.
    manages: bool,
    reload: Callback<()>,
    notice: RwSignal<Option<String>>,
) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="members-title">
            <h2 id="members-title">"Members"</h2>
            {if members.is_empty() {
                view! { <p class="empty">"No members yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table>
                            <thead>
                                <tr>
                                    <th scope="col">"User"</th><th scope="col">"E-mail"</th><th scope="col">"Role"</th>
                                    <th scope="col">"Spend in team"</th><th scope="col">"Budget in team (USD)"</th><th scope="col">"Actions"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {members.into_iter().map(|member| view! { <MemberRow member=member manages=manages reload=reload notice=notice/> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            {manages.then(|| view! {
                <AddMember team_id=team_id.clone() reload=reload/>
                <InviteMember team_id=team_id/>
            })}
        </section>
    }
}

#[component]
fn MemberRow(
    member: TeamMembership,
    manages: bool,
    reload: Callback<()>,
    notice: RwSignal<Option<String>>,
) -> impl IntoView {
    let user = member.user_id.clone();
    let budget = RwSignal::new(
        member
            .max_budget_in_team
            .map(|b| b.to_string())
            .unwrap_or_default(),
    );
    let change = {
        let (team_id, user_id) = (member.team_id.clone(), member.user_id.clone());
        move |update: MemberUpdate| {
            let update = MemberUpdate {
                team_id: team_id.clone(),
                user_id: Some(user_id.clone()),
                ..update
            };
            spawn_local(async move {
                match api::update_member(update).await {
                    Ok(_) => notice.set(Some("Member updated.".to_string())),
                    Err(err) => notice.set(Some(err.message)),
                }
                reload.run(());
            });
        }
    };
    let set_role = {
        let change = change.clone();
        move |ev| {
            change(MemberUpdate {
                role: Some(event_target_value(&ev)),
                ..MemberUpdate::default()
            })
        }
    };
    let save_budget = move |ev: SubmitEvent| {
        ev.prevent_default();
        match number::<f64>("max_budget", &budget.get_untracked()) {
            Ok(max) => change(MemberUpdate {
                max_budget: Some(max),
                ..MemberUpdate::default()
            }),
            Err(err) => notice.set(Some(err.message)),
        }
    };
    let remove = {
        let (team_id, user_id) = (member.team_id.clone(), member.user_id.clone());
        Callback::new(move |()| {
            let (team_id, user_id) = (team_id.clone(), user_id.clone());
            spawn_local(async move {
                match api::delete_member(team_id, user_id).await {
                    Ok(_) => notice.set(Some(
                        "Member removed, with their keys in the team.".to_string(),
                    )),
                    Err(err) => notice.set(Some(err.message)),
                }
                reload.run(());
            });
        })
    };
    let role = member.role.clone();
    if !manages {
        return view! {
            <tr>
                <td>{member.user_id.clone()}</td>
                <td>{member.user_email.clone().unwrap_or_else(|| "—".into())}</td>
                <td>{role}</td>
                <td>{usd(member.spend)}</td>
                <td>{member.max_budget_in_team.map_or_else(|| "none".to_string(), usd)}</td>
                <td></td>
            </tr>
        }
        .into_any();
    }
    view! {
        <tr>
            <td>{member.user_id.clone()}</td>
            <td>{member.user_email.clone().unwrap_or_else(|| "—".into())}</td>
            <td>
                <select aria-label=format!("Role of {user}") on:change=set_role>
                    <option value="user" selected=role == "user">"user"</option>
                    <option value="admin" selected=role == "admin">"admin"</option>
                </select>
            </td>
            <td>{usd(member.spend)}</td>
            <td>
                <form class="inline" on:submit=save_budget>
                    <input type="text" inputmode="decimal" aria-label=format!("Budget in team of {user}") placeholder="none"
                        prop:value=move || budget.get() on:input=move |ev| budget.set(event_target_value(&ev))/>
                    <button type="submit" class="secondary" aria-label=format!("Save budget of {user}")>"Save"</button>
                </form>
            </td>
            <td class="row-actions">
                <ConfirmButton label="Remove" name=format!("Remove member {user}") question="Their keys in this team go too. "
                    confirm="Yes, remove" group="Confirm removal" on_confirm=remove/>
            </td>
        </tr>
    }
    .into_any()
}

/// Invites a person into the team: a one-time link (7 days) where they set a password, shown
/// here to pass on; new people become members (`user`).
#[component]
fn InviteMember(team_id: String) -> impl IntoView {
    let user = RwSignal::new(String::new());
    let error = RwSignal::new(None::<api::ApiError>);
    let link = RwSignal::new(None::<String>);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let who = user.get_untracked().trim().to_string();
        let (user_id, user_email) = if who.contains('@') {
            (None, Some(who))
        } else {
            (optional(&who), None)
        };
        let req = InvitationNew {
            user_id,
            user_email,
            team_id: Some(team_id.clone()),
        };
        spawn_local(async move {
            match api::invite(req).await {
                Ok(created) => {
                    error.set(None);
                    user.set(String::new());
                    link.set(Some(created.url));
                }
                Err(err) => error.set(Some(err)),
            }
        });
    };
    view! {
        <form class="form" on:submit=submit aria-label="Invite a person">
            <h3>"Invite a person"</h3>
            <p class="hint">"They get a link to set their password and sign in; it works once, for 7 days."</p>
            <div class="grid">
                <TextField id="invite-user" param="user_id" label="User id or e-mail" value=user error=error placeholder="alice@example.com"/>
            </div>
            {move || error.get().filter(|e| e.param.as_deref() != Some("user_id")).map(|e| view! { <p class="error" role="alert">{e.message}</p> })}
            {move || link.get().map(|url| view! {
                <div class="new-key" role="status">
                    <p>"Send them this link (shown once):"</p>
                    <code class="secret" data-testid="invitation-link">{url}</code>
                </div>
            })}
            <div class="actions"><button type="submit">"Create link"</button></div>
        </form>
    }
}

/// Adds a member by user id or e-mail, with a role and an optional budget in the team.
#[component]
fn AddMember(team_id: String, reload: Callback<()>) -> impl IntoView {
    let user = RwSignal::new(String::new());
    let role = RwSignal::new("user".to_string());
    let budget = RwSignal::new(String::new());
    let error = RwSignal::new(None::<api::ApiError>);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let who = user.get_untracked().trim().to_string();
        let (user_id, user_email) = if who.contains('@') && !who.contains(':') {
            (None, Some(who))
        } else {
            (optional(&who), None)
        };
        let add = number::<f64>("max_budget", &budget.get_untracked()).map(|max| MemberAdd {
            soft_budget: None,
            team_id: team_id.clone(),
            member: Members::One(MemberRole {
                user_id,
                user_email,
                role: role.get_untracked(),
            }),
            allowed_models: None,
            max_budget: max,
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            budget_duration: None,
        });
        spawn_local(async move {
            let result = match add {
                Ok(add) => api::add_member(add).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(_) => {
                    error.set(None);
                    user.set(String::new());
                    budget.set(String::new());
                    reload.run(());
                }
                Err(err) => error.set(Some(err)),
            }
        });
    };
    view! {
        <form class="form" on:submit=submit aria-label="Add a member">
            <h3>"Add a member"</h3>
            <div class="grid">
                <TextField id="member-user" param="user_id" label="User id or e-mail" value=user error=error placeholder="alice@example.com"/>
                <div class="field">
                    <label for="member-role">"Role"</label>
                    <select id="member-role" on:change=move |ev| role.set(event_target_value(&ev))>
                        <option value="user" selected=true>"user"</option>
                        <option value="admin">"admin"</option>
                    </select>
                </div>
                <TextField id="member-budget" param="max_budget" label="Budget in team (USD)" value=budget error=error placeholder="No budget of their own" inputmode="decimal"/>
            </div>
            {move || error.get().filter(|e| !matches!(e.param.as_deref(), Some("user_id" | "max_budget"))).map(|e| view! { <p class="error" role="alert">{e.message}</p> })}
            <div class="actions"><button type="submit">"Add member"</button></div>
        </form>
    }
}

const KEY_DURATIONS: &[(&str, &str)] = &[
    ("", "Never expires"),
    ("1d", "1 day"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("365d", "1 year"),
];

/// The key issuance form; the new key is shown exactly once, with a copy button.
#[component]
fn IssueKey(
    team: Team,
    /// A member issuing a key for itself: no user to name.
    for_self: bool,
    issued: RwSignal<Option<GeneratedKey>>,
    reload: Callback<()>,
) -> impl IntoView {
    let user_id = RwSignal::new(String::new());
    let alias = RwSignal::new(String::new());
    let models = RwSignal::new(Vec::<String>::new());
    let duration = RwSignal::new("30d".to_string());
    let budget = RwSignal::new(String::new());
    let tpm = RwSignal::new(String::new());
    let rpm = RwSignal::new(String::new());
    let error = RwSignal::new(None::<api::ApiError>);
    let copied = RwSignal::new(false);
    let team_models = team.models.clone();
    let all_models = Resource::new(|| (), |()| api::models());
    let team_id = team.team_id.clone();

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let team_id = team_id.clone();
        let text = |s: RwSignal<String>| optional(&s.get_untracked());
        let value = |s: RwSignal<String>| s.get_untracked();
        let key = (|| -> Result<NewKey, api::ApiError> {
            Ok(NewKey {
                soft_budget: None,
                team_id: Some(team_id),
                user_id: text(user_id),
                models: Some(models.get_untracked()),
                aliases: None,
                duration: text(duration),
                key_alias: text(alias),
                max_budget: number("max_budget", &value(budget))?,
                tpm_limit: number("tpm_limit", &value(tpm))?,
                rpm_limit: number("rpm_limit", &value(rpm))?,
                max_parallel_requests: None,
                budget_duration: None,
                metadata: None,
                blocked: None,
            })
        })();
        spawn_local(async move {
            let result = match key {
                Ok(key) => api::generate_key(key).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(key) => {
                    error.set(None);
                    copied.set(false);
                    issued.set(Some(key));
                }
                Err(err) => error.set(Some(err)),
            }
        });
    };
    let field_error = move |field: &'static str| {
        move || {
            error
                .get()
                .and_then(|e| e.for_field(field))
                .map(|m| view! { <p class="field-error">{m}</p> })
        }
    };
    let other_error = move || {
        error
            .get()
            .filter(|e| {
                !matches!(
                    e.param.as_deref(),
                    Some(
                        "user_id"
                            | "key_alias"
                            | "max_budget"
                            | "tpm_limit"
                            | "rpm_limit"
                            | "models"
                    )
                )
            })
            .map(|e| view! { <p class="error" role="alert">{e.message}</p> })
    };
    let copy = move |_| {
        if let Some(key) = issued.get_untracked() {
            copy_to_clipboard(key.key);
            copied.set(true);
        }
    };

    view! {
        {move || issued.get().map(|key| view! {
            <div class="new-key" role="alert">
                <h3>"New key — copy it now"</h3>
                <p>"This is the only time the key is shown. Store it somewhere safe; afterwards only its masked form is visible."</p>
                <code class="secret" data-testid="new-key">{key.key.clone()}</code>
                <div class="actions">
                    <button type="button" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy key" }}</button>
                    <button type="button" class="secondary" on:click=move |_| { issued.set(None); reload.run(()); }>"Done"</button>
                </div>
            </div>
        })}
        <form class="form" on:submit=submit aria-label="Issue a key">
            <h3>"Issue a key"</h3>
            <div class="grid">
                {(!for_self).then(|| view! { <TextField id="key-user" param="user_id" label="User id" value=user_id error=error placeholder="alice@example.com"/> })}
                <TextField id="key-alias" param="key_alias" label="Key alias" value=alias error=error placeholder="laptop"/>
                <div class="field">
                    <label for="key-duration">"Expires"</label>
                    <select id="key-duration" on:change=move |ev| duration.set(event_target_value(&ev))>
                        {KEY_DURATIONS.iter().map(|(value, label)| view! { <option value=*value selected=*value == "30d">{*label}</option> }).collect_view()}
                    </select>
                </div>
                <TextField id="key-budget" param="max_budget" label="Key budget (USD)" value=budget error=error placeholder="Team budget only" inputmode="decimal"/>
                <TextField id="key-tpm" param="tpm_limit" label="Key tokens per minute" value=tpm error=error placeholder="Team limit only" inputmode="numeric"/>
                <TextField id="key-rpm" param="rpm_limit" label="Key requests per minute" value=rpm error=error placeholder="Team limit only" inputmode="numeric"/>
            </div>
            <fieldset class="field">
                <legend>"Models (none checked: all of the team's)"</legend>
                <Suspense fallback=|| view! { <p class="loading">"Loading models…"</p> }>
                    {move || {
                        let team_models = team_models.clone();
                        all_models.get().map(move |result| {
                            let names: Vec<String> = match result {
                                Ok(list) => list.data.into_iter().map(|m| m.model_name).filter(|m| team_models.is_empty() || team_models.contains(m)).collect(),
                                Err(_) => team_models.clone(),
                            };
                            names.into_iter().map(|name| {
                                let id = format!("key-model-{name}");
                                let label_for = id.clone();
                                let toggle = { let name = name.clone(); move |ev| {
                                    let on = event_target_checked(&ev);
                                    models.update(|list| { list.retain(|m| *m != name); if on { list.push(name.clone()); } });
                                }};
                                view! { <label class="check" for=label_for><input type="checkbox" id=id on:change=toggle/>{name}</label> }
                            }).collect_view()
                        })
                    }}
                </Suspense>
                {field_error("models")}
            </fieldset>
            {other_error}
            <div class="actions"><button type="submit">"Issue key"</button></div>
        </form>
    }
}

#[cfg(feature = "hydrate")]
fn copy_to_clipboard(text: String) {
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(&text);
    }
}

#[cfg(not(feature = "hydrate"))]
fn copy_to_clipboard(_text: String) {}
