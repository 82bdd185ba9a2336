//! What every provider's call shares: reading an HTTP answer within the gateway's caps and the
//! deployment's timeouts, and sorting its failures into what a caller may be told.
//! An upstream's own error text is passed on only for requests it refused as malformed; its
//! authentication and server errors stay here, since they can describe the provider's key.

use axum::body::Bytes;
use futures_util::{stream::BoxStream, StreamExt};
use serde_json::Value;
use std::time::Duration;

/// The longest upstream error message passed on.
const MAX_UPSTREAM_MESSAGE: usize = 2_000;

/// What the gateway reads of a provider's answer at most: a provider (or whatever answers at
/// its address) cannot make it hold more, nor keep it reading for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// A whole (non-stream) answer, bytes.
    pub answer: usize,
    /// An error answer's body, bytes: the rest is not read.
    pub error: usize,
    /// One line of a stream, bytes.
    pub line: usize,
    /// A stream from its first chunk to its end.
    pub stream: Duration,
}

/// Why a call to the provider failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// No connection could be made.
    Unreachable,
    /// No answer (or no next chunk) within the deployment's timeout.
    Timeout,
    /// The provider's own rate limit; seconds to wait.
    RateLimited { retry_after: u64 },
    /// The provider refused the request as malformed (context too long, say): its message.
    Rejected { message: String },
    /// Any other failure of the provider's (its auth, its servers): its status.
    Failed { status: u16 },
    /// The answer broke off before it was whole.
    BrokeOff,
    /// A success status whose body is not a JSON object.
    BadAnswer,
    /// An answer, or one line of a stream, larger than the gateway reads ([`Caps`]).
    TooLarge,
}

/// A successful call: the whole answer, or a stream of SSE bytes as they come.
pub enum Answer {
    Json(Bytes),
    Stream(BoxStream<'static, Result<Bytes, UpstreamError>>),
}

/// What a caller is told of an upstream failure; never the provider's own text, except the
/// reason it refused a malformed request.
pub fn describe(err: &UpstreamError) -> String {
    match err {
        UpstreamError::Unreachable => "The model's provider could not be reached.".into(),
        UpstreamError::Timeout => "The model's provider did not answer in time.".into(),
        UpstreamError::RateLimited { retry_after } => format!(
            "The model's provider is rate limiting this gateway; retry after {retry_after} s."
        ),
        UpstreamError::Rejected { message } => message.clone(),
        UpstreamError::Failed { status } => {
            format!("The model's provider failed (status {status}).")
        }
        UpstreamError::BrokeOff => "The model's provider broke off its answer.".into(),
        UpstreamError::BadAnswer => "The model's provider sent an answer that is not JSON.".into(),
        UpstreamError::TooLarge => {
            "The model's provider sent an answer larger than this gateway reads.".into()
        }
    }
}

/// A whole answer, read within the caps.
pub(super) async fn whole(
    call: reqwest::RequestBuilder,
    secret: Option<&str>,
    caps: &Caps,
) -> Result<Answer, UpstreamError> {
    let response = call.send().await.map_err(sent)?;
    let response = success(response, secret, caps).await?;
    match capped(response, caps.answer).await {
        Ok(bytes) => Ok(Answer::Json(bytes)),
        Err(Cut::Over(_)) => {
            tracing::warn!(cap = caps.answer, "upstream answer too large");
            Err(UpstreamError::TooLarge)
        }
        Err(Cut::Broke(err)) => Err(read(err)),
    }
}

/// Why [`capped`] stopped reading.
enum Cut {
    /// Past the cap: what came up to it.
    Over(Bytes),
    Broke(reqwest::Error),
}

/// A response's body, read chunk by chunk up to `cap` bytes: the rest of a longer one is not
/// read.
async fn capped(mut response: reqwest::Response, cap: usize) -> Result<Bytes, Cut> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Cut::Broke)? {
        if body.len() + chunk.len() > cap {
            body.extend_from_slice(&chunk[..cap - body.len()]);
            return Err(Cut::Over(Bytes::from(body)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// A stream of an answer's bytes as they come, each chunk within `timeout`; its start within
/// `limit` too.
pub(super) async fn stream(
    call: reqwest::RequestBuilder,
    timeout: Duration,
    limit: Duration,
    secret: Option<&str>,
    caps: &Caps,
) -> Result<Answer, UpstreamError> {
    let started = tokio::time::timeout(timeout.min(limit), async {
        let response = call.send().await.map_err(sent)?;
        success(response, secret, caps).await
    });
    let response = started.await.map_err(|_| UpstreamError::Timeout)??;
    let chunks = response.bytes_stream().boxed();
    let stream = futures_util::stream::unfold(Some(chunks), move |chunks| async move {
        let mut chunks = chunks?;
        match tokio::time::timeout(timeout, chunks.next()).await {
            Err(_) => Some((Err(UpstreamError::Timeout), None)),
            Ok(None) => None,
            Ok(Some(Err(err))) => Some((Err(read(err)), None)),
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
        }
    });
    Ok(Answer::Stream(stream.boxed()))
}

fn sent(err: reqwest::Error) -> UpstreamError {
    if err.is_timeout() {
        UpstreamError::Timeout
    } else {
        tracing::warn!(error = %err.without_url(), "upstream unreachable");
        UpstreamError::Unreachable
    }
}

fn read(err: reqwest::Error) -> UpstreamError {
    tracing::warn!(error = %err.without_url(), "upstream answer broke off");
    UpstreamError::BrokeOff
}

/// The response when its status is a success; otherwise the failure it stands for.
async fn success(
    response: reqwest::Response,
    secret: Option<&str>,
    caps: &Caps,
) -> Result<reqwest::Response, UpstreamError> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Its beginning is all an error needs: the rest is not read.
    let body = match capped(response, caps.error).await {
        Ok(body) | Err(Cut::Over(body)) => body,
        Err(Cut::Broke(_)) => Bytes::new(),
    };
    tracing::warn!(status, "upstream refused the request");
    Err(failure(status, retry_after, &body, secret))
}

/// Sorts an upstream's error status into what the caller is told.
pub fn failure(
    status: u16,
    retry_after: Option<u64>,
    body: &[u8],
    secret: Option<&str>,
) -> UpstreamError {
    match status {
        429 => UpstreamError::RateLimited {
            retry_after: retry_after.unwrap_or(1).clamp(1, 3_600),
        },
        408 => UpstreamError::Timeout,
        400 | 413 | 422 => match message(body, secret) {
            Some(message) => UpstreamError::Rejected { message },
            None => UpstreamError::Failed { status },
        },
        _ => UpstreamError::Failed { status },
    }
}

/// `error.message` of an OpenAI-shaped error body, cut to a sane length, the provider's key
/// (should it appear) blanked out.
fn message(body: &[u8], secret: Option<&str>) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let text = value.pointer("/error/message").and_then(Value::as_str)?;
    let mut text: String = text.chars().take(MAX_UPSTREAM_MESSAGE).collect();
    if let Some(secret) = secret.filter(|s| s.len() >= 8) {
        text = text.replace(secret, "[redacted]");
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_statuses_are_sorted() {
        let body =
            br#"{"error": {"message": "This model's maximum context length is 8192 tokens"}}"#;
        assert_eq!(
            failure(400, None, body, None),
            UpstreamError::Rejected {
                message: "This model's maximum context length is 8192 tokens".into()
            }
        );
        assert_eq!(
            failure(429, Some(7), b"", None),
            UpstreamError::RateLimited { retry_after: 7 }
        );
        assert_eq!(
            failure(429, None, b"", None),
            UpstreamError::RateLimited { retry_after: 1 }
        );
        let leaky = br#"{"error": {"message": "Incorrect API key provided: sk-upstream-secret"}}"#;
        assert_eq!(
            failure(401, None, leaky, None),
            UpstreamError::Failed { status: 401 }
        );
        assert_eq!(
            failure(500, None, body, None),
            UpstreamError::Failed { status: 500 }
        );
        assert_eq!(
            failure(400, None, b"<html>", None),
            UpstreamError::Failed { status: 400 }
        );
        let echoed = br#"{"error": {"message": "bad key sk-upstream-secret in request"}}"#;
        assert_eq!(
            failure(400, None, echoed, Some("sk-upstream-secret")),
            UpstreamError::Rejected {
                message: "bad key [redacted] in request".into()
            }
        );
    }
}
