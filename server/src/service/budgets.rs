//! Budget windows: when a team's or key's window ends, storage starts the next one (once for
//! the whole fleet: the first instance to ask wins) and the request path follows.

use super::{Ctx, Error};
use crate::storage::BudgetOwner;
use std::collections::HashSet;

/// Starts the next window of every budget whose window has ended; answers how many this call
/// reset. A budget another instance reset first is read again instead, so it is never reset
/// twice and spend of the new window is never erased.
pub async fn reset_due(ctx: Ctx<'_>) -> Result<usize, Error> {
    let mut reset = 0;
    for due in ctx.gate.due_resets() {
        match ctx
            .storage
            .reset_budget(due.owner, &due.id, due.due_at, due.next)
            .await?
        {
            Some(window) => {
                ctx.gate.apply_reset(&due, window).await;
                reset += 1;
            }
            None => reload(ctx, due.owner, &due.id).await?,
        }
    }
    Ok(reset)
}

/// Reads a team, key or user again from storage into the request path (or drops it, if gone).
pub async fn reload(ctx: Ctx<'_>, owner: BudgetOwner, id: &str) -> Result<(), Error> {
    match owner {
        BudgetOwner::Team => match ctx.storage.team(id).await? {
            Some(row) => ctx.gate.put_team(&row, false).await,
            None => ctx.gate.remove_team(id).await,
        },
        BudgetOwner::Key => match ctx.storage.key(id).await? {
            Some(row) => ctx.gate.put_key(&row, false).await,
            None => ctx.gate.remove_key(id).await,
        },
        BudgetOwner::User => match ctx.storage.user(id).await? {
            Some(row) => ctx.gate.put_user(&row, false).await,
            None => ctx.gate.remove_user(id).await,
        },
    }
    Ok(())
}

/// Reads every team, user and key again, with its spend (the shared counters keep theirs when they
/// are ahead), and drops those deleted meanwhile: after this instance missed change notices.
pub async fn reload_all(ctx: Ctx<'_>) -> Result<(), Error> {
    let teams = ctx.storage.teams().await?;
    let users = ctx.storage.all_users().await?;
    let keys = ctx.storage.all_keys().await?;
    let (held_teams, held_users, held_keys) = ctx.gate.ids();
    let stored_users: HashSet<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
    for id in held_users {
        if !stored_users.contains(id.as_str()) {
            ctx.gate.remove_user(&id).await;
        }
    }
    let stored_keys: HashSet<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
    let stored_teams: HashSet<&str> = teams.iter().map(|t| t.team_id.as_str()).collect();
    for id in held_keys {
        if !stored_keys.contains(id.as_str()) {
            ctx.gate.remove_key(&id).await;
        }
    }
    for id in held_teams {
        if !stored_teams.contains(id.as_str()) {
            ctx.gate.remove_team(&id).await;
        }
    }
    ctx.gate.load(&teams, &users, &keys).await;
    Ok(())
}
