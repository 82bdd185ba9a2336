//! Request extractors that turn every malformed body or query into an [`ApiError`] with the
//! offending field in `param`, instead of axum's plain-text rejections.

use crate::error::ApiError;
use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

/// A JSON body. The Content-Type is not checked: curl users often forget it, and the body
/// has to parse as JSON either way.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes =
            Bytes::from_request(req, state)
                .await
                .map_err(|rejection| ApiError::Status {
                    status: rejection.status(),
                    message: match rejection.status().as_u16() {
                        413 => "Request body too large.".to_string(),
                        _ => rejection.body_text(),
                    },
                })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as `T`, naming the field that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "Request body is empty; send a JSON object.",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = format!("Invalid JSON body: {inner}");
        // `?` is serde_path_to_error's "somewhere": a syntax error, not a field.
        if path.is_empty() || path == "." || path == "?" {
            ApiError::bad_request(message)
        } else {
            ApiError::invalid(&path, message)
        }
    })?;
    deserializer
        .end()
        .map_err(|err| ApiError::bad_request(format!("Invalid JSON body: {err}")))?;
    Ok(value)
}

/// A query string.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}
