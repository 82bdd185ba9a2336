//! `/users`: the users (LiteLLM's), each with their role, teams, keys and spend, and the form
//! that makes one.

use crate::{
    api,
    components::{loading, number, optional, show, usd, Session, TextField, Viewer},
    types::{NewUser, UserList},
};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

const ROLES: [&str; 4] = [
    "internal_user",
    "internal_user_viewer",
    "proxy_admin",
    "proxy_admin_viewer",
];

#[component]
pub fn UsersPage() -> impl IntoView {
    let session = Session::get();
    let viewer = Viewer::get();
    let version = RwSignal::new(0u32);
    let list = Resource::new(
        move || (session.version(), version.get()),
        |_| api::list_users(),
    );
    let notice = RwSignal::new(None::<String>);
    let reload = Callback::new(move |()| version.update(|v| *v += 1));
    view! {
        <section aria-labelledby="users-title">
            <h1 id="users-title">"Users"</h1>
            {move || notice.get().map(|text| view! { <p class="notice" role="status">{text}</p> })}
            <Transition fallback=loading>
                {move || list.get().map(|result| show(result, move |users| view! {
                    <UserTable users=users/>
                    // The form is there for who may use it.
                    {viewer.me().changes_all.then(|| view! { <NewUserForm reload=reload notice=notice/> })}
                }.into_any()))}
            </Transition>
        </section>
    }
}

#[component]
fn UserTable(users: UserList) -> impl IntoView {
    if users.users.is_empty() {
        return view! { <p class="empty">"No users yet: make one below, add a member to a team, or issue a key with a user id."</p> }.into_any();
    }
    let shown = users.users.len();
    view! {
        <div class="card table-wrap">
            <table>
                <thead>
                    <tr>
                        <th scope="col">"User"</th><th scope="col">"E-mail"</th><th scope="col">"Role"</th>
                        <th scope="col">"Teams"</th><th scope="col">"Keys"</th><th scope="col">"Spend / budget"</th>
                    </tr>
                </thead>
                <tbody>
                    {users.users.into_iter().map(|entry| {
                        let user = entry.user;
                        let budget = user.budget.max_budget.map_or_else(|| "no budget".to_string(), usd);
                        view! {
                            <tr>
                                <td><strong>{user.user_id.clone()}</strong></td>
                                <td>{user.user_email.clone().unwrap_or_else(|| "—".into())}</td>
                                <td>{user.user_role.clone()}</td>
                                <td>
                                    {user.teams.iter().map(|t| view! { <a href=format!("/teams/{t}")>{t.clone()}</a>" " }).collect_view()}
                                </td>
                                <td>{entry.key_count}</td>
                                <td>{format!("{} / {budget}", usd(user.budget.spend))}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {(users.total > shown as u64).then(|| view! { <p class="hint">{format!("The first {shown} of {} users.", users.total)}</p> })}
        </div>
    }.into_any()
}

#[component]
fn NewUserForm(reload: Callback<()>, notice: RwSignal<Option<String>>) -> impl IntoView {
    let id = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let role = RwSignal::new(ROLES[0].to_string());
    let budget = RwSignal::new(String::new());
    let error = RwSignal::new(None::<api::ApiError>);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let made = number::<f64>("max_budget", &budget.get_untracked()).map(|max| NewUser {
            user_id: optional(&id.get_untracked()),
            user_email: optional(&email.get_untracked()),
            user_role: Some(role.get_untracked()),
            max_budget: max,
            // A key is issued from a team's page, where its team is chosen.
            auto_create_key: Some(false),
            ..NewUser::default()
        });
        spawn_local(async move {
            let result = match made {
                Ok(user) => api::create_user(user).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(made) => {
                    error.set(None);
                    for field in [id, email, budget] {
                        field.set(String::new());
                    }
                    notice.set(Some(format!("User {} created.", made.user.user_id)));
                    reload.run(());
                }
                Err(err) => error.set(Some(err)),
            }
        });
    };
    view! {
        <form class="card form" on:submit=submit aria-label="New user">
            <h2>"New user"</h2>
            <div class="grid">
                <TextField id="user-id" param="user_id" label="User id" value=id error=error placeholder="Generated when empty"/>
                <TextField id="user-email" param="user_email" label="E-mail" value=email error=error placeholder="ada@example.com"/>
                <div class="field">
                    <label for="user-role">"Role"</label>
                    <select id="user-role" on:change=move |ev| role.set(event_target_value(&ev))>
                        {ROLES.iter().map(|r| view! { <option value=*r selected=*r == ROLES[0]>{*r}</option> }).collect_view()}
                    </select>
                </div>
                <TextField id="user-budget" param="max_budget" label="Budget over all their keys (USD)" value=budget error=error placeholder="No budget" inputmode="decimal"/>
            </div>
            {move || error.get().filter(|e| !matches!(e.param.as_deref(), Some("user_id" | "user_email" | "max_budget"))).map(|e| view! { <p class="error" role="alert">{e.message}</p> })}
            <div class="actions"><button type="submit">"Create user"</button></div>
        </form>
    }
}
