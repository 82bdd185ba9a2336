//! The console's API calls while the server renders one of its pages: sent to the API's own
//! router in-process, with the session cookie (and address) of the request being rendered, so
//! the page sees exactly what the same person would get over HTTP — same routes, same rules.

use app::api::{Answer, Backend, Call, Method, ServerApi};
use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{header, request::Parts, HeaderValue, Request},
    Router,
};
use leptos::prelude::{provide_context, use_context};
use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc};
use tower::ServiceExt;

struct InProcess {
    api: Router,
    cookie: Option<HeaderValue>,
    peer: Option<ConnectInfo<SocketAddr>>,
}

impl Backend for InProcess {
    fn call(&self, call: Call) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
        let mut request = Request::builder().uri(call.uri);
        request = match call.method {
            Method::Get => request.method("GET"),
            Method::Post => request
                .method("POST")
                .header(header::CONTENT_TYPE, "application/json"),
        };
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie.clone());
        }
        let request = request.body(Body::from(call.body.unwrap_or_default()));
        let (api, peer) = (self.api.clone(), self.peer);
        Box::pin(async move {
            let Ok(mut request) = request else {
                return (0, b"the console asked for an invalid address".to_vec());
            };
            if let Some(peer) = peer {
                request.extensions_mut().insert(peer);
            }
            let response = match api.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            match axum::body::to_bytes(response.into_body(), usize::MAX).await {
                Ok(body) => (status, body.to_vec()),
                Err(err) => (0, err.to_string().into_bytes()),
            }
        })
    }
}

/// Gives the page being rendered its [`ServerApi`]: `api` acting for the request's person.
pub fn provide_api(api: &Router) {
    let parts = use_context::<Parts>();
    let backend = InProcess {
        api: api.clone(),
        cookie: parts
            .as_ref()
            .and_then(|p| p.headers.get(header::COOKIE).cloned()),
        peer: parts
            .as_ref()
            .and_then(|p| p.extensions.get::<ConnectInfo<SocketAddr>>().copied()),
    };
    provide_context(ServerApi(Arc::new(backend)));
}
