//! `/team/events`: the console's live figures, as server-sent events.

use crate::helpers::{TestApp, ADMIN_KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// An open event stream, read block by block (a block: an event or a heartbeat comment).
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    pub async fn open(app: &TestApp, query: &str) -> Self {
        Self::open_as(app, query, ADMIN_KEY).await
    }

    /// [`Events::open`] with another key.
    pub async fn open_as(app: &TestApp, query: &str, key: &str) -> Self {
        match Self::try_open(app, query, key).await {
            Ok(events) => events,
            Err((status, body)) => panic!("the stream did not open: {status} {body:?}"),
        }
    }

    /// Opens a stream with `key`; a refusal's status and error body.
    async fn try_open(
        app: &TestApp,
        query: &str,
        key: &str,
    ) -> Result<Self, (StatusCode, Option<Value>)> {
        let response = app
            .client
            .get(format!("{}/team/events?{query}", app.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("answered");
        let status = response.status();
        if status != StatusCode::OK {
            return Err((status, response.json().await.ok()));
        }
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next block, waiting at most 10 s; `None` when the server ended the stream.
    async fn block(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_string();
                self.buffer.drain(..end + 2);
                return Some(block);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("the stream sent something within 10 s")
                .expect("the stream reads")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next `name` event's list, skipping heartbeats and other events.
    pub async fn next(&mut self, name: &str) -> Vec<Value> {
        loop {
            let block = self.block().await.expect("the stream is open");
            if block.starts_with(':') {
                continue;
            }
            let mut lines = block.lines();
            let event = lines.next().and_then(|l| l.strip_prefix("event: "));
            if event != Some(name) {
                continue;
            }
            let data = lines
                .next()
                .and_then(|line| line.strip_prefix("data: "))
                .expect("data");
            return serde_json::from_str::<Vec<Value>>(data).expect("JSON list");
        }
    }

    /// The next `budgets` event's teams.
    pub async fn budgets(&mut self) -> Vec<Value> {
        self.next("budgets").await
    }
}

fn ask() -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 5})
}

/// Who watches is read again before each event: removed from the team, the stream ends.
#[tokio::test]
async fn a_stream_ends_when_its_watcher_may_no_longer_see_the_team() {
    let app = TestApp::spawn_gateway().await;
    for team in ["ml", "home"] {
        crate::helpers::ok(&app.new_team(json!({"team_id": team})).await);
    }
    crate::helpers::ok(
        &app.post(
            "/user/new",
            json!({"user_id": "ada", "teams": ["home", "ml"]}),
        )
        .await,
    );
    let own = app
        .generate_key(json!({"team_id": "home", "user_id": "ada"}))
        .await;
    let own = crate::helpers::ok(&own)["key"]
        .as_str()
        .expect("key")
        .to_string();
    let ml_key = app.generate_key(json!({"team_id": "ml"})).await;
    let ml_key = crate::helpers::ok(&ml_key)["key"]
        .as_str()
        .expect("key")
        .to_string();
    let mut events = Events::open_as(&app, "team_ids=ml", &own).await;
    assert_eq!(events.budgets().await[0]["team_id"], "ml");
    crate::helpers::ok(&app.chat(&ml_key, ask()).await);
    events.budgets().await;
    crate::helpers::ok(
        &app.post(
            "/team/member_delete",
            json!({"team_id": "ml", "user_id": "ada"}),
        )
        .await,
    );
    crate::helpers::ok(&app.chat(&ml_key, ask()).await);
    loop {
        match events.block().await {
            None => break,
            Some(block) if block.starts_with(':') => continue,
            Some(block) => panic!("an event after the removal: {block}"),
        }
    }
}

#[tokio::test]
async fn an_open_stream_sees_spend_and_blocks_as_they_happen() {
    let app = TestApp::spawn_gateway().await;
    app.new_team(json!({"team_id": "t", "max_budget": 1.0, "budget_duration": "30d"}))
        .await;
    let key = app.generate_key(json!({"team_id": "t"})).await.body["key"]
        .as_str()
        .expect("key")
        .to_string();
    let mut events = Events::open(&app, "team_ids=t,nobody,t").await;

    // First: every followed team that exists, as it stands.
    let first = events.budgets().await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["team_id"], "t");
    assert_eq!(first[0]["spend"], 0.0);
    assert_eq!(first[0]["max_budget"], 1.0);
    assert_eq!(first[0]["blocked"], false);
    assert!(first[0]["budget_reset_at"].is_string());

    // A request's cost arrives without asking again.
    assert_eq!(app.chat(&key, ask()).await.status, StatusCode::OK);
    let after = events.budgets().await;
    assert_eq!(after[0]["team_id"], "t");
    // 6 prompt and 5 completion tokens.
    assert_eq!(after[0]["spend"], 0.000016);

    // So does a block, and a new budget.
    app.block_team("t").await;
    assert_eq!(events.budgets().await[0]["blocked"], true);
    app.update_team(json!({"team_id": "t", "max_budget": 2.0}))
        .await;
    let updated = events.budgets().await;
    assert_eq!(updated[0]["max_budget"], 2.0);
    assert_eq!(updated[0]["spend"], 0.000016);
}

#[tokio::test]
async fn an_open_stream_follows_keys_too() {
    let app = TestApp::spawn_gateway().await;
    app.new_team(json!({"team_id": "t"})).await;
    let generated = app
        .generate_key(json!({"team_id": "t", "max_budget": 0.5}))
        .await
        .body;
    let key = generated["key"].as_str().expect("key").to_string();
    let token = generated["token"].as_str().expect("token").to_string();
    let mut events = Events::open(&app, &format!("keys={token}")).await;
    // Both lists come first, the teams' empty here.
    assert_eq!(events.budgets().await, Vec::<Value>::new());
    let first = events.next("keys").await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["token"], token.as_str());
    assert_eq!(first[0]["spend"], 0.0);
    assert_eq!(first[0]["max_budget"], 0.5);
    assert_eq!(first[0]["blocked"], false);

    assert_eq!(app.chat(&key, ask()).await.status, StatusCode::OK);
    assert_eq!(events.next("keys").await[0]["spend"], 0.000016);
    app.post("/key/block", json!({"key": token})).await;
    assert_eq!(events.next("keys").await[0]["blocked"], true);
    // The secret itself is never accepted (nor echoed) as a key to follow.
    let secret = app.get(&format!("/team/events?keys={key}")).await;
    assert_eq!(secret.status, StatusCode::BAD_REQUEST);
    assert!(!secret.body.to_string().contains(&key));
}

#[tokio::test]
async fn a_stream_is_for_the_admin_and_names_valid_teams() {
    let app = TestApp::spawn().await;
    let anonymous = app
        .send(reqwest::Method::GET, "/team/events?team_ids=t", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    anonymous.error_message();

    let too_many = (0..101)
        .map(|i| format!("t{i}"))
        .collect::<Vec<_>>()
        .join(",");
    for query in [
        "",
        "?team_ids=",
        "?team_ids=a,,b",
        "?team_ids=%2Fetc",
        "?team_ids=t&other=1",
        "?team_ids=t&keys=not-a-token",
        "?keys=",
        &format!("?team_ids={too_many}"),
        &format!("?keys={}", too_many.replace('t', "k")),
    ] {
        let reply = app.get(&format!("/team/events{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        reply.error_message();
    }
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats() {
    let app = TestApp::spawn_with(&["--events-heartbeat", "1s"]).await;
    app.new_team(json!({"team_id": "t"})).await;
    let mut events = Events::open(&app, "team_ids=t").await;
    events.budgets().await;
    events.next("keys").await;
    let next = events.block().await.expect("the stream is open");
    assert!(next.starts_with(':'), "a comment, not an event: {next}");
}

#[tokio::test]
async fn stopping_the_server_ends_open_streams() {
    let app = TestApp::spawn().await;
    app.new_team(json!({"team_id": "t"})).await;
    let mut events = Events::open(&app, "team_ids=t").await;
    events.budgets().await;
    events.next("keys").await;
    // Without ending them the server would wait for its drain timeout (30 s).
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("stopped within 10 s");
    assert_eq!(events.block().await, None);
}

/// A person (through any of their keys) and the admin key's address each hold a few streams at most; past
/// that a stream is refused with 429 and says why, and someone else's still opens. A closed
/// stream gives its place back.
#[tokio::test]
async fn each_caller_holds_a_few_live_streams() {
    let app = TestApp::spawn_with(&[
        "--events-per-caller",
        "2",
        "--events-per-address",
        "3",
        "--events-heartbeat",
        "1s",
    ])
    .await;
    crate::helpers::ok(&app.new_team(json!({"team_id": "ml"})).await);
    crate::helpers::ok(
        &app.post("/user/new", json!({"user_id": "ada", "teams": ["ml"]}))
            .await,
    );
    let key = |reply: crate::helpers::Reply| {
        crate::helpers::ok(&reply)["key"]
            .as_str()
            .expect("key")
            .to_string()
    };
    let ada_one = key(app
        .generate_key(json!({"team_id": "ml", "user_id": "ada"}))
        .await);
    let ada_two = key(app
        .generate_key(json!({"team_id": "ml", "user_id": "ada"}))
        .await);

    // Ada: two streams, whichever of her keys opens them.
    let mut held = Vec::new();
    for ada in [&ada_one, &ada_two] {
        held.push(Events::open_as(&app, "team_ids=ml", ada).await);
    }
    let refused = Events::try_open(&app, "team_ids=ml", &ada_two).await;
    let Err((StatusCode::TOO_MANY_REQUESTS, Some(body))) = refused else {
        panic!("a third stream of Ada's opened, or was refused otherwise");
    };
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("2 live streams"), "{message}");

    // The admin key: three from this address, while Ada holds hers.
    let mut admin = Vec::new();
    for _ in 0..3 {
        admin.push(Events::open(&app, "team_ids=ml").await);
    }
    let refused = Events::try_open(&app, "team_ids=ml", ADMIN_KEY).await;
    assert!(matches!(refused, Err((StatusCode::TOO_MANY_REQUESTS, _))));
    // The open streams still work.
    assert_eq!(held[0].budgets().await[0]["team_id"], "ml");
    assert_eq!(admin[2].budgets().await[0]["team_id"], "ml");

    // Ada closes a page: its place comes back once the server notices (at its next
    // heartbeat).
    drop(held.pop());
    let mut reopened = false;
    for _ in 0..100 {
        match Events::try_open(&app, "team_ids=ml", &ada_one).await {
            Ok(_) => {
                reopened = true;
                break;
            }
            Err((status, _)) => assert_eq!(status, StatusCode::TOO_MANY_REQUESTS),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "a closed stream gave its place back");
}
