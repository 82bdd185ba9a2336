//! The one error type of every HTTP endpoint, answered as OpenAI-style JSON
//! (`{"error": {"message", "type", "param", "code"}}`). Internal causes are logged, never sent.

use crate::{
    gate::{RateInfo, Refusal},
    storage::StorageError,
};
use app::types::{ErrorBody, ErrorDetail};
use axum::{
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
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
    #[error("{}", .0.message)]
    Refused(Box<Refusal>),
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
            Self::Refused(refusal) => {
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } | Self::Status { .. } => "invalid_request_error",
            Self::Unauthorized(_) | Self::Forbidden(_) => "auth_error",
            Self::NotFound(_) => "not_found_error",
            Self::Conflict(_) => "conflict_error",
            Self::Refused(refusal) => refusal.kind,
            Self::Internal(_) => "internal_server_error",
        }
    }
}

/// `retry-after` and `x-ratelimit-{limit,remaining}-{requests,tokens}`.
pub fn rate_headers(rate: &RateInfo) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: Option<u64>| {
        if let Some(value) = value {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    };
    put("retry-after", rate.retry_after);
    put("x-ratelimit-limit-requests", rate.limit_requests);
    put("x-ratelimit-remaining-requests", rate.remaining_requests);
    put("x-ratelimit-limit-tokens", rate.limit_tokens);
    put("x-ratelimit-remaining-tokens", rate.remaining_tokens);
    headers
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "Internal error; the server log has the details.".to_string()
            }
            other => other.to_string(),
        };
        let param = match &self {
            Self::BadRequest { param, .. } => param.clone(),
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
            Self::Refused(refusal) => refusal
                .rate
                .as_deref()
                .map(rate_headers)
                .unwrap_or_default(),
            _ => HeaderMap::new(),
        };
        (status, headers, Json(body)).into_response()
    }
}
