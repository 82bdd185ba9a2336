//! `/invite/:id`: the page an invitation link opens. The person sets a password (or a new one,
//! when the link was sent to reset it), then signs in with it.

use crate::{api, components::Session, pages::sign_in::SignIn};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::hooks::{use_navigate, use_params_map};

#[component]
pub fn InvitePage() -> impl IntoView {
    let params = use_params_map();
    let password = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let accepted = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let navigate = use_navigate();

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let (chosen, again) = (password.get_untracked(), repeat.get_untracked());
        if chosen != again {
            error.set(Some("The two passwords differ.".to_string()));
            return;
        }
        let id = params.read_untracked().get("id").unwrap_or_default();
        pending.set(true);
        spawn_local(async move {
            match api::accept_invitation(id, chosen).await {
                Ok(done) => {
                    error.set(None);
                    password.set(String::new());
                    repeat.set(String::new());
                    accepted.set(Some(done.user_id));
                }
                Err(err) => error.set(Some(err.message)),
            }
            pending.set(false);
        });
    };

    view! {
        {move || match accepted.get() {
            Some(user_id) => {
                let navigate = navigate.clone();
                let session = Session::get();
                view! {
                    <p class="notice" role="status">
                        "Your password is set. Sign in as " <strong>{user_id}</strong> " with it."
                    </p>
                    <SignIn on_signed_in=Callback::new(move |()| { session.refresh(); navigate("/", Default::default()) }) notice=None/>
                }.into_any()
            }
            None => view! {
                <section class="card sign-in" aria-labelledby="invite-title">
                    <h1 id="invite-title">"Set your password"</h1>
                    <p>"You were invited to Gatehouse. Choose a password: a few unrelated words make a strong one."</p>
                    <form on:submit=submit>
                        <label for="new-password">"New password"</label>
                        <input id="new-password" type="password" autocomplete="new-password"
                            prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev))/>
                        <label for="repeat-password">"Repeat it"</label>
                        <input id="repeat-password" type="password" autocomplete="new-password"
                            prop:value=move || repeat.get() on:input=move |ev| repeat.set(event_target_value(&ev))/>
                        <button type="submit" disabled=move || pending.get()>"Set password"</button>
                        {move || error.get().map(|text| view! { <p class="error" role="alert">{text}</p> })}
                    </form>
                </section>
            }.into_any(),
        }}
    }
}
