//! `/team/*`: the team API of the spec.

use crate::{
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    service::teams,
    state::AppState,
};
use app::types::{
    NewTeam, Team, TeamDelete, TeamEventsQuery, TeamInfo, TeamInfoQuery, TeamList, TeamListQuery,
    TeamRef, TeamUpdate, TeamUpdated, TeamsDeleted,
};
use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
    Json, Router,
};
use chrono::Utc;
use futures_util::Stream;
use std::convert::Infallible;

type Db = State<AppState>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/team/new", post(create))
        .route("/team/list", get(list))
        .route("/team/info", get(info))
        .route("/team/events", get(events))
        .route("/team/update", post(update))
        .route("/team/delete", post(delete))
        .route("/team/block", post(block))
        .route("/team/unblock", post(unblock))
}

async fn create(State(db): Db, ApiJson(req): ApiJson<NewTeam>) -> Result<Json<Team>, ApiError> {
    teams::create(db.ctx(), req, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn list(
    State(db): Db,
    ApiQuery(query): ApiQuery<TeamListQuery>,
) -> Result<Json<TeamList>, ApiError> {
    teams::list(db.ctx(), query)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn info(
    State(db): Db,
    ApiQuery(q): ApiQuery<TeamInfoQuery>,
) -> Result<Json<TeamInfo>, ApiError> {
    teams::info(db.ctx(), &q.team_id)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Server-sent events: a `budgets` event with the followed teams' figures, then one whenever
/// some change; a comment every heartbeat keeps an idle stream open.
async fn events(
    State(db): Db,
    ApiQuery(query): ApiQuery<TeamEventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let watch = db.live.watch(teams::followed(&query.team_ids)?);
    let heartbeat = db.live.heartbeat;
    let stream = futures_util::stream::unfold(watch, |mut watch| async move {
        let figures: Vec<_> = watch
            .next()
            .await?
            .into_iter()
            .map(|(id, figures)| teams::figures_view(&id, figures))
            .collect();
        let event = Event::default().event("budgets").json_data(figures).ok()?;
        Some((Ok(event), watch))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(heartbeat)))
}

async fn update(
    State(db): Db,
    ApiJson(req): ApiJson<TeamUpdate>,
) -> Result<Json<TeamUpdated>, ApiError> {
    let team = teams::update(db.ctx(), req, Utc::now()).await?;
    Ok(Json(TeamUpdated {
        data: team.clone(),
        team,
    }))
}

async fn delete(
    State(db): Db,
    ApiJson(req): ApiJson<TeamDelete>,
) -> Result<Json<TeamsDeleted>, ApiError> {
    let deleted_teams = teams::delete(db.ctx(), req.team_ids).await?;
    Ok(Json(TeamsDeleted { deleted_teams }))
}

async fn block(State(db): Db, ApiJson(req): ApiJson<TeamRef>) -> Result<Json<Team>, ApiError> {
    teams::set_blocked(db.ctx(), &req.team_id, true, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

async fn unblock(State(db): Db, ApiJson(req): ApiJson<TeamRef>) -> Result<Json<Team>, ApiError> {
    teams::set_blocked(db.ctx(), &req.team_id, false, Utc::now())
        .await
        .map(Json)
        .map_err(ApiError::from)
}
