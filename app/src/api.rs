//! The one typed client of the REST API that every page uses. It runs in the browser (gloo-net,
//! same-origin, so the HttpOnly session cookie goes along); pages call it from local resources
//! and event handlers, which only run after hydration.

use crate::types::{Login, Session, TeamList};

/// What a page needs to know about a failed call: the status (0 when nothing came back) and the
/// server's message, meant for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    /// The caller is not signed in, or the session expired.
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }
}

pub async fn list_teams() -> Result<TeamList, ApiError> {
    transport::get("/team/list").await
}

pub async fn login(key: String) -> Result<Session, ApiError> {
    transport::post("/session/login", &Login { key }).await
}

pub async fn logout() -> Result<serde_json::Value, ApiError> {
    transport::post("/session/logout", &serde_json::json!({})).await
}

#[cfg(feature = "hydrate")]
mod transport {
    use super::ApiError;
    use crate::types::ErrorBody;
    use gloo_net::http::{Request, Response};
    use serde::{de::DeserializeOwned, Serialize};

    fn network_error(err: gloo_net::Error) -> ApiError {
        ApiError {
            status: 0,
            message: format!(
                "Could not reach Gatehouse ({err}). Check that the server is running."
            ),
        }
    }

    async fn read<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
        let status = response.status();
        if response.ok() {
            return response.json::<T>().await.map_err(|err| ApiError {
                status,
                message: format!("Unexpected answer from Gatehouse: {err}"),
            });
        }
        let message = match response.json::<ErrorBody>().await {
            Ok(body) => body.error.message,
            Err(_) => format!("Gatehouse answered HTTP {status}"),
        };
        Err(ApiError { status, message })
    }

    pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
        let response = Request::get(path).send().await.map_err(network_error)?;
        read(response).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
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
    use super::ApiError;
    use serde::{de::DeserializeOwned, Serialize};

    fn browser_only() -> ApiError {
        ApiError {
            status: 0,
            message: "The REST client runs in the browser only.".to_string(),
        }
    }

    pub async fn get<T: DeserializeOwned>(_path: &str) -> Result<T, ApiError> {
        Err(browser_only())
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        _path: &str,
        _body: &B,
    ) -> Result<T, ApiError> {
        Err(browser_only())
    }
}
