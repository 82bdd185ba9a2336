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
use std::path::PathBuf;
use tempfile::TempDir;

pub const ADMIN_KEY: &str = "sk-admin-test-0123456789";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub dir: TempDir,
    /// The clock budgets and rate limits run on; starts at the real time, moves by hand.
    pub clock: Clock,
    running: Option<Running>,
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

    /// A gateway whose models `gpt-4o` and `text-embedding-3-small` go over HTTP to a mock
    /// upstream, and `gpt-4o-mini` to the in-process mock.
    pub async fn spawn_gateway() -> Self {
        let upstream = spawn_upstream().await;
        let dead = dead_upstream();
        let dir = tempfile::tempdir().expect("temp dir");
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
        Self::spawn_in(dir, Some(config)).await
    }

    async fn spawn_in(dir: TempDir, config_file: Option<PathBuf>) -> Self {
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
        let config = Config::try_parse_from(args).expect("valid test config");
        let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
        let running = start_with_clock(config, clock.clone())
            .await
            .expect("server starts");
        Self {
            base: format!("http://{}", running.addr),
            client: Client::new(),
            dir,
            clock,
            running: Some(running),
        }
    }

    /// The request path's live state, to drive budget resets by hand.
    pub fn gate(&self) -> &Gate {
        &self.running.as_ref().expect("running").gate
    }

    /// Stops cleanly (all spend written) and starts again on the same files.
    pub async fn restart(self) -> Self {
        let config = self.dir.path().join("gatehouse.yaml");
        let config = config.exists().then_some(config);
        let dir = self.stop().await;
        Self::spawn_in(dir, config).await
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

    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join("data").join("gatehouse.db")
    }

    /// Stops the server cleanly; the returned directory still holds its files.
    pub async fn stop(mut self) -> TempDir {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
        self.dir
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
