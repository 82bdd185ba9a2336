//! The OpenAPI 3.1 document of the REST API and the proxy, generated from the handlers'
//! `#[utoipa::path]` annotations and the API's types: `GET /openapi.json`, and an interactive
//! reference (Swagger UI, from files inside the `utoipa-swagger-ui` crate) at `/docs`.

use app::types::{ErrorBody, ErrorDetail, KeyFigures};
use axum::{
    http::{header, HeaderValue},
    middleware,
    response::Response,
    Router,
};
use utoipa::{
    openapi::{
        path::{Operation, OperationBuilder, PathItem},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
        ContentBuilder, HttpMethod, OpenApi as Document, Ref, RefOr, ResponseBuilder,
    },
    Modify, OpenApi,
};
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        description = "An LLM gateway: virtual keys in teams, budgets that reset, shared \
            rate limits, and an OpenAI-compatible proxy. Errors come in OpenAI's shape \
            (`{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`)."
    ),
    components(schemas(ErrorBody, ErrorDetail, KeyFigures)),
    modifiers(&Schemes),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "teams", description = "Teams, their budgets and limits"),
        (name = "keys", description = "Virtual keys, issued in a team"),
        (name = "users", description = "Users: a role, and a budget over all of their keys"),
        (name = "organizations", description = "Organizations: a budget, limits and models over all of their teams"),
        (name = "spend", description = "The request log and spend over time"),
        (name = "models", description = "The models served and their prices"),
        (name = "session", description = "Signing in (the admin key, or a person's password) and out, accepting an invitation"),
        (name = "people", description = "Who is calling, and invitations to sign in"),
        (name = "audit", description = "Every change made through the API, who made it, before and after; budget alerts and their delivery"),
        (name = "proxy", description = "OpenAI-compatible requests, with a virtual key"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct Base;

/// The document's frame; the routes add their operations to it.
pub fn base() -> Document {
    Base::openapi()
}

struct Schemes;

impl Modify for Schemes {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin key for management routes; a virtual key for the proxy; \
                         the metrics token for /metrics.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The console's session, from /session/login.",
            ))),
        );
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// Completes the routes' document: the unprefixed proxy paths, the error answers every
/// operation can give, and this document's own routes.
pub fn finish(mut document: Document, aliases: &[(&str, &str)]) -> Document {
    for (path, alias) in aliases {
        if let Some(mut item) = document.paths.paths.get(*path).cloned() {
            for operation in operations(&mut item) {
                operation.operation_id = operation.operation_id.take().map(|id| id + "_unprefixed");
            }
            document.paths.paths.insert((*alias).to_string(), item);
        }
    }
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            let public = operation
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(|r| *r == Default::default()));
            let responses = &mut operation.responses.responses;
            responses.entry("400".into()).or_insert_with(|| {
                error("The request is malformed or a field is invalid; `param` names it")
            });
            if !public {
                responses
                    .entry("401".into())
                    .or_insert_with(|| error("No key, or not one this route accepts"));
            }
            responses.entry("default".into()).or_insert_with(|| {
                error("Any other refusal or failure (403 blocked or cross-site, 404, 413, 429 with retry-after, 502 and 504 from a provider)")
            });
        }
    }
    let own = |summary: &str, content_type: &str| {
        let answer = ResponseBuilder::new()
            .description(summary)
            .content(content_type, ContentBuilder::new().build())
            .build();
        OperationBuilder::new()
            .summary(Some(summary))
            .tag("operations")
            .security(utoipa::openapi::security::SecurityRequirement::default())
            .response("200", answer)
            .build()
    };
    document.paths.paths.insert(
        "/openapi.json".into(),
        PathItem::new(
            HttpMethod::Get,
            own("This document (OpenAPI 3.1)", "application/json"),
        ),
    );
    document.paths.paths.insert(
        "/docs/".into(),
        PathItem::new(
            HttpMethod::Get,
            own("An interactive reference of this document", "text/html"),
        ),
    );
    document
}

/// `/openapi.json`, and Swagger UI at `/docs` under a policy of its own: its files only, and
/// the inline styles its layout sets.
pub fn serve<S: Clone + Send + Sync + 'static>(document: Document) -> Router<S> {
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", document))
        .layer(middleware::map_response(reference_policy))
}

async fn reference_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        ),
    );
    response
}
