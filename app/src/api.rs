//! The one typed client of the REST API that every page uses. It runs in the browser (gloo-net,
//! same-origin, so the HttpOnly session cookie goes along); pages call it from local resources
//! and event handlers, which only run after hydration.

use crate::types::{
    DailySpend, GeneratedKey, KeyInfo, KeysDeleted, Login, ModelList, NewKey, NewTeam, Session,
    SpendSummary, Team, TeamInfo, TeamList, TeamUpdate, TeamUpdated, TeamsDeleted,
};
use serde_json::json;

/// What a page needs to know about a failed call: the status (0 when nothing came back), the
/// server's message, meant for a person, and the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    /// The caller is not signed in, or the session expired.
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }

    /// The message when it is about `field`.
    pub fn for_field(&self, field: &str) -> Option<String> {
        (self.param.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub async fn list_teams() -> ApiResult<TeamList> {
    transport::get("/team/list", &[]).await
}

pub async fn team_info(team_id: String) -> ApiResult<TeamInfo> {
    transport::get("/team/info", &[("team_id", team_id)]).await
}

pub async fn create_team(team: NewTeam) -> ApiResult<Team> {
    transport::post("/team/new", &team).await
}

pub async fn update_team(update: TeamUpdate) -> ApiResult<TeamUpdated> {
    transport::post("/team/update", &update).await
}

pub async fn set_team_blocked(team_id: String, blocked: bool) -> ApiResult<Team> {
    let path = if blocked {
        "/team/block"
    } else {
        "/team/unblock"
    };
    transport::post(path, &json!({ "team_id": team_id })).await
}

pub async fn delete_team(team_id: String) -> ApiResult<TeamsDeleted> {
    transport::post("/team/delete", &json!({ "team_ids": [team_id] })).await
}

pub async fn generate_key(key: NewKey) -> ApiResult<GeneratedKey> {
    transport::post("/key/generate", &key).await
}

pub async fn set_key_blocked(token: String, blocked: bool) -> ApiResult<KeyInfo> {
    let path = if blocked {
        "/key/block"
    } else {
        "/key/unblock"
    };
    transport::post(path, &json!({ "key": token })).await
}

pub async fn delete_key(token: String) -> ApiResult<KeysDeleted> {
    transport::post("/key/delete", &json!({ "keys": [token] })).await
}

pub async fn daily_spend(
    team_id: String,
    start_date: String,
    end_date: String,
) -> ApiResult<DailySpend> {
    let query = [
        ("team_id", team_id),
        ("start_date", start_date),
        ("end_date", end_date),
    ];
    transport::get("/spend/daily", &query).await
}

pub async fn spend_summary(start_date: String, end_date: String) -> ApiResult<SpendSummary> {
    let query = [("start_date", start_date), ("end_date", end_date)];
    transport::get("/spend/summary", &query).await
}

pub async fn models() -> ApiResult<ModelList> {
    transport::get("/model/info", &[]).await
}

pub async fn login(key: String) -> ApiResult<Session> {
    transport::post("/session/login", &Login { key }).await
}

pub async fn logout() -> ApiResult<serde_json::Value> {
    transport::post("/session/logout", &json!({})).await
}

#[cfg(feature = "hydrate")]
mod transport {
    use super::{ApiError, ApiResult};
    use crate::types::ErrorBody;
    use gloo_net::http::{Request, Response};
    use serde::{de::DeserializeOwned, Serialize};

    fn network_error(err: gloo_net::Error) -> ApiError {
        ApiError {
            status: 0,
            message: format!(
                "Could not reach Gatehouse ({err}). Check that the server is running."
            ),
            param: None,
        }
    }

    async fn read<T: DeserializeOwned>(response: Response) -> ApiResult<T> {
        let status = response.status();
        if response.ok() {
            return response.json::<T>().await.map_err(|err| ApiError {
                status,
                message: format!("Unexpected answer from Gatehouse: {err}"),
                param: None,
            });
        }
        match response.json::<ErrorBody>().await {
            Ok(body) => Err(ApiError {
                status,
                message: body.error.message,
                param: body.error.param,
            }),
            Err(_) => Err(ApiError {
                status,
                message: format!("Gatehouse answered HTTP {status}"),
                param: None,
            }),
        }
    }

    /// GET with the non-empty query parameters (empty means "the server's default").
    pub async fn get<T: DeserializeOwned>(path: &str, query: &[(&str, String)]) -> ApiResult<T> {
        let params = query
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (*k, v.as_str()));
        let request = Request::get(path).query(params);
        let response = request.send().await.map_err(network_error)?;
        read(response).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
        let response = Request::post(path)
            .json(body)
            .map_err(network_error)?
            .send()
            .await
            .map_err(network_error)?;
        read(response).await
    }
}

/// On the server pages render their loading state and never call the API: this side only
/// exists so the same page code compiles for SSR.
#[cfg(not(feature = "hydrate"))]
mod transport {
    use super::{ApiError, ApiResult};
    use serde::{de::DeserializeOwned, Serialize};

    fn browser_only() -> ApiError {
        ApiError {
            status: 0,
            message: "The REST client runs in the browser only.".to_string(),
            param: None,
        }
    }

    pub async fn get<T: DeserializeOwned>(_path: &str, _query: &[(&str, String)]) -> ApiResult<T> {
        Err(browser_only())
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(_path: &str, _body: &B) -> ApiResult<T> {
        Err(browser_only())
    }
}
