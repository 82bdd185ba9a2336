//! `/organizations`: every organization with its budget, limits, models and teams, and the form
//! that makes one. A team is put in an organization on the team's form.

use crate::{
    api,
    components::{limit, loading, number, optional, show, BudgetBar, Session, TextField, Viewer},
    types::{NewOrganization, Organization},
};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};

#[component]
pub fn OrganizationsPage() -> impl IntoView {
    let session = Session::get();
    let viewer = Viewer::get();
    let version = RwSignal::new(0u32);
    let list = Resource::new(
        move || (session.version(), version.get()),
        |_| api::list_organizations(),
    );
    let notice = RwSignal::new(None::<String>);
    let reload = Callback::new(move |()| version.update(|v| *v += 1));
    view! {
        <section aria-labelledby="organizations-title">
            <h1 id="organizations-title">"Organizations"</h1>
            {move || notice.get().map(|text| view! { <p class="notice" role="status">{text}</p> })}
            <Transition fallback=loading>
                {move || list.get().map(|result| show(result, move |organizations| view! {
                    <OrganizationTable organizations=organizations/>
                    // The form is there for who may use it.
                    {viewer.me().changes_all.then(|| view! { <NewOrganizationForm reload=reload notice=notice/> })}
                }.into_any()))}
            </Transition>
        </section>
    }
}

#[component]
fn OrganizationTable(organizations: Vec<Organization>) -> impl IntoView {
    if organizations.is_empty() {
        return view! { <p class="empty">"No organizations yet: make one below, then put teams in it from a team's form."</p> }.into_any();
    }
    view! {
        <div class="card table-wrap">
            <table>
                <thead>
                    <tr>
                        <th scope="col">"Organization"</th><th scope="col">"Spend / budget"</th><th scope="col">"Requests per minute"</th>
                        <th scope="col">"Tokens per minute"</th><th scope="col">"Models"</th><th scope="col">"Teams"</th><th scope="col">"Members"</th>
                    </tr>
                </thead>
                <tbody>
                    {organizations.into_iter().map(|org| {
                        let name = org.organization_alias.clone().unwrap_or_else(|| org.organization_id.clone());
                        view! {
                            <tr>
                                <td><strong>{name}</strong><br/><small class="hint">{org.organization_id.clone()}</small></td>
                                <td><BudgetBar spend=Signal::stored(org.budget.spend) max_budget=Signal::stored(org.budget.max_budget)/></td>
                                <td>{limit(org.budget.rpm_limit)}</td>
                                <td>{limit(org.budget.tpm_limit)}</td>
                                <td>{if org.models.is_empty() { "all models".to_string() } else { org.models.join(", ") }}</td>
                                <td>
                                    {if org.teams.is_empty() {
                                        view! { "none" }.into_any()
                                    } else {
                                        org.teams.into_iter().map(|t| {
                                            let label = t.team_alias.clone().unwrap_or_else(|| t.team_id.clone());
                                            view! { <a href=format!("/teams/{}", t.team_id)>{label}</a>" " }
                                        }).collect_view().into_any()
                                    }}
                                </td>
                                <td>{org.members.len()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }.into_any()
}

#[component]
fn NewOrganizationForm(reload: Callback<()>, notice: RwSignal<Option<String>>) -> impl IntoView {
    let id = RwSignal::new(String::new());
    let alias = RwSignal::new(String::new());
    let budget = RwSignal::new(String::new());
    let rpm = RwSignal::new(String::new());
    let tpm = RwSignal::new(String::new());
    let error = RwSignal::new(None::<api::ApiError>);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let made = (|| -> Result<NewOrganization, api::ApiError> {
            Ok(NewOrganization {
                soft_budget: None,
                organization_id: optional(&id.get_untracked()),
                organization_alias: optional(&alias.get_untracked()),
                models: None,
                metadata: None,
                max_budget: number("max_budget", &budget.get_untracked())?,
                tpm_limit: number("tpm_limit", &tpm.get_untracked())?,
                rpm_limit: number("rpm_limit", &rpm.get_untracked())?,
                max_parallel_requests: None,
                budget_duration: None,
            })
        })();
        spawn_local(async move {
            let result = match made {
                Ok(org) => api::create_organization(org).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(org) => {
                    error.set(None);
                    for field in [id, alias, budget, rpm, tpm] {
                        field.set(String::new());
                    }
                    notice.set(Some(format!(
                        "Organization {} created.",
                        org.organization_id
                    )));
                    reload.run(());
                }
                Err(err) => error.set(Some(err)),
            }
        });
    };
    let other_error = move || {
        error
            .get()
            .filter(|e| {
                !matches!(
                    e.param.as_deref(),
                    Some(
                        "organization_id"
                            | "organization_alias"
                            | "max_budget"
                            | "tpm_limit"
                            | "rpm_limit"
                    )
                )
            })
            .map(|e| view! { <p class="error" role="alert">{e.message}</p> })
    };
    view! {
        <form class="card form" on:submit=submit aria-label="New organization">
            <h2>"New organization"</h2>
            <div class="grid">
                <TextField id="org-id" param="organization_id" label="Organization id" value=id error=error placeholder="acme"/>
                <TextField id="org-alias" param="organization_alias" label="Name" value=alias error=error placeholder="Acme Corp"/>
                <TextField id="org-budget" param="max_budget" label="Budget (USD)" value=budget error=error placeholder="No budget" inputmode="decimal"/>
                <TextField id="org-rpm" param="rpm_limit" label="Requests per minute" value=rpm error=error placeholder="No limit" inputmode="numeric"/>
                <TextField id="org-tpm" param="tpm_limit" label="Tokens per minute" value=tpm error=error placeholder="No limit" inputmode="numeric"/>
            </div>
            {other_error}
            <div class="actions"><button type="submit">"Create organization"</button></div>
        </form>
    }
}
