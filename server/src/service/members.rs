//! Team members (LiteLLM's `/team/member_*` and `members_with_roles`): a user in a team, with a
//! role there and a budget, limits and models over the user's keys in that team — a level of
//! the admission chain between the key and its team. A key's team and user always make a
//! member: `/key/generate` adds the member it implies (role `user`, no limits).

use super::{fields, teams, users, validate, Ctx, Error};
use crate::{
    gate::admission::LevelKind,
    storage::{member_id, BudgetOwner, MemberPatch, MemberRow, StorageError, TeamRow, UserRow},
};
use app::types::{
    MemberAdd, MemberDelete, MemberDeleted, MemberRole, MemberUpdate, MembersAdded, TeamMembership,
    User,
};
use chrono::{DateTime, Utc};

/// LiteLLM's roles in a team.
pub const ROLES: [&str; 2] = ["admin", "user"];

fn role(value: &str) -> Result<String, Error> {
    if ROLES.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(Error::invalid("role", "role must be admin or user"))
    }
}

/// The membership as the API shows it, with the live spend of the request path.
pub async fn membership_view(ctx: Ctx<'_>, row: &MemberRow) -> TeamMembership {
    let live = ctx.gate.budget(LevelKind::Member, &row.member_id()).await;
    let budget = fields::budget_view(&row.budget, live);
    TeamMembership {
        team_id: row.team_id.clone(),
        user_id: row.user_id.clone(),
        user_email: row.user_email.clone(),
        role: row.role.clone(),
        allowed_models: row.models.clone(),
        max_budget_in_team: budget.max_budget,
        spend: budget.spend,
        tpm_limit: budget.tpm_limit,
        rpm_limit: budget.rpm_limit,
        max_parallel_requests: budget.max_parallel_requests,
        budget_duration: budget.budget_duration.clone(),
        budget_reset_at: budget.budget_reset_at.clone(),
        litellm_budget_table: budget,
    }
}

pub fn role_view(row: &MemberRow) -> MemberRole {
    MemberRole {
        user_id: Some(row.user_id.clone()),
        user_email: row.user_email.clone(),
        role: row.role.clone(),
    }
}

fn new_row(team_id: &str, user: &UserRow, role: String, now: DateTime<Utc>) -> MemberRow {
    MemberRow {
        team_id: team_id.to_string(),
        user_id: user.user_id.clone(),
        role,
        models: Vec::new(),
        budget: Default::default(),
        user_email: user.user_email.clone(),
        created_at: now.timestamp(),
        updated_at: now.timestamp(),
    }
}

/// Makes the user a member of the team (role `user`, no limits) unless they are one: what a
/// key of theirs in the team implies.
pub async fn ensure(
    ctx: Ctx<'_>,
    team_id: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let id = member_id(team_id, user_id);
    if ctx.storage.member(&id).await?.is_some() {
        return Ok(());
    }
    let user = users::existing(ctx, user_id).await?;
    let row = new_row(team_id, &user, "user".to_string(), now);
    ctx.touch(BudgetOwner::Member, &id).await;
    match ctx.storage.insert_member(&row).await {
        // Made a moment ago by another request: it exists, as wanted.
        Ok(()) | Err(StorageError::AlreadyExists) => Ok(()),
        Err(StorageError::MissingReference) => {
            Err(Error::NotFound(format!("Team '{team_id}' not found")))
        }
        Err(err) => Err(err.into()),
    }
}

/// A member named in a request, checked: its role, and an id or e-mail that is well formed.
fn checked(member: &MemberRole, param: &str) -> Result<String, Error> {
    users::check_reference(
        param,
        member.user_id.as_deref(),
        member.user_email.as_deref(),
    )?;
    role(&member.role)
}

async fn user_for(ctx: Ctx<'_>, member: &MemberRole, now: DateTime<Utc>) -> Result<UserRow, Error> {
    users::find_or_make(
        ctx,
        member.user_id.as_deref(),
        member.user_email.as_deref(),
        now,
    )
    .await
}

/// Whether `member` names this membership (by user id, else by the user's e-mail).
fn names(member: &MemberRole, row: &MemberRow) -> bool {
    match (&member.user_id, &member.user_email) {
        (Some(user_id), _) => *user_id == row.user_id,
        (None, Some(address)) => row
            .user_email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(address)),
        (None, None) => false,
    }
}

/// Adds members to a team, each with the budget, limits and models given; users named by
/// e-mail or id that do not exist are made. Refused, changing nothing, when every member named
/// is in the team already.
pub async fn add(ctx: Ctx<'_>, req: MemberAdd, now: DateTime<Utc>) -> Result<MembersAdded, Error> {
    let team = teams::managed(ctx, &req.team_id, "manage this team's members").await?;
    let budget_row = fields::new_budget(&req.budget(), now)?;
    let models = match req.allowed_models {
        Some(models) => {
            let models = validate::models("allowed_models", models)?;
            validate::models_within_team("allowed_models", &models, &team.team_id, &team.models)?;
            models
        }
        None => Vec::new(),
    };
    let wanted = req.member.into_vec();
    if wanted.is_empty() {
        return Err(Error::invalid("member", "member names at least one member"));
    }
    let mut roles = Vec::with_capacity(wanted.len());
    for member in &wanted {
        roles.push(checked(member, "member")?);
    }
    let existing = ctx.storage.members(Some(&team.team_id), None).await?;
    let new: Vec<(&MemberRole, String)> = wanted
        .iter()
        .zip(roles)
        .filter(|(member, _)| !existing.iter().any(|row| names(member, row)))
        .collect();
    if new.is_empty() {
        let listed: Vec<String> = wanted
            .iter()
            .map(|m| {
                m.user_id
                    .clone()
                    .or(m.user_email.clone())
                    .unwrap_or_default()
            })
            .collect();
        return Err(Error::Conflict(format!(
            "User already in team: {}; change a member with /team/member_update",
            listed.join(", ")
        )));
    }
    let mut updated_users = Vec::new();
    let mut memberships = Vec::new();
    for (member, role) in new {
        let user = user_for(ctx, member, now).await?;
        let mut row = new_row(&team.team_id, &user, role, now);
        row.models = models.clone();
        row.budget = budget_row.clone();
        ctx.touch(BudgetOwner::Member, &row.member_id()).await;
        match ctx.storage.insert_member(&row).await {
            Ok(()) => {}
            // Named twice in the list, or added a moment ago: a member already.
            Err(StorageError::AlreadyExists) => continue,
            Err(StorageError::MissingReference) => {
                return Err(Error::NotFound(format!(
                    "Team '{}' not found",
                    team.team_id
                )))
            }
            Err(err) => return Err(err.into()),
        }
        updated_users.push(user_view(ctx, &user).await?);
        memberships.push(membership_view(ctx, &row).await);
    }
    Ok(MembersAdded {
        team: teams::team_view(ctx, &team).await?,
        updated_users,
        updated_team_memberships: memberships,
    })
}

async fn user_view(ctx: Ctx<'_>, user: &UserRow) -> Result<User, Error> {
    let teams = users::team_ids(ctx, &user.user_id).await?;
    Ok(users::user_view(ctx, user, teams).await)
}

/// The membership a request names by `user_id` or `user_email`.
async fn find(
    ctx: Ctx<'_>,
    team: &TeamRow,
    user_id: Option<&String>,
    user_email: Option<&String>,
) -> Result<MemberRow, Error> {
    let named = MemberRole {
        user_id: user_id.cloned(),
        user_email: user_email.cloned(),
        role: "user".to_string(),
    };
    checked(&named, "user_id")?;
    let found = match user_id {
        Some(user_id) => {
            ctx.storage
                .member(&member_id(&team.team_id, user_id))
                .await?
        }
        None => ctx
            .storage
            .members(Some(&team.team_id), None)
            .await?
            .into_iter()
            .find(|row| names(&named, row)),
    };
    found.ok_or_else(|| {
        let who = user_id.or(user_email).cloned().unwrap_or_default();
        Error::NotFound(format!(
            "User {who} is not a member of team '{}'",
            team.team_id
        ))
    })
}

/// Changes a member's role, budget, limits or models in the team.
pub async fn update(
    ctx: Ctx<'_>,
    req: MemberUpdate,
    now: DateTime<Utc>,
) -> Result<TeamMembership, Error> {
    let team = teams::managed(ctx, &req.team_id, "manage this team's members").await?;
    let member = find(ctx, &team, req.user_id.as_ref(), req.user_email.as_ref()).await?;
    let models = match req.allowed_models.clone() {
        None => None,
        Some(models) => {
            let models = validate::models("allowed_models", models.unwrap_or_default())?;
            validate::models_within_team("allowed_models", &models, &team.team_id, &team.models)?;
            Some(models)
        }
    };
    let patch = MemberPatch {
        role: req.role.as_deref().map(role).transpose()?,
        models,
        budget: fields::budget_patch(&req.budget(), now)?,
    };
    ctx.touch(BudgetOwner::Member, &member.member_id()).await;
    let row = ctx
        .storage
        .update_member(&member.member_id(), &patch, now.timestamp())
        .await?
        .ok_or_else(|| Error::NotFound(format!("User {} is not a member", member.user_id)))?;
    Ok(membership_view(ctx, &row).await)
}

/// Removes a member from the team, with the user's keys in the team (LiteLLM's): they were the
/// member's, and a key always belongs to a member. The user stays.
pub async fn delete(ctx: Ctx<'_>, req: MemberDelete) -> Result<MemberDeleted, Error> {
    let team = teams::managed(ctx, &req.team_id, "manage this team's members").await?;
    let member = find(ctx, &team, req.user_id.as_ref(), req.user_email.as_ref()).await?;
    let id = member.member_id();
    ctx.touch(BudgetOwner::Member, &id).await;
    let held = crate::storage::KeyFilter {
        team_id: Some(team.team_id.clone()),
        user_id: Some(member.user_id.clone()),
        ..Default::default()
    };
    for key in ctx.storage.keys(&held, 0, i64::MAX as u64).await?.0 {
        ctx.touch(BudgetOwner::Key, &key.key_id).await;
    }
    // The member's keys go with the member.
    let keys = ctx
        .storage
        .delete_member(&id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("User {} is not a member", member.user_id)))?;
    Ok(MemberDeleted {
        team: teams::team_view(ctx, &team).await?,
        deleted_keys: keys,
    })
}

/// Checks `members_with_roles` as `/team/new` and `/team/update` take it; answers each
/// member's role.
pub fn check_list(list: &[MemberRole]) -> Result<Vec<String>, Error> {
    list.iter()
        .map(|member| checked(member, "members_with_roles"))
        .collect()
}

/// Makes the team's members those of `list` (checked by [`check_list`]): adds those not
/// there, sets roles, and removes those left out — unless one of them still holds keys in
/// the team, which is refused before anything changes.
pub async fn set_list(
    ctx: Ctx<'_>,
    team_id: &str,
    list: &[MemberRole],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let roles = check_list(list)?;
    let existing = ctx.storage.members(Some(team_id), None).await?;
    let left_out: Vec<&MemberRow> = existing
        .iter()
        .filter(|row| !list.iter().any(|member| names(member, row)))
        .collect();
    for row in &left_out {
        let filter = crate::storage::KeyFilter {
            team_id: Some(team_id.to_string()),
            user_id: Some(row.user_id.clone()),
            ..Default::default()
        };
        let (_, count) = ctx.storage.keys(&filter, 0, 1).await?;
        if count > 0 {
            return Err(Error::invalid(
                "members_with_roles",
                format!(
                    "{} holds keys in team '{team_id}': leaving them out of members_with_roles \
                     would orphan the keys; remove the member with /team/member_delete (their \
                     keys go too), or keep them in the list",
                    row.user_id
                ),
            ));
        }
    }
    for row in left_out {
        let id = row.member_id();
        ctx.touch(BudgetOwner::Member, &id).await;
        ctx.storage.delete_member(&id).await?;
    }
    for (member, role) in list.iter().zip(roles) {
        match existing.iter().find(|row| names(member, row)) {
            Some(row) if row.role == role => {}
            Some(row) => {
                let patch = MemberPatch {
                    role: Some(role),
                    ..MemberPatch::default()
                };
                ctx.touch(BudgetOwner::Member, &row.member_id()).await;
                ctx.storage
                    .update_member(&row.member_id(), &patch, now.timestamp())
                    .await?;
            }
            None => {
                let user = user_for(ctx, member, now).await?;
                let row = new_row(team_id, &user, role, now);
                ctx.touch(BudgetOwner::Member, &row.member_id()).await;
                match ctx.storage.insert_member(&row).await {
                    Ok(()) | Err(StorageError::AlreadyExists) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
    }
    Ok(())
}
