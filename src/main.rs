//! `sessiond`: parse config, set up logging, serve until SIGINT/SIGTERM.

// No unwrap/expect outside tests: request and storage data must never panic the server.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sessiond::config::{Cli, Command, Config, LogFormat};
use sessiond::log_lines;
use tracing::subscriber::Interest;
use tracing::Level;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// sled allocates and frees a node per key it writes, and each call its own buffers,
/// from many threads: glibc's malloc spent a fifth of the server's CPU under Start
/// (BENCHMARKS.md); mimalloc's thread-local free lists do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Restore { file, data_dir }) => return restore(&file, &data_dir).await,
        Some(Command::Compact { data_dir }) => return compact(&data_dir),
        None => {}
    }
    let config = match Config::load(cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sessiond: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let traces = match sessiond::telemetry::tracer_provider(&config.tracing) {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("sessiond: {error}");
            return ExitCode::from(2);
        }
    };
    // Held until exit: dropping it writes out the lines still queued.
    let _log_writer = init_logging(
        config.log_format,
        traces.as_ref(),
        config.tracing.sampling_ratio.unwrap_or(1.0),
    );
    let served = sessiond::server::run(config).await;
    if let Some(traces) = traces {
        // Sends the spans still queued (bounded by the export timeout).
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// `sessiond restore`: exit status 0 restored, 1 not (the reason on stderr).
async fn restore(file: &std::path::Path, data_dir: &std::path::Path) -> ExitCode {
    match sessiond::restore::restore(file, data_dir).await {
        Ok(restored) => {
            println!(
                "restored {} sessions and {} signing keys into {} (events continue after {})",
                restored.sessions,
                restored.signing_keys,
                data_dir.display(),
                restored.events_head
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sessiond restore: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `sessiond compact`: exit status 0 compacted, 1 not (the reason on stderr).
fn compact(data_dir: &std::path::Path) -> ExitCode {
    match sessiond::store::sled::compact_data_dir(data_dir) {
        Ok(compacted) => {
            println!(
                "compacted {}: {} bytes on disk before, {} after (generation {}, {} ms)",
                data_dir.display(),
                compacted.bytes_before,
                compacted.bytes_after,
                compacted.generation,
                compacted.took.as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sessiond compact: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at INFO unless `RUST_LOG` says otherwise, through a writer thread: a
/// call never waits for stderr. The queue never drops a line; only a writer 128k lines
/// behind would make callers wait. With `traces`, sessiond's spans (store steps and
/// decision events at DEBUG included) also go to OpenTelemetry; that filter is the
/// traces' own, so the log's level does not change what a trace holds.
fn init_logging(
    format: LogFormat,
    traces: Option<&SdkTracerProvider>,
    sampling_ratio: f64,
) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let json = format == LogFormat::Json;
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let traces = traces.map(|provider| {
        sessiond::layers::trace_context::enable(sampling_ratio);
        // Call and gateway spans (made only when sampled), and sessiond's spans and
        // events inside one; nothing outside a traced call, nothing of other crates.
        let in_traced_call = filter::dynamic_filter_fn(|meta, context| {
            matches!(meta.name(), "rpc" | "gateway") || context.lookup_current().is_some()
        })
        .with_callsite_filter(|meta| {
            if meta.target().starts_with("sessiond") && *meta.level() <= Level::DEBUG {
                Interest::sometimes()
            } else {
                Interest::never()
            }
        });
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("sessiond"))
            .with_filter(in_traced_call)
    });
    match traces {
        // The log's filter alone: global, which costs each span and event less than a
        // per-layer filter (about 1 µs of a Whoami's CPU, BENCHMARKS.md).
        None => tracing_subscriber::registry()
            .with(filter)
            .with(log_lines::layer(json, ansi, writer))
            .init(),
        Some(traces) => tracing_subscriber::registry()
            .with(log_lines::layer(json, ansi, writer).with_filter(filter))
            .with(traces)
            .init(),
    }
    guard
}
