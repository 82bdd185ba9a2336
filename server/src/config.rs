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
    #[arg(long, env = "GATEHOUSE_SESSION_TTL", default_value = "12h", value_parser = parse_ttl)]
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

fn parse_ttl(value: &str) -> Result<chrono::Duration, String> {
    let period = crate::service::duration::Period::parse("session_ttl", value)
        .map_err(|err| err.to_string())?;
    let now = chrono::Utc::now();
    Ok(period.after(now) - now)
}

impl Config {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("gatehouse.db").display()))
    }
}
