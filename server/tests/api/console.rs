use crate::helpers::TestApp;
use reqwest::{header, StatusCode};

#[tokio::test]
async fn pages_are_server_rendered_and_compressed_api_answers_are_not() {
    let app = TestApp::spawn().await;
    let get = |path: &str| {
        app.client
            .get(format!("{}{path}", app.base))
            .header(header::ACCEPT_ENCODING, "gzip")
            .bearer_auth(crate::helpers::ADMIN_KEY)
            .send()
    };
    let page = get("/").await.expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[header::CONTENT_ENCODING], "gzip");
    assert!(page.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let api = get("/team/list").await.expect("sent");
    assert_eq!(api.status(), StatusCode::OK);
    assert!(api.headers().get(header::CONTENT_ENCODING).is_none());
}

/// LiteLLM's routes Gatehouse lacks, asked by an API client, get the JSON 404 (its client
/// would crash decoding the console's page); a browser asking for an unknown page gets the page.
#[tokio::test]
async fn api_clients_get_json_for_unknown_paths_browsers_get_the_page() {
    let app = TestApp::spawn().await;
    let url = |path: &str| format!("{}{path}", app.base);
    let answers = [
        app.client
            .post(url("/team/bulk_member_add"))
            .bearer_auth(crate::helpers::ADMIN_KEY)
            .send(),
        app.client
            .post(url("/customer/new"))
            .header(header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send(),
        app.client
            .get(url("/global/spend/report"))
            .header(header::ACCEPT, "application/json")
            .send(),
    ];
    for answer in answers {
        let answer = answer.await.expect("sent");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        let body: serde_json::Value = answer.json().await.expect("JSON, not a page");
        assert_eq!(body["error"]["code"], "404");
    }
    let page = app
        .client
        .get(url("/no-such-page"))
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
}
