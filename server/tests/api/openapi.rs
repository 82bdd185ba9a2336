//! `/openapi.json` against the routes the server really mounts, and `/docs`.

use crate::helpers::{TestApp, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    // Public, like /health: tools fetch it before they hold a key.
    let reply = app.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body
}

#[tokio::test]
async fn every_documented_operation_is_mounted_and_no_other_method_is() {
    let app = TestApp::spawn_gateway().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 30, "{} paths", paths.len());
    for (path, item) in paths {
        if path == "/team/events" {
            // A stream: checked by its own tests.
            continue;
        }
        for method in METHODS {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let mut request = app
                .client
                .request(verb, format!("{}{path}", app.base))
                .bearer_auth(ADMIN_KEY);
            if method != "get" {
                request = request.json(&json!({}));
            }
            let answer = request.send().await.expect("answer");
            let status = answer.status();
            let body = answer.text().await.unwrap_or_default();
            if item.get(method).is_some() {
                // A mounted route may answer 404 of its own (single sign-on unconfigured), never
                // the unknown path's.
                assert!(
                    !body.contains("No such endpoint"),
                    "{method} {path} is documented but not mounted"
                );
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is mounted but not documented"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_operation_has_its_answers_and_error_shape() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let responses = &operation["responses"];
            // (Single sign-on's start answers with a redirect.)
            assert!(
                responses["200"].is_object() || responses["303"].is_object(),
                "{method} {path}: no 200"
            );
            if path.starts_with("/openapi.json") || path.starts_with("/docs") {
                continue;
            }
            // Anthropic's API refuses in Anthropic's shape.
            let error = if path.starts_with("/v1/messages") {
                "#/components/schemas/AnthropicError"
            } else {
                "#/components/schemas/ErrorBody"
            };
            assert_eq!(
                responses["default"]["content"]["application/json"]["schema"]["$ref"], error,
                "{method} {path}"
            );
            assert!(responses["400"].is_object(), "{method} {path}: no 400");
            // Request bodies and queries are described by their types.
            if method == "post" && !path.starts_with("/session/logout") {
                assert!(
                    operation["requestBody"].is_object(),
                    "{method} {path}: no body"
                );
            }
        }
    }
    // A type's rules show: unknown fields refused, a team's budget fields flattened in.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["NewTeam"]["additionalProperties"], false);
    assert!(schemas["NewTeam"]["properties"]["max_budget"].is_object());
    assert_eq!(schemas["TeamRef"]["required"], json!(["team_id"]));
}

/// Routes are mounted through `utoipa_axum::routes!`, which documents them; a plain
/// `.route(...)` would not be. The only ones are the proxy's unprefixed aliases, which the
/// document lists by copying their `/v1` twins.
#[test]
fn no_route_is_mounted_around_the_document() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    for entry in std::fs::read_dir(dir).expect("routes") {
        let path = entry.expect("entry").path();
        let source = std::fs::read_to_string(&path).expect("source");
        for (i, _) in source.match_indices(".route(") {
            let call = &source[i..];
            assert!(
                call.starts_with(".route(ALIASES["),
                "{}: a route mounted outside the OpenAPI document: {}",
                path.display(),
                call.lines().next().unwrap_or_default()
            );
        }
    }
}

#[tokio::test]
async fn the_reference_is_served_from_the_binary_under_its_own_policy() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");
    for file in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let reply = app
            .client
            .get(format!("{}/docs/{file}", app.base))
            .send()
            .await
            .expect("file");
        assert_eq!(reply.status(), StatusCode::OK, "{file}");
    }
}
