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
