//! Users (LiteLLM's `/user/*`): a role, and a budget, limits and models that hold over all of a
//! user's keys together. A key's `user_id` always names a user: `/key/generate` creates the
//! user it names when there is none (an `internal_user` without limits).

use super::{fields, keys, members, teams, timestamp, validate, Ctx, Error};
use crate::{
    gate::admission::LevelKind,
    storage::{BudgetOwner, DeleteOutcome, KeyFilter, StorageError, UserPatch, UserQuery, UserRow},
};
use app::types::{
    KeyInfo, NewKey, NewUser, User, UserCreated, UserInfo, UserList, UserListEntry, UserListQuery,
    UserUpdate, UserUpdated,
};
use chrono::{DateTime, Utc};

/// LiteLLM's roles a user may have.
pub const ROLES: [&str; 4] = [
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];
const DEFAULT_ROLE: &str = "internal_user";

fn role(value: &str) -> Result<String, Error> {
    if ROLES.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(Error::invalid(
            "user_role",
            format!("user_role must be one of {}", ROLES.join(", ")),
        ))
    }
}

pub fn email(value: &str) -> Result<(), Error> {
    validate::label("user_email", value)?;
    if value.contains('@') {
        Ok(())
    } else {
        Err(Error::invalid(
            "user_email",
            "user_email must be an e-mail address",
        ))
    }
}

fn not_found(user_id: &str) -> Error {
    Error::NotFound(format!("User {user_id} not found"))
}

/// The teams a user is a member of, oldest membership first.
pub async fn team_ids(ctx: Ctx<'_>, user_id: &str) -> Result<Vec<String>, Error> {
    let rows = ctx.storage.members(None, Some(user_id)).await?;
    Ok(rows.into_iter().map(|m| m.team_id).collect())
}

/// The user's teams and keys.
async fn teams_of(ctx: Ctx<'_>, user_id: &str) -> Result<(Vec<String>, Vec<KeyInfo>), Error> {
    let filter = KeyFilter {
        user_id: Some(user_id.to_string()),
        ..KeyFilter::default()
    };
    let (rows, _) = ctx.storage.keys(&filter, 0, i64::MAX as u64).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in &rows {
        views.push(keys::key_view(ctx, row).await);
    }
    Ok((team_ids(ctx, user_id).await?, views))
}

/// A user named in a request by `user_id` or `user_email` (at least one), each well formed;
/// `param` names the field that holds the reference.
pub fn check_reference(
    param: &str,
    user_id: Option<&str>,
    user_email: Option<&str>,
) -> Result<(), Error> {
    if user_id.is_none() && user_email.is_none() {
        return Err(Error::invalid(
            param,
            "each member needs a user_id or a user_email",
        ));
    }
    if let Some(user_id) = user_id {
        validate::user_id("user_id", user_id)?;
    }
    if let Some(address) = user_email {
        email(address)?;
    }
    Ok(())
}

/// The user a request names: by id (made when new, with the e-mail given), else by e-mail
/// (made under a new id when nobody has it). Checked by [`check_reference`] first.
pub async fn find_or_make(
    ctx: Ctx<'_>,
    user_id: Option<&str>,
    user_email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<UserRow, Error> {
    let found = match (user_id, user_email) {
        (Some(user_id), _) => ctx.storage.user(user_id).await?,
        (None, Some(address)) => by_email(ctx, address).await?,
        (None, None) => None,
    };
    if let Some(user) = found {
        return Ok(user);
    }
    let user_id = user_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    ensure_with_email(ctx, &user_id, user_email, now).await?;
    existing(ctx, &user_id).await
}

/// The user with this e-mail address (compared without case), if any.
pub async fn by_email(ctx: Ctx<'_>, address: &str) -> Result<Option<UserRow>, Error> {
    Ok(ctx
        .storage
        .users_with_email(address)
        .await?
        .into_iter()
        .next())
}

/// Refuses an address another user holds (compared without case): people sign in and are
/// matched by it, so nobody may take someone else's. Addresses two users already shared before
/// this rule keep working for them (sign-in by address refuses to pick one).
pub async fn email_free(ctx: Ctx<'_>, address: &str, user_id: &str) -> Result<(), Error> {
    let holders = ctx.storage.users_with_email(address).await?;
    if holders.iter().any(|other| other.user_id != user_id) {
        return Err(Error::invalid(
            "user_email",
            "another user has this e-mail address",
        ));
    }
    Ok(())
}

/// The one user with this e-mail address (compared without case): `None` when nobody has it,
/// or several do — signing in by address must not pick one of several people.
pub async fn only_one_with_email(ctx: Ctx<'_>, address: &str) -> Result<Option<UserRow>, Error> {
    let mut found = ctx.storage.users_with_email(address).await?.into_iter();
    Ok(match (found.next(), found.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    })
}

/// The user as the API shows it, with the live spend of the request path.
pub async fn user_view(ctx: Ctx<'_>, row: &UserRow, teams: Vec<String>) -> User {
    let live = ctx.gate.budget(LevelKind::User, &row.user_id).await;
    User {
        user_id: row.user_id.clone(),
        user_alias: row.user_alias.clone(),
        user_email: row.user_email.clone(),
        user_role: row.user_role.clone(),
        models: row.models.clone(),
        budget: fields::budget_view(&row.budget, live),
        metadata: row.metadata.clone(),
        teams,
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
    }
}

pub async fn existing(ctx: Ctx<'_>, user_id: &str) -> Result<UserRow, Error> {
    validate::user_id("user_id", user_id)?;
    ctx.storage
        .user(user_id)
        .await?
        .ok_or_else(|| not_found(user_id))
}

/// A user that has no limits: what a key's `user_id` creates when it names nobody yet.
pub async fn ensure(ctx: Ctx<'_>, user_id: &str, now: DateTime<Utc>) -> Result<(), Error> {
    ensure_with_email(ctx, user_id, None, now).await
}

/// [`ensure`], with the e-mail address a new user gets.
pub async fn ensure_with_email(
    ctx: Ctx<'_>,
    user_id: &str,
    user_email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if ctx.storage.user(user_id).await?.is_some() {
        return Ok(());
    }
    if let Some(address) = user_email {
        email_free(ctx, address, user_id).await?;
    }
    let row = UserRow {
        user_id: user_id.to_string(),
        user_alias: None,
        user_email: user_email.map(str::to_string),
        user_role: DEFAULT_ROLE.to_string(),
        models: Vec::new(),
        budget: fields::new_budget(&Default::default(), now)?,
        metadata: Default::default(),
        created_at: now.timestamp(),
        updated_at: now.timestamp(),
    };
    ctx.touch(BudgetOwner::User, user_id).await;
    match ctx.storage.insert_user(&row).await {
        // Made a moment ago by another request: it exists, as wanted.
        Ok(()) | Err(StorageError::AlreadyExists) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

pub async fn create(ctx: Ctx<'_>, req: NewUser, now: DateTime<Utc>) -> Result<UserCreated, Error> {
    let budget = fields::new_budget(&req.budget(), now)?;
    let user_id = match &req.user_id {
        Some(id) => {
            validate::user_id("user_id", id)?;
            id.clone()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    if let Some(alias) = &req.user_alias {
        validate::label("user_alias", alias)?;
    }
    if let Some(address) = &req.user_email {
        email(address)?;
    }
    let user_role = role(req.user_role.as_deref().unwrap_or(DEFAULT_ROLE))?;
    if let Some(address) = &req.user_email {
        email_free(ctx, address, &user_id).await?;
    }
    let models = validate::models("models", req.models.clone().unwrap_or_default())?;
    let mut team_ids = req.teams.clone().unwrap_or_default();
    if team_ids.is_empty() {
        team_ids.extend(req.team_id.clone());
    }
    let mut team_rows = Vec::with_capacity(team_ids.len());
    for team_id in &team_ids {
        if !team_rows
            .iter()
            .any(|t: &crate::storage::TeamRow| t.team_id == *team_id)
        {
            team_rows.push(teams::existing(ctx, "teams", team_id).await?);
        }
    }
    let team = team_rows.first().cloned();
    let auto_create_key = req.auto_create_key.unwrap_or(true);
    // The key's fields are checked before anything is made: bad input changes nothing.
    if let Some(alias) = &req.key_alias {
        validate::label("key_alias", alias)?;
    }
    if let Some(duration) = &req.duration {
        super::duration::Period::parse("duration", duration)?;
    }
    if auto_create_key && team.is_none() {
        return Err(Error::invalid(
            "auto_create_key",
            "a key belongs to a team: send teams: [\"<team_id>\"] to issue the user's key there, \
             or auto_create_key: false",
        ));
    }
    let row = UserRow {
        user_id,
        user_alias: req.user_alias.clone(),
        user_email: req.user_email.clone(),
        user_role,
        models,
        budget,
        metadata: req.metadata.clone().unwrap_or_default(),
        created_at: now.timestamp(),
        updated_at: now.timestamp(),
    };
    ctx.touch(BudgetOwner::User, &row.user_id).await;
    match ctx.storage.insert_user(&row).await {
        Ok(()) => {}
        Err(StorageError::AlreadyExists) => {
            return Err(Error::Conflict(format!(
                "User with id {} already exists; use /user/update",
                row.user_id
            )))
        }
        Err(err) => return Err(err.into()),
    }
    for team in &team_rows {
        if let Err(err) = members::ensure(ctx, &team.team_id, &row.user_id, now).await {
            // All or nothing: the user goes again (the team went meanwhile, say).
            let _ = delete(ctx, vec![row.user_id.clone()]).await;
            return Err(err);
        }
    }
    let key = match (auto_create_key, &team) {
        (true, Some(team)) => {
            let new = NewKey {
                team_id: Some(team.team_id.clone()),
                user_id: Some(row.user_id.clone()),
                key_alias: req.key_alias.clone(),
                duration: req.duration.clone(),
                ..NewKey::default()
            };
            match keys::generate(ctx, new, now).await {
                Ok(key) => Some(key),
                Err(err) => {
                    // All or nothing: the user goes again (the team went meanwhile, say).
                    let _ = delete(ctx, vec![row.user_id.clone()]).await;
                    return Err(err);
                }
            }
        }
        _ => None,
    };
    let teams = team_rows.into_iter().map(|t| t.team_id).collect();
    Ok(UserCreated {
        key: key.as_ref().map(|k| k.key.clone()),
        token: key.as_ref().map(|k| k.info.token.clone()),
        token_id: key.as_ref().map(|k| k.token_id.clone()),
        expires: key.as_ref().and_then(|k| k.info.expires.clone()),
        user: user_view(ctx, &row, teams).await,
    })
}

pub async fn info(ctx: Ctx<'_>, user_id: &str) -> Result<UserInfo, Error> {
    let actor = ctx.actor;
    actor.check(
        actor.reads_all() || actor.user_id.as_deref() == Some(user_id),
        "see another user",
    )?;
    let row = existing(ctx, user_id).await?;
    let (team_ids, keys) = teams_of(ctx, user_id).await?;
    let mut team_views = Vec::with_capacity(team_ids.len());
    for team_id in &team_ids {
        if let Some(team) = ctx.storage.team(team_id).await? {
            team_views.push(teams::team_view(ctx, &team).await?);
        }
    }
    Ok(UserInfo {
        user_id: row.user_id.clone(),
        user_info: user_view(ctx, &row, team_ids).await,
        keys,
        teams: team_views,
    })
}

const MAX_PAGE_SIZE: u64 = 100;

pub async fn list(ctx: Ctx<'_>, query: UserListQuery) -> Result<UserList, Error> {
    let page = query.page.unwrap_or(1);
    let page_size = query.page_size.unwrap_or(25);
    let (page, page_size, offset) = validate::page(Some(page), Some(page_size)).map_err(|_| {
        Error::invalid(
            "page_size",
            format!("page counts from 1; page_size is 1 to {MAX_PAGE_SIZE}"),
        )
    })?;
    if let Some(role_name) = &query.role {
        role(role_name)?;
    }
    let user_ids = match &query.user_ids {
        Some(text) => {
            let ids: Vec<String> = text
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .collect();
            for id in &ids {
                validate::user_id("user_ids", id)?;
            }
            Some(ids)
        }
        None => None,
    };
    let selection = UserQuery {
        role: query.role.clone(),
        user_ids,
        email: query.user_email.as_ref().map(|e| e.to_lowercase()),
    };
    let (rows, total) = ctx
        .storage
        .users_page(&selection, offset, page_size)
        .await?;
    let mut users = Vec::with_capacity(rows.len());
    for (row, key_count) in &rows {
        let teams = team_ids(ctx, &row.user_id).await?;
        users.push(UserListEntry {
            user: user_view(ctx, row, teams).await,
            key_count: *key_count,
        });
    }
    Ok(UserList {
        users,
        total,
        page,
        page_size,
        total_pages: total.div_ceil(page_size),
    })
}

pub async fn update(
    ctx: Ctx<'_>,
    req: UserUpdate,
    now: DateTime<Utc>,
) -> Result<UserUpdated, Error> {
    let user_id = req
        .user_id
        .clone()
        .ok_or_else(|| Error::invalid("user_id", "user_id names the user to change"))?;
    validate::user_id("user_id", &user_id)?;
    if let Some(Some(alias)) = &req.user_alias {
        validate::label("user_alias", alias)?;
    }
    if let Some(Some(address)) = &req.user_email {
        email(address)?;
        email_free(ctx, address, &user_id).await?;
    }
    let patch = UserPatch {
        budget: fields::budget_patch(&req.budget(), now)?,
        user_alias: req.user_alias.clone(),
        user_email: req.user_email.clone(),
        user_role: req.user_role.as_deref().map(role).transpose()?,
        models: fields::models_update(req.models.clone())?,
        metadata: req.metadata.clone().map(Option::unwrap_or_default),
    };
    ctx.touch(BudgetOwner::User, &user_id).await;
    let row = ctx
        .storage
        .update_user(&user_id, &patch, now.timestamp())
        .await?
        .ok_or_else(|| not_found(&user_id))?;
    let teams = team_ids(ctx, &user_id).await?;
    let user = user_view(ctx, &row, teams).await;
    Ok(UserUpdated {
        data: user.clone(),
        user,
    })
}

/// Deletes the users and their keys, all or none; answers how many users went (LiteLLM's).
pub async fn delete(ctx: Ctx<'_>, user_ids: Vec<String>) -> Result<u64, Error> {
    if user_ids.is_empty() {
        return Err(Error::invalid(
            "user_ids",
            "user_ids must name at least one user",
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(user_ids.len());
    for id in user_ids {
        validate::user_id("user_ids", &id)?;
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    for id in &unique {
        // The user's keys and memberships go from the request path with the user.
        ctx.touch(BudgetOwner::User, id).await;
    }
    match ctx.storage.delete_users(&unique).await? {
        DeleteOutcome::Deleted => Ok(unique.len() as u64),
        DeleteOutcome::Missing(id) => Err(Error::NotFound(format!(
            "User not found, passed user_id={id}"
        ))),
    }
}
