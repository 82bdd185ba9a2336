//! Teams: create, read, change, block and delete, with every rule on their fields.

use super::{
    access::Actor,
    alerts, fields,
    keys::{key_view, member_view},
    members, organizations, timestamp, validate, Ctx, Error,
};
use crate::{
    gate::admission::LevelKind,
    storage::{
        BudgetOwner, DeleteOutcome, KeyFilter, StorageError, TeamOrder, TeamPatch, TeamQuery,
        TeamRow,
    },
};
use app::types::{NewTeam, Team, TeamInfo, TeamList, TeamListQuery, TeamMember, TeamUpdate};
use chrono::{DateTime, Utc};

/// The team as the API shows it, with the live spend of the request path.
pub async fn team_view(ctx: Ctx<'_>, row: &TeamRow) -> Result<Team, Error> {
    let live = ctx.gate.budget(LevelKind::Team, &row.team_id).await;
    let members = ctx.storage.members(Some(&row.team_id), None).await?;
    Ok(Team {
        team_id: row.team_id.clone(),
        team_alias: row.team_alias.clone(),
        organization_id: row.organization_id.clone(),
        models: row.models.clone(),
        model_aliases: row.aliases.clone(),
        budget: fields::budget_view(&row.budget, live),
        metadata: row.metadata.clone(),
        blocked: row.blocked,
        members_with_roles: members.iter().map(members::role_view).collect(),
        // A webhook's address can hold its own secret: for proxy admins and viewers only.
        alert_webhook_url: row
            .alert_webhook_url
            .clone()
            .filter(|_| ctx.actor.reads_all()),
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
    })
}

fn not_found(team_id: &str) -> Error {
    Error::NotFound(format!("Team '{team_id}' not found"))
}

/// A team the actor governs (sets its budget, limits, models; blocks or deletes it).
pub async fn governed(ctx: Ctx<'_>, team_id: &str, what: &str) -> Result<TeamRow, Error> {
    let team = existing(ctx, "team_id", team_id)
        .await
        .map_err(|err| ctx.actor.unseen(err, what))?;
    ctx.actor.check(ctx.actor.governs_team(&team), what)?;
    Ok(team)
}

/// A team whose members and keys the actor manages.
pub async fn managed(ctx: Ctx<'_>, team_id: &str, what: &str) -> Result<TeamRow, Error> {
    let team = existing(ctx, "team_id", team_id)
        .await
        .map_err(|err| ctx.actor.unseen(err, what))?;
    ctx.actor.check(ctx.actor.manages_team(&team), what)?;
    Ok(team)
}

/// Whether the actor may do what `allowed` says on the team `team_id` names; a team that does
/// not exist is one it may not (for list filters, which say nothing of what exists).
pub async fn allows(
    ctx: Ctx<'_>,
    team_id: &str,
    allowed: impl Fn(&Actor, &TeamRow) -> bool,
) -> Result<bool, Error> {
    Ok(ctx
        .storage
        .team(team_id)
        .await?
        .is_some_and(|team| allowed(ctx.actor, &team)))
}

/// The teams the actor may see; `None`: all of them.
async fn visible(ctx: Ctx<'_>) -> Result<Option<Vec<String>>, Error> {
    let actor = ctx.actor;
    if actor.reads_all() {
        return Ok(None);
    }
    let mut ids: Vec<String> = actor.member_teams.clone();
    if !actor.admin_orgs.is_empty() {
        for team in ctx.storage.teams().await? {
            if actor.sees_team(&team) && !ids.contains(&team.team_id) {
                ids.push(team.team_id);
            }
        }
    }
    Ok(Some(ids))
}

/// A team's webhook: set by proxy admins only, to a host the operator allows.
fn check_webhook(ctx: Ctx<'_>, url: &str) -> Result<(), Error> {
    ctx.actor
        .must_change_all("set a team's alert_webhook_url")?;
    alerts::check_team_webhook(ctx.alerts, url)
}

/// Puts a team in an organization (or makes one there): the actor must manage it.
fn check_organization(ctx: Ctx<'_>, organization_id: Option<&str>) -> Result<(), Error> {
    let actor = ctx.actor;
    match organization_id {
        _ if actor.changes_all() => Ok(()),
        Some(id) if actor.manages_org(id) => Ok(()),
        _ => Err(Error::Forbidden(
            "Your role does not allow you to make teams here: a proxy admin makes teams, an \
             org_admin in their organization (organization_id)."
                .to_string(),
        )),
    }
}

/// Reads a team that must exist; `param` names the request field that held its id.
pub async fn existing(ctx: Ctx<'_>, param: &str, team_id: &str) -> Result<TeamRow, Error> {
    validate::team_id(param, team_id)?;
    ctx.storage
        .team(team_id)
        .await?
        .ok_or_else(|| not_found(team_id))
}

pub async fn create(ctx: Ctx<'_>, req: NewTeam, now: DateTime<Utc>) -> Result<Team, Error> {
    let budget = fields::new_budget(&req.budget(), now)?;
    let team_id = match req.team_id {
        Some(id) => {
            validate::team_id("team_id", &id)?;
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    if let Some(alias) = &req.team_alias {
        validate::label("team_alias", alias)?;
    }
    let models = validate::models("models", req.models.unwrap_or_default())?;
    let aliases = validate::aliases(
        "model_aliases",
        req.model_aliases.unwrap_or_default(),
        &[("the team", &models)],
    )?;
    let members_with_roles = req.members_with_roles.unwrap_or_default();
    members::check_list(&members_with_roles)?;
    check_organization(ctx, req.organization_id.as_deref())?;
    if let Some(url) = &req.alert_webhook_url {
        check_webhook(ctx, url)?;
    }
    if let Some(id) = &req.organization_id {
        let organization = organizations::existing(ctx, "organization_id", id).await?;
        organizations::check_team(&organization, &models, &budget)?;
    }
    let row = TeamRow {
        alert_webhook_url: req.alert_webhook_url,
        organization_id: req.organization_id,
        budget,
        team_alias: req.team_alias,
        models,
        aliases,
        metadata: req.metadata.unwrap_or_default(),
        blocked: req.blocked.unwrap_or(false),
        created_at: now.timestamp(),
        updated_at: now.timestamp(),
        team_id,
    };
    ctx.touch(BudgetOwner::Team, &row.team_id).await;
    match ctx.storage.insert_team(&row).await {
        Ok(()) => {
            members::set_list(ctx, &row.team_id, &members_with_roles, now).await?;
            team_view(ctx, &row).await
        }
        Err(StorageError::AlreadyExists) => Err(Error::Conflict(format!(
            "Team '{}' already exists; choose another team_id or use /team/update",
            row.team_id
        ))),
        Err(err) => Err(err.into()),
    }
}

/// Every team (the spec's answer), or one page of them searched and sorted by the database
/// (see [`TeamListQuery`]).
pub async fn list(ctx: Ctx<'_>, query: TeamListQuery) -> Result<TeamList, Error> {
    let only = visible(ctx).await?;
    if !query.is_paged() {
        let mut rows = ctx.storage.teams().await?;
        if let Some(only) = &only {
            rows.retain(|team| only.contains(&team.team_id));
        }
        return Ok(TeamList {
            teams: views(ctx, &rows).await?,
            total_count: None,
            current_page: None,
            total_pages: None,
        });
    }
    let (page, size, offset) = validate::page(query.page, query.size)?;
    let (order, descending) = sort_order(query.sort.as_deref())?;
    let search = match query.search.as_deref().map(str::trim) {
        Some(text) if text.chars().count() > MAX_SEARCH => {
            return Err(Error::invalid(
                "search",
                format!("search is at most {MAX_SEARCH} characters"),
            ))
        }
        Some(text) if !text.is_empty() => Some(text.to_lowercase()),
        _ => None,
    };
    let selection = TeamQuery {
        search,
        order,
        descending,
        only,
    };
    let (rows, total) = ctx.storage.teams_page(&selection, offset, size).await?;
    Ok(TeamList {
        teams: views(ctx, &rows).await?,
        total_count: Some(total),
        current_page: Some(page),
        total_pages: Some(total.div_ceil(size)),
    })
}

/// The longest `search` text /team/list takes.
const MAX_SEARCH: usize = 256;

async fn views(ctx: Ctx<'_>, rows: &[TeamRow]) -> Result<Vec<Team>, Error> {
    let mut teams = Vec::with_capacity(rows.len());
    for row in rows {
        teams.push(team_view(ctx, row).await?);
    }
    Ok(teams)
}

/// `/team/list?sort=`: the order and whether it is descending (`-spend`).
fn sort_order(text: Option<&str>) -> Result<(TeamOrder, bool), Error> {
    let text = text.unwrap_or("created");
    let (descending, name) = match text.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, text),
    };
    let order = match name {
        "name" => TeamOrder::Name,
        "spend" => TeamOrder::Spend,
        "used" => TeamOrder::Used,
        "reset" => TeamOrder::Reset,
        "created" => TeamOrder::Created,
        _ => {
            return Err(Error::invalid(
                "sort",
                "sort is one of name, spend, used, reset, created, each with an optional leading '-' for descending",
            ))
        }
    };
    Ok((order, descending))
}

pub async fn info(ctx: Ctx<'_>, team_id: &str) -> Result<TeamInfo, Error> {
    let what = "see this team";
    let team = existing(ctx, "team_id", team_id)
        .await
        .map_err(|err| ctx.actor.unseen(err, what))?;
    ctx.actor.check(ctx.actor.sees_team(&team), what)?;
    // A member who does not manage the team sees its own keys in it.
    let filter = KeyFilter {
        team_id: Some(team.team_id.clone()),
        user_id: (!ctx.actor.sees_team_keys(&team))
            .then(|| ctx.actor.user_id.clone().unwrap_or_default()),
        ..KeyFilter::default()
    };
    let (keys, _) = ctx.storage.keys(&filter, 0, i64::MAX as u64).await?;
    let rows = ctx.storage.members(Some(&team.team_id), None).await?;
    let team = team_view(ctx, &team).await?;
    let mut views = Vec::with_capacity(keys.len());
    for key in &keys {
        views.push(key_view(ctx, key).await);
    }
    // The spec's list: each key with its user, then each member who holds no key.
    let role_of = |user_id: &Option<String>| {
        rows.iter()
            .find(|m| Some(&m.user_id) == user_id.as_ref())
            .map(|m| m.role.clone())
    };
    let mut listed: Vec<TeamMember> = keys
        .iter()
        .map(|key| {
            let mut member = member_view(key);
            member.role = role_of(&member.user_id);
            member
        })
        .collect();
    for row in &rows {
        if !keys
            .iter()
            .any(|k| k.user_id.as_ref() == Some(&row.user_id))
        {
            listed.push(TeamMember {
                user_id: Some(row.user_id.clone()),
                key: None,
                token: None,
                key_alias: None,
                blocked: false,
                role: Some(row.role.clone()),
            });
        }
    }
    let mut memberships = Vec::with_capacity(rows.len());
    for row in &rows {
        memberships.push(members::membership_view(ctx, row).await);
    }
    Ok(TeamInfo {
        members: listed,
        keys: views,
        team_info: team.clone(),
        team,
        team_memberships: memberships,
    })
}

/// Applies the fields present in `req`; changing `budget_duration` moves `budget_reset_at`
/// without touching spend.
pub async fn update(ctx: Ctx<'_>, req: TeamUpdate, now: DateTime<Utc>) -> Result<Team, Error> {
    governed(ctx, &req.team_id, "change this team").await?;
    if let Some(organization_id) = &req.organization_id {
        check_organization(ctx, organization_id.as_deref())?;
    }
    if let Some(Some(url)) = &req.alert_webhook_url {
        check_webhook(ctx, url)?;
    } else if req.alert_webhook_url.is_some() {
        ctx.actor
            .must_change_all("set a team's alert_webhook_url")?;
    }
    if let Some(Some(alias)) = &req.team_alias {
        validate::label("team_alias", alias)?;
    }
    let budget = fields::budget_patch(&req.budget(), now)?;
    let models = fields::models_update(req.models)?;
    let aliases = match req.model_aliases {
        None => None,
        Some(aliases) => {
            let team = existing(ctx, "team_id", &req.team_id).await?;
            let models = models.as_ref().unwrap_or(&team.models);
            Some(validate::aliases(
                "model_aliases",
                aliases.unwrap_or_default(),
                &[("the team", models)],
            )?)
        }
    };
    if let Some(list) = &req.members_with_roles {
        members::check_list(list)?;
        existing(ctx, "team_id", &req.team_id).await?;
    }
    let bound_changes = req.organization_id.is_some()
        || models.is_some()
        || [
            budget.max_budget.is_some(),
            budget.tpm_limit.is_some(),
            budget.rpm_limit.is_some(),
            budget.max_parallel_requests.is_some(),
        ]
        .contains(&true);
    if bound_changes {
        let team = existing(ctx, "team_id", &req.team_id).await?;
        let organization_id = req
            .organization_id
            .clone()
            .unwrap_or(team.organization_id.clone());
        if let Some(id) = organization_id {
            let organization = organizations::existing(ctx, "organization_id", &id).await?;
            organizations::check_team(
                &organization,
                models.as_ref().unwrap_or(&team.models),
                &fields::patched(&team.budget, &budget),
            )?;
        }
    }
    let patch = TeamPatch {
        budget,
        team_alias: req.team_alias,
        organization_id: req.organization_id,
        models,
        aliases,
        metadata: req.metadata.map(Option::unwrap_or_default),
        blocked: req.blocked,
        alert_webhook_url: req.alert_webhook_url,
    };
    ctx.touch(BudgetOwner::Team, &req.team_id).await;
    if let Some(list) = &req.members_with_roles {
        // First: a member who may not be left out refuses the whole update.
        members::set_list(ctx, &req.team_id, list, now).await?;
    }
    apply(ctx, &req.team_id, &patch, now).await
}

pub async fn set_blocked(
    ctx: Ctx<'_>,
    team_id: &str,
    blocked: bool,
    now: DateTime<Utc>,
) -> Result<Team, Error> {
    governed(ctx, team_id, "block or unblock this team").await?;
    let patch = TeamPatch {
        blocked: Some(blocked),
        ..TeamPatch::default()
    };
    apply(ctx, team_id, &patch, now).await
}

async fn apply(
    ctx: Ctx<'_>,
    team_id: &str,
    patch: &TeamPatch,
    now: DateTime<Utc>,
) -> Result<Team, Error> {
    ctx.touch(BudgetOwner::Team, team_id).await;
    let row = ctx
        .storage
        .update_team(team_id, patch, now.timestamp())
        .await?
        .ok_or_else(|| not_found(team_id))?;
    team_view(ctx, &row).await
}

/// Deletes the teams and their keys, all or none.
pub async fn delete(ctx: Ctx<'_>, team_ids: Vec<String>) -> Result<Vec<String>, Error> {
    if team_ids.is_empty() {
        return Err(Error::invalid(
            "team_ids",
            "team_ids must name at least one team",
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(team_ids.len());
    for id in team_ids {
        validate::team_id("team_ids", &id)?;
        if !ctx.actor.changes_all() {
            governed(ctx, &id, "delete this team").await?;
        }
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    for id in &unique {
        ctx.touch(BudgetOwner::Team, id).await;
    }
    match ctx.storage.delete_teams(&unique).await? {
        DeleteOutcome::Deleted => Ok(unique),
        DeleteOutcome::Missing(id) => Err(not_found(&id)),
    }
}
