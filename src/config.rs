//! One `Config`, from flags, `SESSIOND_*` env and an optional TOML file (a flag beats
//! env, env beats the file, the file beats the built-in defaults), validated once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::api::quotas::QuotaSettings;
use crate::api::validate::RequestLimits;
use crate::gateway::GatewaySettings;
use crate::layers::auth::{CallerConfig, CallerConfigError, Callers};
use crate::layers::call_log::{CallLogSettings, LogCalls};
use crate::layers::connections::ConnectionSettings;
use crate::layers::CallLimitSettings;
use crate::session::binding::ProofSettings;
use crate::session::manager::ManagerSettings;
use crate::session::policy::{GroupPolicy, Policies};
use crate::session::revocations::retention_covers_the_feed;
use crate::store::redis::RedisConfig;
use crate::store::sled::SledConfig;
use crate::store::{Durability, StoreKind};
use crate::telemetry::TraceSettings;

/// Command line of `sessiond`; every flag also reads a `SESSIOND_*` variable.
#[derive(Debug, Default, Parser)]
#[command(name = "sessiond", version, about = "gRPC session backend on sled")]
pub struct Cli {
    /// Address to serve gRPC on [default: 127.0.0.1:50051].
    #[arg(long, env = "SESSIOND_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the sled database, created if missing [default: ./data].
    #[arg(long, env = "SESSIOND_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file (groups, limits, sweeper...).
    #[arg(long, env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,
    /// "sync" (acknowledged means flushed) or "periodic" [default: sync].
    #[arg(long, env = "SESSIOND_DURABILITY")]
    pub durability: Option<Durability>,
    /// Serve Prometheus metrics at http://ADDR/metrics [default: off].
    #[arg(long, env = "SESSIOND_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// "text" (for people) or "json" (one object per line, for log pipelines)
    /// [default: text].
    #[arg(long, env = "SESSIOND_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// "failed" (failed and slow calls only) or "all" (an access log line per call)
    /// [default: failed].
    #[arg(long, env = "SESSIOND_LOG_CALLS")]
    pub log_calls: Option<LogCalls>,
    /// Serve beyond loopback without any configured caller (no authentication).
    #[arg(long, env = "SESSIOND_ALLOW_INSECURE")]
    pub allow_insecure: bool,
    /// Where sessions live: "sled" (embedded, in the data dir) or "redis" [default: sled].
    #[arg(long, env = "SESSIOND_STORE")]
    pub store: Option<StoreKind>,
    /// Redis URL (repeat, or comma-separate in the env, for cluster seed nodes).
    #[arg(long = "redis-url", env = "SESSIOND_REDIS_URLS", value_delimiter = ',')]
    pub redis_urls: Vec<String>,
    /// The Redis URLs are seed nodes of a Redis Cluster.
    #[arg(long, env = "SESSIOND_REDIS_CLUSTER")]
    pub redis_cluster: bool,
    /// Prefix of every Redis key [default: sessiond].
    #[arg(long, env = "SESSIOND_REDIS_KEY_PREFIX")]
    pub redis_key_prefix: Option<String>,
    /// Export traces to this OTLP/gRPC collector, e.g. http://127.0.0.1:4317 (also
    /// OTEL_EXPORTER_OTLP_ENDPOINT) [default: off].
    #[arg(long, env = "SESSIOND_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded, 0 to 1; a sampled caller's trace is always kept
    /// [default: OTEL_TRACES_SAMPLER, else 1].
    #[arg(long, env = "SESSIOND_TRACE_SAMPLING_RATIO")]
    pub trace_sampling_ratio: Option<f64>,
    /// Instead of serving: a one-off task.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-off tasks of the `sessiond` binary.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Restore a backup (from `sessionctl backup`) into a new, empty data dir, then
    /// exit; start the server on that dir afterwards.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The data dir to create (it must be missing or empty).
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Compact a stopped server's sled data dir (its live data into a fresh
    /// generation, the old one deleted), then exit.
    Compact {
        /// The data dir (no server may be running on it).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// Server TLS, and with `client_ca`, client certificates (mTLS).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert: PathBuf,
    /// PEM private key of the server.
    pub key: PathBuf,
    /// PEM CA that signs client certificates; clients presenting one signed by it are
    /// identified by its subject's common name. Clients may still use API keys instead.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::keyword::parse_keyword(s)
    }
}

/// The config file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    store: Option<StoreKind>,
    #[serde(default)]
    redis: RedisConfig,
    #[serde(default)]
    sled: SledConfig,
    durability: Option<Durability>,
    metrics_listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    log_calls: Option<LogCalls>,
    #[serde(with = "humantime_serde", default)]
    slow_call: Option<Duration>,
    jwt_issuer: Option<String>,
    #[serde(default)]
    allow_insecure: bool,
    reflection: Option<bool>,
    tls: Option<TlsConfig>,
    #[serde(default)]
    callers: Vec<CallerConfig>,
    #[serde(with = "humantime_serde", default)]
    touch_interval: Option<Duration>,
    #[serde(with = "humantime_serde", default)]
    whoami_cache_max: Option<Duration>,
    #[serde(with = "humantime_serde", default)]
    event_retention: Option<Duration>,
    #[serde(with = "humantime_serde", default)]
    watch_stall_timeout: Option<Duration>,
    #[serde(default)]
    sweeper: SweeperConfig,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    quotas: QuotaSettings,
    #[serde(default)]
    connections: ConnectionSettings,
    #[serde(default)]
    groups: BTreeMap<String, GroupPolicy>,
    #[serde(default)]
    proofs: ProofSettings,
    #[serde(default)]
    gateway: GatewaySettings,
    #[serde(default)]
    tracing: TraceSettings,
}

/// The `[limits]` table: one table in the file for two owners, the request-shape limits
/// that `api::validate` enforces and the call limits of `layers::limits`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(flatten)]
    pub request: RequestLimits,
    #[serde(flatten)]
    pub calls: CallLimitSettings,
}

/// How the background sweeper runs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweeperConfig {
    /// Pause between two sweeps.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Expired sessions deleted per store step.
    pub batch_size: usize,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        SweeperConfig {
            interval: Duration::from_secs(1),
            batch_size: 32,
        }
    }
}

/// Everything the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// Which backend holds the sessions.
    pub store: StoreKind,
    /// How to reach Redis when `store` is Redis.
    pub redis: RedisConfig,
    /// The embedded store's page cache, when `store` is sled.
    pub sled: SledConfig,
    /// Where the admin HTTP port (metrics) listens; None: off.
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// Which calls are logged, and from when a call is slow.
    pub call_log: CallLogSettings,
    /// Who may call, and what; empty: anyone (loopback only, unless `allow_insecure`).
    pub callers: Callers,
    pub tls: Option<TlsConfig>,
    /// Serve beyond loopback with no callers configured.
    pub allow_insecure: bool,
    /// Serve gRPC server reflection.
    pub reflection: bool,
    /// `iss` claim of signed access and ID tokens.
    pub jwt_issuer: String,
    /// Touch interval, Whoami cache hint, event retention.
    pub session: ManagerSettings,
    /// How long a watcher may leave its stream full before it is cut off.
    pub watch_stall_timeout: Duration,
    pub sweeper: SweeperConfig,
    pub limits: Limits,
    /// Token buckets on Start and Refresh per caller, user and session (none: off).
    pub quotas: QuotaSettings,
    /// Bounds on client connections: how many, how long to the first call, idle time,
    /// keepalive, streams per connection.
    pub connections: ConnectionSettings,
    pub policies: Policies,
    /// How gateways (ext_authz, forward-auth) find session tokens and what they pass on.
    pub gateway: GatewaySettings,
    /// OpenTelemetry traces (off without an endpoint).
    pub tracing: TraceSettings,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("group {group:?}: {problem}")]
    Group {
        group: String,
        problem: &'static str,
    },
    #[error("{0}")]
    Invalid(&'static str),
    #[error("callers: {0}")]
    Callers(#[from] CallerConfigError),
    #[error("refusing to listen on {0} with no callers configured: anyone who can reach it could end every session. Configure [[callers]] (API keys or mTLS), listen on loopback, or pass --allow-insecure")]
    Insecure(SocketAddr),
}

impl Config {
    /// Flags and env over the file named by `--config`, if any.
    pub fn load(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Config::merge(cli, file)
    }

    /// The config a TOML text describes (no flags, no env).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Config::merge(Cli::default(), toml::from_str(text)?)
    }

    fn merge(cli: Cli, file: FileConfig) -> Result<Config, ConfigError> {
        let config = Config {
            listen: cli
                .listen
                .or(file.listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051))),
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            durability: cli.durability.or(file.durability).unwrap_or_default(),
            store: cli.store.or(file.store).unwrap_or_default(),
            redis: RedisConfig {
                urls: if cli.redis_urls.is_empty() {
                    file.redis.urls
                } else {
                    cli.redis_urls
                },
                cluster: cli.redis_cluster || file.redis.cluster,
                key_prefix: cli.redis_key_prefix.unwrap_or(file.redis.key_prefix),
                ..file.redis
            },
            sled: file.sled,
            metrics_listen: cli.metrics_listen.or(file.metrics_listen),
            log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
            call_log: CallLogSettings {
                log_calls: cli.log_calls.or(file.log_calls).unwrap_or_default(),
                slow_call: file
                    .slow_call
                    .unwrap_or(CallLogSettings::default().slow_call),
            },
            callers: Callers::new(&file.callers)?,
            tls: file.tls,
            allow_insecure: cli.allow_insecure || file.allow_insecure,
            reflection: file.reflection.unwrap_or(true),
            jwt_issuer: file.jwt_issuer.unwrap_or_else(|| "sessiond".to_owned()),
            session: ManagerSettings {
                touch_interval: file
                    .touch_interval
                    .unwrap_or(ManagerSettings::default().touch_interval),
                whoami_cache_max: file
                    .whoami_cache_max
                    .unwrap_or(ManagerSettings::default().whoami_cache_max),
                event_retention: file
                    .event_retention
                    .unwrap_or(ManagerSettings::default().event_retention),
                proofs: file.proofs,
            },
            watch_stall_timeout: file.watch_stall_timeout.unwrap_or(Duration::from_secs(10)),
            sweeper: file.sweeper,
            limits: file.limits,
            quotas: file.quotas,
            connections: file.connections,
            policies: Policies::new(file.groups),
            gateway: file.gateway.normalized(),
            tracing: TraceSettings {
                // The standard variables sit between ours and the file.
                otlp_endpoint: cli
                    .otlp_endpoint
                    .or_else(|| env_text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
                    .or_else(|| env_text("OTEL_EXPORTER_OTLP_ENDPOINT"))
                    .or(file.tracing.otlp_endpoint),
                sampling_ratio: cli
                    .trace_sampling_ratio
                    .or_else(crate::telemetry::ratio_from_otel_env)
                    .or(file.tracing.sampling_ratio),
                service_name: env_text("OTEL_SERVICE_NAME").or(file.tracing.service_name),
                resource_attributes: file.tracing.resource_attributes,
            },
        };
        config.validate()?;
        Ok(config)
    }

    /// Refuses an unauthenticated server reachable beyond this machine.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback() && self.callers.is_empty() && !self.allow_insecure {
            return Err(ConfigError::Insecure(self.listen));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.check_exposure()?;
        for (group, policy) in self.policies.iter() {
            if let Some(problem) = policy.problem() {
                return Err(ConfigError::Group {
                    group: group.to_owned(),
                    problem,
                });
            }
        }
        if let Some(problem) = self.gateway.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        if self
            .tracing
            .sampling_ratio
            .is_some_and(|ratio| !(0.0..=1.0).contains(&ratio))
        {
            return Err(ConfigError::Invalid(
                "tracing.sampling_ratio must be between 0 and 1",
            ));
        }
        if !retention_covers_the_feed(&self.policies, self.session.event_retention) {
            return Err(ConfigError::Invalid(
                "event_retention must be at least the longest access_token_ttl plus 30s: \
                 the revocation feed (ListRevocations) reads revocations from the event log",
            ));
        }
        if self.sweeper.batch_size == 0 {
            return Err(ConfigError::Invalid(
                "sweeper.batch_size must be at least 1",
            ));
        }
        if self.sweeper.interval.is_zero() {
            return Err(ConfigError::Invalid(
                "sweeper.interval must be more than 0s",
            ));
        }
        if let Some(problem) = self.limits.calls.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        if self.store == StoreKind::Redis {
            if let Some(problem) = self.redis.problem() {
                return Err(ConfigError::Invalid(problem));
            }
        }
        if let Some(problem) = self.sled.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        if let Some(problem) = self.connections.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        if let Some(problem) = self.quotas.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        if let Some(problem) = self.limits.request.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        if let Some(problem) = self.session.proofs.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        Ok(())
    }
}

/// An environment variable's text, when set and not empty.
fn env_text(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|text| !text.is_empty())
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(toml::from_str(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_gives_the_embedded_defaults() {
        let config = Config::from_toml_str("").expect("defaults are valid");
        assert_eq!(config.listen, "127.0.0.1:50051".parse().expect("address"));
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.durability, Durability::Sync);
        assert!(config.policies.get("default").is_some());
    }

    #[test]
    fn a_flag_beats_the_file() {
        let file: FileConfig = toml::from_str("listen = \"127.0.0.1:1\"").expect("toml");
        let cli = Cli {
            listen: Some("127.0.0.1:2".parse().expect("address")),
            ..Cli::default()
        };
        let config = Config::merge(cli, file).expect("valid");
        assert_eq!(config.listen.port(), 2);
    }

    #[test]
    fn groups_read_humane_durations() {
        let config = Config::from_toml_str(
            "[groups.admin]\nlifespan = \"1h\"\nmax_lifetime = \"8h\"\nidle_timeout = \"15m\"",
        )
        .expect("valid");
        let admin = config.policies.get("admin").expect("admin group");
        assert_eq!(admin.lifespan, Duration::from_secs(3600));
        assert_eq!(admin.idle_timeout, Some(Duration::from_secs(900)));
    }

    #[test]
    fn an_impossible_group_is_refused_with_its_name() {
        let error = Config::from_toml_str("[groups.x]\nlifespan = \"2h\"\nmax_lifetime = \"1h\"")
            .expect_err("max_lifetime below lifespan");
        assert!(error.to_string().contains("\"x\""), "{error}");
    }

    #[test]
    fn listening_beyond_loopback_needs_callers_or_consent() {
        let open = "listen = \"0.0.0.0:50051\"";
        let error = Config::from_toml_str(open).expect_err("refused");
        assert!(error.to_string().contains("--allow-insecure"), "{error}");
        assert!(Config::from_toml_str(&format!("{open}\nallow_insecure = true")).is_ok());
        let with_caller = format!(
            "{open}\n[[callers]]\nname = \"edge\"\ncert_subject = \"edge\"\ncalls = [\"Whoami\"]"
        );
        assert!(Config::from_toml_str(&with_caller).is_ok());
    }

    #[test]
    fn connection_bounds_and_quotas_are_checked() {
        let config = Config::from_toml_str(
            "[connections]\nidle_timeout = \"90s\"\n\
             [quotas]\nstart_per_user = { calls = 5, per = \"1m\" }",
        )
        .expect("valid");
        assert_eq!(config.connections.idle_timeout, Duration::from_secs(90));
        assert_eq!(config.connections.max_connections, 4096, "the rest default");
        assert!(config.quotas.start_per_user.is_some());
        assert_eq!(
            config.sled.cache_mib, 256,
            "sled's page cache defaults to 256 MiB"
        );
        assert!(
            config.quotas.start_per_caller.is_none(),
            "quotas default off"
        );
        for refused in [
            "[connections]\nmax_connections = 0",
            "[quotas]\nstart_per_user = { calls = 0, per = \"1m\" }",
            "[sled]\ncache_mib = 8",
        ] {
            assert!(Config::from_toml_str(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn unknown_settings_are_refused() {
        assert!(Config::from_toml_str("listne = \"127.0.0.1:1\"").is_err());
        // One [limits] table feeds two owners; a key neither knows is still refused.
        let limits =
            Config::from_toml_str("[limits]\nmax_user_id_bytes = 8\ncall_timeout = \"2s\"")
                .expect("valid limits");
        assert_eq!(limits.limits.request.max_user_id_bytes, 8);
        assert_eq!(limits.limits.calls.call_timeout, Duration::from_secs(2));
        assert!(Config::from_toml_str("[limits]\nmax_in_flite = 1").is_err());
    }
}
