//! Start-up configuration, from flags or the environment (`gatehouse --help` lists both).
//! Invalid values stop the server with a message before it opens anything.

use clap::Parser;
use std::{net::IpAddr, path::PathBuf};

#[derive(Parser, Clone)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse: an LLM gateway with team budgets, rate limits and an admin console.",
    after_help = "Every flag can also be set by the environment variable shown beside it."
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GATEHOUSE_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one; the chosen address is printed).
    #[arg(long, env = "GATEHOUSE_PORT", default_value_t = 4000)]
    pub port: u16,

    /// Directory for the default SQLite database and the generated admin key; created on
    /// first start.
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Database URL [default: sqlite://<data dir>/gatehouse.db].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Admin (master) key, 8 to 256 characters without spaces. When unset, a strong one is
    /// generated on first start, stored in <data dir>/master_key and printed once. Prefer the
    /// environment variable over the flag: flags show up in process lists.
    #[arg(long, env = "GATEHOUSE_MASTER_KEY", hide_env_values = true, value_parser = parse_master_key)]
    pub master_key: Option<String>,

    /// YAML file with the model list (providers and prices).
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Directory of the built console (the WASM bundle, CSS and static files).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// How long a console sign-in lasts, e.g. 30m, 12h, 7d.
    #[arg(long, env = "GATEHOUSE_SESSION_TTL", default_value = "12h", value_parser = parse_duration)]
    pub session_ttl: chrono::Duration,

    /// When an answer may go out: `default` at once (spend is committed every 200 ms, a crash
    /// loses at most that), `strict` only once its spend row is committed.
    #[arg(
        long,
        env = "GATEHOUSE_SPEND_DURABILITY",
        value_enum,
        default_value = "default"
    )]
    pub spend_durability: crate::spend::Durability,

    /// Spend rows answered but not yet committed that this instance holds at most: past it
    /// (the database is away or slow), new requests get 503 until the writer catches up.
    /// Nothing answered is dropped.
    #[arg(long, env = "GATEHOUSE_SPEND_QUEUE", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub spend_queue: u64,

    /// A bearer token that may read /metrics (and nothing else), for a Prometheus scraper;
    /// the admin key and a signed-in session may read it too.
    #[arg(long, env = "GATEHOUSE_METRICS_TOKEN", hide_env_values = true, value_parser = parse_metrics_token)]
    pub metrics_token: Option<String>,

    /// Whether /metrics has series per key (key × model): turn off when there are many keys;
    /// team and model series remain.
    #[arg(long, env = "GATEHOUSE_METRICS_PER_KEY", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics_per_key: bool,

    /// Where people reach the console, e.g. https://gatehouse.example.com: signed-in browsers
    /// may change things only from pages of this origin, and the session cookie is marked
    /// Secure when it is https. Unset: the listen address and its loopback names
    /// (localhost, 127.0.0.1, [::1]) on the bound port, over http.
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<PublicUrl>,

    /// Proxies (addresses or networks such as 10.0.0.0/8, comma-separated) whose
    /// X-Forwarded-For names the client; from any other peer the header is ignored.
    #[arg(long, env = "GATEHOUSE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<crate::throttle::Network>,

    /// How long a client has to send a request's headers; also the longest an idle kept-alive
    /// connection stays open. Responses being written (streams) are never cut.
    #[arg(long, env = "GATEHOUSE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: chrono::Duration,

    /// How often the console's live streams (`/team/events`) send a heartbeat when nothing
    /// changes, so proxies and load balancers do not close them as idle.
    #[arg(long, env = "GATEHOUSE_EVENTS_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub events_heartbeat: chrono::Duration,

    /// Live streams (`/team/events`) one person, or one virtual key, may hold open at once.
    #[arg(long, env = "GATEHOUSE_EVENTS_PER_CALLER", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub events_per_caller: u32,

    /// Live streams the admin key may hold open at once from one client address.
    #[arg(long, env = "GATEHOUSE_EVENTS_PER_ADDRESS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub events_per_address: u32,

    /// Keys one user may hold at most (whoever issues them).
    #[arg(long, env = "GATEHOUSE_KEYS_PER_USER", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub keys_per_user: u64,

    /// Admin changes one person (or one key of no one's) may make a minute, in bursts of as
    /// many; the admin key and proxy admins are not paced.
    #[arg(long, env = "GATEHOUSE_ADMIN_WRITES_PER_MINUTE", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub admin_writes_per_minute: u32,

    /// How long a client has to send a request's whole body.
    #[arg(long, env = "GATEHOUSE_BODY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub body_timeout: chrono::Duration,

    /// The most of a provider's whole (non-stream) answer read: a larger one fails the try
    /// (502). Bytes, or with a unit: KiB, MiB.
    #[arg(long, env = "GATEHOUSE_UPSTREAM_MAX_ANSWER", default_value = "32MiB", value_parser = parse_bytes)]
    pub upstream_max_answer: usize,

    /// The most of a provider's error body read (the rest is not).
    #[arg(long, env = "GATEHOUSE_UPSTREAM_MAX_ERROR", default_value = "64KiB", value_parser = parse_bytes)]
    pub upstream_max_error: usize,

    /// The longest line of a provider's stream: a longer one ends the stream with an error.
    #[arg(long, env = "GATEHOUSE_UPSTREAM_MAX_LINE", default_value = "8MiB", value_parser = parse_bytes)]
    pub upstream_max_line: usize,

    /// The longest a provider's stream may run from its first chunk: it then ends with an
    /// error event, charged for what it delivered.
    #[arg(long, env = "GATEHOUSE_STREAM_MAX_DURATION", default_value = "1h", value_parser = parse_duration)]
    pub stream_max_duration: chrono::Duration,

    /// Connections open at once; further ones wait until one closes.
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Connections one client address may hold open before they have sent a whole request,
    /// once half the connections are taken (a flood of silent sockets cannot take every slot);
    /// trusted proxies are not capped.
    #[arg(long, env = "GATEHOUSE_UNANSWERED_PER_ADDRESS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub unanswered_per_address: u32,

    /// Redis for a fleet: redis://[:password@]host:port[/db] or rediss:// (TLS). Budgets, rate
    /// limits and reservations are then shared by every instance using the same Redis and
    /// prefix, and admin changes reach them all. Unset: one instance, counters in memory.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = parse_redis_url)]
    pub redis_url: Option<String>,

    /// Prefix of Gatehouse's keys and channel in Redis: fleets sharing one Redis need their own.
    #[arg(long, env = "GATEHOUSE_REDIS_PREFIX", default_value = "gatehouse", value_parser = parse_redis_prefix)]
    pub redis_prefix: String,

    /// Where budget alerts go: every level's threshold crossings and forecasts are POSTed here
    /// as JSON, signed with GATEHOUSE_ALERT_WEBHOOK_SECRET.
    #[arg(long, env = "GATEHOUSE_ALERT_WEBHOOK_URL", value_parser = parse_webhook_url)]
    pub alert_webhook_url: Option<String>,

    /// The key of the alerts' signature, `X-Gatehouse-Signature: sha256=<hex HMAC-SHA256 of
    /// the body>`; required to send alerts to any webhook.
    #[arg(long, env = "GATEHOUSE_ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<String>,

    /// Hosts a team's own `alert_webhook_url` may name (comma-separated, exact names): a
    /// team's webhook can never reach other, internal addresses. Unset: teams have none.
    #[arg(long, env = "GATEHOUSE_ALERT_WEBHOOK_HOSTS", value_delimiter = ',')]
    pub alert_webhook_hosts: Vec<String>,

    /// Whether a team's webhook may be delivered to an address that is not public (loopback,
    /// private, link-local) or on a port other than 80 and 443. The operator's own
    /// GATEHOUSE_ALERT_WEBHOOK_URL is trusted as it is.
    #[arg(long, env = "GATEHOUSE_ALERT_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub alert_webhook_allow_private: bool,

    /// Single sign-on: the OpenID Connect provider's issuer URL (its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`). People are matched to users by e-mail,
    /// only when the provider says the address is verified. Needs the client id and secret.
    #[arg(long, env = "GATEHOUSE_OIDC_ISSUER", value_parser = parse_webhook_url)]
    pub oidc_issuer: Option<String>,

    /// The client id Gatehouse has at the OpenID Connect provider.
    #[arg(long, env = "GATEHOUSE_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// The client secret Gatehouse has at the OpenID Connect provider.
    #[arg(long, env = "GATEHOUSE_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,

    /// Percentages of max_budget whose crossing sends a `budget_threshold` alert.
    #[arg(long, env = "GATEHOUSE_ALERT_THRESHOLDS", value_delimiter = ',', default_value = "50,80,100",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub alert_thresholds: Vec<u32>,
}

fn parse_redis_url(value: &str) -> Result<String, String> {
    match redis::parse_redis_url(value) {
        Some(url) if matches!(url.scheme(), "redis" | "rediss") => Ok(value.to_string()),
        _ => Err("expected redis://host:port or rediss://host:port".to_string()),
    }
}

fn parse_redis_prefix(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(value.to_string())
    } else {
        Err("1 to 64 letters, digits, '-', '_' or '.'".to_string())
    }
}

/// Where people reach the console: `scheme://host[:port]`, as browsers write it in `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub origin: String,
    pub https: bool,
}

fn parse_public_url(value: &str) -> Result<PublicUrl, String> {
    let bad = || {
        "must be http:// or https:// and a host, with an optional port and no path, e.g. \
         https://gatehouse.example.com"
            .to_string()
    };
    let uri: axum::http::Uri = value.trim_end_matches('/').parse().map_err(|_| bad())?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad()),
    };
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.as_str().contains('@') || !matches!(uri.path(), "" | "/") || uri.query().is_some()
    {
        return Err(bad());
    }
    let host = authority.host().to_ascii_lowercase();
    let default_port = if https { 443 } else { 80 };
    let origin = match authority.port_u16() {
        Some(port) if port != default_port => {
            format!("{}://{host}:{port}", if https { "https" } else { "http" })
        }
        _ => format!("{}://{host}", if https { "https" } else { "http" }),
    };
    Ok(PublicUrl { origin, https })
}

/// The rule for admin keys, whether set by the operator or read back from the data directory.
pub fn parse_master_key(value: &str) -> Result<String, String> {
    let ok = (8..=256).contains(&value.len()) && value.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(value.to_string())
    } else {
        Err("the admin key must be 8 to 256 printable ASCII characters without spaces".to_string())
    }
}

fn parse_webhook_url(value: &str) -> Result<String, String> {
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(value.to_string())
        }
        _ => Err("must be an http(s) URL".to_string()),
    }
}

fn parse_duration(value: &str) -> Result<chrono::Duration, String> {
    let period = crate::service::duration::Period::parse("a duration", value).map_err(|_| {
        "use a whole number from 1 to 100000 and a unit: s, m, h, d or mo (e.g. 30s, 12h, 7d)"
            .to_string()
    })?;
    let now = chrono::Utc::now();
    Ok(period.after(now) - now)
}

/// A size in bytes: a whole number, alone or with KiB or MiB.
fn parse_bytes(value: &str) -> Result<usize, String> {
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let unit = match unit.trim() {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        _ => return Err("use a whole number of bytes, or with KiB or MiB (e.g. 64KiB)".into()),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| (1..=1 << 32).contains(n))
        .ok_or_else(|| "use a size from 1 byte to 4096MiB (e.g. 64KiB, 32MiB)".into())
}

impl Config {
    pub fn upstream_caps(&self) -> crate::providers::call::Caps {
        crate::providers::call::Caps {
            answer: self.upstream_max_answer,
            error: self.upstream_max_error,
            line: self.upstream_max_line,
            stream: self
                .stream_max_duration
                .to_std()
                .unwrap_or(std::time::Duration::MAX),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("gatehouse.db").display()))
    }
}

/// A metrics token long enough not to be guessed.
pub fn parse_metrics_token(text: &str) -> Result<String, String> {
    if text.len() < 16 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the metrics token must be at least 16 characters, without spaces".into());
    }
    Ok(text.to_string())
}
