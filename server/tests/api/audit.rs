//! The audit log: one row per target of each successful change, none for refused ones, with
//! who, what, before and after (no secrets), and the filters of `GET /audit`.

use crate::helpers::{ok, TestApp, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn entries(reply: &crate::helpers::Reply) -> Vec<Value> {
    ok(reply)["entries"].as_array().expect("entries").clone()
}

#[tokio::test]
async fn every_successful_change_has_its_row_and_refused_ones_none() {
    let app = TestApp::spawn().await;
    // The admin key's holder names themself with LiteLLM's header.
    let made = app
        .client
        .post(format!("{}/team/new", app.base))
        .bearer_auth(ADMIN_KEY)
        .header("LiteLLM-Changed-By", "alice@corp.example")
        .json(&json!({"team_id": "ml", "max_budget": 10}))
        .send()
        .await
        .expect("sent");
    assert_eq!(made.status(), StatusCode::OK);
    ok(&app
        .update_team(json!({"team_id": "ml", "max_budget": 20}))
        .await);
    // Refused: bad input, an unknown team, a role that may not. None leaves a row.
    let before = ok(&app.get("/audit").await)["total_count"].clone();
    assert_eq!(
        app.update_team(json!({"team_id": "ml", "max_budget": -1}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.update_team(json!({"team_id": "nope", "max_budget": 1}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    ok(&app
        .post(
            "/user/new",
            json!({"user_id": "ada", "teams": ["ml"], "user_role": "internal_user"}),
        )
        .await);
    let after_user = ok(&app.get("/audit").await)["total_count"].clone();
    assert!(after_user.as_u64() > before.as_u64());
    let ada_key = app
        .generate_key(json!({"team_id": "ml", "user_id": "ada"}))
        .await;
    let ada_key = ok(&ada_key)["key"].as_str().expect("key").to_string();
    let refused = app
        .send(
            Method::POST,
            "/team/update",
            Some(&ada_key),
            Some(json!({"team_id": "ml", "max_budget": 1000})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let team_log = app.get("/audit?target_type=team&target_id=ml").await;
    let rows = entries(&team_log);
    let routes: Vec<&str> = rows
        .iter()
        .map(|r| r["route"].as_str().expect("route"))
        .collect();
    // Newest first: the update, then the creation (the refused ones left nothing; the user's
    // membership is the member's row, not the team's).
    assert_eq!(routes, ["/team/update", "/team/new"], "{rows:?}");
    let (update, create) = (&rows[0], &rows[1]);
    assert_eq!(create["actor"], "alice@corp.example");
    assert_eq!(create["changed_by"], "alice@corp.example");
    assert_eq!(create["method"], "POST");
    assert_eq!(create["address"], "127.0.0.1");
    assert!(create["before"].is_null());
    assert_eq!(create["after"]["max_budget"], 10.0);
    assert_eq!(update["actor"], "admin");
    assert_eq!(update["before"]["max_budget"], 10.0);
    assert_eq!(update["after"]["max_budget"], 20.0);
    assert_ne!(update["request_id"], create["request_id"]);
    // The stored team holds what the log says.
    assert_eq!(ok(&app.team_info("ml").await)["max_budget"], 20.0);

    // A key's row never holds its secret or hash.
    let keys = app.get("/audit?target_type=key").await;
    let text = ok(&keys).to_string();
    assert!(!text.contains(&ada_key), "the secret is in the log");
    assert!(
        !text.contains(&ada_key[ada_key.len() - 12..]),
        "the secret is in the log"
    );
    assert!(entries(&keys).iter().any(|r| r["after"]["key_name"]
        .as_str()
        .is_some_and(|k| k.contains("..."))));

    // A person's own change is theirs.
    let own = app
        .send(
            Method::POST,
            "/key/generate",
            Some(&ada_key),
            Some(json!({"team_id": "ml", "key_alias": "second"})),
        )
        .await;
    ok(&own);
    let by_ada = app.get("/audit?actor=ada").await;
    let rows = entries(&by_ada);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["route"], "/key/generate");
    assert_eq!(rows[0]["after"]["key_alias"], "second");
}

#[tokio::test]
async fn the_log_is_filtered_by_time_and_paged() {
    let app = TestApp::spawn().await;
    for n in 0..5 {
        ok(&app.new_team(json!({"team_id": format!("t{n}")})).await);
    }
    let page = app.get("/audit?size=2&page=2").await;
    assert_eq!(ok(&page)["total_count"], 5);
    assert_eq!(ok(&page)["total_pages"], 3);
    let ids: Vec<String> = entries(&page)
        .iter()
        .map(|r| r["target_id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids, ["t2", "t1"]);
    let future = app.get("/audit?start=2999-01-01").await;
    assert_eq!(ok(&future)["total_count"], 0);
    let past = app.get("/audit?end=2000-01-01").await;
    assert_eq!(ok(&past)["total_count"], 0);
    let bad = app.get("/audit?start=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["param"], "start");
}

/// Makes the database refuse to commit a transaction that gives a team the alias
/// `fails-at-commit` or deletes a team with the alias `doomed`: a trigger then writes a row
/// whose deferred foreign key is checked only at COMMIT. The statements themselves succeed.
async fn trap_commits(app: &TestApp) {
    use sqlx::Connection;
    let url = app.database_url();
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        for sql in [
            "CREATE TABLE commit_trap (team_id TEXT REFERENCES teams(team_id) \
             DEFERRABLE INITIALLY DEFERRED)",
            "CREATE FUNCTION trap() RETURNS trigger AS $$ BEGIN \
             INSERT INTO commit_trap VALUES ('no-such-team'); RETURN NULL; END $$ \
             LANGUAGE plpgsql",
            "CREATE TRIGGER trap_update AFTER UPDATE ON teams FOR EACH ROW \
             WHEN (NEW.team_alias = 'fails-at-commit') EXECUTE FUNCTION trap()",
            "CREATE TRIGGER trap_delete AFTER DELETE ON teams FOR EACH ROW \
             WHEN (OLD.team_alias = 'doomed') EXECUTE FUNCTION trap()",
        ] {
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        }
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        for sql in [
            "PRAGMA foreign_keys = ON",
            "CREATE TABLE commit_trap (team_id TEXT REFERENCES teams(team_id) \
             DEFERRABLE INITIALLY DEFERRED)",
            "CREATE TRIGGER trap_update AFTER UPDATE ON teams \
             WHEN NEW.team_alias = 'fails-at-commit' \
             BEGIN INSERT INTO commit_trap VALUES ('no-such-team'); END",
            "CREATE TRIGGER trap_delete AFTER DELETE ON teams WHEN OLD.team_alias = 'doomed' \
             BEGIN INSERT INTO commit_trap VALUES ('no-such-team'); END",
        ] {
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        }
    }
}

#[tokio::test]
async fn a_change_whose_commit_fails_leaves_memory_as_the_database_is() {
    let app = TestApp::spawn_gateway().await;
    let key = app.team_with_key("ml").await;
    ok(&app
        .update_team(json!({"team_id": "ml", "team_alias": "doomed"}))
        .await);
    trap_commits(&app).await;
    let rows = ok(&app.get("/audit").await)["total_count"].clone();

    // A block whose commit fails: the team is not blocked, here or in the database.
    let block = app
        .update_team(json!({"team_id": "ml", "team_alias": "fails-at-commit", "blocked": true}))
        .await;
    assert!(
        block.status.is_server_error(),
        "{}: {}",
        block.status,
        block.body
    );
    assert_eq!(
        block.body["error"]["type"], "internal_server_error",
        "{}",
        block.body
    );
    let info = ok(&app.team_info("ml").await).clone();
    assert_eq!(info["team_info"]["blocked"], false, "{info}");
    assert_eq!(info["team_info"]["team_alias"], "doomed", "{info}");
    ok(&app.chat(&key, crate::helpers::ask("gpt-4o")).await);

    // A deletion whose commit fails: the team and its key still work.
    let delete = app.delete_teams(&["ml"]).await;
    assert!(
        delete.status.is_server_error(),
        "{}: {}",
        delete.status,
        delete.body
    );
    ok(&app.team_info("ml").await);
    ok(&app.chat(&key, crate::helpers::ask("gpt-4o")).await);

    // Neither left a row in the log; a change that commits still does, and holds at once.
    assert_eq!(ok(&app.get("/audit").await)["total_count"], rows);
    ok(&app.block_team("ml").await);
    let refused = app.chat(&key, crate::helpers::ask("gpt-4o")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert_eq!(
        ok(&app.get("/audit").await)["total_count"],
        rows.as_u64().expect("count") + 1
    );
}
