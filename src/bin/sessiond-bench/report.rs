//! The report: a table per phase and a comparison against the health Check for people,
//! and the same figures as JSON (ghz's summary field names, nanoseconds) for tools.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::BoxError;
use crate::stats::Summary;

/// How much slower a call is than the health Check measured in the same run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratio {
    /// The call's calls/s over the health Check's (below 1: slower).
    pub rps: f64,
    /// The call's p50 over the health Check's (above 1: slower).
    pub p50: f64,
    /// The call's p99 over the health Check's (above 1: slower).
    pub p99: f64,
}

impl Ratio {
    /// `measured` against `baseline`; none when the baseline has nothing to divide by.
    pub fn between(measured: &Summary, baseline: &Summary) -> Option<Ratio> {
        let base_p50 = baseline.percentile(50);
        let base_p99 = baseline.percentile(99);
        if baseline.rps <= 0.0 || base_p50 == 0 || base_p99 == 0 {
            return None;
        }
        Some(Ratio {
            rps: measured.rps / baseline.rps,
            p50: measured.percentile(50) as f64 / base_p50 as f64,
            p99: measured.percentile(99) as f64 / base_p99 as f64,
        })
    }
}

/// The run's settings, in ghz's `options` names (durations in ns).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    /// The server URL.
    pub host: String,
    /// The gRPC method(s) driven, comma-separated for a mix.
    pub call: String,
    /// Calls in flight.
    pub concurrency: u32,
    /// HTTP/2 connections.
    pub connections: u32,
    /// Length of each measured phase, ns (absent in count mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Calls per measured phase (absent in duration mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Per-call timeout, ns.
    pub timeout: u64,
    /// Warm-up before measuring, ns.
    pub warmup: u64,
    /// True for plaintext HTTP/2, false over TLS.
    pub insecure: bool,
}

/// What was prepared before timing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparedInfo {
    /// Sessions for whoami, refresh and extend.
    pub sessions: u64,
    /// Users for refresh-all.
    pub users: u64,
    /// Sessions each refresh-all user has.
    pub sessions_per_user: u64,
    /// Start calls made to prepare.
    pub starts: u64,
    /// Time spent preparing, ns.
    pub total: u64,
}

/// The JSON document `--json` writes: the measured phase's summary at the top level
/// (so ghz tooling reads it), the health baseline and the ratio beside it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonReport {
    /// The call's flag name, or `mix`.
    pub call: String,
    /// For a mix: each call's weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mix: Option<BTreeMap<&'static str, u32>>,
    /// The settings.
    pub options: Options,
    /// What was prepared.
    pub prepared: PreparedInfo,
    /// The measured phase, every call together.
    #[serde(flatten)]
    pub summary: Summary,
    /// For a mix: each call on its own.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub calls: BTreeMap<&'static str, Summary>,
    /// The grpc.health.v1 Check, same connections, concurrency and duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Summary>,
    /// The measured phase against the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
    /// The bare tonic server's health Check (`--reference`), same settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Summary>,
    /// sessiond's own health Check against the reference's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_to_reference: Option<Ratio>,
    /// The measured phase against the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_reference: Option<Ratio>,
    /// The reference's canned Whoami (a Whoami run with `--reference`), same settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_whoami: Option<Summary>,
    /// The measured phase against that canned Whoami.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_reference_whoami: Option<Ratio>,
}

impl JsonReport {
    /// Writes the report, pretty-printed, to `path`.
    pub fn write(&self, path: &Path) -> Result<(), BoxError> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .map_err(|error| format!("cannot write JSON to {}: {error}", path.display()).into())
    }
}

/// One phase as a two-column table, ghz's summary order.
pub fn phase_table(title: &str, method: &str, summary: &Summary) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{title}  ({method})");
    let mut row = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<9} {value}");
    };
    row(
        "count",
        format!(
            "{} calls in {} ({})",
            summary.count,
            fmt_ns(summary.total),
            summary.end_reason
        ),
    );
    row("rps", format!("{:.1}", summary.rps));
    row("average", fmt_ns(summary.average));
    row("fastest", fmt_ns(summary.fastest));
    row("slowest", fmt_ns(summary.slowest));
    for percentage in [50, 90, 99] {
        row(
            &format!("p{percentage}"),
            fmt_ns(summary.percentile(percentage)),
        );
    }
    row("p99.9", fmt_ns(summary.p999));
    let codes: Vec<String> = summary
        .status_code_distribution
        .iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect();
    row("status", codes.join(", "));
    for (message, n) in summary.error_distribution.iter().take(5) {
        row("error", format!("{n} × {message}"));
    }
    if summary.error_distribution.len() > 5 {
        row(
            "error",
            format!(
                "… {} more kinds (see --json)",
                summary.error_distribution.len() - 5
            ),
        );
    }
    out
}

/// All phases side by side, each against the baseline (`rps/base`, `p99/base`) when
/// there is one.
pub fn comparison_table(rows: &[(String, &Summary)], baseline: Option<&Summary>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7} {:>9} {:>9}",
        "call",
        "count",
        "rps",
        "average",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "ok %",
        "rps/base",
        "p99/base"
    );
    for (name, summary) in rows {
        let ratio = baseline.and_then(|baseline| Ratio::between(summary, baseline));
        let ok_percent = if summary.count == 0 {
            0.0
        } else {
            100.0 * summary.ok() as f64 / summary.count as f64
        };
        let _ = writeln!(
            out,
            "{:<12} {:>9} {:>10.1} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7.2} {:>9} {:>9}",
            name,
            summary.count,
            summary.rps,
            fmt_ns(summary.average),
            fmt_ns(summary.percentile(50)),
            fmt_ns(summary.percentile(90)),
            fmt_ns(summary.percentile(99)),
            fmt_ns(summary.p999),
            ok_percent,
            ratio.map_or("-".into(), |ratio| format!("{:.2}×", ratio.rps)),
            ratio.map_or("-".into(), |ratio| format!("{:.2}×", ratio.p99)),
        );
    }
    out
}

/// `ratio to sessiond health: rps 0.45×, p50 1.80×, p99 2.10×`.
pub fn ratio_line(against: &str, ratio: &Ratio) -> String {
    format!(
        "ratio to {against}: rps {:.2}×, p50 {:.2}×, p99 {:.2}×",
        ratio.rps, ratio.p50, ratio.p99
    )
}

/// A latency in ns, in the unit that reads best.
pub fn fmt_ns(ns: u64) -> String {
    let ns_f = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns_f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns_f / 1e6)
    } else {
        format!("{:.3} s", ns_f / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_read_in_their_unit() {
        assert_eq!(fmt_ns(0), "0 ns");
        assert_eq!(fmt_ns(999), "999 ns");
        assert_eq!(fmt_ns(152_300), "152.3 µs");
        assert_eq!(fmt_ns(1_234_567), "1.23 ms");
        assert_eq!(fmt_ns(10_004_000_000), "10.004 s");
    }
}
