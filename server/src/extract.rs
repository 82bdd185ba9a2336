//! Request extractors that turn every malformed body or query into an [`ApiError`] with the
//! offending field in `param`, instead of axum's plain-text rejections.

use crate::{
    error::ApiError,
    serve::BodyTimeout,
    service::litellm_fields::{self, Decision},
};
use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::{request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

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
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A whole request body as bytes: too large is a JSON 413, too slow a JSON 408.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(|rejection| {
                let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
                while let Some(err) = cause {
                    if let Some(timeout) = err.downcast_ref::<BodyTimeout>() {
                        return ApiError::Status {
                            status: StatusCode::REQUEST_TIMEOUT,
                            message: format!(
                                "The request body did not arrive within {} s.",
                                timeout.0.as_secs()
                            ),
                        };
                    }
                    cause = err.source();
                }
                ApiError::Status {
                    status: rejection.status(),
                    message: match rejection.status().as_u16() {
                        413 => "Request body too large.".to_string(),
                        _ => rejection.body_text(),
                    },
                }
            })
    }
}

/// Parses `bytes` as `T`, naming the field that failed. A top-level field `T` does not have
/// but LiteLLM does is decided by [`litellm_fields::decision`]: dropped, or refused with its
/// own message.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "Request body is empty; send a JSON object.",
        ));
    }
    match parse_exact(bytes) {
        Ok(value) => Ok(value),
        Err(Failure::Other(err)) => Err(err),
        Err(Failure::Litellm(field, Decision::Refuse(message))) => {
            Err(ApiError::invalid(&field, message))
        }
        Err(Failure::Litellm(field, Decision::Ignore)) => {
            let mut body: Value = serde_json::from_slice(bytes)
                .map_err(|err| ApiError::bad_request(format!("Invalid JSON body: {err}")))?;
            if let Some(fields) = body.as_object_mut() {
                fields.remove(&field);
            }
            parse_json(&serde_json::to_vec(&body).unwrap_or_default())
        }
    }
}

/// Why [`parse_exact`] failed: a top-level LiteLLM field the type does not have, or else.
enum Failure {
    Litellm(String, Decision),
    Other(ApiError),
}

fn parse_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let raw_path = err.path().to_string();
        let inner = err.into_inner();
        let text = inner.to_string();
        if let Some(field) = text
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            // Only a top-level field named in the table: its name is ours, not the caller's.
            if let Some(decision) = litellm_fields::decision(field).filter(|_| raw_path == field) {
                return Failure::Litellm(field.to_string(), decision);
            }
        }
        let sent = sent_values(bytes);
        let path = scrub(raw_path, &sent);
        let message = scrub(format!("Invalid JSON body: {inner}"), &sent);
        // `?` is serde_path_to_error's "somewhere": a syntax error, not a field.
        Failure::Other(if path.is_empty() || path == "." || path == "?" {
            ApiError::bad_request(message)
        } else {
            ApiError::invalid(&path, message)
        })
    })?;
    deserializer.end().map_err(|err| {
        Failure::Other(ApiError::bad_request(format!("Invalid JSON body: {err}")))
    })?;
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
            .map_err(|rejection| {
                let sent: Vec<String> = parts
                    .uri
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .flat_map(|pair| pair.split('='))
                    .map(percent_decode)
                    .collect();
                ApiError::bad_request(scrub(rejection.body_text(), &sent))
            })
    }
}

/// `%XX` and `+` decoded, as a query string is.
fn percent_decode(part: &str) -> String {
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every value a JSON body carries that an error message could repeat: strings, numbers, and
/// object keys that are not plain field names.
fn sent_values(bytes: &[u8]) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(text) => out.push(text.clone()),
            Value::Number(number) => out.push(number.to_string()),
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            Value::Object(fields) => {
                for (name, item) in fields {
                    if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                        out.push(name.clone());
                    }
                    walk(item, out);
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        walk(&value, &mut out);
    }
    out
}

/// An error message with every value the caller sent blanked out: serde repeats values it
/// could not take (`invalid type: string "sk-…"`), and those may be keys or passwords.
fn scrub(mut message: String, sent: &[String]) -> String {
    let mut sent: Vec<&String> = sent.iter().filter(|v| v.chars().count() >= 4).collect();
    // Longest first, so a value is never left half-blanked by a shorter one inside it.
    sent.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in sent {
        message = message.replace(value.as_str(), "…");
    }
    message
}
