//! The one error type of every HTTP endpoint, answered as OpenAI-style JSON
//! (`{"error": {"message", "type", "param", "code"}}`). Internal causes are logged, never sent.

use crate::{
    gate::admission::{Denial, LevelKind, RateInfo, Unreachable},
    money::Nanos,
    providers::{call::UpstreamError, router::Unavailable},
    service::{self, proxy},
    storage::StorageError,
};
use app::types::{ErrorBody, ErrorDetail};
use axum::{
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: the message says what to send instead; `param` names the field.
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<String>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Another 4xx the HTTP layer decided (413, 415, ...).
    #[error("{message}")]
    Status { status: StatusCode, message: String },
    /// The request path said no: LiteLLM's status and `error.type`, with rate headers on 429.
    #[error("{}", denial_message(.0))]
    Denied(Box<Denial>),
    /// Too many failed attempts from this address or on this account: seconds to wait.
    #[error("Too many failed attempts from this address or on this account; retry after {0} s.")]
    Throttled(u64),
    /// The caller made changes faster than it may: seconds to wait.
    #[error("You are changing things faster than one caller may; retry after {0} s.")]
    SlowDown(u64),
    /// The model's provider failed.
    #[error("{}", crate::providers::call::describe(.0))]
    Upstream(UpstreamError),
    /// No deployment of the model (or of its fallbacks) could take the request now.
    #[error("{}", no_deployment_message(.0))]
    NoDeployment(Unavailable),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            param: None,
        }
    }

    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Status { status, .. } => *status,
            Self::Denied(denial) => match **denial {
                Denial::OverBudget { .. } => StatusCode::BAD_REQUEST,
                Denial::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                Denial::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            },
            Self::Upstream(err) => {
                StatusCode::from_u16(proxy::status_of(err)).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::NoDeployment(Unavailable::AtLimit { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Self::NoDeployment(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Throttled(_) | Self::SlowDown(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Status { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => {
                "rate_limit_error"
            }
            Self::BadRequest { .. } | Self::Status { .. } => "invalid_request_error",
            Self::Unauthorized(_) | Self::Forbidden(_) => "auth_error",
            Self::NotFound(_) => "not_found_error",
            Self::Conflict(_) => "conflict_error",
            Self::Denied(denial) => match &**denial {
                Denial::KeyBlocked | Denial::Blocked { .. } => "auth_error",
                Denial::KeyExpired => "expired_key",
                Denial::ModelNotAllowed { level, .. } => match level.kind {
                    LevelKind::Key => "key_model_access_denied",
                    LevelKind::Team => "team_model_access_denied",
                    LevelKind::User => "user_model_access_denied",
                    LevelKind::Member => "team_member_model_access_denied",
                    LevelKind::Organization => "organization_model_access_denied",
                    LevelKind::Deployment => "model_access_denied",
                },
                Denial::OverBudget { .. } => "budget_exceeded",
                Denial::RateLimited { .. } => "rate_limit_error",
                Denial::Unavailable(_) => "service_unavailable",
            },
            Self::Upstream(err) => proxy::upstream_kind(err),
            Self::NoDeployment(Unavailable::AtLimit { .. }) => "rate_limit_error",
            Self::NoDeployment(_) => "service_unavailable",
            Self::Throttled(_) | Self::SlowDown(_) => "rate_limit_error",
            Self::Internal(_) => "internal_server_error",
        }
    }
}

fn no_deployment_message(unavailable: &Unavailable) -> String {
    match unavailable {
        Unavailable::Cooling { retry_after } => format!(
            "No deployments available for this model: every one is cooling down after \
             failures. Try again in {retry_after} seconds."
        ),
        Unavailable::AtLimit { retry_after } => format!(
            "No deployments available for this model: every one is at its requests- or \
             tokens-per-minute limit. Try again in {retry_after} seconds."
        ),
        Unavailable::Unreachable(denial) => denial_message(denial),
    }
}

/// What a refusal says, in LiteLLM's words where it has them.
fn denial_message(denial: &Denial) -> String {
    let usd = |amount: Nanos| amount.usd();
    match denial {
        Denial::KeyBlocked => "This key is blocked; ask your admin to unblock it.".into(),
        Denial::KeyExpired => "This key has expired; ask your admin for a new one.".into(),
        Denial::ModelNotAllowed {
            level,
            model,
            allowed,
        } => {
            // LiteLLM's words, then which team (its message does not say).
            let listed: Vec<String> = allowed.iter().map(|m| format!("'{m}'")).collect();
            let (kind, whose) = match level.kind {
                LevelKind::Key => ("key", String::new()),
                LevelKind::Team => ("team", format!(" {level}.")),
                LevelKind::User => ("user", format!(" {level}.")),
                LevelKind::Member => ("team member", format!(" {level}.")),
                LevelKind::Organization => ("organization", format!(" {level}.")),
                LevelKind::Deployment => ("deployment", format!(" {level}.")),
            };
            format!(
                "{kind} not allowed to access model. This {kind} can only access models=[{}]. \
                 Tried to access {model}.{whose}",
                listed.join(", ")
            )
        }
        Denial::Blocked { level } => format!("{level} is blocked; ask your admin to unblock it."),
        Denial::OverBudget {
            level,
            spend,
            max,
            left,
            request_cost,
        } => format!(
            "Budget has been exceeded! {level} Current cost: {}, Max budget: {}. Left after the \
             requests in flight: ${}; this request can cost up to ${}: lower max_tokens or \
             shorten the prompt.",
            usd(*spend),
            usd(*max),
            usd(*left),
            usd(*request_cost)
        ),
        Denial::RateLimited {
            level,
            kind,
            limit,
            retry_after,
        } => format!(
            "Rate limit exceeded for {}: {}. Limit type: {}. Current limit: {limit}, \
             Remaining: 0. Retry after {retry_after} s.",
            match level.kind {
                LevelKind::Key => "api_key",
                LevelKind::Team => "team",
                LevelKind::User => "user",
                LevelKind::Member => "team_member",
                LevelKind::Organization => "organization",
                LevelKind::Deployment => "deployment",
            },
            level.id,
            kind.label()
        ),
        Denial::Unavailable(Unreachable::SharedCounters) => {
            "The shared budgets and rate limits cannot be checked right now (Redis is \
             unreachable); retry in a moment."
                .into()
        }
        Denial::Unavailable(Unreachable::Database) => {
            "The database cannot be reached right now; retry in a moment.".into()
        }
    }
}

/// `x-ratelimit-{limit,remaining}-{requests,tokens}`.
pub fn rate_headers(rate: &RateInfo) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: Option<u64>| {
        if let Some(value) = value {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    };
    put("x-ratelimit-limit-requests", rate.limit_requests);
    put("x-ratelimit-remaining-requests", rate.remaining_requests);
    put("x-ratelimit-limit-tokens", rate.limit_tokens);
    put("x-ratelimit-remaining-tokens", rate.remaining_tokens);
    headers
}

impl From<proxy::ProxyError> for ApiError {
    fn from(err: proxy::ProxyError) -> Self {
        match err {
            proxy::ProxyError::Unauthenticated(message) => Self::Unauthorized(message.into()),
            proxy::ProxyError::Invalid { param, message } => Self::BadRequest {
                message,
                param: param.map(String::from),
            },
            proxy::ProxyError::Denied(denial) => Self::Denied(Box::new(denial)),
            proxy::ProxyError::Upstream(err) => Self::Upstream(err),
            proxy::ProxyError::NoDeployment(Unavailable::Unreachable(denial)) => {
                Self::Denied(Box::new(denial))
            }
            proxy::ProxyError::NoDeployment(unavailable) => Self::NoDeployment(unavailable),
            proxy::ProxyError::Internal => Self::Internal("the provider call's task failed".into()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        service::Error::from(err).into()
    }
}

impl From<service::Error> for ApiError {
    fn from(err: service::Error) -> Self {
        match err {
            service::Error::Invalid { message, param } => Self::BadRequest { message, param },
            service::Error::Unauthorized(message) => Self::Unauthorized(message),
            service::Error::Forbidden(message) => Self::Forbidden(message),
            service::Error::NotFound(message) => Self::NotFound(message),
            service::Error::Conflict(message) => Self::Conflict(message),
            service::Error::TooMany(message) => Self::Status {
                status: StatusCode::TOO_MANY_REQUESTS,
                message,
            },
            service::Error::Unavailable(message) => Self::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message,
            },
            service::Error::Internal(cause) => Self::Internal(cause),
            err @ service::Error::Storage(_) => Self::Internal(causes(&err)),
        }
    }
}

/// An error and each cause under it, outermost first: what the server log says of a fault (a
/// cause its error already shows is not said twice).
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// Text with anything shaped like a key (`sk-` and at least 8 more key characters) cut to its
/// prefix: whatever field a key was pasted into, an error never shows it back.
pub fn redact_keys(text: &str) -> String {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sk-") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let len = after.find(|c: char| !is_key_char(c)).unwrap_or(after.len());
        if len >= 8 {
            out.push_str("sk-…");
        } else {
            out.push_str(&rest[at..at + 3 + len]);
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, headers, body) = self.parts();
        (status, headers, Json(body)).into_response()
    }
}

impl ApiError {
    /// The same refusal in Anthropic's error shape (`/v1/messages`): its status and headers,
    /// `{"type": "error", "error": {"type", "message"}}`.
    pub fn into_anthropic(self) -> Response {
        let (status, headers, body) = self.parts();
        let kind = crate::providers::anthropic::error_kind(status.as_u16());
        let body = crate::providers::anthropic::error_body(kind, &body.error.message);
        (status, headers, Json(body)).into_response()
    }

    fn parts(self) -> (StatusCode, HeaderMap, ErrorBody) {
        let status = self.status();
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "Internal error; the server log has the details.".to_string()
            }
            other => redact_keys(&other.to_string()),
        };
        let param = match &self {
            Self::BadRequest { param, .. } => param.as_deref().map(redact_keys),
            Self::Denied(denial) if matches!(**denial, Denial::ModelNotAllowed { .. }) => {
                Some("model".to_string())
            }
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                message,
                kind: self.kind().to_string(),
                param,
                code: status.as_u16().to_string(),
            },
        };
        let headers = match &self {
            Self::Denied(denial) => match **denial {
                Denial::RateLimited {
                    kind,
                    limit,
                    retry_after,
                    ..
                } => {
                    let mut rate = RateInfo::default();
                    rate.tighten(Some(limit), limit, kind);
                    let mut headers = rate_headers(&rate);
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                    headers
                }
                _ => HeaderMap::new(),
            },
            Self::Upstream(UpstreamError::RateLimited { retry_after })
            | Self::NoDeployment(
                Unavailable::AtLimit { retry_after } | Unavailable::Cooling { retry_after },
            )
            | Self::Throttled(retry_after)
            | Self::SlowDown(retry_after) => {
                let mut headers = HeaderMap::new();
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                headers
            }
            // The rest of a body too large (or too slow) is not read: the connection is closed
            // after the answer, and the answer says so first.
            Self::Status { status, .. }
                if *status == StatusCode::PAYLOAD_TOO_LARGE
                    || *status == StatusCode::REQUEST_TIMEOUT =>
            {
                let mut headers = HeaderMap::new();
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                headers
            }
            _ => HeaderMap::new(),
        };
        (status, headers, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_fault_is_logged_with_every_cause() {
        let refused = sqlx::Error::Protocol("the statement was refused".to_string());
        let err = service::Error::Storage(crate::storage::StorageError::Database(refused));
        let ApiError::Internal(logged) = ApiError::from(err) else {
            panic!("a database fault is this server's");
        };
        assert_eq!(
            logged,
            "the database failed: database: encountered unexpected or invalid data: the \
             statement was refused"
        );
    }
}
