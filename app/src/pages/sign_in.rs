//! The sign-in form: a person's name (user id or e-mail) and password, or the admin key alone,
//! traded for an HttpOnly session cookie. Neither is stored in the browser.

use crate::{api, types::Login};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

#[component]
pub fn SignIn(
    /// Called once the session cookie is set.
    on_signed_in: Callback<()>,
    /// Shown above the form, e.g. why the user has to sign in again.
    notice: Option<String>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let entered = key.get_untracked();
        let who = name.get_untracked().trim().to_string();
        if entered.trim().is_empty() {
            error.set(Some(
                "Enter your password (or, with no name, the admin key) to sign in.".to_string(),
            ));
            return;
        }
        let login = if who.is_empty() {
            Login {
                key: Some(entered),
                ..Login::default()
            }
        } else if who.contains('@') {
            Login {
                user_email: Some(who),
                password: Some(entered),
                ..Login::default()
            }
        } else {
            Login {
                user_id: Some(who),
                password: Some(entered),
                ..Login::default()
            }
        };
        pending.set(true);
        spawn_local(async move {
            match api::login(login).await {
                Ok(_) => {
                    key.set(String::new());
                    error.set(None);
                    on_signed_in.run(());
                }
                Err(err) => error.set(Some(err.message)),
            }
            pending.set(false);
        });
    };

    view! {
        <section class="card sign-in" aria-labelledby="sign-in-title">
            <h1 id="sign-in-title">"Sign in"</h1>
            {notice.map(|text| view! { <p class="notice">{text}</p> })}
            // POST: submitted before the bundle has loaded, nothing lands in an address.
            <form method="post" action="/session/login" on:submit=submit>
                <label for="sign-in-name">"User ID or e-mail"</label>
                <input
                    id="sign-in-name"
                    name="user"
                    type="text"
                    autocomplete="username"
                    spellcheck="false"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                <label for="admin-key">"Password, or the admin key"</label>
                <input
                    id="admin-key"
                    name="admin-key"
                    type="password"
                    autocomplete="current-password"
                    spellcheck="false"
                    prop:value=move || key.get()
                    on:input=move |ev| key.set(event_target_value(&ev))
                />
                <p class="hint">
                    "People sign in with the password they set from their invitation link. "
                    "Leave the name empty to sign in with the admin key: the one Gatehouse printed "
                    "on its first start (stored in its data directory), or "
                    <code>"GATEHOUSE_MASTER_KEY"</code> "."
                </p>
                <button type="submit" disabled=move || pending.get()>"Sign in"</button>
                {move || error.get().map(|text| view! { <p class="error" role="alert">{text}</p> })}
            </form>
        </section>
    }
}
