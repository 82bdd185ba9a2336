//! The team form, for a new team and for editing one: every field of the spec, models chosen
//! from the configured ones, the server's validation errors next to their field.

use crate::{
    api::{self, ApiError},
    components::TextField,
    components::{number, optional},
    types::{Metadata, NewTeam, Team, TeamUpdate},
};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use serde_json::Value;

const DURATIONS: &[(&str, &str)] = &[
    ("", "Never resets"),
    ("1d", "Daily"),
    ("7d", "Weekly"),
    ("30d", "Monthly"),
    ("custom", "Custom…"),
];

/// The form's fields as typed.
#[derive(Clone, Copy)]
struct Fields {
    team_id: RwSignal<String>,
    team_alias: RwSignal<String>,
    organization_id: RwSignal<String>,
    models: RwSignal<Vec<String>>,
    max_budget: RwSignal<String>,
    soft_budget: RwSignal<String>,
    tpm_limit: RwSignal<String>,
    rpm_limit: RwSignal<String>,
    duration_choice: RwSignal<String>,
    custom_duration: RwSignal<String>,
    /// Key/value rows; the list changes on add and remove only, so typing keeps focus.
    metadata: RwSignal<Vec<(RwSignal<String>, RwSignal<String>)>>,
}

impl Fields {
    fn new(team: Option<&Team>) -> Self {
        let text = |v: Option<String>| RwSignal::new(v.unwrap_or_default());
        let duration = team
            .and_then(|t| t.budget.budget_duration.clone())
            .unwrap_or_default();
        let preset = DURATIONS
            .iter()
            .any(|(value, _)| *value == duration && *value != "custom");
        Self {
            team_id: text(team.map(|t| t.team_id.clone())),
            team_alias: text(team.and_then(|t| t.team_alias.clone())),
            organization_id: text(team.and_then(|t| t.organization_id.clone())),
            models: RwSignal::new(team.map(|t| t.models.clone()).unwrap_or_default()),
            max_budget: text(
                team.and_then(|t| t.budget.max_budget)
                    .map(|v| v.to_string()),
            ),
            soft_budget: text(
                team.and_then(|t| t.budget.soft_budget)
                    .map(|v| v.to_string()),
            ),
            tpm_limit: text(team.and_then(|t| t.budget.tpm_limit).map(|v| v.to_string())),
            rpm_limit: text(team.and_then(|t| t.budget.rpm_limit).map(|v| v.to_string())),
            duration_choice: RwSignal::new(if preset {
                duration.clone()
            } else {
                "custom".into()
            }),
            custom_duration: RwSignal::new(if preset { String::new() } else { duration }),
            metadata: RwSignal::new(
                team.map(|t| {
                    t.metadata
                        .iter()
                        .map(|(k, v)| {
                            let text = v.as_str().map_or_else(|| v.to_string(), String::from);
                            (RwSignal::new(k.clone()), RwSignal::new(text))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ),
        }
    }

    fn duration(&self) -> Option<String> {
        match self.duration_choice.get_untracked().as_str() {
            "custom" => optional(&self.custom_duration.get_untracked()),
            preset => optional(preset),
        }
    }

    fn metadata(&self) -> Metadata {
        self.metadata
            .get_untracked()
            .into_iter()
            .map(|(k, v)| (k.get_untracked(), v.get_untracked()))
            .filter(|(k, _)| !k.trim().is_empty())
            .map(|(k, v)| (k.trim().to_string(), Value::String(v)))
            .collect()
    }

    fn new_team(&self) -> Result<NewTeam, ApiError> {
        Ok(NewTeam {
            soft_budget: number("soft_budget", &self.soft_budget.get_untracked())?,
            alert_webhook_url: None,
            team_id: optional(&self.team_id.get_untracked()),
            team_alias: optional(&self.team_alias.get_untracked()),
            organization_id: optional(&self.organization_id.get_untracked()),
            models: Some(self.models.get_untracked()),
            model_aliases: None,
            max_budget: number("max_budget", &self.max_budget.get_untracked())?,
            tpm_limit: number("tpm_limit", &self.tpm_limit.get_untracked())?,
            rpm_limit: number("rpm_limit", &self.rpm_limit.get_untracked())?,
            max_parallel_requests: None,
            budget_duration: self.duration(),
            metadata: Some(self.metadata()),
            blocked: None,
            members_with_roles: None,
        })
    }

    fn update(&self, team_id: String) -> Result<TeamUpdate, ApiError> {
        let new = self.new_team()?;
        Ok(TeamUpdate {
            soft_budget: Some(new.soft_budget),
            alert_webhook_url: None,
            team_id,
            team_alias: Some(new.team_alias),
            organization_id: Some(new.organization_id),
            models: Some(new.models),
            model_aliases: None,
            max_budget: Some(new.max_budget),
            tpm_limit: Some(new.tpm_limit),
            rpm_limit: Some(new.rpm_limit),
            max_parallel_requests: None,
            budget_duration: Some(new.budget_duration),
            metadata: Some(new.metadata),
            blocked: None,
            members_with_roles: None,
        })
    }
}

/// The error of `field`, shown under it.
fn field_error(error: RwSignal<Option<ApiError>>, field: &'static str) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.for_field(field)).map(
            |message| view! { <p class="field-error" id=format!("{field}-error")>{message}</p> },
        )
    }
}

/// Creates a team (`existing` is `None`) or edits one; `on_saved` gets the saved team.
#[component]
pub fn TeamForm(
    existing: Option<Team>,
    on_saved: Callback<Team>,
    #[prop(optional)] on_cancel: Option<Callback<()>>,
) -> AnyView {
    let editing = existing.clone();
    let fields = Fields::new(existing.as_ref());
    let error = RwSignal::new(None::<ApiError>);
    let pending = RwSignal::new(false);
    let models = LocalResource::new(api::models);
    let title = if existing.is_some() {
        "Edit team"
    } else {
        "New team"
    };

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let editing = editing.clone();
        spawn_local(async move {
            pending.set(true);
            let saved = match &editing {
                None => match fields.new_team() {
                    Ok(team) => api::create_team(team).await,
                    Err(err) => Err(err),
                },
                Some(team) => match fields.update(team.team_id.clone()) {
                    Ok(update) => api::update_team(update).await.map(|u| u.team),
                    Err(err) => Err(err),
                },
            };
            pending.set(false);
            match saved {
                Ok(team) => {
                    error.set(None);
                    on_saved.run(team);
                }
                Err(err) => error.set(Some(err)),
            }
        });
    };

    let general_error = move || {
        error
            .get()
            .filter(|e| {
                e.param.is_none() || !KNOWN_FIELDS.contains(&e.param.as_deref().unwrap_or(""))
            })
            .map(|e| view! { <p class="error" role="alert">{e.message}</p> })
    };

    view! {
        <form class="card form" on:submit=submit aria-label=title>
            <h2>{title}</h2>
            <div class="grid">
                {existing
                    .is_none()
                    .then(|| {
                        view! {
                            <div class="field">
                                <label for="team_id">"Team id"</label>
                                <input id="team_id" name="team_id" placeholder="engineering-team"
                                    aria-describedby="team_id-hint"
                                    prop:value=move || fields.team_id.get()
                                    on:input=move |ev| fields.team_id.set(event_target_value(&ev))/>
                                <p class="hint" id="team_id-hint">"Letters, digits, '.', '_' or '-'. Empty: generated."</p>
                                {field_error(error, "team_id")}
                            </div>
                        }
                    })}
                <TextField id="team_alias" param="team_alias" label="Name" value=fields.team_alias error=error placeholder="Engineering Team"/>
                <TextField id="organization_id" param="organization_id" label="Organization id" value=fields.organization_id error=error placeholder="No organization"/>
                <TextField id="max_budget" param="max_budget" label="Budget (USD)" value=fields.max_budget error=error placeholder="No budget" inputmode="decimal"/>
                <TextField id="soft_budget" param="soft_budget" label="Alert at (USD, soft budget)" value=fields.soft_budget error=error placeholder="No soft budget" inputmode="decimal"/>
                <div class="field">
                    <label for="budget_duration">"Budget resets"</label>
                    <select id="budget_duration" name="budget_duration"
                        prop:value=move || fields.duration_choice.get()
                        on:change=move |ev| fields.duration_choice.set(event_target_value(&ev))>
                        {DURATIONS
                            .iter()
                            .map(|(value, label)| {
                                view! {
                                    <option value=*value selected=move || fields.duration_choice.get() == *value>
                                        {*label}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                    <Show when=move || fields.duration_choice.get() == "custom">
                        <label for="custom_duration">"Custom period"</label>
                        <input id="custom_duration" name="custom_duration" placeholder="e.g. 12h, 14d, 3mo"
                            prop:value=move || fields.custom_duration.get()
                            on:input=move |ev| fields.custom_duration.set(event_target_value(&ev))/>
                    </Show>
                    {field_error(error, "budget_duration")}
                </div>
                <TextField id="tpm_limit" param="tpm_limit" label="Tokens per minute" value=fields.tpm_limit error=error placeholder="No limit" inputmode="numeric"/>
                <TextField id="rpm_limit" param="rpm_limit" label="Requests per minute" value=fields.rpm_limit error=error placeholder="No limit" inputmode="numeric"/>
            </div>
            <fieldset class="field">
                <legend>"Models (none checked: all models)"</legend>
                <Suspense fallback=|| view! { <p class="loading">"Loading models…"</p> }>
                    {move || {
                        models
                            .get()
                            .map(|result| match result {
                                Ok(list) => {
                                    list.data
                                        .into_iter()
                                        .map(|model| {
                                            let name = model.model_name;
                                            let id = format!("model-{name}");
                                            let label_for = id.clone();
                                            let checked = {
                                                let name = name.clone();
                                                move || fields.models.get().contains(&name)
                                            };
                                            let toggle = {
                                                let name = name.clone();
                                                move |ev| {
                                                    let on = event_target_checked(&ev);
                                                    fields.models.update(|models| {
                                                        models.retain(|m| *m != name);
                                                        if on {
                                                            models.push(name.clone());
                                                        }
                                                    });
                                                }
                                            };
                                            view! {
                                                <label class="check" for=label_for>
                                                    <input type="checkbox" id=id prop:checked=checked on:change=toggle/>
                                                    {name}
                                                </label>
                                            }
                                        })
                                        .collect_view()
                                        .into_any()
                                }
                                Err(err) => view! { <p class="error">{err.message}</p> }.into_any(),
                            })
                    }}
                </Suspense>
                {field_error(error, "models")}
            </fieldset>
            <fieldset class="field">
                <legend>"Metadata"</legend>
                {move || {
                    fields
                        .metadata
                        .get()
                        .into_iter()
                        .enumerate()
                        .map(|(i, (key, value))| {
                            view! {
                                <div class="meta-row">
                                    <label for=format!("meta-key-{i}")>{format!("Key {}", i + 1)}</label>
                                    <input id=format!("meta-key-{i}") prop:value=move || key.get()
                                        on:input=move |ev| key.set(event_target_value(&ev))/>
                                    <label for=format!("meta-value-{i}")>{format!("Value {}", i + 1)}</label>
                                    <input id=format!("meta-value-{i}") prop:value=move || value.get()
                                        on:input=move |ev| value.set(event_target_value(&ev))/>
                                    <button type="button" class="secondary" aria-label=format!("Remove metadata row {}", i + 1)
                                        on:click=move |_| fields.metadata.update(|rows| { if i < rows.len() { rows.remove(i); } })>
                                        "Remove"
                                    </button>
                                </div>
                            }
                        })
                        .collect_view()
                }}
                <button type="button" class="secondary" on:click=move |_| fields.metadata.update(|rows| rows.push((RwSignal::new(String::new()), RwSignal::new(String::new()))))>
                    "Add metadata"
                </button>
                {field_error(error, "metadata")}
            </fieldset>
            {general_error}
            <div class="actions">
                <button type="submit" disabled=move || pending.get()>{if existing.is_some() { "Save changes" } else { "Create team" }}</button>
                {on_cancel.map(|cancel| view! { <button type="button" class="secondary" on:click=move |_| cancel.run(())>"Cancel"</button> })}
            </div>
        </form>
    }
    .into_any()
}

/// Fields the form shows errors next to; other errors go above the buttons.
const KNOWN_FIELDS: &[&str] = &[
    "team_id",
    "team_alias",
    "organization_id",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "models",
    "metadata",
];
