//! `sessiond-bench`: the load generator. Drives a running sessiond over real gRPC with
//! one call or a mix, and reports calls/s, latency percentiles (HDR histogram) and
//! status codes, next to the `grpc.health.v1` Check measured in the same run.
//!
//! ```sh
//! cargo run --release --bin sessiond-bench -- --addr http://127.0.0.1:50051 --call whoami
//! ```
//!
//! Exit status: 0 when every phase had OK calls; 1 when the server cannot be reached,
//! preparing fails, or every call of a phase failed; 2 for bad flags.

// No unwrap/expect outside tests: request and storage data must never panic the server.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod calls;
mod cli;
mod connect;
mod cpu;
mod error;
mod prepare;
mod report;
mod soak;
mod stats;
mod workload;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::calls::{Auth, CallKind, Caller};
use crate::cli::Cli;
use crate::connect::{connect, CONNECT_TIMEOUT};
use crate::cpu::{CpuClock, Mark, Spent};
use crate::error::{chain, BoxError};
use crate::report::{JsonReport, Options, PreparedInfo, Ratio};
use crate::stats::Summary;
use crate::workload::Stop;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("sessiond-bench: error: {}", chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// One run: connect, prepare, warm up, baseline, measure, report. `Ok(false)` when a
/// phase had no OK call at all (the report is still printed and written).
async fn run(cli: Cli) -> Result<bool, BoxError> {
    let url = cli.url();
    let weights = cli.weights();
    let schedule = workload::schedule(&weights);
    let concurrency = usize::try_from(cli.concurrency)?;
    let needs_sessions = weights.iter().any(|(kind, _)| kind.needs_session());
    let needs_users = weights.iter().any(|(kind, _)| kind.needs_user());
    let sessions = if !needs_sessions {
        0
    } else if cli.ghz_data.is_some() || cli.sessions >= u64::from(cli.concurrency) {
        // For --ghz-data, ghz shares the data out itself.
        cli.sessions
    } else {
        println!(
            "note: --sessions {} raised to --concurrency {}: each worker owns its sessions",
            cli.sessions, cli.concurrency
        );
        u64::from(cli.concurrency)
    };
    let users = if needs_users { cli.users } else { 0 };
    let label = match &cli.mix {
        Some(_) => "mix".to_owned(),
        None => weights
            .first()
            .map_or("whoami", |(kind, _)| kind.name())
            .to_owned(),
    };
    let methods: Vec<&str> = weights.iter().map(|(kind, _)| kind.method()).collect();
    let measure = match cli.count {
        Some(count) => format!("{count} calls"),
        None => report::fmt_ns(duration_ns(cli.duration)),
    };
    let plan = if cli.ghz_data.is_some() {
        "preparing ghz data only".to_owned()
    } else {
        format!(
            "{} connections, {} in flight, {measure} per phase",
            cli.connections, cli.concurrency
        )
    };
    println!(
        "sessiond-bench → {url}: {} | {plan}",
        weights
            .iter()
            .map(|(kind, weight)| if cli.mix.is_some() {
                format!("{}={weight}", kind.name())
            } else {
                kind.name().to_owned()
            })
            .collect::<Vec<_>>()
            .join(","),
    );

    let channels = connect(&cli, &url, cli.tls()).await?;
    let first = channels
        .first()
        .cloned()
        .ok_or("no connection was opened")?;
    Caller::new(&first, &Auth::default(), CONNECT_TIMEOUT)
        .health()
        .await
        .map_err(|status| {
            format!(
                "{url} answered, but is not a ready sessiond: {} ({})",
                stats::code_name(status.code()),
                status.message()
            )
        })?;

    // Ids unique to this run, so runs against one data dir never share users.
    let run_tag = format!("{:08x}", uuid::Uuid::now_v7().as_u128() as u32);
    if sessions > 0 {
        println!("preparing {sessions} sessions (users bench-{run_tag}-u…)");
    }
    if users > 0 {
        println!(
            "preparing {users} users with {} sessions each (users bench-{run_tag}-r…)",
            cli.sessions_per_user
        );
    }
    let auth = match &cli.api_key {
        Some(key) => Auth::api_key(key)?,
        None => Auth::default(),
    };
    let auth = if cli.bound { auth.bound()? } else { auth };
    let prepared = prepare::prepare(
        &channels,
        &auth,
        &run_tag,
        sessions,
        users,
        cli.sessions_per_user,
        concurrency,
        cli.timeout,
    )
    .await?;
    let prepared_info = PreparedInfo {
        sessions,
        users,
        sessions_per_user: cli.sessions_per_user,
        starts: prepared.starts,
        total: duration_ns(prepared.elapsed),
    };
    if prepared.starts > 0 {
        println!(
            "prepared with {} Start calls in {} ({:.0}/s)",
            prepared.starts,
            report::fmt_ns(prepared_info.total),
            prepared.starts as f64 / prepared.elapsed.as_secs_f64().max(1e-9),
        );
    }
    if let Some(path) = &cli.ghz_data {
        return write_ghz_data(path, &label, &prepared);
    }
    // A Whoami run is also measured on the reference's canned Whoami, with real tokens.
    let reference_slots: Vec<calls::Slot> = match (&cli.reference, cli.mix.is_none()) {
        (Some(_), true) if label == CallKind::Whoami.name() => {
            prepared.slots.iter().take(concurrency).cloned().collect()
        }
        _ => Vec::new(),
    };
    let mut workers = workload::workers(
        &channels,
        &auth,
        prepared,
        concurrency,
        &run_tag,
        workload::pace(cli.rate),
        cli.timeout,
    );

    let phase_stop = || match cli.count {
        Some(count) => Stop::count(count),
        None => Stop::after(cli.duration),
    };

    if !cli.warmup.is_zero() {
        let (back, warm) = workload::run_phase(workers, &schedule, Stop::after(cli.warmup)).await?;
        workers = back;
        let all = warm.stats.all()?;
        println!(
            "warm-up: {} calls ({} OK) in {}",
            all.summary(warm.elapsed, "duration").count,
            all.ok(),
            report::fmt_ns(duration_ns(warm.elapsed))
        );
    }

    let server_cpu = CpuClock::of(cli.server_pid);
    let mut cpu_lines: Vec<String> = Vec::new();
    let mut reference_whoami: Option<Summary> = None;
    let reference = match &cli.reference {
        Some(reference_url) => {
            let mark = Mark::start(CpuClock::of(cli.reference_pid));
            let summary =
                measure_reference(&cli, reference_url, concurrency, &run_tag, Vec::new()).await?;
            let health_cpu = mark.spent(summary.count, Duration::from_nanos(summary.total));
            if let Some(spent) = &health_cpu {
                cpu_lines.push(spent.line("tonic reference (health)", None));
            }
            println!();
            print!(
                "{}",
                report::phase_table("tonic reference", CallKind::Health.method(), &summary)
            );
            if !reference_slots.is_empty() {
                let mark = Mark::start(CpuClock::of(cli.reference_pid));
                let canned =
                    measure_reference(&cli, reference_url, concurrency, &run_tag, reference_slots)
                        .await?;
                let elapsed = Duration::from_nanos(canned.total);
                if let Some(spent) = mark.spent(canned.count, elapsed) {
                    let line = spent.line("tonic reference (canned whoami)", health_cpu.as_ref());
                    cpu_lines.push(line);
                }
                println!();
                let method = CallKind::Whoami.method();
                print!(
                    "{}",
                    report::phase_table("tonic reference, canned", method, &canned)
                );
                reference_whoami = Some(canned);
            }
            Some(summary)
        }
        None => None,
    };

    let mut baseline: Option<Summary> = None;
    let mut baseline_cpu: Option<Spent> = None;
    if !cli.no_baseline {
        let stop = phase_stop();
        let reason = stop.reason();
        let mark = Mark::start(server_cpu);
        let (back, measured) = workload::run_phase(workers, &[CallKind::Health], stop).await?;
        workers = back;
        let summary = measured.stats.all()?.summary(measured.elapsed, reason);
        baseline_cpu = mark.spent(summary.count, measured.elapsed);
        println!();
        print!(
            "{}",
            report::phase_table("health (baseline)", CallKind::Health.method(), &summary)
        );
        baseline = Some(summary);
    }

    let stop = phase_stop();
    let reason = stop.reason();
    let soaking = cli.soak_data_dir.clone().map(|data_dir| {
        soak::spawn(soak::SoakTarget {
            data_dir,
            pid: cli.soak_pid,
            metrics: cli.soak_metrics.clone(),
            every: cli.sample_every.max(Duration::from_millis(100)),
        })
    });
    let mark = Mark::start(server_cpu);
    let store_mark = Mark::start(CpuClock::of(cli.store_pid));
    let (workers, measured) = workload::run_phase(workers, &schedule, stop).await?;
    if let Some(soaking) = soaking {
        soaking.abort();
    }
    let summary = measured.stats.all()?.summary(measured.elapsed, reason);
    if let Some(baseline_cpu) = &baseline_cpu {
        cpu_lines.push(baseline_cpu.line("health (baseline)", None));
    }
    if let Some(spent) = mark.spent(summary.count, measured.elapsed) {
        cpu_lines.push(spent.line(&label, baseline_cpu.as_ref()));
    }
    if let Some(spent) = store_mark.spent(summary.count, measured.elapsed) {
        cpu_lines.push(spent.line(&format!("{label}, in the store (--store-pid)"), None));
    }
    let per_call: BTreeMap<CallKind, Summary> = measured
        .stats
        .calls
        .iter()
        .map(|(kind, stats)| (*kind, stats.summary(measured.elapsed, reason)))
        .collect();

    println!();
    if cli.mix.is_some() {
        for (kind, call_summary) in &per_call {
            print!(
                "{}",
                report::phase_table(kind.name(), kind.method(), call_summary)
            );
            println!();
        }
        print!(
            "{}",
            report::phase_table("mix (all calls)", &methods.join(", "), &summary)
        );
    } else {
        print!(
            "{}",
            report::phase_table(&label, &methods.join(", "), &summary)
        );
    }

    println!();
    let mut rows: Vec<(String, &Summary)> = Vec::new();
    if let Some(baseline) = &baseline {
        rows.push(("baseline".to_owned(), baseline));
    }
    if cli.mix.is_some() {
        rows.extend(per_call.iter().map(|(kind, s)| (kind.name().to_owned(), s)));
        rows.push(("mix".to_owned(), &summary));
    } else {
        rows.push((label.clone(), &summary));
    }
    print!("{}", report::comparison_table(&rows, baseline.as_ref()));
    let ratio = baseline
        .as_ref()
        .and_then(|baseline| Ratio::between(&summary, baseline));
    if let Some(ratio) = &ratio {
        println!("{}", report::ratio_line("sessiond health", ratio));
    }
    let ratio_to_reference = reference
        .as_ref()
        .and_then(|reference| Ratio::between(&summary, reference));
    if let Some(reference) = &reference {
        println!();
        println!(
            "against the bare tonic reference ({}):",
            CallKind::Health.method()
        );
        let mut reference_rows = vec![("reference".to_owned(), reference)];
        reference_rows.extend(rows.iter().map(|(name, s)| (name.clone(), *s)));
        print!(
            "{}",
            report::comparison_table(&reference_rows, Some(reference))
        );
        if let Some(ratio) = &ratio_to_reference {
            println!("{}", report::ratio_line("tonic reference", ratio));
        }
    }
    let ratio_to_reference_whoami = reference_whoami
        .as_ref()
        .and_then(|canned| Ratio::between(&summary, canned));
    if let Some(ratio) = &ratio_to_reference_whoami {
        println!(
            "{}",
            report::ratio_line("the canned Whoami of the tonic reference", ratio)
        );
    }

    if !cpu_lines.is_empty() {
        println!();
        for line in &cpu_lines {
            println!("{line}");
        }
    }

    let broken: usize = workers.iter().map(workload::Worker::broken_slots).sum();
    if broken > 0 {
        println!(
            "note: {broken} of {sessions} prepared sessions dropped out after a failed Refresh"
        );
    }
    if measured.ran_dry > 0 {
        println!(
            "note: {} of {} workers stopped early: none of their sessions was usable",
            measured.ran_dry, cli.concurrency
        );
    }

    if let Some(path) = &cli.json {
        let document = JsonReport {
            call: label.clone(),
            mix: cli.mix.as_ref().map(|mix| {
                mix.0
                    .iter()
                    .map(|(kind, weight)| (kind.name(), *weight))
                    .collect()
            }),
            options: Options {
                host: url.clone(),
                call: methods.join(","),
                concurrency: cli.concurrency,
                connections: cli.connections,
                duration: cli.count.is_none().then(|| duration_ns(cli.duration)),
                total: cli.count,
                timeout: duration_ns(cli.timeout),
                warmup: duration_ns(cli.warmup),
                insecure: !cli.tls(),
            },
            prepared: prepared_info,
            calls: if cli.mix.is_some() {
                per_call
                    .iter()
                    .map(|(kind, s)| (kind.name(), s.clone()))
                    .collect()
            } else {
                BTreeMap::new()
            },
            summary: summary.clone(),
            baseline: baseline.clone(),
            ratio,
            baseline_to_reference: baseline
                .as_ref()
                .zip(reference.as_ref())
                .and_then(|(baseline, reference)| Ratio::between(baseline, reference)),
            reference: reference.clone(),
            ratio_to_reference,
            reference_whoami,
            ratio_to_reference_whoami,
        };
        document.write(path)?;
        println!("JSON written to {}", path.display());
    }

    let mut all_ok = true;
    for (name, phase) in baseline
        .iter()
        .map(|s| ("health baseline", s))
        .chain([(label.as_str(), &summary)])
    {
        if phase.ok() == 0 {
            eprintln!(
                "sessiond-bench: error: every {name} call failed ({} calls; see status above)",
                phase.count
            );
            all_ok = false;
        }
    }
    Ok(all_ok)
}

/// Warms up and measures the `--reference` server, with as many connections and calls
/// in flight as the main phases: its health Check, or with `slots` its canned Whoami.
async fn measure_reference(
    cli: &Cli,
    reference_url: &str,
    concurrency: usize,
    run_tag: &str,
    slots: Vec<calls::Slot>,
) -> Result<Summary, BoxError> {
    let channels = connect(cli, reference_url, false).await?;
    let call = if slots.is_empty() {
        [CallKind::Health]
    } else {
        [CallKind::Whoami]
    };
    let prepared = prepare::Prepared {
        slots,
        ..Default::default()
    };
    let mut workers = workload::workers(
        &channels,
        &Auth::default(),
        prepared,
        concurrency,
        run_tag,
        None,
        cli.timeout,
    );
    if !cli.warmup.is_zero() {
        (workers, _) = workload::run_phase(workers, &call, Stop::after(cli.warmup)).await?;
    }
    let stop = match cli.count {
        Some(count) => Stop::count(count),
        None => Stop::after(cli.duration),
    };
    let reason = stop.reason();
    let (_, measured) = workload::run_phase(workers, &call, stop).await?;
    Ok(measured.stats.all()?.summary(measured.elapsed, reason))
}

/// `--ghz-data`: writes the prepared tokens, ids or users as a ghz data array.
fn write_ghz_data(
    path: &std::path::Path,
    call: &str,
    prepared: &prepare::Prepared,
) -> Result<bool, BoxError> {
    let kind = CallKind::from_name(call).ok_or("--ghz-data needs --call")?;
    let data = prepared.ghz_data(kind).ok_or_else(|| {
        format!("--call {call} needs no prepared data: bench/ghz/{call}.json makes its own")
    })?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    let text = serde_json::to_string(&data)?;
    std::fs::write(path, text + "\n")
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    println!(
        "wrote {} {call} requests to {} (now: ghz --config bench/ghz/{call}.json)",
        data.len(),
        path.display()
    );
    Ok(true)
}

/// A duration in whole ns, saturating.
fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
