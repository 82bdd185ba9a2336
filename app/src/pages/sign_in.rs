//! The sign-in form: trades the admin key for an HttpOnly session cookie. The key itself is
//! never stored in the browser.

use crate::api;
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

#[component]
pub fn SignIn(
    /// Called once the session cookie is set.
    on_signed_in: Callback<()>,
    /// Shown above the form, e.g. why the user has to sign in again.
    notice: Option<String>,
) -> impl IntoView {
    let key = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let entered = key.get_untracked();
        if entered.trim().is_empty() {
            error.set(Some("Enter the admin key to sign in.".to_string()));
            return;
        }
        pending.set(true);
        spawn_local(async move {
            match api::login(entered).await {
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
            // POST: submitted before the bundle has loaded, the key never lands in an address.
            <form method="post" action="/session/login" on:submit=submit>
                <label for="admin-key">"Admin key"</label>
                <input
                    id="admin-key"
                    name="admin-key"
                    type="password"
                    autocomplete="off"
                    spellcheck="false"
                    prop:value=move || key.get()
                    on:input=move |ev| key.set(event_target_value(&ev))
                />
                <p class="hint">
                    "The key Gatehouse printed on its first start (stored in its data directory), or "
                    <code>"GATEHOUSE_MASTER_KEY"</code> "."
                </p>
                <button type="submit" disabled=move || pending.get()>"Sign in"</button>
                {move || error.get().map(|text| view! { <p class="error" role="alert">{text}</p> })}
            </form>
        </section>
    }
}
