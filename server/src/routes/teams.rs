//! `/team/*`: the team API of the spec.

use crate::{
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    routes::audit::Unit,
    service::access::Actor,
    service::{live, members, teams},
    state::AppState,
};
use app::types::{
    MemberAdd, MemberDelete, MemberDeleted, MemberUpdate, MembersAdded, NewTeam, Team, TeamDelete,
    TeamEventsQuery, TeamFigures, TeamInfo, TeamInfoQuery, TeamList, TeamListQuery, TeamMembership,
    TeamRef, TeamUpdate, TeamUpdated, TeamsDeleted,
};
use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    Extension, Json,
};
use futures_util::{Stream, StreamExt};
use std::convert::Infallible;
use utoipa_axum::{router::OpenApiRouter, routes};

type Db = State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(info))
        .routes(routes!(events))
        .routes(routes!(update))
        .routes(routes!(delete))
        .routes(routes!(block))
        .routes(routes!(unblock))
        .routes(routes!(member_add))
        .routes(routes!(member_update))
        .routes(routes!(member_delete))
}

/// Adds one member or a list (`member`), each with the budget, limits and models given;
/// users that do not exist are made (`internal_user`).
#[utoipa::path(post, path = "/team/member_add", tag = "teams", request_body = MemberAdd,
    responses((status = 200, description = "The team and the members added", body = MembersAdded)))]
#[tracing::instrument(name = "teams.member_add", level = "debug", skip_all)]
async fn member_add(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<MemberAdd>,
) -> Result<Json<MembersAdded>, ApiError> {
    members::add(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Changes a member's role, budget in the team (`max_budget_in_team`), limits or models.
#[utoipa::path(post, path = "/team/member_update", tag = "teams", request_body = MemberUpdate,
    responses((status = 200, description = "The membership as changed", body = TeamMembership)))]
#[tracing::instrument(name = "teams.member_update", level = "debug", skip_all)]
async fn member_update(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<MemberUpdate>,
) -> Result<Json<TeamMembership>, ApiError> {
    members::update(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Removes a member from the team, with the member's keys in the team.
#[utoipa::path(post, path = "/team/member_delete", tag = "teams", request_body = MemberDelete,
    responses((status = 200, description = "The team, and the keys deleted", body = MemberDeleted)))]
#[tracing::instrument(name = "teams.member_delete", level = "debug", skip_all)]
async fn member_delete(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<MemberDelete>,
) -> Result<Json<MemberDeleted>, ApiError> {
    members::delete(db.ctx_in(&actor, &unit.0), req)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Creates a team.
#[utoipa::path(post, path = "/team/new", tag = "teams", request_body = NewTeam,
    responses((status = 200, description = "The new team", body = Team)))]
#[tracing::instrument(name = "teams.create", level = "debug", skip_all)]
async fn create(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<NewTeam>,
) -> Result<Json<Team>, ApiError> {
    teams::create(db.ctx_in(&actor, &unit.0), req, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Lists teams: all of them, or a page (`page`, `size`, `sort`, `search`).
#[utoipa::path(get, path = "/team/list", tag = "teams", params(TeamListQuery),
    responses((status = 200, description = "The teams", body = TeamList)))]
#[tracing::instrument(name = "teams.list", level = "debug", skip_all)]
async fn list(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    ApiQuery(query): ApiQuery<TeamListQuery>,
) -> Result<Json<TeamList>, ApiError> {
    teams::list(db.ctx_as(&actor), query)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// A team with its keys and members.
#[utoipa::path(get, path = "/team/info", tag = "teams", params(TeamInfoQuery),
    responses((status = 200, description = "The team", body = TeamInfo)))]
#[tracing::instrument(name = "teams.info", level = "debug", skip_all)]
async fn info(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<TeamInfoQuery>,
) -> Result<Json<TeamInfo>, ApiError> {
    teams::info(db.ctx_as(&actor), &q.team_id)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Server-sent events: a `budgets` event with the followed teams' figures and a `keys` event
/// with the followed keys', then one of them whenever some change; a comment every heartbeat
/// keeps an idle stream open.
#[utoipa::path(get, path = "/team/events", tag = "teams", params(TeamEventsQuery),
    responses((status = 200, description = "A stream of `budgets` events, each a JSON list of \
        the followed teams whose figures changed (the first: all of them), and `keys` events, \
        a JSON list of key figures the same way",
        content((Vec<TeamFigures> = "text/event-stream")))))]
#[tracing::instrument(name = "teams.events", level = "debug", skip_all)]
async fn events(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    request: axum::http::request::Parts,
    ApiQuery(query): ApiQuery<TeamEventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let followed = live::followed(query.team_ids.as_deref(), query.keys.as_deref())?;
    let watch = live::open(
        db.ctx_as(&actor),
        &db.live,
        crate::auth::client_ip(&request, &db),
        followed.clone(),
    )
    .await?;
    let heartbeat = db.live.heartbeat;
    let first = (watch, true, db, request, followed);
    let changes = futures_util::stream::unfold(
        first,
        |(mut watch, first, db, request, followed)| async move {
            let changed = watch.next().await?;
            // Who is watching is read again before each event: a role change, a removal from
            // the team or a deleted user ends the stream.
            let actor = crate::auth::identify(&request, &db).await.ok()?;
            live::check_followed(db.ctx_as(&actor), &followed, false)
                .await
                .ok()?;
            let (teams, keys) = live::views(changed);
            // The first answer has both events, even empty: the page knows where it stands.
            let mut events = Vec::with_capacity(2);
            if first || !teams.is_empty() {
                events.push(Event::default().event("budgets").json_data(teams));
            }
            if first || !keys.is_empty() {
                events.push(Event::default().event("keys").json_data(keys));
            }
            Some((events, (watch, false, db, request, followed)))
        },
    );
    let events = changes.flat_map(|events| {
        futures_util::stream::iter(events.into_iter().filter_map(|event| event.ok().map(Ok)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat)))
}

/// Changes the fields present; `null` clears one.
#[utoipa::path(post, path = "/team/update", tag = "teams", request_body = TeamUpdate,
    responses((status = 200, description = "The team as changed", body = TeamUpdated)))]
#[tracing::instrument(name = "teams.update", level = "debug", skip_all)]
async fn update(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<TeamUpdate>,
) -> Result<Json<TeamUpdated>, ApiError> {
    let team = teams::update(db.ctx_in(&actor, &unit.0), req, db.now()).await?;
    Ok(Json(TeamUpdated {
        data: team.clone(),
        team,
    }))
}

/// Deletes teams and their keys.
#[utoipa::path(post, path = "/team/delete", tag = "teams", request_body = TeamDelete,
    responses((status = 200, description = "The deleted teams", body = TeamsDeleted)))]
#[tracing::instrument(name = "teams.delete", level = "debug", skip_all)]
async fn delete(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<TeamDelete>,
) -> Result<Json<TeamsDeleted>, ApiError> {
    let deleted_teams = teams::delete(db.ctx_in(&actor, &unit.0), req.team_ids).await?;
    Ok(Json(TeamsDeleted { deleted_teams }))
}

/// Blocks a team: its keys are refused until it is unblocked.
#[utoipa::path(post, path = "/team/block", tag = "teams", request_body = TeamRef,
    responses((status = 200, description = "The team", body = Team)))]
#[tracing::instrument(name = "teams.block", level = "debug", skip_all)]
async fn block(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<TeamRef>,
) -> Result<Json<Team>, ApiError> {
    teams::set_blocked(db.ctx_in(&actor, &unit.0), &req.team_id, true, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Unblocks a team.
#[utoipa::path(post, path = "/team/unblock", tag = "teams", request_body = TeamRef,
    responses((status = 200, description = "The team", body = Team)))]
#[tracing::instrument(name = "teams.unblock", level = "debug", skip_all)]
async fn unblock(
    State(db): Db,
    Extension(actor): Extension<Actor>,
    unit: Unit,
    ApiJson(req): ApiJson<TeamRef>,
) -> Result<Json<Team>, ApiError> {
    teams::set_blocked(db.ctx_in(&actor, &unit.0), &req.team_id, false, db.now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}
