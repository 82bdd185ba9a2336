//! The one typed client of the REST API that every page uses. In the browser it speaks HTTP
//! (gloo-net, same-origin, so the HttpOnly session cookie goes along). On the server, while a
//! page is rendered, the same calls go to the server's own API router in-process, with the
//! session cookie of the request being rendered ([`ServerApi`]): same routes, same rules, same
//! identity, and the answer travels to the browser inside the page so hydration does not ask
//! again.

use crate::types::{
    AlertList, AlertQuery, AuditList, AuditQuery, DailySpend, ErrorBody, GeneratedKey,
    InvitationAccept, InvitationAccepted, InvitationCreated, InvitationNew, KeyInfo, KeyRegenerate,
    KeysDeleted, Login, Me, MemberAdd, MemberDeleted, MemberUpdate, MembersAdded, ModelList,
    NewKey, NewOrganization, NewTeam, NewUser, Organization, Refusals, RefusalsQuery, Session,
    SpendLogList, SpendLogQuery, SpendSummary, Team, TeamInfo, TeamList, TeamListQuery,
    TeamMembership, TeamUpdate, TeamUpdated, TeamsDeleted, UserCreated, UserList,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::json;

/// What a page needs to know about a failed call: the status (0 when nothing came back), the
/// server's message, meant for a person, and the field it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// One call of the API as the console makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    /// Path and query, e.g. `/team/info?team_id=ml`.
    pub uri: String,
    /// JSON, for POST.
    pub body: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A call's answer: the HTTP status and the body; status 0 when nothing came back.
pub type Answer = (u16, Vec<u8>);

/// The server's side of the console's client: runs a [`Call`] against the API routes in-process
/// on behalf of the request being rendered. The server provides it as context.
#[cfg(feature = "ssr")]
pub trait Backend: Send + Sync {
    fn call(
        &self,
        call: Call,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send>>;
}

/// The [`Backend`] of the request being rendered.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct ServerApi(pub std::sync::Arc<dyn Backend>);

/// `path?k=v&…` with the non-empty parameters (empty means "the server's default"), encoded.
pub fn with_query(path: &str, query: &[(&str, String)]) -> String {
    let mut uri = path.to_string();
    let mut separator = '?';
    for (name, value) in query.iter().filter(|(_, v)| !v.is_empty()) {
        uri.push(separator);
        uri.push_str(&encode(name));
        uri.push('=');
        uri.push_str(&encode(value));
        separator = '&';
    }
    uri
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The answer as `T`, or the API's error with its message and field.
fn decode<T: DeserializeOwned>((status, body): Answer) -> ApiResult<T> {
    if status == 0 {
        return Err(ApiError {
            status,
            message: format!(
                "Could not reach Gatehouse ({}). Check that the server is running.",
                String::from_utf8_lossy(&body)
            ),
            param: None,
        });
    }
    if (200..300).contains(&status) {
        return serde_json::from_slice(&body).map_err(|err| ApiError {
            status,
            message: format!("Unexpected answer from Gatehouse: {err}"),
            param: None,
        });
    }
    match serde_json::from_slice::<ErrorBody>(&body) {
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

async fn get<T: DeserializeOwned>(path: &str, query: &[(&str, String)]) -> ApiResult<T> {
    let call = Call {
        method: Method::Get,
        uri: with_query(path, query),
        body: None,
    };
    decode(transport::send(call).await)
}

async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
    let body = serde_json::to_string(body).map_err(|err| ApiError {
        status: 0,
        message: format!("Could not encode the request: {err}"),
        param: None,
    })?;
    let call = Call {
        method: Method::Post,
        uri: path.to_string(),
        body: Some(body),
    };
    decode(transport::send(call).await)
}

/// One page of teams, searched and sorted by the server.
pub async fn list_teams(query: TeamListQuery) -> ApiResult<TeamList> {
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let params = [
        ("page", number(query.page)),
        ("size", number(query.size)),
        ("sort", query.sort.unwrap_or_default()),
        ("search", query.search.unwrap_or_default()),
    ];
    get("/team/list", &params).await
}

pub async fn team_info(team_id: String) -> ApiResult<TeamInfo> {
    get("/team/info", &[("team_id", team_id)]).await
}

pub async fn create_team(team: NewTeam) -> ApiResult<Team> {
    post("/team/new", &team).await
}

pub async fn update_team(update: TeamUpdate) -> ApiResult<TeamUpdated> {
    post("/team/update", &update).await
}

pub async fn set_team_blocked(team_id: String, blocked: bool) -> ApiResult<Team> {
    let path = if blocked {
        "/team/block"
    } else {
        "/team/unblock"
    };
    post(path, &json!({ "team_id": team_id })).await
}

pub async fn delete_team(team_id: String) -> ApiResult<TeamsDeleted> {
    post("/team/delete", &json!({ "team_ids": [team_id] })).await
}

pub async fn list_organizations() -> ApiResult<Vec<Organization>> {
    get("/organization/list", &[]).await
}

pub async fn create_organization(organization: NewOrganization) -> ApiResult<Organization> {
    post("/organization/new", &organization).await
}

/// The first page of users (100), oldest first.
pub async fn list_users() -> ApiResult<UserList> {
    get("/user/list", &[("page_size", "100".to_string())]).await
}

pub async fn create_user(user: NewUser) -> ApiResult<UserCreated> {
    post("/user/new", &user).await
}

pub async fn add_member(add: MemberAdd) -> ApiResult<MembersAdded> {
    post("/team/member_add", &add).await
}

pub async fn update_member(update: MemberUpdate) -> ApiResult<TeamMembership> {
    post("/team/member_update", &update).await
}

pub async fn delete_member(team_id: String, user_id: String) -> ApiResult<MemberDeleted> {
    post(
        "/team/member_delete",
        &json!({ "team_id": team_id, "user_id": user_id }),
    )
    .await
}

pub async fn generate_key(key: NewKey) -> ApiResult<GeneratedKey> {
    post("/key/generate", &key).await
}

pub async fn set_key_blocked(token: String, blocked: bool) -> ApiResult<KeyInfo> {
    let path = if blocked {
        "/key/block"
    } else {
        "/key/unblock"
    };
    post(path, &json!({ "key": token })).await
}

pub async fn delete_key(token: String) -> ApiResult<KeysDeleted> {
    post("/key/delete", &json!({ "keys": [token] })).await
}

/// One page of the request log, newest first.
pub async fn spend_logs(query: SpendLogQuery) -> ApiResult<SpendLogList> {
    let text = |v: Option<String>| v.unwrap_or_default();
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let params = [
        ("team_id", text(query.team_id)),
        ("key", text(query.key)),
        ("model", text(query.model)),
        ("status", number(query.status.map(u64::from))),
        ("request_id", text(query.request_id)),
        ("start", text(query.start)),
        ("end", text(query.end)),
        ("page", number(query.page)),
        ("size", number(query.size)),
    ];
    get("/spend/logs", &params).await
}

/// Requests refused over a range (the last 24 hours by default).
pub async fn refusals(query: RefusalsQuery) -> ApiResult<Refusals> {
    let text = |v: Option<String>| v.unwrap_or_default();
    let params = [("start", text(query.start)), ("end", text(query.end))];
    get("/spend/refusals", &params).await
}

/// A team's spend per day over the last 30 days (the server's), split by `group_by` (`model`
/// or `key`) unless it is empty.
pub async fn daily_spend(team_id: String, group_by: String) -> ApiResult<DailySpend> {
    let query = [("team_id", team_id), ("group_by", group_by)];
    get("/spend/daily", &query).await
}

pub async fn spend_summary(start_date: String, end_date: String) -> ApiResult<SpendSummary> {
    let query = [("start_date", start_date), ("end_date", end_date)];
    get("/spend/summary", &query).await
}

pub async fn models() -> ApiResult<ModelList> {
    get("/model/info", &[]).await
}

pub async fn login(login: Login) -> ApiResult<Session> {
    post("/session/login", &login).await
}

pub async fn audit(query: AuditQuery) -> ApiResult<AuditList> {
    let text = |v: Option<String>| v.unwrap_or_default();
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let params = [
        ("target_type", text(query.target_type)),
        ("target_id", text(query.target_id)),
        ("actor", text(query.actor)),
        ("start", text(query.start)),
        ("end", text(query.end)),
        ("page", number(query.page)),
        ("size", number(query.size)),
    ];
    get("/audit", &params).await
}

pub async fn alerts(query: AlertQuery) -> ApiResult<AlertList> {
    let text = |v: Option<String>| v.unwrap_or_default();
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let params = [
        ("scope", text(query.scope)),
        ("id", text(query.id)),
        ("page", number(query.page)),
        ("size", number(query.size)),
    ];
    get("/alert/list", &params).await
}

pub async fn me() -> ApiResult<Me> {
    get("/session/me", &[]).await
}

pub async fn invite(req: InvitationNew) -> ApiResult<InvitationCreated> {
    post("/invitation/new", &req).await
}

pub async fn accept_invitation(id: String, password: String) -> ApiResult<InvitationAccepted> {
    post("/invitation/accept", &InvitationAccept { id, password }).await
}

pub async fn regenerate_key(
    token: String,
    grace_period: Option<String>,
) -> ApiResult<GeneratedKey> {
    post(
        "/key/regenerate",
        &KeyRegenerate {
            key: Some(token),
            grace_period,
        },
    )
    .await
}

pub async fn logout() -> ApiResult<serde_json::Value> {
    post("/session/logout", &json!({})).await
}

#[cfg(feature = "hydrate")]
mod transport {
    use super::{Answer, Call, Method};
    use gloo_net::http::Request;
    use send_wrapper::SendWrapper;

    /// Over HTTP. The browser's futures are not `Send`; they only ever run on its one thread.
    pub async fn send(call: Call) -> Answer {
        SendWrapper::new(async move {
            let request = match call.method {
                Method::Get => Request::get(&call.uri).build(),
                Method::Post => Request::post(&call.uri)
                    .header("content-type", "application/json")
                    .body(call.body.unwrap_or_default()),
            };
            let response = match request {
                Ok(request) => request.send().await,
                Err(err) => Err(err),
            };
            match response {
                Ok(response) => {
                    let status = response.status();
                    (status, response.binary().await.unwrap_or_default())
                }
                Err(err) => (0, err.to_string().into_bytes()),
            }
        })
        .await
    }
}

/// While the server renders a page: in-process, through the [`ServerApi`] it provides.
#[cfg(all(feature = "ssr", not(feature = "hydrate")))]
mod transport {
    use super::{Answer, Call, ServerApi};
    use leptos::prelude::use_context;

    pub async fn send(call: Call) -> Answer {
        match use_context::<ServerApi>() {
            Some(ServerApi(backend)) => backend.call(call).await,
            None => (0, b"no API on this side".to_vec()),
        }
    }
}

/// Neither side (the crate's own unit tests): nothing to call.
#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
mod transport {
    use super::{Answer, Call};

    pub async fn send(_call: Call) -> Answer {
        (0, b"no API on this side".to_vec())
    }
}
