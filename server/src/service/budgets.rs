//! Budget windows: when a team's or key's window ends, storage starts the next one (once for
//! the whole fleet: the first instance to ask wins) and the request path follows.

use super::{Ctx, Error};
use crate::{
    gate::{
        admission::{LevelId, LevelKind},
        Stored,
    },
    notices::Change,
    storage::{BudgetOwner, Storage, StorageError},
};

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

/// Reads a team, key, user or member again from storage into the request path (or drops
/// it, if gone).
pub async fn reload(ctx: Ctx<'_>, owner: BudgetOwner, id: &str) -> Result<(), Error> {
    let _in_order = ctx.gate.in_order().await;
    let gone = LevelId::new(LevelKind::of(owner), id);
    match owner {
        BudgetOwner::Team => match ctx.storage.team(id).await? {
            Some(row) => ctx.gate.put_level(&row, false).await,
            None => ctx.gate.remove_level(&gone).await,
        },
        BudgetOwner::User => match ctx.storage.user(id).await? {
            Some(row) => ctx.gate.put_level(&row, false).await,
            None => ctx.gate.remove_level(&gone).await,
        },
        BudgetOwner::Organization => match ctx.storage.organization(id).await? {
            Some(row) => ctx.gate.put_level(&row, false).await,
            None => ctx.gate.remove_level(&gone).await,
        },
        BudgetOwner::Member => match ctx.storage.member(id).await? {
            Some(row) => ctx.gate.put_level(&row, false).await,
            None => ctx.gate.remove_level(&gone).await,
        },
        BudgetOwner::Key => match ctx.storage.key(id).await? {
            Some(row) => ctx.gate.put_key(&row, false).await,
            None => ctx.gate.remove_level(&gone).await,
        },
    }
    Ok(())
}

/// Follows a change committed to the database, on the instance that made it and on every peer
/// told of it: the level is read again, and a key made may be one a caller was refused lately.
pub async fn follow(ctx: Ctx<'_>, change: &Change) -> Result<(), Error> {
    reload(ctx, change.owner, &change.id).await?;
    if change.owner == BudgetOwner::Key {
        ctx.gate.forget_unknown_keys();
    }
    Ok(())
}

/// Everything the request path holds, read from storage.
pub async fn stored(storage: &dyn Storage) -> Result<Stored, StorageError> {
    Ok(Stored {
        organizations: storage.organizations().await?,
        teams: storage.teams().await?,
        users: storage.all_users().await?,
        members: storage.members(None, None).await?,
        keys: storage.all_keys().await?,
    })
}

/// Reads every level again, with its spend (the shared counters keep theirs when they are
/// ahead), and drops those deleted meanwhile: after this instance missed change notices.
pub async fn reload_all(ctx: Ctx<'_>) -> Result<(), Error> {
    let _in_order = ctx.gate.in_order().await;
    let stored = stored(ctx.storage).await?;
    let ids = stored.ids();
    for level in ctx.gate.ids() {
        if !ids.contains(&level) {
            ctx.gate.remove_level(&level).await;
        }
    }
    ctx.gate.load(&stored).await;
    Ok(())
}
