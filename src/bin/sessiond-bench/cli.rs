//! The flags, and the parsers for their values (durations like `10s`, mixes like
//! `whoami=90,refresh=5,start=5`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser};

use crate::calls::CallKind;

/// Drives a running sessiond over real gRPC and reports calls/s and latency, next to
/// the `grpc.health.v1` Check measured in the same run (the ceiling on this machine).
///
/// A run: connect, prepare what the calls need (sessions to validate, refresh tokens to
/// rotate, users to refresh), warm up, measure the health Check baseline, then measure
/// the call (or mix) with the same connections, concurrency and duration.
#[derive(Debug, Parser)]
#[command(name = "sessiond-bench", version, args_override_self = true)]
#[command(group(ArgGroup::new("workload").required(true).args(["call", "mix"])))]
pub struct Cli {
    /// Server to drive: `http://HOST:PORT` or `https://HOST:PORT` (a bare `HOST:PORT`
    /// means https with a TLS flag, plaintext http without).
    #[arg(
        long,
        env = "SESSIOND_BENCH_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,

    /// API key of a `[[callers]]` entry, sent as `authorization: Bearer <key>` on every
    /// SessionService call (the caller needs Start plus the calls driven).
    #[arg(long, env = "SESSIOND_BENCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// PEM CA certificate to verify the server with; turns TLS on (`https://`).
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// PEM client certificate for mTLS (with --key); the server maps its CN to a caller.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Server name to verify in its certificate (default: the --addr host).
    #[arg(long, value_name = "NAME")]
    pub tls_domain: Option<String>,

    /// The one call to drive.
    #[arg(long, value_enum)]
    pub call: Option<CallKind>,

    /// A weighted mix of calls instead of one, e.g. `whoami=90,refresh=5,start=5`.
    #[arg(long, value_parser = parse_mix)]
    pub mix: Option<Mix>,

    /// HTTP/2 connections to open; workers share them round-robin.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub connections: u32,

    /// Calls in flight: one worker task per call, each waiting for its answer.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// How long to measure each phase (`10s`, `500ms`, `2m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration, conflicts_with = "count")]
    pub duration: Duration,

    /// Pace the calls to sessiond to at most this many per second in all (every phase,
    /// its health baseline too; not the --reference): a soak at a set load.
    #[arg(long, value_name = "CALLS", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,

    /// Measure a fixed number of calls per phase instead of a duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Sessions to prepare for whoami, refresh and extend (raised to --concurrency if
    /// lower: each worker owns its sessions, so refresh chains never cross).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub sessions: u64,

    /// Users to prepare for refresh-all.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub users: u64,

    /// Active sessions each refresh-all user gets.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub sessions_per_user: u64,

    /// Warm-up before measuring, with the chosen call; `0s` skips it.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Skip the grpc.health.v1 Check baseline (and so the ratio).
    #[arg(long)]
    pub no_baseline: bool,

    /// Bind every session to a device key (one Ed25519 key for the run) and send a DPoP
    /// proof with each Refresh and Whoami (docs/binding.md): what binding costs.
    #[arg(long)]
    pub bound: bool,

    /// A bare tonic server serving only `grpc.health.v1` (`tonic-reference`), plaintext
    /// `http://HOST:PORT`: its health Check is measured in the same run, with the same
    /// connections, concurrency and duration, and every figure is also given as a
    /// ratio to it.
    #[arg(long, value_name = "URL")]
    pub reference: Option<String>,

    /// Also write the report as JSON (ghz's summary field names, latencies in ns).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Prepare only: write what `--call` needs as a ghz data array to PATH (session
    /// tokens, refresh tokens, session ids or user ids, one object per request) and
    /// exit; `bench/ghz/<call>.json` reads it as its `data-file`.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["mix", "json", "count"])]
    pub ghz_data: Option<PathBuf>,

    /// Soak: while the measured phase runs, sample the size of this data dir (the
    /// server's), and print it with the server's RSS, sessions and space
    /// amplification every --sample-every.
    #[arg(long, value_name = "DIR")]
    pub soak_data_dir: Option<PathBuf>,

    /// Soak: the server's process id, for its RSS.
    #[arg(long, value_name = "PID", requires = "soak_data_dir")]
    pub soak_pid: Option<u32>,

    /// Soak: the server's admin port (`--metrics-listen`), `HOST:PORT`, for the
    /// sessions stored and the store's live bytes.
    #[arg(long, value_name = "HOST:PORT", requires = "soak_data_dir")]
    pub soak_metrics: Option<String>,

    /// The sessiond server's process id: report its CPU time per call in each phase
    /// (from /proc; comparable across runs on a busy machine, unlike calls per second).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// The store's process id (e.g. redis-server): its CPU time per call in the measured
    /// phase too, for a store that shares the machine's cores.
    #[arg(long, value_name = "PID")]
    pub store_pid: Option<u32>,

    /// The --reference server's process id: its CPU time per call too.
    #[arg(long, value_name = "PID", requires = "reference")]
    pub reference_pid: Option<u32>,

    /// Soak: how often to sample.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub sample_every: Duration,

    /// Give up on one call after this long (counted as DeadlineExceeded).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl Cli {
    /// The calls to drive with their weights: `--mix`, or `--call` with weight 1.
    pub fn weights(&self) -> Vec<(CallKind, u32)> {
        match (&self.mix, self.call) {
            (Some(mix), _) => mix.0.clone(),
            (None, Some(call)) => vec![(call, 1)],
            // clap's required group means one of the two is set; default to the
            // cheapest real call anyway rather than panic.
            (None, None) => vec![(CallKind::Whoami, 1)],
        }
    }

    /// The server URL with a scheme: a bare `host:port` gets `https://` when a TLS flag
    /// is given, `http://` otherwise.
    pub fn url(&self) -> String {
        if self.addr.contains("://") {
            self.addr.clone()
        } else if self.tls() {
            format!("https://{}", self.addr)
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// Whether to speak TLS: an `https://` address or any TLS flag.
    pub fn tls(&self) -> bool {
        self.addr.starts_with("https://")
            || self.ca_cert.is_some()
            || self.cert.is_some()
            || self.tls_domain.is_some()
    }
}

/// `--mix`: calls and their relative weights, each call at most once, weights > 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix(pub Vec<(CallKind, u32)>);

/// Largest sum of mix weights: keeps the per-worker schedule small.
const MAX_MIX_TOTAL: u32 = 10_000;

/// Parses `whoami=90,refresh=5,start=5` (spaces allowed, weights are relative).
pub fn parse_mix(text: &str) -> Result<Mix, String> {
    let mut calls: Vec<(CallKind, u32)> = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected CALL=WEIGHT, e.g. whoami=90"))?;
        let kind = CallKind::from_name(name.trim()).ok_or_else(|| {
            format!(
                "`{}`: unknown call (one of {})",
                name.trim(),
                CallKind::ALL.map(CallKind::name).join(", ")
            )
        })?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("`{part}`: the weight must be a whole number"))?;
        if weight == 0 {
            return Err(format!(
                "`{part}`: a weight must be at least 1 (leave the call out instead)"
            ));
        }
        if calls.iter().any(|(seen, _)| *seen == kind) {
            return Err(format!("`{}` appears twice", kind.name()));
        }
        calls.push((kind, weight));
    }
    if calls.is_empty() {
        return Err("empty mix: expected e.g. whoami=90,refresh=5,start=5".into());
    }
    let total: u64 = calls.iter().map(|(_, weight)| u64::from(*weight)).sum();
    if total > u64::from(MAX_MIX_TOTAL) {
        return Err(format!(
            "weights add up to {total}; keep them at most {MAX_MIX_TOTAL} (they are relative)"
        ));
    }
    Ok(Mix(calls))
}

/// Parses `10s`, `500ms`, `1.5s`, `2m`, `1h`, `250us`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration like 10s, 500ms or 2m"))?;
    let unit_seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(number * unit_seconds)
        .map_err(|_| format!("`{text}`: duration out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_common_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn mix_parses_weights_in_order() {
        let mix = parse_mix("whoami=90, refresh=5,start=5").expect("valid mix");
        assert_eq!(
            mix.0,
            vec![
                (CallKind::Whoami, 90),
                (CallKind::Refresh, 5),
                (CallKind::Start, 5)
            ]
        );
        assert_eq!(
            parse_mix("refresh-all=1,health=2").expect("valid mix").0,
            vec![(CallKind::RefreshAll, 1), (CallKind::Health, 2)]
        );
    }

    #[test]
    fn mix_refuses_nonsense() {
        assert!(parse_mix("").is_err());
        assert!(parse_mix("whoami").is_err());
        assert!(parse_mix("whoami=0").is_err());
        assert!(parse_mix("whoami=x").is_err());
        assert!(parse_mix("logout=1").is_err());
        assert!(parse_mix("whoami=1,whoami=2").is_err());
        assert!(parse_mix("whoami=9000,start=9000").is_err());
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["sessiond-bench", "--call", "refresh-all", "--count", "5"])
            .expect("valid flags");
        assert_eq!(cli.weights(), vec![(CallKind::RefreshAll, 1)]);
        assert_eq!(cli.count, Some(5));
        assert!(
            Cli::try_parse_from(["sessiond-bench"]).is_err(),
            "a call or mix is required"
        );
        assert!(
            Cli::try_parse_from(["sessiond-bench", "--call", "whoami", "--mix", "start=1"])
                .is_err()
        );
        assert!(Cli::try_parse_from([
            "sessiond-bench",
            "--call",
            "whoami",
            "--count",
            "5",
            "--duration",
            "1s"
        ])
        .is_err());
    }

    #[test]
    fn bare_addr_gets_a_scheme() {
        let cli = Cli::try_parse_from([
            "sessiond-bench",
            "--call",
            "health",
            "--addr",
            "10.0.0.1:50051",
        ])
        .expect("valid flags");
        assert_eq!(cli.url(), "http://10.0.0.1:50051");
    }
}
