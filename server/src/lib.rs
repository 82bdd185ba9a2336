#![recursion_limit = "512"]
//! Gatehouse's server: one axum app serving the REST API and the Leptos console.

pub mod alerts;
pub mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod extract;
pub mod files;
pub mod gate;
pub mod live;
pub mod metrics;
pub mod money;
pub mod notices;
pub mod oidc;
pub mod pace;
pub mod providers;
pub mod request;
pub mod routes;
pub mod serve;
pub mod service;
pub mod spend;
pub mod state;
pub mod storage;
pub mod throttle;

use anyhow::Context;
use app::{shell, App};
use auth::Origins;
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};
use config::Config;
use error::ApiError;
use gate::{
    admission::Admission, clock::Clock, local::LocalAdmission, redis::RedisAdmission, Gate,
};
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use notices::{Notices, RedisNotices};
use providers::Models;
use service::secrets::{self, MasterKey};
use state::AppState;
use std::{io::Write, net::SocketAddr, path::Path, sync::Arc, time::Instant};
use throttle::Throttle;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A started server: where it listens and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub gate: Arc<Gate>,
    pub storage: Arc<dyn storage::Storage>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    spend_writer: spend::SpendWriter,
    live: Arc<live::LiveTeams>,
    alerts: alerts::Alerts,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, writes all recorded spend, then closes
    /// the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.live.close();
        self.alerts.stop();
        self.task.await.context("server task")?;
        self.spend_writer.drain().await;
        self.storage.close().await;
        Ok(())
    }
}

/// Opens storage, binds the listener and starts serving in the background.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with_clock(config, Clock::system()).await
}

/// [`start`] with the clock budgets and rate limits run on (tests move it by hand).
pub async fn start_with_clock(config: Config, clock: Clock) -> anyhow::Result<Running> {
    let master_key = resolve_master_key(&config)?;
    let models = match &config.config {
        Some(path) => Models::from_file(path)?,
        None => {
            println!("No GATEHOUSE_CONFIG: serving the built-in mock models.");
            Models::builtin_mock()
        }
    };
    let database_url = config.database_url();
    if config.database_url.is_none() {
        files::private_dir(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    if database_url.starts_with("sqlite:") {
        files::private_sqlite(&database_url).context("cannot create the database file")?;
    }
    let storage = storage::connect(&database_url)
        .await
        .context("cannot open the database")?;
    // An address belongs to one person now; those shared from before keep working until an
    // admin gives each to one user, and are told at every start.
    let shared = storage
        .shared_emails()
        .await
        .context("cannot read the users")?;
    if !shared.is_empty() {
        tracing::warn!(
            addresses = %shared.join(", "),
            "{} e-mail address(es) are each held by more than one user: signing in by these \
             addresses (and single sign-on) is refused until an admin gives each to one user \
             (POST /user/update)",
            shared.len()
        );
    }
    let (admission, notices): (Arc<dyn Admission>, Arc<dyn Notices>) = match &config.redis_url {
        Some(url) => {
            let admission = RedisAdmission::connect(url, &config.redis_prefix, storage.clone())
                .await
                .context("REDIS_URL is set but Redis cannot be used")?;
            let notices = RedisNotices::connect(url, &config.redis_prefix)
                .await
                .context("REDIS_URL is set but Redis cannot be used")?;
            println!(
                "Shared admission in Redis (prefix {}): budgets and limits hold across every \
                 instance on it.",
                config.redis_prefix
            );
            (admission, Arc::new(notices))
        }
        None => (
            Arc::new(LocalAdmission::new(clock.clone())),
            Arc::new(notices::Alone),
        ),
    };
    if config.alert_webhook_url.is_some() && config.alert_webhook_secret.is_none() {
        anyhow::bail!(
            "GATEHOUSE_ALERT_WEBHOOK_URL is set without GATEHOUSE_ALERT_WEBHOOK_SECRET: alerts \
             are always signed; set a secret the receiver checks"
        );
    }
    let alert_settings = Arc::new(service::alerts::AlertSettings {
        thresholds: config.alert_thresholds.clone(),
        webhook_url: config.alert_webhook_url.clone(),
        team_hosts: config.alert_webhook_hosts.clone(),
        allow_private: config.alert_webhook_allow_private,
        signing: config.alert_webhook_secret.is_some(),
    });
    let alerts = alerts::Alerts::start(
        storage.clone(),
        alert_settings.clone(),
        config.alert_webhook_secret.clone(),
        clock.clone(),
    )?;
    let throttle = Arc::new(Throttle::new(throttle::Limits::default(), clock.clone()));
    let router = providers::router::Router::new(
        Arc::new(models),
        clock.clone(),
        admission.clone(),
        notices.clone(),
    );
    let gate = Arc::new(Gate::new(clock, admission, notices));
    gate.load(&service::budgets::stored(&*storage).await?).await;
    if let Some(url) = &config.redis_url {
        // Listening before serving: no change made from now on is missed.
        let (subscribed, ready) = oneshot::channel();
        tokio::spawn(notices::listen(
            url.clone(),
            config.redis_prefix.clone(),
            storage.clone(),
            gate.clone(),
            router.clone(),
            subscribed,
        ));
        tokio::time::timeout(std::time::Duration::from_secs(10), ready)
            .await
            .ok()
            .and_then(Result::ok)
            .context("cannot subscribe to Redis' change notices")?;
    }
    // The tokenizers' tables take a moment to load: before the first request, not during it.
    let tokenizers = router.models().tokenizers();
    tokio::task::spawn_blocking(move || service::estimate::warm_up(&tokenizers))
        .await
        .context("loading the tokenizers")?;
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .pool_max_idle_per_host(1024)
        .build()
        .context("HTTP client")?;

    let listener = TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            "listening beyond this machine without GATEHOUSE_PUBLIC_URL: the console accepts \
             changes only from pages at localhost; set GATEHOUSE_PUBLIC_URL to where people reach it"
        );
    }

    let site_root = config.site_root.to_string_lossy().to_string();
    if !Path::new(&site_root).join("pkg").exists() {
        tracing::warn!(
            site_root,
            "console assets not found: the API works, the console needs `cargo leptos build` (scripts/run does it)"
        );
    }
    // `cargo leptos build` (hash-files) leaves the hashes of the console's file names beside
    // the binary; a binary built otherwise (tests) serves the plain names.
    let hashed_files = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt").exists()))
        .unwrap_or(false);
    let leptos_options = LeptosOptions::builder()
        .output_name("gatehouse")
        .hash_files(hashed_files)
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .env(Env::PROD)
        .site_addr(addr)
        .build();
    let metrics = Arc::new(metrics::Metrics::new(config.metrics_per_key));
    let (spend_sink, spend_writer) = spend::start(
        storage.clone(),
        gate.clone(),
        config.spend_durability,
        usize::try_from(config.spend_queue).unwrap_or(usize::MAX),
        metrics.clone(),
    );
    let live = live::LiveTeams::new(
        gate.clone(),
        to_std(config.events_heartbeat),
        live::StreamCaps {
            per_caller: config.events_per_caller as usize,
            per_address: config.events_per_address as usize,
        },
    );
    tokio::spawn(live.clone().run(std::time::Duration::from_secs(1)));
    let origins = Arc::new(Origins::new(config.public_url.as_ref(), addr));
    let oidc = match (
        &config.oidc_issuer,
        &config.oidc_client_id,
        &config.oidc_client_secret,
    ) {
        (None, None, None) => None,
        (Some(issuer), Some(id), Some(secret)) => Some(Arc::new(oidc::Oidc::new(
            issuer.clone(),
            id.clone(),
            secret.clone(),
            format!("{}/session/oidc/callback", origins.home()),
        )?)),
        _ => anyhow::bail!(
            "single sign-on needs all of GATEHOUSE_OIDC_ISSUER, GATEHOUSE_OIDC_CLIENT_ID and \
             GATEHOUSE_OIDC_CLIENT_SECRET"
        ),
    };
    let state = AppState {
        storage: storage.clone(),
        gate: gate.clone(),
        router,
        spend: spend_sink,
        http,
        upstream_caps: config.upstream_caps(),
        pace: Arc::new(pace::Pace::new(config.admin_writes_per_minute)),
        quotas: service::Quotas {
            keys_per_user: config.keys_per_user,
        },
        master_key: Arc::new(MasterKey::new(&master_key)),
        session_ttl: config.session_ttl,
        throttle,
        origins,
        oidc,
        trusted_proxies: config.trusted_proxies.clone().into(),
        leptos_options: leptos_options.clone(),
        metrics: metrics.clone(),
        metrics_token: config
            .metrics_token
            .as_deref()
            .map(|token| Arc::new(MasterKey::new(token))),
        live: live.clone(),
        alerts: alert_settings,
    };
    // The console's pages and files (the .wasm above all) are compressed for the browser; the
    // API and proxy answers are not, to keep the request path lean.
    let api: Router = routes::router(&state).with_state(state.clone());
    let console = Router::new()
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            {
                let api = api.clone();
                move || {
                    content_security_policy();
                    console::provide_api(&api);
                }
            },
            move || shell(leptos_options.clone()),
        )
        .fallback(fallback)
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(middleware::from_fn(cache_assets))
        .with_state(state);
    let app = api
        .merge(console)
        .layer(middleware::map_response(browser_headers))
        .layer(middleware::from_fn_with_state(metrics, log_request));

    println!("Gatehouse listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let limits = serve::Limits {
        header_timeout: to_std(config.header_timeout),
        body_timeout: to_std(config.body_timeout),
        max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
        unanswered_per_address: usize::try_from(config.unanswered_per_address)
            .unwrap_or(usize::MAX),
    };
    let uncapped: Arc<[throttle::Network]> = config.trusted_proxies.clone().into();
    let task = tokio::spawn(async move {
        serve::serve(listener, app, limits, uncapped, async {
            let _ = stopped.await;
        })
        .await;
    });
    Ok(Running {
        addr,
        gate,
        shutdown,
        task,
        spend_writer,
        storage,
        live,
        alerts,
    })
}

/// The admin key: from the configuration, else from the data directory, else a new one that
/// is stored there (owner-only) and printed this once.
fn resolve_master_key(config: &Config) -> anyhow::Result<String> {
    if let Some(key) = &config.master_key {
        println!("Admin key: from GATEHOUSE_MASTER_KEY.");
        return Ok(key.clone());
    }
    let path = config.data_dir.join("master_key");
    if path.exists() {
        files::private_dir(&config.data_dir)
            .and_then(|()| files::private_file(&path))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = config::parse_master_key(text.trim())
                .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
            println!(
                "Admin key: in {} (set GATEHOUSE_MASTER_KEY to use your own).",
                path.display()
            );
            Ok(key)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            files::private_dir(&config.data_dir).with_context(|| {
                format!("cannot create data directory {}", config.data_dir.display())
            })?;
            let key = format!("sk-admin-{}", secrets::random_secret(40)?);
            files::write_private(&path, &key)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "Admin key (generated, shown once; also stored in {}):\n    {key}",
                path.display()
            );
            Ok(key)
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn to_std(duration: chrono::Duration) -> std::time::Duration {
    duration.to_std().unwrap_or_default()
}

/// The console's Content-Security-Policy, with the nonce Leptos puts on the scripts it
/// renders: no other script runs, the WASM may be compiled, nothing is framed.
fn content_security_policy() {
    use leptos::prelude::use_context;
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// What every answer tells browsers: do not guess content types, do not leak URLs to other
/// sites, do not frame this.
async fn browser_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The console's files whose names carry a hash of their content (`gatehouse.<hash>.wasm`, as
/// `cargo leptos build` names them with `hash-files`) never change: browsers keep them for a
/// year without asking again. Everything else is checked on every use.
async fn cache_assets(req: Request, next: Next) -> Response {
    let hashed = req
        .uri()
        .path()
        .strip_prefix("/pkg/")
        .is_some_and(is_hashed_name);
    let mut response = next.run(req).await;
    if response.status().is_success() {
        let policy = if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

/// `name.<22 characters of base64url>.ext`: an MD5 of the content, as cargo-leptos writes it.
fn is_hashed_name(file: &str) -> bool {
    let mut parts = file.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(hash), Some(_), None) => {
            hash.len() == 22
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        _ => false,
    }
}

/// Unknown API paths get a JSON 404; everything else is the console's files and pages.
async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    if routes::API_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
        || wants_json(req.headers())
    {
        return ApiError::NotFound("No such endpoint; see the README for the API.".to_string())
            .into_response();
    }
    let uri = req.uri().clone();
    leptos_axum::file_and_error_handler::<AppState, _>(shell)(uri, State(state), req).await
}

/// An API client's request, whatever its path (LiteLLM's routes Gatehouse lacks, a typo): it
/// carries credentials, sends JSON or asks for it. Browsers asking for a page do none of these.
fn wants_json(headers: &axum::http::HeaderMap) -> bool {
    let has = |name: header::HeaderName, wanted: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(wanted))
    };
    headers.contains_key(header::AUTHORIZATION)
        || has(header::CONTENT_TYPE, "application/json")
        || has(header::ACCEPT, "application/json")
}

/// A path as it may be logged: a segment shaped like a secret key (someone named a key by its
/// secret in `/key/{key}/regenerate`) is replaced, and so is an invitation link's id.
fn loggable_path(path: &str) -> String {
    // An invitation's id is a secret too: it sets a password.
    if path.starts_with("/invite/") {
        return "/invite/[secret]".to_string();
    }
    if !path.contains("/sk-") {
        return path.to_string();
    }
    path.split('/')
        .map(|segment| {
            if segment.starts_with(secrets::KEY_PREFIX) {
                "[secret]"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One line per request: method, path (never the query, which may carry a key), status, time.
/// Proxied requests log at debug level (the spend log records each of them); the rest at info.
/// Every answer of a mounted route is also counted for /metrics, under its route pattern
/// (never the path, which may name a key). One middleware for both: each layer costs the
/// request path.
async fn log_request(
    State(metrics): State<Arc<metrics::Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let proxied = routes::is_proxy_path(req.uri().path());
    let logged = !proxied || tracing::enabled!(tracing::Level::DEBUG);
    let method = logged.then(|| req.method().clone());
    let path = logged.then(|| loggable_path(req.uri().path()));
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(route) = &route {
        metrics.answered(route.as_str(), status, elapsed);
    }
    if let (Some(method), Some(path)) = (method, path) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if proxied {
            tracing::debug!(%method, path, status, micros, "request");
        } else {
            tracing::info!(%method, path, status, micros, "request");
        }
    }
    response
}
