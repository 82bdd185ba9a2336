use crate::helpers::TestApp;
use chrono::Datelike;
use reqwest::StatusCode;
use serde_json::json;

fn spec_team() -> serde_json::Value {
    json!({
        "team_id": "engineering-team",
        "team_alias": "Engineering Team",
        "models": ["gpt-4", "gpt-3.5-turbo"],
        "max_budget": 1000.0,
        "tpm_limit": 1000000,
        "rpm_limit": 10000,
        "budget_duration": "30d",
        "metadata": {"department": "Engineering", "cost_center": "CC-123"}
    })
}

#[tokio::test]
async fn a_team_is_created_with_every_field_of_the_spec() {
    let app = TestApp::spawn().await;
    let created = app.new_team(spec_team()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let team = &created.body;
    assert_eq!(team["team_id"], "engineering-team");
    assert_eq!(team["team_alias"], "Engineering Team");
    assert_eq!(team["models"], json!(["gpt-4", "gpt-3.5-turbo"]));
    assert_eq!(team["max_budget"], json!(1000.0));
    assert_eq!(team["spend"], json!(0.0));
    assert_eq!(team["tpm_limit"], json!(1000000));
    assert_eq!(team["rpm_limit"], json!(10000));
    assert_eq!(team["budget_duration"], "30d");
    assert_eq!(team["metadata"]["cost_center"], "CC-123");
    assert_eq!(team["blocked"], json!(false));
    // 30d resets on the 1st of next month, 00:00 UTC.
    let reset = team["budget_reset_at"].as_str().expect("reset time");
    let now = app.clock.now();
    let expected = chrono::NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
        .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
        .expect("date")
        .format("%Y-%m-01T00:00:00Z")
        .to_string();
    assert_eq!(reset, expected);

    let list = app.team_list().await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["teams"].as_array().map(Vec::len), Some(1));
    assert_eq!(list.body["teams"][0], created.body);

    let info = app.team_info("engineering-team").await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.body["team_alias"], "Engineering Team");
    assert_eq!(info.body["members"], json!([]));
    assert_eq!(info.body["team_info"], created.body);
    assert_eq!(info.body["keys"], json!([]));
}

#[tokio::test]
async fn a_team_without_id_gets_a_generated_one_and_defaults() {
    let app = TestApp::spawn().await;
    let created = app.new_team(json!({})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = created.body["team_id"].as_str().expect("id");
    assert!(uuid_like(id), "{id}");
    assert_eq!(created.body["models"], json!([]));
    assert_eq!(created.body["max_budget"], json!(null));
    assert_eq!(created.body["budget_duration"], json!(null));
    assert_eq!(created.body["budget_reset_at"], json!(null));
    assert_eq!(created.body["metadata"], json!({}));
    assert_eq!(app.team_info(id).await.status, StatusCode::OK);
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn update_changes_only_the_fields_sent() {
    let app = TestApp::spawn().await;
    app.new_team(spec_team()).await;
    let before = app.team_info("engineering-team").await.body;

    let updated = app
        .update_team(
            json!({"team_id": "engineering-team", "max_budget": 2000.0, "tpm_limit": 2000000}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["team_id"], "engineering-team");
    assert_eq!(updated.body["data"]["max_budget"], json!(2000.0));

    let after = app.team_info("engineering-team").await.body;
    assert_eq!(after["max_budget"], json!(2000.0));
    assert_eq!(after["tpm_limit"], json!(2000000));
    for unchanged in [
        "team_alias",
        "models",
        "rpm_limit",
        "budget_duration",
        "budget_reset_at",
        "metadata",
        "spend",
        "blocked",
    ] {
        assert_eq!(after[unchanged], before[unchanged], "{unchanged}");
    }

    // null clears a field; a new budget_duration moves the reset.
    let cleared = app
        .update_team(json!({"team_id": "engineering-team", "rpm_limit": null, "budget_duration": "1d", "team_alias": "Eng"}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    let after = app.team_info("engineering-team").await.body;
    assert_eq!(after["rpm_limit"], json!(null));
    assert_eq!(after["team_alias"], "Eng");
    assert_eq!(after["budget_duration"], "1d");
    let tomorrow = (app.clock.now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT00:00:00Z")
        .to_string();
    assert_eq!(after["budget_reset_at"], json!(tomorrow));

    let never = app
        .update_team(json!({"team_id": "engineering-team", "budget_duration": null}))
        .await;
    assert_eq!(never.body["budget_reset_at"], json!(null));
}

#[tokio::test]
async fn block_and_unblock_toggle_the_flag() {
    let app = TestApp::spawn().await;
    app.new_team(spec_team()).await;
    let blocked = app.block_team("engineering-team").await;
    assert_eq!(blocked.status, StatusCode::OK);
    assert_eq!(blocked.body["blocked"], json!(true));
    assert_eq!(
        app.team_info("engineering-team").await.body["blocked"],
        json!(true)
    );
    let unblocked = app.unblock_team("engineering-team").await;
    assert_eq!(unblocked.body["blocked"], json!(false));
    assert_eq!(
        app.team_info("engineering-team").await.body["blocked"],
        json!(false)
    );
    assert_eq!(app.block_team("nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_team_deletes_its_keys() {
    let app = TestApp::spawn().await;
    let key = app.team_with_key("team-1").await;
    app.new_team(json!({"team_id": "team-2"})).await;
    assert_eq!(app.key_info(&key).await.status, StatusCode::OK);

    let deleted = app.delete_teams(&["team-1", "team-2"]).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["deleted_teams"], json!(["team-1", "team-2"]));
    assert_eq!(app.team_info("team-1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.key_info(&key).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.team_list().await.body["teams"], json!([]));
}

#[tokio::test]
async fn deleting_an_unknown_team_deletes_nothing() {
    let app = TestApp::spawn().await;
    app.new_team(json!({"team_id": "team-1"})).await;
    let reply = app.delete_teams(&["team-1", "ghost"]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error_message().contains("ghost"));
    assert_eq!(app.team_info("team-1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn team_info_lists_members_with_masked_keys() {
    let app = TestApp::spawn().await;
    app.new_team(spec_team()).await;
    let mut keys = Vec::new();
    for user in ["alice", "bob"] {
        let reply = app
            .generate_key(
                json!({"team_id": "engineering-team", "user_id": user, "models": ["gpt-4"]}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        keys.push(reply.body["key"].as_str().expect("key").to_string());
    }
    let info = app.team_info("engineering-team").await.body;
    let members = info["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    for (member, key) in members.iter().zip(&keys) {
        let masked = member["key"].as_str().expect("masked key");
        assert_ne!(masked, key);
        assert!(
            masked.starts_with("sk-") && masked.contains("..."),
            "{masked}"
        );
        assert!(key.ends_with(&masked[masked.len() - 4..]));
    }
    assert_eq!(members[0]["user_id"], "alice");
    assert_eq!(members[1]["user_id"], "bob");
    assert!(
        !info.to_string().contains(&keys[0]),
        "team info leaks a key"
    );
}

#[tokio::test]
async fn teams_survive_a_restart() {
    let app = TestApp::spawn().await;
    app.new_team(spec_team()).await;
    let stopped = app.stop().await;
    let storage = server::storage::connect(&stopped.database_url())
        .await
        .expect("reopen");
    let row = storage
        .team("engineering-team")
        .await
        .expect("query")
        .expect("team kept");
    assert_eq!(row.team_alias.as_deref(), Some("Engineering Team"));
    // $1000 in nano-dollars: money is stored as an integer.
    assert_eq!(
        row.budget.max_budget,
        Some(server::money::Nanos(1_000_000_000_000))
    );
}

#[tokio::test]
async fn limits_stop_at_two_to_the_53() {
    let app = TestApp::spawn().await;
    let max = 1u64 << 53;
    for field in ["tpm_limit", "rpm_limit"] {
        let refused = app.new_team(json!({"team_id": "t", field: max + 1})).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.body["error"]["param"], field);
    }
    let created = app
        .new_team(json!({"team_id": "t", "tpm_limit": max, "rpm_limit": max}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.body["tpm_limit"], json!(max));
}

#[tokio::test]
async fn team_list_pages_sorts_and_searches_on_the_server() {
    let app = TestApp::spawn_gateway().await;
    for n in 0..25 {
        let alias = if n % 2 == 0 { "Alpha" } else { "Beta" };
        let team = app
            .new_team(json!({"team_id": format!("t-{n:02}"), "team_alias": format!("{alias} {n:02}"), "max_budget": 10}))
            .await;
        assert_eq!(team.status, StatusCode::OK, "{}", team.body);
    }
    for (team, requests) in [("t-03", 3), ("t-07", 1)] {
        let key = app.generate_key(json!({"team_id": team})).await.body["key"]
            .as_str()
            .expect("key")
            .to_string();
        for _ in 0..requests {
            let reply = app.chat(&key, crate::proxy::ask("gpt-4o")).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
    }
    // Spend sorts use the committed figures: wait for the spend writer.
    app.wait_for_logs("t-03", 3).await;
    app.wait_for_logs("t-07", 1).await;
    let ids = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["teams"]
            .as_array()
            .expect("teams")
            .iter()
            .map(|t| t["team_id"].as_str().expect("id").to_string())
            .collect()
    };

    // Without paging, the spec's answer: every team, and nothing else.
    let all = app.get("/team/list").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(ids(&all).len(), 25);
    assert_eq!(
        all.body.as_object().expect("object").len(),
        1,
        "{}",
        all.body
    );

    let first = app.get("/team/list?size=10").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        ids(&first),
        (0..10).map(|n| format!("t-{n:02}")).collect::<Vec<_>>()
    );
    assert_eq!(first.body["total_count"], 25);
    assert_eq!(first.body["total_pages"], 3);
    assert_eq!(first.body["current_page"], 1);
    let last = app.get("/team/list?size=10&page=3").await;
    assert_eq!(
        ids(&last),
        (20..25).map(|n| format!("t-{n:02}")).collect::<Vec<_>>()
    );
    let beyond = app.get("/team/list?size=10&page=9").await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert!(ids(&beyond).is_empty());

    let spenders = app.get("/team/list?sort=-spend&size=2").await;
    assert_eq!(ids(&spenders), ["t-03", "t-07"], "{}", spenders.body);
    let used = app.get("/team/list?sort=-used&size=1").await;
    assert_eq!(ids(&used), ["t-03"]);
    let by_name = app.get("/team/list?sort=-name&size=2").await;
    assert_eq!(ids(&by_name), ["t-23", "t-21"]);

    // Search: alias or id, ignoring case.
    let betas = app.get("/team/list?search=BETA&sort=name&size=100").await;
    assert_eq!(betas.body["total_count"], 12);
    assert!(ids(&betas)
        .iter()
        .all(|id| id.ends_with(['1', '3', '5', '7', '9'])));
    let by_id = app.get("/team/list?search=t-1&size=100").await;
    assert_eq!(
        ids(&by_id),
        (10..20).map(|n| format!("t-{n}")).collect::<Vec<_>>()
    );
    let none = app.get("/team/list?search=nobody").await;
    assert_eq!(none.body["total_count"], 0);
    // LIKE's wildcards are searched for as text.
    let literal = app.get("/team/list?search=t_0").await;
    assert_eq!(literal.body["total_count"], 0, "{}", literal.body);
    let percent = app.get("/team/list?search=%25").await;
    assert_eq!(percent.body["total_count"], 0, "{}", percent.body);

    for (query, param) in [
        ("sort=bogus", "sort"),
        ("page=0", "page"),
        ("size=1000", "size"),
        ("size=-1", ""),
        ("unknown=1", ""),
    ] {
        let reply = app.get(&format!("/team/list?{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        reply.error_message();
        if !param.is_empty() {
            assert_eq!(reply.body["error"]["param"], param, "{query}");
        }
    }
}
