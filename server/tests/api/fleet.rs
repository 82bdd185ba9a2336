//! Three instances on one PostgreSQL database and one Redis behave as one gateway: requests go
//! round-robin over them, admin calls to any of them. (Killing one under load: process tests.)

use crate::helpers::{Reply, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::money::Nanos;
use std::time::{Duration, Instant};

/// 6 prompt tokens and 5 completion tokens: 6 × $0.000001 + 5 × $0.000002.
fn ask() -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 5})
}
const COST: f64 = 0.000016;
/// What it reserves: 11 prompt tokens as counted before the call, plus 5 output tokens.
const BOUND: f64 = 11.0 * 0.000001 + 5.0 * 0.000002;

async fn fleet() -> Option<Vec<TestApp>> {
    TestApp::spawn_fleet(3).await
}

/// A team made on the first instance with these fields, and a key in it.
async fn team_key(apps: &[TestApp], team: Value) -> String {
    let created = apps[0].new_team(team.clone()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let key = apps[0]
        .generate_key(json!({"team_id": team["team_id"]}))
        .await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.body);
    key.body["key"].as_str().expect("key").to_string()
}

fn spend(reply: &Reply) -> f64 {
    reply.body["spend"].as_f64().expect("spend")
}

/// Sends `n` requests one after another, round-robin; answers the replies.
async fn round_robin(apps: &[TestApp], key: &str, n: usize) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(n);
    for i in 0..n {
        replies.push(apps[i % apps.len()].chat(key, ask()).await);
    }
    replies
}

fn count(replies: &[Reply], status: StatusCode) -> usize {
    replies.iter().filter(|r| r.status == status).count()
}

#[tokio::test]
async fn a_teams_rpm_is_one_limit_for_the_fleet() {
    let Some(apps) = fleet().await else { return };
    let key = team_key(&apps, json!({"team_id": "t", "rpm_limit": 30})).await;
    let replies = round_robin(&apps, &key, 90).await;
    assert_eq!(count(&replies, StatusCode::OK), 30);
    assert_eq!(count(&replies, StatusCode::TOO_MANY_REQUESTS), 60);
    for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(reply.body["error"]["type"], "rate_limit_error");
        assert!(reply.headers.contains_key("retry-after"));
    }
}

#[tokio::test]
async fn a_teams_tpm_is_one_limit_for_the_fleet() {
    let Some(apps) = fleet().await else { return };
    let key = team_key(&apps, json!({"team_id": "t", "tpm_limit": 100})).await;
    let replies = round_robin(&apps, &key, 30).await;
    // Each request uses 11 tokens: requests are admitted while fewer than 100 are used, so
    // exactly 10, wherever they land, and none after.
    assert_eq!(count(&replies, StatusCode::OK), 10);
    assert!(replies[10..]
        .iter()
        .all(|r| r.status == StatusCode::TOO_MANY_REQUESTS
            && r.body["error"]["type"] == "rate_limit_error"));
}

#[tokio::test]
async fn a_teams_budget_is_one_budget_for_the_fleet() {
    let Some(apps) = fleet().await else { return };
    let budget = 10.5 * COST;
    let key = team_key(&apps, json!({"team_id": "t", "max_budget": budget})).await;
    let requests = (0..60).map(|i| apps[i % 3].chat(&key, ask()));
    let replies = futures_util::future::join_all(requests).await;
    let ok = count(&replies, StatusCode::OK);
    assert_eq!(ok + count(&replies, StatusCode::BAD_REQUEST), 60);
    for app in &apps {
        let spend = spend(&app.team_info("t").await);
        assert!(
            (spend - ok as f64 * COST).abs() < 1e-12,
            "spend {spend} for {ok}"
        );
        assert!(spend <= budget, "spent {spend} of {budget}");
    }
    // Every reservation came back: requests go on, anywhere, until one more cannot fit.
    let mut i = 0;
    while apps[i % 3].chat(&key, ask()).await.status == StatusCode::OK {
        i += 1;
        assert!(i <= 11, "the budget never ran out");
    }
    let spend = spend(&apps[2].team_info("t").await);
    assert!(
        spend <= budget && spend + BOUND > budget,
        "spent {spend} of {budget}"
    );
}

#[tokio::test]
async fn keys_made_or_deleted_anywhere_hold_everywhere_at_once() {
    let Some(apps) = fleet().await else { return };
    let key = team_key(&apps, json!({"team_id": "t"})).await;
    assert_eq!(apps[1].chat(&key, ask()).await.status, StatusCode::OK);
    assert_eq!(apps[2].chat(&key, ask()).await.status, StatusCode::OK);

    // Another key, tried on the second instance before and right after it is made.
    let bogus = "sk-000000000000_0000000000000000000000000000000000000000";
    assert_eq!(
        apps[1].chat(bogus, ask()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let second = apps[2].generate_key(json!({"team_id": "t"})).await.body["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(apps[1].chat(&second, ask()).await.status, StatusCode::OK);

    assert_eq!(apps[0].delete_keys(&[&key]).await.status, StatusCode::OK);
    let refused = until(&apps[1], &key, StatusCode::UNAUTHORIZED).await;
    eprintln!("a key deleted on one instance was refused by another after {refused:?}");
}

/// Sends requests to `app` until one gets `status` (at most 5 s); answers how long it took.
async fn until(app: &TestApp, key: &str, status: StatusCode) -> Duration {
    let started = Instant::now();
    loop {
        if app.chat(key, ask()).await.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_block_reaches_every_instance() {
    let Some(apps) = fleet().await else { return };
    let key = team_key(&apps, json!({"team_id": "t"})).await;
    assert_eq!(apps[2].chat(&key, ask()).await.status, StatusCode::OK);

    assert_eq!(apps[0].block_team("t").await.status, StatusCode::OK);
    let blocked = until(&apps[2], &key, StatusCode::UNAUTHORIZED).await;
    // Each instance hears of it on its own: the other one too, soon.
    until(&apps[1], &key, StatusCode::UNAUTHORIZED).await;
    assert_eq!(apps[0].unblock_team("t").await.status, StatusCode::OK);
    let unblocked = until(&apps[2], &key, StatusCode::OK).await;
    eprintln!(
        "propagation: block {} ms, unblock {} ms (target 100 ms)",
        blocked.as_millis(),
        unblocked.as_millis()
    );
    // A team deleted on one instance is gone on the others, keys and all.
    assert_eq!(apps[1].delete_teams(&["t"]).await.status, StatusCode::OK);
    until(&apps[0], &key, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn spend_from_every_instance_adds_up() {
    let Some(apps) = fleet().await else { return };
    let key = team_key(&apps, json!({"team_id": "t", "max_budget": 1.0})).await;
    let sequential = round_robin(&apps, &key, 30).await;
    let concurrent =
        futures_util::future::join_all((0..30).map(|i| apps[i % 3].chat(&key, ask()))).await;
    let ok = count(&sequential, StatusCode::OK) + count(&concurrent, StatusCode::OK);
    assert_eq!(ok, 60);
    let logs = apps[1].wait_for_logs("t", 60).await;
    assert_eq!(logs["total_count"], 60);
    let logged = apps[0]
        .running_storage()
        .spend_logs(
            &server::storage::SpendFilter {
                team_id: Some("t".into()),
                ..Default::default()
            },
            0,
            1000,
        )
        .await
        .expect("logs")
        .0
        .iter()
        .map(|log| log.cost)
        .sum::<Nanos>();
    assert_eq!(logged, Nanos(60 * 16_000));
    assert_eq!(apps[2].stored_team("t").await.budget.spend, logged);
    for app in &apps {
        assert!((spend(&app.team_info("t").await) - 60.0 * COST).abs() < 1e-12);
    }
}

#[tokio::test]
async fn a_budget_resets_once_for_the_fleet() {
    let Some(apps) = fleet().await else { return };
    let key = team_key(
        &apps,
        json!({"team_id": "t", "max_budget": 1.0, "budget_duration": "1d"}),
    )
    .await;
    assert_eq!(count(&round_robin(&apps, &key, 3).await, StatusCode::OK), 3);
    apps[0].wait_for_logs("t", 3).await;
    assert!((spend(&apps[0].team_info("t").await) - 3.0 * COST).abs() < 1e-12);

    // The window ends for two instances at once; both run their resets in the same moment
    // (their writers may get there first: either way, once).
    for app in &apps[..2] {
        app.clock.advance(24 * 3_600_000);
    }
    let (a, b) = tokio::join!(apps[0].reset_due_budgets(), apps[1].reset_due_budgets());
    assert!(a + b <= 1);
    assert_eq!(apps[1].stored_team("t").await.budget.budget_window, 1);
    for app in &apps {
        assert_eq!(spend(&app.team_info("t").await), 0.0);
    }

    // Spend of the new window survives the resets that lost, and the database agrees.
    assert_eq!(apps[2].chat(&key, ask()).await.status, StatusCode::OK);
    let (a, b) = tokio::join!(apps[0].reset_due_budgets(), apps[1].reset_due_budgets());
    assert_eq!(a + b, 0);
    apps[0].wait_for_logs("t", 4).await;
    let stored = apps[0].stored_team("t").await.budget;
    assert_eq!((stored.budget_window, stored.spend), (1, Nanos(16_000)));
    for app in &apps {
        assert!((spend(&app.team_info("t").await) - COST).abs() < 1e-12);
    }
}

#[tokio::test]
async fn a_redis_password_in_the_url_is_used() {
    let Some(redis) = crate::helpers::redis_url().await else {
        return;
    };
    // A Redis user of this test's own, allowed only this test's keys and channel.
    let prefix = crate::helpers::redis_prefix();
    let user = prefix.clone();
    let client = redis::Client::open(redis.as_str()).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(">s3cret-pass")
        .arg(format!("~{prefix}:*"))
        .arg(format!("&{prefix}:*"))
        .arg("+@all")
        .query_async(&mut con)
        .await
        .expect("ACL SETUSER");
    // With a wrong password Gatehouse does not start, and says why without the password.
    let wrong = redis.replacen("redis://", &format!("redis://{user}:bad-pass-9@"), 1);
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let config = <server::config::Config as clap::Parser>::try_parse_from([
        "gatehouse",
        "--port",
        "0",
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--master-key",
        crate::helpers::ADMIN_KEY,
        "--redis-url",
        &wrong,
        "--redis-prefix",
        &prefix,
    ])
    .expect("config");
    let refused = format!(
        "{:#}",
        server::start(config).await.err().expect("refused to start")
    );
    assert!(refused.contains("Redis"), "{refused}");
    assert!(!refused.contains("bad-pass-9"), "{refused}");

    let url = redis.replacen("redis://", &format!("redis://{user}:s3cret-pass@"), 1);
    let app = TestApp::spawn_gateway_on(
        std::sync::Arc::new(crate::helpers::TestDatabase::create().await),
        &["--redis-url", &url, "--redis-prefix", &prefix],
    )
    .await;
    let key = app.team_with_key("t").await;
    let reply = app.chat(&key, ask()).await;
    let live = spend(&app.team_info("t").await);
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut con)
        .await
        .expect("ACL DELUSER");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!((live - COST).abs() < 1e-12, "spend {live}");
}

/// Without the notices (two instances on one database, no Redis), a key made on one instance is
/// found in the database by the other on its first request; a bogus key is refused.
#[tokio::test]
async fn a_key_an_instance_does_not_hold_is_looked_up_in_the_database() {
    let Some(database) = crate::helpers::TestDatabase::create_postgres().await else {
        return;
    };
    let database = std::sync::Arc::new(database);
    let a = TestApp::spawn_gateway_on(database.clone(), &[]).await;
    let b = TestApp::spawn_gateway_on(database, &[]).await;
    let key = a.team_with_key("t").await;
    let last = if key.ends_with('x') { "y" } else { "x" };
    let bogus = format!("{}{last}", &key[..key.len() - 1]);
    for _ in 0..2 {
        let refused = b.chat(&bogus, ask()).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    }
    assert_eq!(b.chat(&key, ask()).await.status, StatusCode::OK);
    let info = b.key_info(&key).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
}

#[tokio::test]
async fn a_page_on_one_instance_sees_spend_made_on_another() {
    let Some(apps) = fleet().await else { return };
    let key = team_key(&apps, json!({"team_id": "t", "max_budget": 1.0})).await;
    let mut events = crate::live::Events::open(&apps[1], "team_ids=t").await;
    assert_eq!(events.budgets().await[0]["spend"], 0.0);
    assert_eq!(apps[2].chat(&key, ask()).await.status, StatusCode::OK);
    assert_eq!(events.budgets().await[0]["spend"], COST);
}

#[tokio::test]
async fn a_users_limit_is_one_limit_for_the_fleet_over_all_the_users_keys() {
    let Some(apps) = fleet().await else { return };
    assert_eq!(
        apps[0].new_team(json!({"team_id": "t"})).await.status,
        StatusCode::OK
    );
    let user = apps[1]
        .post(
            "/user/new",
            json!({"user_id": "u", "rpm_limit": 4, "auto_create_key": false}),
        )
        .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.body);
    let mut keys = Vec::new();
    for app in &apps[..2] {
        let key = app
            .generate_key(json!({"team_id": "t", "user_id": "u"}))
            .await;
        assert_eq!(key.status, StatusCode::OK, "{}", key.body);
        keys.push(key.body["key"].as_str().expect("key").to_string());
    }
    let mut replies = Vec::new();
    for i in 0..9 {
        replies.push(apps[i % 3].chat(&keys[i % 2], ask()).await);
    }
    assert_eq!(count(&replies, StatusCode::OK), 4);
    assert_eq!(count(&replies, StatusCode::TOO_MANY_REQUESTS), 5);
    // Deleted on one instance, the user's keys stop everywhere.
    let deleted = apps[2]
        .post("/user/delete", json!({"user_ids": ["u"]}))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    for (app, key) in apps.iter().zip(keys.iter().cycle()) {
        until(app, key, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn an_organizations_and_a_members_limits_hold_for_the_fleet() {
    let Some(apps) = fleet().await else { return };
    let org = apps[0]
        .post(
            "/organization/new",
            json!({"organization_id": "o", "rpm_limit": 5}),
        )
        .await;
    assert_eq!(org.status, StatusCode::OK, "{}", org.body);
    for team in ["a", "b"] {
        let made = apps[1]
            .new_team(json!({"team_id": team, "organization_id": "o"}))
            .await;
        assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    }
    let member = apps[2]
        .post(
            "/team/member_add",
            json!({"team_id": "a", "member": {"user_id": "m"}, "rpm_limit": 2}),
        )
        .await;
    assert_eq!(member.status, StatusCode::OK, "{}", member.body);
    let mut keys = Vec::new();
    for (app, body) in apps.iter().zip([
        json!({"team_id": "a", "user_id": "m"}),
        json!({"team_id": "b"}),
    ]) {
        let reply = app.generate_key(body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        keys.push(reply.body["key"].as_str().expect("key").to_string());
    }
    // The member's 2 a minute, fleet-wide, through three instances.
    let mut member_replies = Vec::new();
    for i in 0..4 {
        member_replies.push(apps[i % 3].chat(&keys[0], ask()).await);
    }
    assert_eq!(count(&member_replies, StatusCode::OK), 2);
    // The organization's 5 a minute over both teams: 3 more pass, from team b.
    let mut org_replies = Vec::new();
    for i in 0..6 {
        org_replies.push(apps[i % 3].chat(&keys[1], ask()).await);
    }
    assert_eq!(count(&org_replies, StatusCode::OK), 3);
    assert_eq!(count(&org_replies, StatusCode::TOO_MANY_REQUESTS), 3);
}

/// What a gate fresh from the database holds now: what every instance must come to hold.
async fn from_database(app: &TestApp) -> std::collections::BTreeMap<String, String> {
    use server::{gate::Gate, notices::Alone, service::budgets};
    let clock = app.gate().clock.clone();
    let admission = std::sync::Arc::new(server::gate::local::LocalAdmission::new(clock.clone()));
    let fresh = Gate::new(clock, admission, std::sync::Arc::new(Alone));
    let stored = budgets::stored(app.running_storage().as_ref())
        .await
        .expect("stored");
    fresh.load(&stored).await;
    fresh.snapshot()
}

/// One admin change drawn at random over a few ids, so that changes meet: teams, keys, users,
/// memberships, an organization. Many are refused (a team that is gone, a member already
/// there): a refused change must leave memory as it was, too.
fn random_change(rng: &mut fastrand::Rng, case: u64, keys: &[String]) -> (Method, String, Value) {
    let team = format!("t{case}-{}", rng.u8(0..3));
    let user = format!("u{case}-{}", rng.u8(0..2));
    let org = format!("o{case}");
    let models = |rng: &mut fastrand::Rng| -> Value {
        let all = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"];
        json!(all.iter().filter(|_| rng.bool()).collect::<Vec<_>>())
    };
    let key = |rng: &mut fastrand::Rng| keys.get(rng.usize(..keys.len().max(1))).cloned();
    let post = |path: &str, body: Value| (Method::POST, path.to_string(), body);
    match rng.u8(0..16) {
        0 | 1 => {
            let mut body = json!({"team_id": team, "models": models(rng),
                "max_budget": rng.u8(1..100), "rpm_limit": rng.u16(1..1000)});
            if rng.bool() {
                body["organization_id"] = json!(org);
            }
            post("/team/new", body)
        }
        2 => post(
            "/team/update",
            json!({"team_id": team, "models": models(rng), "tpm_limit": rng.u32(1..100_000),
                "budget_duration": if rng.bool() { "30d" } else { "1mo" }}),
        ),
        3 => post(
            if rng.bool() {
                "/team/block"
            } else {
                "/team/unblock"
            },
            json!({"team_id": team}),
        ),
        4 => post("/team/delete", json!({"team_ids": [team]})),
        5 | 6 => {
            let mut body = json!({"team_id": team, "max_budget": rng.u8(1..50)});
            if rng.bool() {
                body["user_id"] = json!(user);
            }
            post("/key/generate", body)
        }
        7 => post(
            "/key/update",
            json!({"key": key(rng), "max_budget": rng.u8(1..50), "blocked": rng.bool()}),
        ),
        8 => post(
            if rng.bool() {
                "/key/block"
            } else {
                "/key/unblock"
            },
            json!({"key": key(rng)}),
        ),
        9 => post("/key/delete", json!({"keys": [key(rng)]})),
        10 => post(
            "/user/new",
            json!({"user_id": user, "max_budget": rng.u8(1..50), "auto_create_key": false}),
        ),
        11 => post(
            "/user/update",
            json!({"user_id": user, "max_budget": rng.u8(1..50), "rpm_limit": rng.u16(1..100)}),
        ),
        12 => post("/user/delete", json!({"user_ids": [user]})),
        13 => post(
            "/team/member_add",
            json!({"team_id": team, "member": {"user_id": user, "role": "user"},
                "max_budget_in_team": rng.u8(1..20)}),
        ),
        14 => post(
            "/team/member_delete",
            json!({"team_id": team, "user_id": user}),
        ),
        _ => match rng.u8(0..3) {
            0 => post(
                "/organization/new",
                json!({"organization_id": org, "models": models(rng), "max_budget": 500}),
            ),
            1 => (
                Method::PATCH,
                "/organization/update".to_string(),
                json!({"organization_id": org, "max_budget": rng.u16(100..1000)}),
            ),
            _ => (
                Method::DELETE,
                "/organization/delete".to_string(),
                json!({"organization_ids": [org]}),
            ),
        },
    }
}

#[tokio::test]
async fn two_instances_agree_after_any_sequence_of_admin_changes() {
    let Some(apps) = TestApp::spawn_fleet(2).await else {
        return;
    };
    let mut rng = fastrand::Rng::with_seed(24);
    for case in 0..32u64 {
        let mut keys: Vec<String> = Vec::new();
        let mut made = Vec::new();
        for _ in 0..rng.usize(1..=20) {
            let (method, path, body) = random_change(&mut rng, case, &keys);
            let app = &apps[rng.usize(..apps.len())];
            let reply = app
                .send(
                    method,
                    &path,
                    Some(crate::helpers::ADMIN_KEY),
                    Some(body.clone()),
                )
                .await;
            assert!(
                reply.status.is_success() || reply.status.is_client_error(),
                "{path} {body}: {} {}",
                reply.status,
                reply.body
            );
            if let Some(key) = reply.body["key"].as_str() {
                keys.push(key.to_string());
            }
            made.push(format!("{path} {body} → {}", reply.status));
        }
        let expected = from_database(&apps[0]).await;
        for (i, app) in apps.iter().enumerate() {
            // The other instance hears of each change over Redis: wait for it, up to a bound.
            let deadline = Instant::now() + Duration::from_secs(10);
            while app.gate().snapshot() != expected && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(
                app.gate().snapshot(),
                expected,
                "case {case}: instance {i} differs from the database after:\n{}",
                made.join("\n")
            );
        }
    }
}
