//! Soak sampling (`--soak-data-dir`): while the measured phase runs, every
//! `--sample-every` it prints the server's data-dir size, its RSS, the sessions stored and
//! the space amplification (data dir / live bytes, as the server's metrics report them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sessiond::store::sled::disk_usage;
use tokio::task::JoinHandle;

/// What to sample, from the flags.
#[derive(Clone, Debug)]
pub struct SoakTarget {
    /// The server's data dir (every file under it is counted, by blocks allocated).
    pub data_dir: PathBuf,
    /// The server's process id, for its RSS.
    pub pid: Option<u32>,
    /// The server's admin port, `HOST:PORT`, for `sessiond_sessions_stored` and the
    /// store's live bytes.
    pub metrics: Option<String>,
    pub every: Duration,
}

/// One sample; figures the target could not give are None.
#[derive(Clone, Debug, Default)]
struct Sample {
    data_dir_bytes: Option<u64>,
    rss_bytes: Option<u64>,
    sessions: Option<f64>,
    live_bytes: Option<f64>,
    compactions: Option<f64>,
}

/// Prints the header, then one line per sample until the task is aborted.
pub fn spawn(target: SoakTarget) -> JoinHandle<()> {
    println!();
    println!(
        "soak: every {}s | {:>7} | {:>10} | {:>9} | {:>10} | {:>9} | {:>7} | {:>11}",
        target.every.as_secs_f64(),
        "elapsed",
        "data dir",
        "RSS",
        "sessions",
        "live",
        "amplif.",
        "compactions"
    );
    tokio::spawn(async move {
        let started = Instant::now();
        let mut ticks = tokio::time::interval(target.every);
        loop {
            ticks.tick().await;
            let sample = take(&target).await;
            println!("soak: {}", line(started.elapsed(), &sample));
        }
    })
}

async fn take(target: &SoakTarget) -> Sample {
    let metrics = match &target.metrics {
        Some(addr) => scrape(addr).await.ok(),
        None => None,
    };
    let metric = |name: &str| metrics.as_deref().and_then(|text| gauge(text, name));
    Sample {
        data_dir_bytes: disk_usage(&target.data_dir).ok(),
        rss_bytes: target.pid.and_then(rss_bytes),
        sessions: metric("sessiond_sessions_stored"),
        live_bytes: metric("sessiond_store_live_bytes"),
        compactions: metric("sessiond_store_compactions_total"),
    }
}

fn line(elapsed: Duration, sample: &Sample) -> String {
    let mb = |bytes: Option<f64>| bytes.map_or("-".to_owned(), |b| format!("{:.1} MB", b / 1e6));
    let amplification = match (sample.data_dir_bytes, sample.live_bytes) {
        (Some(dir), Some(live)) if live > 0.0 => format!("{:.2}×", dir as f64 / live),
        _ => "-".to_owned(),
    };
    format!(
        "{:>15} | {:>10} | {:>9} | {:>10} | {:>9} | {:>7} | {:>11}",
        format!("{:.0}s", elapsed.as_secs_f64()),
        mb(sample.data_dir_bytes.map(|b| b as f64)),
        mb(sample.rss_bytes.map(|b| b as f64)),
        sample
            .sessions
            .map_or("-".to_owned(), |n| format!("{n:.0}")),
        mb(sample.live_bytes),
        amplification,
        sample
            .compactions
            .map_or("-".to_owned(), |n| format!("{n:.0}")),
    )
}

/// The resident set of process `pid`, from `/proc/PID/status`.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The admin port's `/metrics` text, by a plain HTTP/1.0 GET (off the async workers).
async fn scrape(addr: &str) -> std::io::Result<String> {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The value of an unlabelled sample `name` in Prometheus text.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_read_by_exact_name() {
        let text = "# TYPE sessiond_sessions_stored gauge\nsessiond_sessions_stored 42\n\
                    sessiond_sessions_stored_total 7\n";
        assert_eq!(gauge(text, "sessiond_sessions_stored"), Some(42.0));
        assert_eq!(gauge(text, "sessiond_store_live_bytes"), None);
    }
}
