//! The sweeper under load: N sessions expire at once (the server's clock jumps past
//! them) while `sessiond-bench` measures Whoami; compares Whoami's latency with an idle
//! run on the same server, and reports how long the sweep took.
//!
//! `cargo bench --bench sweep_under_load -- [SESSIONS] [BATCH]` (default 1,000,000
//! sessions, the default `sweeper.batch_size`). A benchmark, not a test: it asserts
//! nothing and prints figures.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sessiond::clock::ManualClock;
use sessiond::config::Config;
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::proto::session::v1::StartRequest;
use sessiond::server;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Sessions to expire, loaded with this TTL before the clock jumps past it.
const TTL_SECONDS: i64 = 60;
/// Calls in flight while loading.
const LOADERS: usize = 64;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    let sessions: usize = match args.first() {
        Some(count) => count.parse()?,
        None => 1_000_000,
    };
    let batch: Option<usize> = args.get(1).map(|batch| batch.parse()).transpose()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(sessions, batch))
}

async fn run(sessions: usize, batch: Option<usize>) -> Result<(), Failure> {
    let data = tempfile::tempdir()?;
    let mut config = Config::from_toml_str("durability = \"periodic\"")?;
    if let Some(batch) = batch {
        config.sweeper.batch_size = batch;
    }
    config.data_dir = data.path().to_path_buf();
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let clock = Arc::new(ManualClock::new(now_ms));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = server::start(&config, clock.clone(), listener).await?;
    let url = format!("http://{}", running.local_addr());

    let loading = Instant::now();
    load(&url, sessions).await?;
    println!(
        "loaded {sessions} sessions (ttl {TTL_SECONDS}s) in {:.1} s",
        loading.elapsed().as_secs_f64()
    );

    println!("whoami, idle sweeper:");
    whoami_run(&url, "10s").await?;

    println!("whoami while the sweeper deletes {sessions} expired sessions:");
    let jump = {
        let clock = clock.clone();
        async move {
            // Past the bench's preparing and warm-up, into its measured phase.
            tokio::time::sleep(Duration::from_secs(4)).await;
            clock.advance(Duration::from_secs(2 * TTL_SECONDS as u64));
            Instant::now()
        }
    };
    let (jumped_at, measured) = tokio::join!(jump, whoami_run(&url, "20s"));
    measured?;
    loop {
        let report = running.check_consistency().await?;
        if report.sessions <= 20_000 {
            println!(
                "sweep finished {:.1} s after the clock jump ({} sessions left: the bench's own)",
                jumped_at.elapsed().as_secs_f64(),
                report.sessions
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    running.stop().await?;
    Ok(())
}

/// Starts `count` sessions with a short TTL, `LOADERS` calls in flight.
async fn load(url: &str, count: usize) -> Result<(), Failure> {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())?
        .connect()
        .await?;
    let mut loaders = tokio::task::JoinSet::new();
    for loader in 0..LOADERS {
        let mut client = SessionServiceClient::new(channel.clone());
        loaders.spawn(async move {
            for i in (loader..count).step_by(LOADERS) {
                client
                    .start(StartRequest {
                        user_id: format!("sweep-user-{i}"),
                        ttl_seconds: Some(TTL_SECONDS),
                        ..Default::default()
                    })
                    .await?;
            }
            Ok::<(), tonic::Status>(())
        });
    }
    while let Some(loaded) = loaders.join_next().await {
        loaded??;
    }
    Ok(())
}

/// Runs `sessiond-bench --call whoami` against `url` and prints its summary table.
async fn whoami_run(url: &str, duration: &str) -> Result<(), Failure> {
    let bench = env!("CARGO_BIN_EXE_sessiond-bench");
    let args = [
        "--addr".to_owned(),
        url.to_owned(),
        "--call".into(),
        "whoami".into(),
        "--sessions".into(),
        "10000".into(),
        "--duration".into(),
        duration.to_owned(),
        "--no-baseline".into(),
    ];
    let output =
        tokio::task::spawn_blocking(move || Command::new(bench).args(args).output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout
        .lines()
        .filter(|line| line.contains("p99") || line.contains("p50") || line.starts_with("whoami"))
    {
        println!("  {line}");
    }
    if !output.status.success() {
        return Err(format!(
            "sessiond-bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}
