//! `/team/*`: the team API of the spec.

use crate::{
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    service::teams,
    state::AppState,
};
use app::types::{
    NewTeam, Team, TeamDelete, TeamInfo, TeamInfoQuery, TeamList, TeamListQuery, TeamRef,
    TeamUpdate, TeamUpdated, TeamsDeleted,
};
use axum::{
    extract::State,
    routing::{get, post},
    Json, Router,
};
use chrono::Utc;

type Db = State<AppState>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/team/new", post(create))
        .route("/team/list", get(list))
        .route("/team/info", get(info))
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
