//! What a live stream (`/team/events`) follows, and its figures as the API shows them.

use super::{timestamp, validate, Ctx, Error};
use crate::money::Nanos;
use crate::{
    gate::{
        admission::{LevelId, LevelKind},
        Figures,
    },
    live::{Holder, LiveTeams, Watch, MAX_WATCHED},
};
use app::types::{KeyFigures, LiveFigures, TeamFigures};
use std::{net::IpAddr, sync::Arc};

/// The levels one stream follows: `team_ids` and `keys` (tokens), each comma-separated, at
/// most [`MAX_WATCHED`] of each, at least one in all; duplicates dropped. Who may
/// follow which: [`check_followed`].
pub fn followed(team_ids: Option<&str>, keys: Option<&str>) -> Result<Vec<LevelId>, Error> {
    let mut levels: Vec<LevelId> = Vec::new();
    for (param, list, kind) in [
        ("team_ids", team_ids, LevelKind::Team),
        ("keys", keys, LevelKind::Key),
    ] {
        let Some(list) = list else { continue };
        let before = levels.len();
        for id in list.split(',').map(str::trim) {
            match kind {
                LevelKind::Team => validate::team_id(param, id)?,
                LevelKind::Key => validate::token(param, id)?,
                LevelKind::User
                | LevelKind::Member
                | LevelKind::Organization
                | LevelKind::Deployment => validate::user_id(param, id)?,
            }
            let level = LevelId::new(kind, id);
            if !levels.contains(&level) {
                levels.push(level);
            }
        }
        if levels.len() - before > MAX_WATCHED {
            return Err(Error::invalid(
                param,
                format!("{param} lists at most {MAX_WATCHED}"),
            ));
        }
    }
    if levels.is_empty() {
        return Err(Error::invalid(
            "team_ids",
            "name the teams (team_ids) or keys (keys) to follow".to_string(),
        ));
    }
    Ok(levels)
}

/// Refuses to follow what the actor may not see. To whoever does not read everything, a team
/// or key that does not exist is refused like one of another team when the stream opens (the
/// answer says nothing of what exists); one deleted while the stream is open sends nothing.
pub async fn check_followed(ctx: Ctx<'_>, levels: &[LevelId], opening: bool) -> Result<(), Error> {
    let actor = ctx.actor;
    if actor.reads_all() {
        return Ok(());
    }
    for level in levels {
        let allowed = match level.kind {
            LevelKind::Team => match ctx.storage.team(&level.id).await? {
                Some(team) => actor.sees_team(&team),
                None => !opening,
            },
            LevelKind::Key => match ctx.storage.key(&level.id).await? {
                Some(key) => match ctx.storage.team(&key.team_id).await? {
                    Some(team) => actor.sees_key(&key, &team),
                    None => !opening,
                },
                None => !opening,
            },
            _ => false,
        };
        actor.check(allowed, "follow this team or key")?;
    }
    Ok(())
}

/// Opens a stream following `levels` for the actor (calling from `ip`), once it may follow
/// them and unless it holds its share of streams already: a person a few, the admin key a few
/// more per client address.
pub async fn open(
    ctx: Ctx<'_>,
    hub: &Arc<LiveTeams>,
    ip: IpAddr,
    levels: Vec<LevelId>,
) -> Result<Watch, Error> {
    check_followed(ctx, &levels, true).await?;
    // A person's streams count together, through whichever session or key; the admin key's
    // per client address.
    let holder = match &ctx.actor.user_id {
        Some(user) => Holder::Person(user.clone()),
        None => Holder::Address(crate::throttle::counted_as(ip)),
    };
    hub.watch(levels, holder).map_err(|cap| {
        Error::TooMany(format!(
            "You have {} live streams open already, the most you may; close another page of \
             the console (or another /team/events stream) first.",
            cap.0
        ))
    })
}

/// The followed levels' figures, split into the teams' and the keys' as the API shows them.
pub fn views(changed: Vec<(LevelId, Figures)>) -> (Vec<TeamFigures>, Vec<KeyFigures>) {
    let mut teams = Vec::new();
    let mut keys = Vec::new();
    for (level, f) in changed {
        let figures = LiveFigures {
            spend: f.spend.usd(),
            max_budget: f.max_budget.map(Nanos::usd),
            budget_reset_at: f.reset_at.map(timestamp),
            blocked: f.blocked,
        };
        let id = level.id.to_string();
        match level.kind {
            LevelKind::Team => teams.push(TeamFigures {
                team_id: id,
                figures,
            }),
            LevelKind::Key => keys.push(KeyFigures { token: id, figures }),
            // Not followed by the console (yet).
            LevelKind::User
            | LevelKind::Member
            | LevelKind::Organization
            | LevelKind::Deployment => {}
        }
    }
    (teams, keys)
}
