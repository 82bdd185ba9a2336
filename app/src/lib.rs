#![recursion_limit = "512"]
//! Gatehouse's console: rendered on the server with its data, hydrated in the browser, talking
//! to the REST API through [`api`] like any other client.

pub mod api;
pub mod components;
pub mod live;
pub mod pages;
pub mod types;

use components::{Session, Viewer};
use leptos::{prelude::*, task::spawn_local};
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path, SsrMode,
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
                <HashedStylesheet options=options.clone() id="leptos"/>
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
    let viewer = Viewer::provide(session);
    // Effects run in the browser only, once the page is hydrated: say so, for tests and
    // measurements that must not act on the server-rendered page before it answers.
    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
    let sign_out = move |_| {
        spawn_local(async move {
            // Signed out either way: a failed call leaves an unusable cookie at worst.
            let _ = api::logout().await;
            session.refresh();
        });
    };
    view! {
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml"/>
        <Title text="Gatehouse"/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"Gatehouse"</a>
                <nav aria-label="Main">
                    <A href="/overview">"Overview"</A>
                    <A href="/" exact=true>"Teams"</A>
                    <A href="/organizations">"Organizations"</A>
                    <A href="/usage">"Usage"</A>
                    <A href="/logs">"Logs"</A>
                    // Only who may read everything sees the pages of people, alerts and changes.
                    <Transition fallback=|| ()>
                        {move || viewer.me().reads_all.then(|| view! {
                            <A href="/users">"Users"</A>
                            <A href="/alerts">"Alerts"</A>
                            <A href="/audit-log">"Audit"</A>
                        })}
                    </Transition>
                </nav>
                <button type="button" class="link" on:click=sign_out>"Sign out"</button>
            </header>
            <main>
                <Routes fallback=|| view! { <p>"Page not found."</p> }>
                    // Rendered once their data is in: the first HTML already shows it, with no
                    // script needed to put it in place.
                    <Route path=path!("") view=pages::teams::TeamsPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:id") view=pages::team::TeamPage ssr=SsrMode::Async/>
                    <Route path=path!("/overview") view=pages::overview::OverviewPage ssr=SsrMode::Async/>
                    <Route path=path!("/usage") view=pages::usage::UsagePage ssr=SsrMode::Async/>
                    <Route path=path!("/organizations") view=pages::organizations::OrganizationsPage ssr=SsrMode::Async/>
                    <Route path=path!("/users") view=pages::users::UsersPage ssr=SsrMode::Async/>
                    <Route path=path!("/logs") view=pages::logs::LogsPage ssr=SsrMode::Async/>
                    <Route path=path!("/logs/:request_id") view=pages::logs::LogEntryPage ssr=SsrMode::Async/>
                    <Route path=path!("/invite/:id") view=pages::invite::InvitePage/>
                    <Route path=path!("/audit-log") view=pages::audit::AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/alerts") view=pages::alerts::AlertsPage ssr=SsrMode::Async/>
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
