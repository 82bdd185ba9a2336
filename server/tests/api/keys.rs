use crate::helpers::{TestApp, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn app_with_team() -> TestApp {
    let app = TestApp::spawn().await;
    let team = app
        .new_team(json!({"team_id": "data-science-team", "models": ["gpt-4", "claude-2"]}))
        .await;
    assert_eq!(team.status, StatusCode::OK);
    app
}

#[tokio::test]
async fn a_generated_key_is_shown_once_and_stored_only_as_a_hash() {
    let app = app_with_team().await;
    let reply = app
        .generate_key(json!({
            "team_id": "data-science-team", "user_id": "ds-user-1", "models": ["gpt-4"],
            "duration": "30d", "key_alias": "notebook", "max_budget": 25.5,
            "tpm_limit": 1000, "rpm_limit": 10, "budget_duration": "1d", "metadata": {"env": "dev"}
        }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = &reply.body;
    let key = body["key"].as_str().expect("key");
    assert!(key.starts_with("sk-") && key.len() > 40, "{key}");
    assert_eq!(body["team_id"], "data-science-team");
    assert_eq!(body["user_id"], "ds-user-1");
    assert_eq!(body["models"], json!(["gpt-4"]));
    assert_eq!(body["key_alias"], "notebook");
    assert_eq!(body["max_budget"], json!(25.5));
    assert_eq!(body["metadata"], json!({"env": "dev"}));
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires"].as_str().expect("expires"))
        .expect("rfc3339");
    let days = (expires.with_timezone(&chrono::Utc) - app.clock.now()).num_hours();
    assert!((29 * 24..=30 * 24).contains(&days), "expires in {days} h");

    // Never shown again.
    let token = body["token"].as_str().expect("token");
    let info = app.key_info(token).await;
    assert_eq!(info.status, StatusCode::OK);
    assert!(!info.body.to_string().contains(key));
    assert_eq!(info.body["info"]["key_name"], body["key_name"]);
    let list = app.key_list("").await;
    assert!(!list.body.to_string().contains(key));

    // The database holds neither the key nor its secret part.
    let bytes = app.stop().await.stored_bytes().await;
    let secret = &key[key.find('_').expect("separator") + 1..];
    assert!(
        find(&bytes, key.as_bytes()).is_none(),
        "raw key in database"
    );
    assert!(
        find(&bytes, secret.as_bytes()).is_none(),
        "secret in database"
    );
    assert!(find(&bytes, server::service::secrets::sha256_hex(key).as_bytes()).is_some());
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn key_info_accepts_the_key_or_its_token() {
    let app = app_with_team().await;
    let generated = app
        .generate_key(json!({"team_id": "data-science-team"}))
        .await
        .body;
    let key = generated["key"].as_str().expect("key");
    let token = generated["token"].as_str().expect("token");
    let by_key = app.key_info(key).await;
    let by_token = app.key_info(token).await;
    assert_eq!(by_key.status, StatusCode::OK);
    assert_eq!(by_key.body, by_token.body);
    assert_eq!(by_key.body["key"], json!(token), "the secret is not echoed");
    assert_eq!(
        app.key_info("sk-unknown_key").await.status,
        StatusCode::NOT_FOUND
    );
}

/// LiteLLM's callers name a key by its SHA-256 (`token_id`): accepted wherever a key is named,
/// never as a credential.
#[tokio::test]
async fn a_keys_sha256_names_it_but_never_authenticates() {
    let app = TestApp::spawn_gateway().await;
    app.new_team(json!({"team_id": "t"})).await;
    let generated = app.generate_key(json!({"team_id": "t"})).await.body;
    let key = generated["key"].as_str().expect("key");
    let token = generated["token"].as_str().expect("token");
    let hash = generated["token_id"]
        .as_str()
        .expect("token_id")
        .to_string();
    assert_eq!(hash.len(), 64);
    assert_ne!(hash, token);

    let by_hash = app.key_info(&hash).await;
    assert_eq!(by_hash.status, StatusCode::OK);
    assert_eq!(by_hash.body["key"], json!(token));
    assert_eq!(
        app.key_info(&hash.to_uppercase()).await.status,
        StatusCode::OK
    );
    let blocked = app.post("/key/block", json!({"key": hash})).await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.body);
    assert_eq!(blocked.body["blocked"], json!(true));
    app.post("/key/unblock", json!({"key": hash})).await;
    let updated = app
        .post("/key/update", json!({"key": hash, "key_alias": "by-hash"}))
        .await;
    assert_eq!(updated.body["key_alias"], "by-hash");

    // As a bearer credential the hash is nothing: it would make the stored hash a password.
    let ask = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        app.chat(&hash, ask.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.chat(key, ask).await.status, StatusCode::OK);

    let deleted = app.post("/key/delete", json!({"keys": [hash]})).await;
    assert_eq!(deleted.body["deleted_keys"], json!([token]));
    assert_eq!(app.key_info(key).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn key_models_must_be_within_the_team_models() {
    let app = app_with_team().await;
    let reply = app
        .generate_key(json!({"team_id": "data-science-team", "models": ["gpt-4", "gpt-4o"]}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error_message().contains("gpt-4o"));
    assert_eq!(reply.body["error"]["param"], "models");
    assert_eq!(app.key_list("").await.body["total_count"], json!(0));

    // A team with no model list allows any model.
    app.new_team(json!({"team_id": "open"})).await;
    let open = app
        .generate_key(json!({"team_id": "open", "models": ["gpt-4o"]}))
        .await;
    assert_eq!(open.status, StatusCode::OK);

    // Updates are held to the same rule.
    let token = app
        .generate_key(json!({"team_id": "data-science-team", "models": ["gpt-4"]}))
        .await
        .body["token"]
        .clone();
    let update = app
        .update_key(json!({"key": token, "models": ["llama-3"]}))
        .await;
    assert_eq!(update.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.key_info(token.as_str().expect("token")).await.body["info"]["models"],
        json!(["gpt-4"])
    );
}

#[tokio::test]
async fn a_key_needs_an_existing_team() {
    let app = app_with_team().await;
    let unknown = app.generate_key(json!({"team_id": "no-such-team"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    unknown.error_message();
    let missing = app.generate_key(json!({"user_id": "x"})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body["error"]["param"], "team_id");
}

#[tokio::test]
async fn key_list_filters_by_team_and_paginates() {
    let app = app_with_team().await;
    app.new_team(json!({"team_id": "other"})).await;
    for i in 0..5 {
        app.generate_key(json!({"team_id": "data-science-team", "user_id": format!("u{i}")}))
            .await;
    }
    app.generate_key(json!({"team_id": "other"})).await;

    let page1 = app.key_list("?team_id=data-science-team&size=2").await.body;
    assert_eq!(page1["total_count"], json!(5));
    assert_eq!(page1["total_pages"], json!(3));
    assert_eq!(page1["current_page"], json!(1));
    assert_eq!(page1["keys"][0]["user_id"], "u0");
    let page3 = app
        .key_list("?team_id=data-science-team&size=2&page=3")
        .await
        .body;
    assert_eq!(page3["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(page3["keys"][0]["user_id"], "u4");
    assert_eq!(app.key_list("").await.body["total_count"], json!(6));
    assert_eq!(
        app.key_list("?size=0").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.key_list("?page=0").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.key_list("?page=x").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn key_update_block_and_delete() {
    let app = app_with_team().await;
    let generated = app
        .generate_key(json!({"team_id": "data-science-team", "key_alias": "a", "max_budget": 5.0}))
        .await
        .body;
    let key = generated["key"].as_str().expect("key");

    let updated = app
        .update_key(json!({"key": key, "max_budget": 7.5, "duration": "1h", "metadata": {"x": 1}}))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["max_budget"], json!(7.5));
    assert_eq!(updated.body["key_alias"], "a");
    assert!(updated.body["expires"].is_string());
    let forever = app.update_key(json!({"key": key, "duration": null})).await;
    assert_eq!(forever.body["expires"], json!(null));

    assert_eq!(app.block_key(key).await.body["blocked"], json!(true));
    assert_eq!(app.key_info(key).await.body["info"]["blocked"], json!(true));
    assert_eq!(app.unblock_key(key).await.body["blocked"], json!(false));

    let token = generated["token"].as_str().expect("token");
    let deleted = app.delete_keys(&[key]).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["deleted_keys"], json!([token]));
    assert_eq!(app.key_info(token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete_keys(&[token]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_deleted_key_no_longer_identifies_its_holder() {
    let app = app_with_team().await;
    let key = app
        .generate_key(json!({"team_id": "data-science-team"}))
        .await
        .body["key"]
        .as_str()
        .expect("key")
        .to_string();
    // While it exists, the key is recognised (and refused) on admin routes...
    let as_key = app.send(Method::GET, "/team/list", Some(&key), None).await;
    assert_eq!(as_key.status, StatusCode::FORBIDDEN);
    app.delete_keys(&[&key]).await;
    // ...and once deleted it is just an invalid credential.
    let after = app.send(Method::GET, "/team/list", Some(&key), None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_ne!(key, ADMIN_KEY);
}
