#![recursion_limit = "512"]
//! Gatehouse's console: rendered on the server, hydrated in the browser, talking to the REST
//! API through [`api`] like any other client.

pub mod api;
pub mod components;
pub mod pages;
pub mod types;

use components::Session;
use leptos::{prelude::*, task::spawn_local};
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path,
};

/// The HTML document around the app, rendered by the server for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let session = Session::provide();
    let sign_out = move |_| {
        spawn_local(async move {
            // Signed out either way: a failed call leaves an unusable cookie at worst.
            let _ = api::logout().await;
            session.refresh();
        });
    };
    view! {
        <Stylesheet id="leptos" href="/pkg/gatehouse.css"/>
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml"/>
        <Title text="Gatehouse"/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"Gatehouse"</a>
                <nav aria-label="Main">
                    <A href="/">"Teams"</A>
                    <A href="/usage">"Usage"</A>
                </nav>
                <button type="button" class="link" on:click=sign_out>"Sign out"</button>
            </header>
            <main>
                <Routes fallback=|| view! { <p>"Page not found."</p> }>
                    <Route path=path!("") view=pages::teams::TeamsPage/>
                    <Route path=path!("/teams/:id") view=pages::team::TeamPage/>
                    <Route path=path!("/usage") view=pages::usage::UsagePage/>
                </Routes>
            </main>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
