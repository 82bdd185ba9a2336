//! Organizations (LiteLLM's `/organization/*`): a budget, limits and models over all of their
//! teams. Unlike LiteLLM, which reads an organization's budget but never enforces it, the
//! organization is a level of the admission chain: every request of every key of its teams
//! passes it, with a reservation. A team's own models, budget and limits must lie within its
//! organization's, checked when the team is put in it or changed.

use super::{fields, teams, timestamp, users, validate, Ctx, Error};
use crate::{
    gate::admission::LevelKind,
    storage::{
        BudgetOwner, BudgetRow, DeleteOutcome, OrgMemberRow, OrganizationPatch, OrganizationRow,
        StorageError,
    },
};
use app::types::{
    NewOrganization, OrgMemberAdd, OrgMembersAdded, OrgMembership, Organization, OrganizationUpdate,
};
use chrono::{DateTime, Utc};

/// LiteLLM's roles in an organization.
pub const ROLES: [&str; 3] = ["org_admin", "internal_user", "internal_user_viewer"];

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Organization '{id}' not found"))
}

/// Reads an organization that must exist; `param` names the field that held its id.
pub async fn existing(ctx: Ctx<'_>, param: &str, id: &str) -> Result<OrganizationRow, Error> {
    validate::team_id(param, id)?;
    ctx.storage
        .organization(id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn membership_view(row: &OrgMemberRow) -> OrgMembership {
    OrgMembership {
        organization_id: row.organization_id.clone(),
        user_id: row.user_id.clone(),
        user_email: row.user_email.clone(),
        user_role: row.user_role.clone(),
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
    }
}

/// The organization as the API shows it: live spend, its members and its teams.
pub async fn organization_view(ctx: Ctx<'_>, row: &OrganizationRow) -> Result<Organization, Error> {
    let live = ctx
        .gate
        .budget(LevelKind::Organization, &row.organization_id)
        .await;
    let budget = fields::budget_view(&row.budget, live);
    let members = ctx
        .storage
        .org_members(Some(&row.organization_id), None)
        .await?;
    let mut team_views = Vec::new();
    for team in ctx.storage.teams().await? {
        if team.organization_id.as_deref() == Some(row.organization_id.as_str()) {
            team_views.push(teams::team_view(ctx, &team).await?);
        }
    }
    Ok(Organization {
        organization_id: row.organization_id.clone(),
        organization_alias: row.organization_alias.clone(),
        models: row.models.clone(),
        litellm_budget_table: budget.clone(),
        budget,
        metadata: row.metadata.clone(),
        members: members.iter().map(membership_view).collect(),
        teams: team_views,
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
    })
}

/// A team's models, budget and limits must lie within its organization's: `param`s name the
/// team's fields.
pub fn check_team(
    organization: &OrganizationRow,
    team_models: &[String],
    team_budget: &BudgetRow,
) -> Result<(), Error> {
    let id = &organization.organization_id;
    validate::models_within(
        "models",
        team_models,
        "organization",
        id,
        &organization.models,
    )?;
    let org = &organization.budget;
    for (param, team, bound) in [
        (
            "max_budget",
            team_budget.max_budget.map(|max| max.0),
            org.max_budget.map(|max| max.0),
        ),
        ("tpm_limit", team_budget.tpm_limit, org.tpm_limit),
        ("rpm_limit", team_budget.rpm_limit, org.rpm_limit),
        (
            "max_parallel_requests",
            team_budget.max_parallel_requests,
            org.max_parallel_requests,
        ),
    ] {
        if let (Some(team), Some(bound)) = (team, bound) {
            if team > bound {
                let shown = |v: i64| {
                    if param == "max_budget" {
                        format!("${}", crate::money::Nanos(v).usd())
                    } else {
                        v.to_string()
                    }
                };
                return Err(Error::invalid(
                    param,
                    format!(
                        "{param} {} is above organization '{id}''s {}: a team's budget and \
                         limits lie within its organization's",
                        shown(team),
                        shown(bound)
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub async fn create(
    ctx: Ctx<'_>,
    req: NewOrganization,
    now: DateTime<Utc>,
) -> Result<Organization, Error> {
    let budget = fields::new_budget(&req.budget(), now)?;
    let organization_id = match req.organization_id {
        Some(id) => {
            validate::team_id("organization_id", &id)?;
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    if let Some(alias) = &req.organization_alias {
        validate::label("organization_alias", alias)?;
    }
    let row = OrganizationRow {
        organization_id,
        organization_alias: req.organization_alias,
        models: validate::models("models", req.models.unwrap_or_default())?,
        budget,
        metadata: req.metadata.unwrap_or_default(),
        created_at: now.timestamp(),
        updated_at: now.timestamp(),
    };
    ctx.touch(BudgetOwner::Organization, &row.organization_id)
        .await;
    match ctx.storage.insert_organization(&row).await {
        Ok(()) => organization_view(ctx, &row).await,
        Err(StorageError::AlreadyExists) => Err(Error::Conflict(format!(
            "Organization '{}' already exists; choose another organization_id or use \
             /organization/update",
            row.organization_id
        ))),
        Err(err) => Err(err.into()),
    }
}

pub async fn info(ctx: Ctx<'_>, id: &str) -> Result<Organization, Error> {
    let what = "see this organization";
    let row = existing(ctx, "organization_id", id)
        .await
        .map_err(|err| ctx.actor.unseen(err, what))?;
    ctx.actor
        .check(ctx.actor.sees_org(&row.organization_id), what)?;
    organization_view(ctx, &row).await
}

/// Every organization, oldest first (LiteLLM's bare list).
pub async fn list(ctx: Ctx<'_>) -> Result<Vec<Organization>, Error> {
    let rows = ctx.storage.organizations().await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows
        .iter()
        .filter(|row| ctx.actor.sees_org(&row.organization_id))
    {
        views.push(organization_view(ctx, row).await?);
    }
    Ok(views)
}

/// Applies the fields present; changing `budget_duration` moves the next reset, not spend.
pub async fn update(
    ctx: Ctx<'_>,
    req: OrganizationUpdate,
    now: DateTime<Utc>,
) -> Result<Organization, Error> {
    validate::team_id("organization_id", &req.organization_id)?;
    if let Some(Some(alias)) = &req.organization_alias {
        validate::label("organization_alias", alias)?;
    }
    let patch = OrganizationPatch {
        budget: fields::budget_patch(&req.budget(), now)?,
        organization_alias: req.organization_alias.clone(),
        models: fields::models_update(req.models.clone())?,
        metadata: req.metadata.clone().map(Option::unwrap_or_default),
    };
    ctx.touch(BudgetOwner::Organization, &req.organization_id)
        .await;
    let row = ctx
        .storage
        .update_organization(&req.organization_id, &patch, now.timestamp())
        .await?
        .ok_or_else(|| not_found(&req.organization_id))?;
    organization_view(ctx, &row).await
}

/// Deletes the organizations with their teams and those teams' keys (LiteLLM's), all or none;
/// answers them as they were.
pub async fn delete(ctx: Ctx<'_>, ids: Vec<String>) -> Result<Vec<Organization>, Error> {
    if ids.is_empty() {
        return Err(Error::invalid(
            "organization_ids",
            "organization_ids must name at least one organization",
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        validate::team_id("organization_ids", &id)?;
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    let mut views = Vec::with_capacity(unique.len());
    for id in &unique {
        match ctx.storage.organization(id).await? {
            Some(row) => views.push(organization_view(ctx, &row).await?),
            None => return Err(not_found(id)),
        }
    }
    for view in &views {
        for team in &view.teams {
            ctx.touch(BudgetOwner::Team, &team.team_id).await;
        }
        ctx.touch(BudgetOwner::Organization, &view.organization_id)
            .await;
    }
    match ctx.storage.delete_organizations(&unique).await? {
        DeleteOutcome::Deleted => Ok(views),
        DeleteOutcome::Missing(id) => Err(not_found(&id)),
    }
}

/// Adds users to the organization with a role there; users named by an id or e-mail nobody
/// has are made (`internal_user`). Members already there are skipped; refused when all are.
pub async fn member_add(
    ctx: Ctx<'_>,
    req: OrgMemberAdd,
    now: DateTime<Utc>,
) -> Result<OrgMembersAdded, Error> {
    let what = "add members to this organization";
    let organization = existing(ctx, "organization_id", &req.organization_id)
        .await
        .map_err(|err| ctx.actor.unseen(err, what))?;
    ctx.actor
        .check(ctx.actor.manages_org(&organization.organization_id), what)?;
    let wanted = req.member.into_vec();
    if wanted.is_empty() {
        return Err(Error::invalid("member", "member names at least one member"));
    }
    for member in &wanted {
        if !ROLES.contains(&member.role.as_str()) {
            return Err(Error::invalid(
                "role",
                format!("role must be one of {}", ROLES.join(", ")),
            ));
        }
        users::check_reference(
            "member",
            member.user_id.as_deref(),
            member.user_email.as_deref(),
        )?;
    }
    let existing_members = ctx
        .storage
        .org_members(Some(&organization.organization_id), None)
        .await?;
    let is_member = |user_id: Option<&String>, email: Option<&String>| {
        existing_members.iter().any(|m| match (user_id, email) {
            (Some(id), _) => *id == m.user_id,
            (None, Some(e)) => m
                .user_email
                .as_deref()
                .is_some_and(|have| have.eq_ignore_ascii_case(e)),
            (None, None) => false,
        })
    };
    let new: Vec<_> = wanted
        .iter()
        .filter(|m| !is_member(m.user_id.as_ref(), m.user_email.as_ref()))
        .collect();
    if new.is_empty() {
        return Err(Error::Conflict(
            "Every user named is in the organization already".to_string(),
        ));
    }
    let mut updated_users = Vec::new();
    let mut memberships = Vec::new();
    for member in new {
        let user = users::find_or_make(
            ctx,
            member.user_id.as_deref(),
            member.user_email.as_deref(),
            now,
        )
        .await?;
        let row = OrgMemberRow {
            organization_id: organization.organization_id.clone(),
            user_id: user.user_id.clone(),
            user_role: member.role.clone(),
            user_email: user.user_email.clone(),
            created_at: now.timestamp(),
            updated_at: now.timestamp(),
        };
        match ctx.storage.insert_org_member(&row).await {
            Ok(()) => {}
            Err(StorageError::AlreadyExists) => continue,
            Err(StorageError::MissingReference) => {
                return Err(not_found(&organization.organization_id))
            }
            Err(err) => return Err(err.into()),
        }
        let teams = users::team_ids(ctx, &user.user_id).await?;
        updated_users.push(users::user_view(ctx, &user, teams).await);
        memberships.push(membership_view(&row));
    }
    Ok(OrgMembersAdded {
        organization_id: organization.organization_id,
        updated_users,
        updated_organization_memberships: memberships,
    })
}
