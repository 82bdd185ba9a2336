//! Virtual keys: issued to a team's member, shown once, stored as a hash; a key's models stay
//! within its team's.

use super::{
    access::Actor, duration::Period, fields, members, secrets, teams, timestamp, users, validate,
    Ctx, Error,
};
use crate::{
    gate::admission::LevelKind,
    storage::{BudgetOwner, DeleteOutcome, KeyFilter, KeyPatch, KeyRow, NewSecret, StorageError},
};
use app::types::{GeneratedKey, KeyInfo, KeyList, KeyListQuery, KeyUpdate, NewKey, TeamMember};
use chrono::{DateTime, Utc};

/// The key as the API shows it (never its secret), with the live spend of the request path.
pub async fn key_view(ctx: Ctx<'_>, row: &KeyRow) -> KeyInfo {
    let live = ctx.gate.budget(LevelKind::Key, &row.key_id).await;
    KeyInfo {
        token: row.key_id.clone(),
        key_name: secrets::masked_key(&row.key_id, &row.key_hint),
        key_alias: row.key_alias.clone(),
        team_id: row.team_id.clone(),
        user_id: row.user_id.clone(),
        models: row.models.clone(),
        aliases: row.aliases.clone(),
        budget: fields::budget_view(&row.budget, live),
        metadata: row.metadata.clone(),
        blocked: row.blocked,
        expires: row.expires_at.map(timestamp),
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
    }
}

pub fn member_view(row: &KeyRow) -> TeamMember {
    TeamMember {
        user_id: row.user_id.clone(),
        key: Some(secrets::masked_key(&row.key_id, &row.key_hint)),
        token: Some(row.key_id.clone()),
        key_alias: row.key_alias.clone(),
        blocked: row.blocked,
        role: None,
    }
}

/// Finds the key that `reference` names: the secret key itself, its SHA-256 in hex (what
/// LiteLLM's callers hold as a key's token: it names a key, it never authenticates one), or its
/// public `token`. The reference is never echoed back, since it may be a secret.
pub async fn resolve(ctx: Ctx<'_>, param: &str, reference: &str) -> Result<KeyRow, Error> {
    let found = if secrets::is_virtual_key(reference) {
        ctx.storage
            .key_by_hash(&secrets::sha256_hex(reference))
            .await?
    } else if secrets::is_sha256_hex(reference) {
        ctx.storage
            .key_by_hash(&reference.to_ascii_lowercase())
            .await?
    } else if validate::token(param, reference).is_ok() {
        ctx.storage.key(reference).await?
    } else {
        return Err(Error::invalid(
            param,
            format!("{param} must be a virtual key (sk-...) or a key's token"),
        ));
    };
    found.ok_or_else(|| Error::NotFound("Key not found".to_string()))
}

fn expiry(duration: Option<&str>, now: DateTime<Utc>) -> Result<Option<i64>, Error> {
    duration
        .map(|text| Period::parse("duration", text).map(|p| p.after(now).timestamp()))
        .transpose()
}

/// Refuses a new key for a user who holds their quota of keys already.
async fn within_quota(ctx: Ctx<'_>, user_id: &str) -> Result<(), Error> {
    let quota = ctx.quotas.keys_per_user;
    let filter = KeyFilter {
        user_id: Some(user_id.to_string()),
        ..KeyFilter::default()
    };
    let (_, held) = ctx.storage.keys(&filter, 0, 0).await?;
    if held >= quota {
        return Err(Error::TooMany(format!(
            "This user holds {held} keys, the most one user may ({quota}); delete one first."
        )));
    }
    Ok(())
}

pub async fn generate(
    ctx: Ctx<'_>,
    req: NewKey,
    now: DateTime<Utc>,
) -> Result<GeneratedKey, Error> {
    let budget = fields::new_budget(&req.budget(), now)?;
    let team_id = req.team_id.clone().ok_or_else(|| {
        Error::invalid(
            "team_id",
            "team_id is required: every key belongs to a team",
        )
    })?;
    if let Some(user_id) = &req.user_id {
        validate::user_id("user_id", user_id)?;
    }
    let actor = ctx.actor;
    let what = "issue keys in this team (a member may issue keys for itself)";
    let team = teams::existing(ctx, "team_id", &team_id)
        .await
        .map_err(|err| actor.unseen(err, what))?;
    let mut req = req;
    if !actor.manages_team(&team) {
        // A member issues keys for itself, within the team's budget.
        if req.user_id.is_none() {
            req.user_id.clone_from(&actor.user_id);
        }
        actor.check(actor.may_issue_key(&team, req.user_id.as_deref()), what)?;
        if let (Some(asked), Some(team_max)) = (budget.max_budget, team.budget.max_budget) {
            if asked > team_max {
                return Err(Error::invalid(
                    "max_budget",
                    "max_budget may not exceed the team's max_budget",
                ));
            }
        }
    }
    if let Some(alias) = &req.key_alias {
        validate::label("key_alias", alias)?;
    }
    if let Some(user_id) = &req.user_id {
        // The key acts with its user's role: only for someone the actor may act for.
        actor.check(
            actor.reaches(ctx, user_id).await?,
            "issue a key for this user (their role or teams reach beyond yours)",
        )?;
    }
    let models = validate::models("models", req.models.unwrap_or_default())?;
    validate::models_within_team("models", &models, &team.team_id, &team.models)?;
    let aliases = validate::aliases(
        "aliases",
        req.aliases.unwrap_or_default(),
        &[("the key", &models), ("its team", &team.models)],
    )?;
    if let Some(user_id) = &req.user_id {
        within_quota(ctx, user_id).await?;
        users::ensure(ctx, user_id, now).await?;
        members::ensure(ctx, &team.team_id, user_id, now).await?;
    }
    let secret = secrets::new_virtual_key()?;
    let grant = actor.key_grant(req.user_id.as_deref(), None);
    let row = KeyRow {
        key_id: secret.key_id,
        key_hash: secret.key_hash,
        key_hint: secret.key_hint,
        team_id: team.team_id,
        user_id: req.user_id,
        key_alias: req.key_alias,
        models,
        aliases,
        budget,
        metadata: req.metadata.unwrap_or_default(),
        blocked: req.blocked.unwrap_or(false),
        expires_at: expiry(req.duration.as_deref(), now)?,
        previous_key: None,
        // The key acts with no more than who issued it may do.
        max_role: Some(grant.0),
        issued_by: grant.1,
        created_at: now.timestamp(),
        updated_at: now.timestamp(),
    };
    ctx.touch(BudgetOwner::Key, &row.key_id).await;
    match ctx.storage.insert_key(&row).await {
        Ok(()) => Ok(GeneratedKey {
            key: secret.key,
            token_id: row.key_hash.clone(),
            info: key_view(ctx, &row).await,
        }),
        // The team was deleted between the check and the insert.
        Err(StorageError::MissingReference) => {
            Err(Error::NotFound(format!("Team '{team_id}' not found")))
        }
        Err(err) => Err(err.into()),
    }
}

/// A new secret for a key: its id, budget, limits and spend stay. The old secret keeps working
/// for `grace_period` (LiteLLM's duration grammar; none: it stops at once), then gets 401.
pub async fn regenerate(
    ctx: Ctx<'_>,
    reference: &str,
    grace_period: Option<&str>,
    now: DateTime<Utc>,
) -> Result<GeneratedKey, Error> {
    let grace = grace_period
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| Period::parse("grace_period", text))
        .transpose()?;
    let (row, _) = scoped(ctx, "key", reference, ActFor, "rotate this key").await?;
    let secret = secrets::new_secret_for(row.key_id.clone())?;
    let patch = KeyPatch {
        secret: Some(NewSecret {
            key_hash: secret.key_hash.clone(),
            key_hint: secret.key_hint.clone(),
            previous_key: grace.map(|g| (row.key_hash.clone(), g.after(now).timestamp())),
        }),
        // Whoever rotates learns the secret: the key carries no more than they may do.
        authority: Some(
            ctx.actor
                .key_grant(row.user_id.as_deref(), row.max_role.as_deref()),
        ),
        ..KeyPatch::default()
    };
    Ok(GeneratedKey {
        info: apply(ctx, &row.key_id, &patch, now).await?,
        key: secret.key,
        token_id: secret.key_hash,
    })
}

/// What an actor wants to do with a key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    See,
    /// Block or delete it: less for its holder.
    Manage,
    /// Rotate, change or unblock it: also acting for its user ([`super::access::Actor::acts_for_key`]).
    ActFor,
}
use Want::{ActFor, Manage, See};

/// The key `reference` names and its team, when the actor may see (or manage) it.
async fn scoped(
    ctx: Ctx<'_>,
    param: &str,
    reference: &str,
    want: Want,
    what: &str,
) -> Result<(KeyRow, crate::storage::TeamRow), Error> {
    let row = resolve(ctx, param, reference)
        .await
        .map_err(|err| ctx.actor.unseen(err, what))?;
    let team = teams::existing(ctx, "team_id", &row.team_id).await?;
    let allowed = match want {
        See => ctx.actor.sees_key(&row, &team),
        Manage => ctx.actor.manages_key(&row, &team),
        ActFor => ctx.actor.manages_key(&row, &team) && ctx.actor.acts_for_key(ctx, &row).await?,
    };
    ctx.actor.check(allowed, what)?;
    Ok((row, team))
}

pub async fn info(ctx: Ctx<'_>, reference: &str) -> Result<KeyInfo, Error> {
    let (row, _) = scoped(ctx, "key", reference, See, "see this key").await?;
    Ok(key_view(ctx, &row).await)
}

pub async fn list(ctx: Ctx<'_>, query: KeyListQuery) -> Result<KeyList, Error> {
    if let Some(team_id) = &query.team_id {
        validate::team_id("team_id", team_id)?;
    }
    if let Some(user_id) = &query.user_id {
        validate::user_id("user_id", user_id)?;
    }
    if let Some(alias) = &query.key_alias {
        validate::label("key_alias", alias)?;
    }
    let key_hash = match query.key_hash {
        Some(hash) if secrets::is_sha256_hex(&hash) => Some(hash.to_ascii_lowercase()),
        Some(_) => {
            return Err(Error::invalid(
                "key_hash",
                "key_hash must be a key's SHA-256 in hex (token_id)",
            ))
        }
        None => None,
    };
    let (page, size, offset) = validate::page(query.page, query.size)?;
    // Who does not read everything lists a team it may see all keys of, or its own keys.
    let mut user_id = query.user_id;
    let actor = ctx.actor;
    if !actor.reads_all() {
        let whole_team = match &query.team_id {
            Some(team_id) => teams::allows(ctx, team_id, Actor::sees_team_keys).await?,
            None => false,
        };
        if !whole_team {
            if user_id.is_some() && user_id != actor.user_id {
                return Err(Error::Forbidden(
                    "Your role does not allow you to list another user's keys.".to_string(),
                ));
            }
            user_id.clone_from(&actor.user_id);
        }
    }
    let filter = KeyFilter {
        team_id: query.team_id,
        user_id,
        key_alias: query.key_alias,
        key_hash,
    };
    let (rows, total) = ctx.storage.keys(&filter, offset, size).await?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        keys.push(key_view(ctx, row).await);
    }
    Ok(KeyList {
        keys,
        total_count: total,
        current_page: page,
        total_pages: total.div_ceil(size),
    })
}

pub async fn update(ctx: Ctx<'_>, req: KeyUpdate, now: DateTime<Utc>) -> Result<KeyInfo, Error> {
    let (key, team) = scoped(ctx, "key", &req.key, ActFor, "change this key").await?;
    if let Some(Some(user_id)) = &req.user_id {
        validate::user_id("user_id", user_id)?;
    }
    if !ctx.actor.manages_team(&team) {
        // A key's own user may rename it and keep notes on it; its limits, models, status,
        // expiry and user are for who manages the team.
        let limits = req.budget();
        let changes_limits = req.user_id.is_some()
            || req.models.is_some()
            || req.aliases.is_some()
            || req.blocked.is_some()
            || req.duration.is_some()
            || limits != Default::default();
        ctx.actor.check(
            !changes_limits,
            "change this key's limits, models, status, expiry or user (its alias and metadata \
             only)",
        )?;
    }
    if let Some(Some(user_id)) = &req.user_id {
        ctx.actor.check(
            ctx.actor.reaches(ctx, user_id).await?,
            "give a key to this user (their role or teams reach beyond yours)",
        )?;
    }
    if let Some(Some(alias)) = &req.key_alias {
        validate::label("key_alias", alias)?;
    }
    let budget = fields::budget_patch(&req.budget(), now)?;
    let models = fields::models_update(req.models)?;
    let mut aliases = None;
    if models.is_some() || matches!(req.aliases, Some(Some(_))) {
        let team = teams::existing(ctx, "team_id", &key.team_id).await?;
        if let Some(models) = &models {
            validate::models_within_team("models", models, &team.team_id, &team.models)?;
        }
        let models = models.as_ref().unwrap_or(&key.models);
        if let Some(Some(new)) = req.aliases.clone() {
            aliases = Some(validate::aliases(
                "aliases",
                new,
                &[("the key", models), ("its team", &team.models)],
            )?);
        }
    }
    if let Some(None) = req.aliases {
        aliases = Some(Default::default());
    }
    if let Some(Some(user_id)) = &req.user_id {
        if key.user_id.as_deref() != Some(user_id.as_str()) {
            within_quota(ctx, user_id).await?;
        }
        users::ensure(ctx, user_id, now).await?;
        members::ensure(ctx, &key.team_id, user_id, now).await?;
    }
    // A key given to a user acts for them with no more than its giver may do.
    let authority = match &req.user_id {
        Some(Some(user_id)) => Some(ctx.actor.key_grant(Some(user_id), key.max_role.as_deref())),
        _ => None,
    };
    let patch = KeyPatch {
        budget,
        authority,
        user_id: req.user_id,
        key_alias: req.key_alias,
        models,
        aliases,
        metadata: req.metadata.map(Option::unwrap_or_default),
        blocked: req.blocked,
        expires_at: req
            .duration
            .map(|duration| expiry(duration.as_deref(), now))
            .transpose()?,
        secret: None,
    };
    apply(ctx, &key.key_id, &patch, now).await
}

pub async fn set_blocked(
    ctx: Ctx<'_>,
    reference: &str,
    blocked: bool,
    now: DateTime<Utc>,
) -> Result<KeyInfo, Error> {
    // Blocking takes from the key's holder; unblocking gives back, so it acts for its user.
    let want = if blocked { Manage } else { ActFor };
    let (key, team) = scoped(ctx, "key", reference, want, "block or unblock this key").await?;
    ctx.actor.check(
        ctx.actor.manages_team(&team),
        "block or unblock this key (who manages its team does)",
    )?;
    let patch = KeyPatch {
        blocked: Some(blocked),
        ..KeyPatch::default()
    };
    apply(ctx, &key.key_id, &patch, now).await
}

async fn apply(
    ctx: Ctx<'_>,
    key_id: &str,
    patch: &KeyPatch,
    now: DateTime<Utc>,
) -> Result<KeyInfo, Error> {
    ctx.touch(BudgetOwner::Key, key_id).await;
    let row = ctx
        .storage
        .update_key(key_id, patch, now.timestamp())
        .await?
        .ok_or_else(|| Error::NotFound("Key not found".to_string()))?;
    Ok(key_view(ctx, &row).await)
}

/// Deletes the keys `references` names and every key with one of `aliases`, all or none;
/// answers their tokens.
pub async fn delete(
    ctx: Ctx<'_>,
    references: Vec<String>,
    aliases: Vec<String>,
) -> Result<Vec<String>, Error> {
    if references.is_empty() && aliases.is_empty() {
        return Err(Error::invalid(
            "keys",
            "keys (or key_aliases) must name at least one key",
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(references.len());
    for reference in &references {
        let (key, _) = scoped(ctx, "keys", reference, Manage, "delete this key").await?;
        if !ids.contains(&key.key_id) {
            ids.push(key.key_id);
        }
    }
    for alias in &aliases {
        validate::label("key_aliases", alias)?;
        let filter = KeyFilter {
            key_alias: Some(alias.clone()),
            ..KeyFilter::default()
        };
        let (rows, _) = ctx.storage.keys(&filter, 0, i64::MAX as u64).await?;
        // An alias names the keys with it that the actor manages: others' keys of the same
        // alias are neither deleted nor told of.
        let mut named = 0;
        for row in rows {
            let team = teams::existing(ctx, "team_id", &row.team_id).await?;
            if !ctx.actor.manages_key(&row, &team) {
                continue;
            }
            named += 1;
            if !ids.contains(&row.key_id) {
                ids.push(row.key_id);
            }
        }
        if named == 0 {
            return Err(ctx.actor.unseen(
                Error::NotFound(format!("No key has key_alias '{alias}'")),
                "delete this key",
            ));
        }
    }
    for id in &ids {
        ctx.touch(BudgetOwner::Key, id).await;
    }
    match ctx.storage.delete_keys(&ids).await? {
        DeleteOutcome::Deleted => Ok(ids),
        DeleteOutcome::Missing(_) => Err(Error::NotFound("Key not found".to_string())),
    }
}
