//! Test harness: a real Gatehouse on 127.0.0.1:0 with a fresh SQLite file, and one typed method
//! per endpoint. Responses come back as (status, JSON) so tests can assert on errors too.
#![allow(dead_code)]

use clap::Parser;
use reqwest::{header, Client, Method, StatusCode};
use serde_json::{json, Value};
use server::{
    config::Config,
    gate::{clock::Clock, Gate},
    start_with_clock, Running,
};
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};
use tempfile::TempDir;
use tokio::sync::{watch, Notify};

#[path = "../common/database.rs"]
mod database;
pub use database::{redis_prefix, redis_url, TestDatabase};

pub const ADMIN_KEY: &str = "sk-admin-test-0123456789";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub dir: TempDir,
    /// The clock budgets and rate limits run on; starts at the real time, moves by hand.
    pub clock: Clock,
    running: Option<Running>,
    database: Arc<TestDatabase>,
}

/// A stopped server's files and database, to start again on or to read.
pub struct Stopped {
    pub dir: TempDir,
    database: Arc<TestDatabase>,
}

impl Stopped {
    /// The database's `DATABASE_URL`.
    pub fn database_url(&self) -> String {
        database_url(&self.dir, &self.database)
    }

    /// Everything the database holds, as bytes: the SQLite files, or every PostgreSQL table's
    /// rows as text.
    pub async fn stored_bytes(&self) -> Vec<u8> {
        match &self.database.url {
            None => {
                let db = self.dir.path().join("data").join("gatehouse.db");
                let mut bytes = std::fs::read(&db).expect("db");
                if let Ok(wal) = std::fs::read(db.with_extension("db-wal")) {
                    bytes.extend(wal);
                }
                bytes
            }
            Some(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
                let mut bytes = Vec::new();
                for table in ["teams", "api_keys", "spend_logs", "admin_sessions"] {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
                            .fetch_all(&mut conn)
                            .await
                            .expect("dump");
                    for row in rows {
                        bytes.extend(row.into_bytes());
                    }
                }
                bytes
            }
        }
    }
}

fn database_url(dir: &TempDir, database: &TestDatabase) -> String {
    database.url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            dir.path().join("data").join("gatehouse.db").display()
        )
    })
}

/// Where the tests' gateway clocks start: now, or — with `GATEHOUSE_TEST_DATE=YYYY-MM-DD` — the
/// same time of day on that date (`scripts/test` runs the date-dependent tests on several days
/// of a month).
pub fn test_start_ms() -> i64 {
    let now = chrono::Utc::now();
    match std::env::var("GATEHOUSE_TEST_DATE") {
        Ok(date) => {
            let date = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .expect("GATEHOUSE_TEST_DATE is a date: YYYY-MM-DD");
            date.and_time(now.time()).and_utc().timestamp_millis()
        }
        Err(_) => now.timestamp_millis(),
    }
}

/// Prices of the tests' upstream model, USD per token: 1000 and 2000 nano-dollars.
pub const INPUT_PRICE: f64 = 0.000001;
pub const OUTPUT_PRICE: f64 = 0.000002;

/// An upstream address where nothing listens (the port is bound and closed again).
fn dead_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/v1")
}

/// The gateways' model list: `gpt-4o` and `text-embedding-3-small` over HTTP to `upstream`,
/// `gpt-4o-mini` to the in-process mock, `unreachable` to a closed port.
fn gateway_config(dir: &TempDir, upstream: &str) -> PathBuf {
    let dead = dead_upstream();
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(
            &config,
            format!(
                "model_list:\n\
                 - model_name: gpt-4o\n  litellm_params:\n    model: openai/gpt-4o\n    api_base: {upstream}\n    api_key: sk-upstream\n  model_info:\n    input_cost_per_token: {INPUT_PRICE}\n    output_cost_per_token: {OUTPUT_PRICE}\n\
                 - model_name: text-embedding-3-small\n  litellm_params:\n    model: openai/text-embedding-3-small\n    api_base: {upstream}\n  model_info:\n    input_cost_per_token: {INPUT_PRICE}\n\
                 - model_name: gpt-4o-mini\n  litellm_params:\n    model: mock/gpt-4o-mini\n  model_info:\n    input_cost_per_token: {INPUT_PRICE}\n    output_cost_per_token: {OUTPUT_PRICE}\n\
                 - model_name: unreachable\n  litellm_params:\n    model: openai/unreachable\n    api_base: {dead}\n"
            ),
        )
        .expect("config written");
    config
}

/// A real OpenAI-compatible HTTP server (the mock provider) on a random port.
pub async fn spawn_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, server::providers::mock::router())
            .await
            .expect("upstream serves");
    });
    format!("http://{addr}/v1")
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts the OpenAI-style error shape and returns `error.message`.
    pub fn error_message(&self) -> String {
        let error = &self.body["error"];
        assert!(
            error["message"].is_string(),
            "no error.message in {}",
            self.body
        );
        assert!(error["type"].is_string(), "no error.type in {}", self.body);
        assert!(
            error.get("param").is_some(),
            "no error.param in {}",
            self.body
        );
        assert_eq!(error["code"], json!(self.status.as_u16().to_string()));
        error["message"].as_str().unwrap_or_default().to_string()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_in(tempfile::tempdir().expect("temp dir"), None).await
    }

    /// The server's `DATABASE_URL`.
    pub fn database_url(&self) -> String {
        database_url(&self.dir, &self.database)
    }

    /// A server started with these flags besides the tests' own.
    pub async fn spawn_with(flags: &[&str]) -> Self {
        Self::spawn_flags(tempfile::tempdir().expect("temp dir"), None, flags).await
    }

    /// A gateway whose models `gpt-4o` and `text-embedding-3-small` go over HTTP to a mock
    /// upstream, and `gpt-4o-mini` to the in-process mock.
    pub async fn spawn_gateway() -> Self {
        let upstream = spawn_upstream().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = gateway_config(&dir, &upstream);
        Self::spawn_in(dir, Some(config)).await
    }

    /// [`TestApp::spawn_gateway`] with these flags besides the tests' own.
    pub async fn spawn_gateway_with(flags: &[&str]) -> Self {
        let upstream = spawn_upstream().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = gateway_config(&dir, &upstream);
        Self::spawn_flags(dir, Some(config), flags).await
    }

    /// [`TestApp::spawn_gateway`] with these flags besides the tests' own, on this database.
    pub async fn spawn_gateway_on(database: Arc<TestDatabase>, flags: &[&str]) -> Self {
        let upstream = spawn_upstream().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = gateway_config(&dir, &upstream);
        Self::start(dir, database, Some(config), flags).await
    }

    /// `n` gateways as [`TestApp::spawn_gateway`] makes them, as one fleet: one PostgreSQL
    /// database, one Redis (under a prefix of their own), one upstream. `None` when PostgreSQL
    /// or Redis cannot be reached outside CI (said loudly; under `CI=true` it fails).
    pub async fn spawn_fleet(n: usize) -> Option<Vec<Self>> {
        let redis = database::redis_url().await?;
        let database = Arc::new(TestDatabase::create_postgres().await?);
        let prefix = database::redis_prefix();
        let upstream = spawn_upstream().await;
        let mut apps = Vec::with_capacity(n);
        for _ in 0..n {
            let dir = tempfile::tempdir().expect("temp dir");
            let config = gateway_config(&dir, &upstream);
            let flags = ["--redis-url", &redis, "--redis-prefix", &prefix];
            apps.push(Self::start(dir, database.clone(), Some(config), &flags).await);
        }
        Some(apps)
    }

    /// A gateway serving this LiteLLM-style config (`model_list`, `router_settings`).
    pub async fn spawn_yaml(yaml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("gatehouse.yaml");
        std::fs::write(&config, yaml).expect("config written");
        Self::spawn_in(dir, Some(config)).await
    }

    /// `n` gateways serving this config as one fleet: one PostgreSQL database, one Redis (under
    /// a prefix of their own). `None` as for [`TestApp::spawn_fleet`].
    pub async fn spawn_fleet_yaml(n: usize, yaml: &str) -> Option<Vec<Self>> {
        let redis = database::redis_url().await?;
        let database = Arc::new(TestDatabase::create_postgres().await?);
        let prefix = database::redis_prefix();
        let mut apps = Vec::with_capacity(n);
        for _ in 0..n {
            let dir = tempfile::tempdir().expect("temp dir");
            let config = dir.path().join("gatehouse.yaml");
            std::fs::write(&config, yaml).expect("config written");
            let flags = ["--redis-url", &redis, "--redis-prefix", &prefix];
            apps.push(Self::start(dir, database.clone(), Some(config), &flags).await);
        }
        Some(apps)
    }

    /// A gateway in front of a [`Faults`] upstream: each behaviour is a model of that name,
    /// priced like the tests' upstream model, with an output limit of 1,000 tokens, images of
    /// at most 1,445 tokens, and a timeout of 30 s (`hang`: 1 s).
    pub async fn spawn_faults() -> (Self, Faults) {
        Self::spawn_faults_with(&[]).await
    }

    /// [`TestApp::spawn_faults`] with these flags besides the tests' own.
    pub async fn spawn_faults_with(flags: &[&str]) -> (Self, Faults) {
        let faults = Faults::spawn().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("gatehouse.yaml");
        let mut yaml = String::from("model_list:\n");
        for behaviour in BEHAVIOURS {
            let timeout = if *behaviour == "hang" { 1 } else { 30 };
            yaml.push_str(&format!(
                "- model_name: {behaviour}\n  litellm_params:\n    model: openai/{behaviour}\n    api_base: {}\n    api_key: {UPSTREAM_SECRET}\n    timeout: {timeout}\n  model_info:\n    input_cost_per_token: {INPUT_PRICE}\n    output_cost_per_token: {OUTPUT_PRICE}\n    max_output_tokens: 1000\n    tokenizer: o200k_base\n    max_tokens_per_image: 1445\n",
                faults.base
            ));
        }
        std::fs::write(&config, yaml).expect("config written");
        (Self::spawn_flags(dir, Some(config), flags).await, faults)
    }

    /// Polls `/spend/logs` until the team's log has `rows` rows (at most 5 s): the log is
    /// written off the request path.
    pub async fn wait_for_logs(&self, team_id: &str, rows: u64) -> Value {
        for _ in 0..500 {
            let logs = self
                .get(&format!("/spend/logs?team_id={team_id}&size=100"))
                .await;
            if logs.body["total_count"].as_u64() >= Some(rows) {
                return logs.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("team {team_id} never had {rows} spend log rows");
    }

    /// Starts again on the files a stopped server left.
    pub async fn spawn_again(stopped: Stopped) -> Self {
        Self::start(stopped.dir, stopped.database, None, &[]).await
    }

    async fn spawn_in(dir: TempDir, config_file: Option<PathBuf>) -> Self {
        Self::spawn_flags(dir, config_file, &[]).await
    }

    async fn spawn_flags(dir: TempDir, config_file: Option<PathBuf>, flags: &[&str]) -> Self {
        let database = Arc::new(TestDatabase::create().await);
        Self::start(dir, database, config_file, flags).await
    }

    /// [`TestApp::spawn_gateway_with`] with its clock standing at `start` (a fixed date, for
    /// tests whose outcome depends on where in a budget's window they run).
    pub async fn spawn_gateway_at(start: chrono::DateTime<chrono::Utc>, flags: &[&str]) -> Self {
        let upstream = spawn_upstream().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = gateway_config(&dir, &upstream);
        let database = Arc::new(TestDatabase::create().await);
        Self::start_at(dir, database, Some(config), flags, start.timestamp_millis()).await
    }

    async fn start(
        dir: TempDir,
        database: Arc<TestDatabase>,
        config_file: Option<PathBuf>,
        flags: &[&str],
    ) -> Self {
        Self::start_at(dir, database, config_file, flags, test_start_ms()).await
    }

    async fn start_at(
        dir: TempDir,
        database: Arc<TestDatabase>,
        config_file: Option<PathBuf>,
        flags: &[&str],
        start_ms: i64,
    ) -> Self {
        let data_dir = dir.path().join("data");
        let mut args = vec![
            "gatehouse",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
            "--master-key",
            ADMIN_KEY,
            "--site-root",
            dir.path().join("site").to_str().expect("utf-8 path"),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        if let Some(file) = config_file {
            args.push("--config".into());
            args.push(file.to_str().expect("utf-8 path").into());
        }
        if let Some(url) = &database.url {
            args.push("--database-url".into());
            args.push(url.clone());
        }
        args.extend(flags.iter().map(|f| f.to_string()));
        let config = Config::try_parse_from(args).expect("valid test config");
        let clock = Clock::manual(start_ms);
        let running = start_with_clock(config, clock.clone())
            .await
            .expect("server starts");
        Self {
            base: format!("http://{}", running.addr),
            client: Client::new(),
            dir,
            clock,
            running: Some(running),
            database,
        }
    }

    /// The request path's live state.
    pub fn gate(&self) -> &Gate {
        &self.running.as_ref().expect("running").gate
    }

    /// The storage this server writes to.
    pub fn running_storage(&self) -> &Arc<dyn server::storage::Storage> {
        &self.running.as_ref().expect("running").storage
    }

    /// What the database holds for a team now (the live spend is ahead by up to one flush).
    pub async fn stored_team(&self, team_id: &str) -> server::storage::TeamRow {
        let running = self.running.as_ref().expect("running");
        running
            .storage
            .team(team_id)
            .await
            .expect("storage answers")
            .expect("team stored")
    }

    /// Runs the budget resets now (the spend writer runs them every tick); answers how many
    /// this call made.
    pub async fn reset_due_budgets(&self) -> usize {
        let running = self.running.as_ref().expect("running");
        let ctx = server::service::Ctx {
            storage: running.storage.as_ref(),
            work: None,
            gate: &running.gate,
            actor: &server::service::access::SYSTEM,
            alerts: &server::service::alerts::NONE,
            quotas: &server::service::Quotas::NONE,
        };
        server::service::budgets::reset_due(ctx)
            .await
            .expect("resets run")
    }

    /// Stops cleanly (all spend written) and starts again on the same files.
    pub async fn restart(self) -> Self {
        self.restart_with(&[]).await
    }

    /// [`TestApp::restart`] with these flags.
    pub async fn restart_with(self, flags: &[&str]) -> Self {
        let config = self.dir.path().join("gatehouse.yaml");
        let config = config.exists().then_some(config);
        // Time goes on across a restart: the new server's clock starts where this one's is.
        let now = self.clock.now_ms();
        let stopped = self.stop().await;
        Self::start_at(stopped.dir, stopped.database, config, flags, now).await
    }

    /// `POST /v1/chat/completions` with a virtual key.
    pub async fn chat(&self, key: &str, body: Value) -> Reply {
        self.send(Method::POST, "/v1/chat/completions", Some(key), Some(body))
            .await
    }

    /// A streamed chat: the status, headers and the raw SSE text.
    pub async fn chat_stream(
        &self,
        key: &str,
        mut body: Value,
    ) -> (StatusCode, header::HeaderMap, String) {
        body["stream"] = json!(true);
        let response = self
            .client
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    }

    /// Stops the server cleanly; its files and database stay, to read or start again on.
    pub async fn stop(mut self) -> Stopped {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
        Stopped {
            dir: self.dir,
            database: self.database,
        }
    }

    /// Sends a request with `auth` as the bearer token (none when `None`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("request sent")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(ADMIN_KEY), Some(body))
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Some(ADMIN_KEY), None).await
    }

    /// Posts raw bytes, for malformed and oversized bodies.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let response = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(ADMIN_KEY)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        read(response).await
    }

    pub async fn new_team(&self, body: Value) -> Reply {
        self.post("/team/new", body).await
    }

    pub async fn team_list(&self) -> Reply {
        self.get("/team/list").await
    }

    pub async fn team_info(&self, team_id: &str) -> Reply {
        self.get(&format!("/team/info?team_id={team_id}")).await
    }

    pub async fn update_team(&self, body: Value) -> Reply {
        self.post("/team/update", body).await
    }

    pub async fn delete_teams(&self, ids: &[&str]) -> Reply {
        self.post("/team/delete", json!({ "team_ids": ids })).await
    }

    pub async fn block_team(&self, team_id: &str) -> Reply {
        self.post("/team/block", json!({ "team_id": team_id }))
            .await
    }

    pub async fn unblock_team(&self, team_id: &str) -> Reply {
        self.post("/team/unblock", json!({ "team_id": team_id }))
            .await
    }

    pub async fn generate_key(&self, body: Value) -> Reply {
        self.post("/key/generate", body).await
    }

    pub async fn key_info(&self, key: &str) -> Reply {
        self.get(&format!("/key/info?key={key}")).await
    }

    pub async fn key_list(&self, query: &str) -> Reply {
        self.get(&format!("/key/list{query}")).await
    }

    pub async fn update_key(&self, body: Value) -> Reply {
        self.post("/key/update", body).await
    }

    pub async fn delete_keys(&self, keys: &[&str]) -> Reply {
        self.post("/key/delete", json!({ "keys": keys })).await
    }

    pub async fn block_key(&self, key: &str) -> Reply {
        self.post("/key/block", json!({ "key": key })).await
    }

    pub async fn unblock_key(&self, key: &str) -> Reply {
        self.post("/key/unblock", json!({ "key": key })).await
    }

    /// Creates a team and one key in it; returns the secret key.
    pub async fn team_with_key(&self, team_id: &str) -> String {
        let team = self.new_team(json!({ "team_id": team_id })).await;
        assert_eq!(team.status, StatusCode::OK, "{}", team.body);
        let key = self.generate_key(json!({ "team_id": team_id })).await;
        assert_eq!(key.status, StatusCode::OK, "{}", key.body);
        key.body["key"].as_str().expect("key").to_string()
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{status}: body is not JSON: {text:?}"));
    Reply {
        status,
        headers,
        body,
    }
}

/// The provider key the faulty upstream is configured with; it must never reach a caller.
pub const UPSTREAM_SECRET: &str = "sk-upstream-secret-do-not-leak-4242";

/// The faulty upstream's behaviours, each served as a model of that name:
/// - `honest`: usage = the mock's prompt count, and `n × max_tokens` completion tokens;
/// - `no-usage`: an answer without `usage`;
/// - `bad-json`: 200 with a body that is not JSON;
/// - `status-400`, `status-401`, `status-429`, `status-500`: those errors (401 names the key);
/// - `hang`: never answers;
/// - `held`: answers like `honest` once the test opens the gate;
/// - `stream-no-usage`: a stream without a usage chunk;
/// - `stream-cut`: a stream that breaks after two chunks;
/// - `stream-held`: one chunk, then the rest (with usage) once the gate opens;
/// - `over-report`: claims a million prompt and completion tokens;
/// - `images`: `honest`, plus 1,445 prompt tokens per image (OpenAI's high-detail maximum);
/// - `endless` and `endless-error`: a success, and a 400, whose body never ends;
/// - `stream-no-newline`: one chunk, then bytes without a line end for ever;
/// - `stream-endless`: chunks of output every 10 ms for ever.
pub const BEHAVIOURS: &[&str] = &[
    "endless",
    "endless-error",
    "stream-no-newline",
    "stream-endless",
    "honest",
    "no-usage",
    "bad-json",
    "status-400",
    "status-401",
    "status-429",
    "status-500",
    "hang",
    "held",
    "stream-no-usage",
    "stream-cut",
    "stream-held",
    "over-report",
    "images",
];

/// An OpenAI-compatible upstream that misbehaves on demand, over real HTTP.
#[derive(Clone)]
pub struct Faults {
    pub base: String,
    /// Every request body it received, in order.
    pub seen: Arc<Mutex<Vec<Value>>>,
    /// Requests now waiting at the gate.
    waiting: Arc<AtomicUsize>,
    arrived: Arc<Notify>,
    gate: watch::Sender<bool>,
}

impl Faults {
    async fn spawn() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (gate, _) = watch::channel(false);
        let faults = Self {
            base: format!("http://{addr}/v1"),
            seen: Arc::default(),
            waiting: Arc::default(),
            arrived: Arc::default(),
            gate,
        };
        let state = faults.clone();
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(fault_chat))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serves") });
        faults
    }

    /// Waits until `n` requests wait at the gate.
    pub async fn until_waiting(&self, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            if self.waiting.load(Ordering::SeqCst) >= n {
                return;
            }
            arrived.await;
        }
    }

    /// Lets every held request (and those to come) go on.
    pub fn open(&self) {
        let _ = self.gate.send(true);
    }

    /// The last request body the upstream received.
    pub fn last_seen(&self) -> Value {
        self.seen
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a request arrived")
    }

    async fn wait_at_gate(&self) {
        let mut gate = self.gate.subscribe();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.arrived.notify_waiters();
        let _ = gate.wait_for(|open| *open).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

fn sse(events: Vec<Value>, done: bool) -> Vec<Result<axum::body::Bytes, std::io::Error>> {
    let mut out: Vec<_> = events
        .into_iter()
        .map(|e| Ok(axum::body::Bytes::from(format!("data: {e}\n\n"))))
        .collect();
    if done {
        out.push(Ok(axum::body::Bytes::from("data: [DONE]\n\n")));
    }
    out
}

fn chunk(content: &str) -> Value {
    json!({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
}

async fn fault_chat(
    axum::extract::State(faults): axum::extract::State<Faults>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::{
        http::{header, StatusCode},
        response::IntoResponse,
    };
    use futures_util::StreamExt;
    let request: Value = serde_json::from_slice(&body).expect("the gateway sends JSON");
    faults.seen.lock().expect("lock").push(request.clone());
    let model = request["model"].as_str().unwrap_or_default().to_string();
    let max_tokens = request["max_tokens"]
        .as_u64()
        .or_else(|| request["max_completion_tokens"].as_u64())
        .unwrap_or(0);
    let n = request["n"].as_u64().unwrap_or(1);
    let prompt = server::providers::mock::prompt_tokens(&request);
    let images = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|part| part["type"] == "image_url")
        .count() as u64;
    let usage = |prompt: u64, completion: u64| json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    let answer = |usage: Option<Value>| {
        let mut answer = json!({"id": "chatcmpl-fault", "object": "chat.completion", "created": 0,
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "a fairly short answer from the faulty upstream"}, "finish_reason": "stop"}]});
        if let Some(usage) = usage {
            answer["usage"] = usage;
        }
        axum::Json(answer).into_response()
    };
    let error = |status: StatusCode, message: &str| {
        (
            status,
            axum::Json(json!({"error": {"message": message, "type": "x"}})),
        )
            .into_response()
    };
    let stream = |parts: Vec<Result<axum::body::Bytes, std::io::Error>>| {
        (
            [(header::CONTENT_TYPE, "text/event-stream")],
            axum::body::Body::from_stream(futures_util::stream::iter(parts)),
        )
            .into_response()
    };
    match model.as_str() {
        "honest" => answer(Some(usage(prompt, n * max_tokens))),
        "images" => answer(Some(usage(prompt + 1_445 * images, n * max_tokens))),
        "no-usage" => answer(None),
        "over-report" => answer(Some(usage(1_000_000, 1_000_000))),
        "bad-json" => ([(header::CONTENT_TYPE, "application/json")], "{not json").into_response(),
        "status-400" => error(
            StatusCode::BAD_REQUEST,
            "This model's maximum context length is 128000 tokens.",
        ),
        "status-401" => error(
            StatusCode::UNAUTHORIZED,
            &format!("Incorrect API key provided: {UPSTREAM_SECRET}"),
        ),
        "status-429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "7")],
            axum::Json(json!({"error": {"message": "slow down", "type": "x"}})),
        )
            .into_response(),
        "status-500" => error(StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded"),
        "hang" => std::future::pending().await,
        "held" => {
            faults.wait_at_gate().await;
            answer(Some(usage(prompt, n * max_tokens)))
        }
        "stream-no-usage" => stream(sse(vec![chunk("Hello"), chunk(" there, friend")], true)),
        "stream-cut" => {
            // The chunks go out (the body yields once, so they are flushed), then it breaks.
            let parts = sse(vec![chunk("Hello"), chunk(" there")], false);
            let cut = futures_util::stream::once(async {
                tokio::task::yield_now().await;
                Err(std::io::Error::other("cut"))
            });
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                axum::body::Body::from_stream(futures_util::stream::iter(parts).chain(cut)),
            )
                .into_response()
        }
        "stream-held" => {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                let _ = tx
                    .send(Ok(axum::body::Bytes::from(format!(
                        "data: {}\n\n",
                        chunk("Hello")
                    ))))
                    .await;
                faults.wait_at_gate().await;
                for part in sse(
                    vec![
                        chunk(" again"),
                        json!({"choices": [], "usage": usage(prompt, 40)}),
                    ],
                    true,
                ) {
                    let _ = tx.send(part).await;
                }
            });
            let body = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                axum::body::Body::from_stream(body),
            )
                .into_response()
        }
        "endless" | "endless-error" => {
            let status = if model == "endless" {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            let start = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(axum::body::Bytes::from("{\"error\": {\"message\": \""))
            });
            let rest = futures_util::stream::repeat_with(|| {
                Ok(axum::body::Bytes::from(vec![b'x'; 64 * 1024]))
            });
            (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                axum::body::Body::from_stream(start.chain(rest)),
            )
                .into_response()
        }
        "stream-no-newline" => {
            let first = futures_util::stream::iter(sse(vec![chunk("Hello")], false));
            let rest = futures_util::stream::repeat_with(|| {
                Ok(axum::body::Bytes::from(vec![b'x'; 64 * 1024]))
            });
            stream_of(first.chain(rest))
        }
        "stream-endless" => {
            let chunks = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                let part = format!("data: {}\n\n", chunk(" word"));
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(part)), ()))
            });
            stream_of(chunks)
        }
        other => error(StatusCode::NOT_FOUND, &format!("no behaviour {other}")),
    }
}

/// An event stream answer of these parts.
fn stream_of(
    parts: impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Send + 'static,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        axum::body::Body::from_stream(parts),
    )
        .into_response()
}

/// A small chat request for `model`: five output tokens at most.
pub fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 5})
}

/// The body of a reply that must be 200.
pub fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    &reply.body
}

/// The message of a refusal that must have this status and `error.type`.
pub fn refused(reply: &Reply, status: StatusCode, kind: &str) -> String {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"]["type"], kind, "{}", reply.body);
    reply.error_message()
}

/// The session cookie a sign-in set.
pub fn cookie_of(login: &Reply) -> String {
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    login
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("set-cookie")
        .to_string()
}

/// Sends with a session cookie, from Gatehouse's own pages.
pub async fn send_with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}{}", app.base, path))
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, app.base.trim_end_matches('/'));
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("sent")).await
}

/// Sets a password through the invitation link `link` (its id).
pub async fn set_password(app: &TestApp, link: &str, password: &str) {
    ok(&app
        .send(
            Method::POST,
            "/invitation/accept",
            None,
            Some(json!({"id": link, "password": password})),
        )
        .await);
}
