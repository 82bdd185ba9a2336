//! Pieces every page uses: the session, how an API answer is shown (sign-in on 401, an error
//! otherwise), money and dates, the budget bar.

use crate::{
    api::{self, ApiError, ApiResult},
    pages::sign_in::SignIn,
    types::{KeyInfo, Me, Team},
};
use leptos::prelude::*;

/// The console's sign-in state: pages fetch again whenever `version` moves (after signing in
/// or out).
#[derive(Clone, Copy)]
pub struct Session {
    version: RwSignal<u32>,
}

impl Session {
    pub fn provide() -> Self {
        let session = Self {
            version: RwSignal::new(0),
        };
        provide_context(session);
        session
    }

    pub fn get() -> Self {
        use_context::<Self>().unwrap_or_else(Self::provide)
    }

    /// Tracks the session in a resource's fetcher.
    pub fn track(&self) {
        self.version.track();
    }

    /// For a resource's source: changes when the person signs in or out.
    pub fn version(&self) -> u32 {
        self.version.get()
    }

    pub fn refresh(&self) {
        self.version.update(|n| *n += 1);
    }
}

/// Who is signed in, fetched again whenever the session changes: every page shows the change
/// controls the person's role allows, and no others (the API refuses the rest anyway).
#[derive(Clone, Copy)]
pub struct Viewer(Resource<ApiResult<Me>>);

impl Viewer {
    pub fn provide(session: Session) -> Self {
        let me = Self(Resource::new(move || session.version(), |_| api::me()));
        provide_context(me);
        me
    }

    pub fn get() -> Self {
        use_context::<Self>().unwrap_or_else(|| Self::provide(Session::get()))
    }

    /// The person, once known; until then (or when not signed in) nothing is allowed.
    pub fn me(&self) -> Me {
        self.0.get().and_then(Result::ok).unwrap_or_default()
    }

    /// The team rules for a team: (governs it, manages it, issues keys in it).
    pub fn of_team(&self, team: &Team) -> TeamRights {
        let me = self.me();
        let org = team.organization_id.as_deref();
        TeamRights {
            governs: me.changes_all
                || (me.may_change() && org.is_some_and(|o| me.admin_orgs.iter().any(|a| a == o))),
            manages: me.manages_team(&team.team_id, org),
            issues_keys: me.issues_keys_in(&team.team_id, org),
            user_id: me.user_id.clone(),
            may_change: me.may_change(),
        }
    }
}

/// What the signed-in person may change in one team.
#[derive(Clone, Debug, Default)]
pub struct TeamRights {
    /// Its budget, limits, models; blocking and deleting it.
    pub governs: bool,
    /// Its members and every key in it.
    pub manages: bool,
    /// Issues keys in it (a member: for itself).
    pub issues_keys: bool,
    pub user_id: Option<String>,
    pub may_change: bool,
}

impl TeamRights {
    /// Blocks, rotates or revokes this key: who manages the team, or the key's own user.
    pub fn manages_key(&self, key: &KeyInfo) -> bool {
        self.manages || (self.may_change && self.user_id.is_some() && key.user_id == self.user_id)
    }
}

/// Shows an API answer: `ok` with the data; the sign-in form when the session is missing or
/// expired (with the server's reason); an alert otherwise.
pub fn show<T>(result: ApiResult<T>, ok: impl FnOnce(T) -> AnyView) -> AnyView {
    match result {
        Ok(data) => ok(data),
        Err(err) if err.is_unauthorized() => {
            let session = Session::get();
            let notice = err
                .message
                .contains("expired")
                .then(|| "Your session has expired. Sign in again to continue.".to_string());
            view! { <SignIn on_signed_in=Callback::new(move |()| session.refresh()) notice=notice/> }
                .into_any()
        }
        Err(err) => view! { <p class="error" role="alert">{err.message}</p> }.into_any(),
    }
}

/// `$12.34`, or more digits for amounts under a cent so small spend is visible.
pub fn usd(amount: f64) -> String {
    if amount > 0.0 && amount < 0.01 {
        format!("${amount:.6}")
    } else {
        format!("${amount:.2}")
    }
}

/// An RFC 3339 time as `2026-12-01 00:00 UTC`.
pub fn when(text: &str) -> String {
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text.to_string(),
    }
}

/// A text field's value, trimmed; `None` when empty.
pub fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A number field's value as `T`: `None` when empty, the field's error when it is not a `T` —
/// so "-5" or "1.5" in a limit (`u64`) is refused, never cast.
pub fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, ApiError> {
    match optional(text) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| ApiError {
            status: 0,
            message: format!(
                "Enter {}, or leave it empty for no limit.",
                if std::any::type_name::<T>().starts_with('u') {
                    "a whole number, 0 or more"
                } else {
                    "a number"
                }
            ),
            param: Some(field.to_string()),
        }),
    }
}

pub fn limit(value: Option<u64>) -> String {
    value.map_or_else(|| "—".to_string(), |n| n.to_string())
}

/// Spend against budget as a bar, with the figures as text; it follows the signals.
#[component]
pub fn BudgetBar(
    #[prop(into)] spend: Signal<f64>,
    #[prop(into)] max_budget: Signal<Option<f64>>,
) -> impl IntoView {
    move || budget_bar(spend.get(), max_budget.get())
}

fn budget_bar(spend: f64, max_budget: Option<f64>) -> AnyView {
    match max_budget {
        Some(max) if max > 0.0 => {
            let percent = (spend / max * 100.0).clamp(0.0, 100.0);
            let level = if percent >= 90.0 {
                "high"
            } else if percent >= 70.0 {
                "mid"
            } else {
                "low"
            };
            view! {
                <div class="budget">
                    <div
                        class=format!("bar {level}")
                        role="progressbar"
                        aria-label="Budget used"
                        aria-valuemin="0"
                        aria-valuemax="100"
                        aria-valuenow=format!("{percent:.0}")
                    >
                        // A rect's width, not a style attribute: the console's CSP allows
                        // no inline styles.
                        <svg aria-hidden="true"><rect width=format!("{percent:.1}%") height="100%"></rect></svg>
                    </div>
                    <span class="figures">{format!("{} / {}", usd(spend), usd(max))}</span>
                </div>
            }
            .into_any()
        }
        _ => view! { <span class="figures">{format!("{} / no budget", usd(spend))}</span> }
            .into_any(),
    }
}

/// A team's or key's status.
pub fn status_badge(blocked: bool) -> AnyView {
    if blocked {
        view! { <span class="badge blocked">"Blocked"</span> }.into_any()
    } else {
        view! { <span class="badge active">"Active"</span> }.into_any()
    }
}

/// The loading state of a page section.
pub fn loading() -> impl IntoView {
    view! { <p class="loading" aria-live="polite">"Loading…"</p> }
}

/// A labelled text input bound to `value`, with the server's error for `param` under it.
#[component]
pub fn TextField(
    id: &'static str,
    /// The request field the server names in `error.param`.
    param: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    error: RwSignal<Option<ApiError>>,
    #[prop(optional)] placeholder: &'static str,
    /// `decimal` or `numeric` for number fields (the right keyboard on phones).
    #[prop(optional)]
    inputmode: &'static str,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id name=param placeholder=placeholder inputmode=(!inputmode.is_empty()).then_some(inputmode)
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))/>
            {move || {
                error
                    .get()
                    .and_then(|e| e.for_field(param))
                    .map(|message| view! { <p class="field-error" id=format!("{id}-error")>{message}</p> })
            }}
        </div>
    }
}

/// A destructive button that asks once more, inline: `label` first, then `question` with
/// `confirm` and Cancel. `name` is the first button's accessible name (e.g. "Delete Team A").
#[component]
pub fn ConfirmButton(
    label: &'static str,
    name: String,
    question: &'static str,
    confirm: &'static str,
    /// The accessible name of the confirmation group.
    group: &'static str,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    view! {
        <Show
            when=move || asking.get()
            fallback=move || {
                view! {
                    <button type="button" class="danger" aria-label=name.clone() on:click=move |_| asking.set(true)>
                        {label}
                    </button>
                }
            }
        >
            <span class="confirm" role="group" aria-label=group>
                {question}
                <button type="button" class="danger" on:click=move |_| { asking.set(false); on_confirm.run(()) }>{confirm}</button>
                <button type="button" class="secondary" on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}

/// The header row of a table: one column heading per name.
pub fn columns(names: &'static [&'static str]) -> impl IntoView {
    view! {
        <thead>
            <tr>{names.iter().map(|name| view! { <th scope="col">{*name}</th> }).collect_view()}</tr>
        </thead>
    }
}

/// Where a page of a list is: "51–100 of 234 teams", and links to the pages around it (plain
/// links: they work before the bundle has loaded).
#[component]
pub fn Pager(
    /// The navigation's accessible name, e.g. "Pages of teams".
    label: &'static str,
    /// What is counted, e.g. "teams".
    noun: &'static str,
    page: u64,
    pages: u64,
    page_size: u64,
    /// Rows on this page.
    shown: u64,
    total: u64,
    /// The address of page `n`.
    href: Callback<u64, String>,
    #[prop(default = ("Previous", "Next"))] links: (&'static str, &'static str),
) -> impl IntoView {
    let first = page
        .saturating_sub(1)
        .saturating_mul(page_size)
        .saturating_add(1);
    let last = (first + shown).saturating_sub(1);
    view! {
        <nav class="pager" aria-label=label>
            {(shown > 0).then(|| view! { <span>{format!("{first}–{last} of {total} {noun}")}</span> })}
            {(page > 1).then(|| view! { <a href=href.run(page - 1) rel="prev">{links.0}</a> })}
            {(page < pages).then(|| view! { <a href=href.run(page + 1) rel="next">{links.1}</a> })}
        </nav>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_a_whole_number_never_a_cast() {
        assert_eq!(number::<u64>("rpm_limit", " 600 "), Ok(Some(600)));
        assert_eq!(number::<u64>("rpm_limit", ""), Ok(None));
        for bad in ["-5", "1.5", "ten", "1e3"] {
            let err = number::<u64>("rpm_limit", bad).expect_err(bad);
            assert_eq!(err.param.as_deref(), Some("rpm_limit"));
            assert!(err.message.contains("whole number"), "{}", err.message);
        }
        assert_eq!(number::<f64>("max_budget", "-5"), Ok(Some(-5.0)));
    }
}
