//! What a phase measured: per call kind, an HDR histogram of OK latencies, counts by
//! status code and error message; merged over workers and summarised the way ghz does.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tonic::{Code, Status};

use crate::calls::CallKind;
use crate::error::BoxError;

/// Histograms start covering 1 ns..1 s at 3 significant digits and grow when a call
/// takes longer (auto-resize), so no latency is ever dropped or clamped.
const HISTOGRAM_START_HIGH_NS: u64 = 1_000_000_000;

/// Most distinct error messages kept per call kind; the rest are counted together.
const MAX_ERROR_KINDS: usize = 32;

/// The key the overflowing error messages are counted under.
const OTHER_ERRORS: &str = "(other errors)";

/// The percentiles of `latencyDistribution`: ghz's own, so its tools read ours.
pub const PERCENTILES: [u8; 7] = [10, 25, 50, 75, 90, 95, 99];

/// Measurements of one call kind, from one worker or merged over all.
#[derive(Debug, Clone)]
pub struct CallStats {
    /// Latencies of the OK calls, in nanoseconds.
    ok_latency_ns: Histogram<u64>,
    /// Every call, OK or not.
    count: u64,
    /// Sum of every call's latency (ghz's average is over all calls).
    sum_ns: u128,
    /// Exact fastest and slowest OK call (the histogram's are rounded).
    fastest_ns: Option<u64>,
    slowest_ns: u64,
    /// Calls by gRPC status code name, as grpc-go spells them (`OK`, `Unauthenticated`).
    codes: BTreeMap<&'static str, u64>,
    /// Failed calls by `rpc error: code = … desc = …`, as ghz keys them.
    errors: BTreeMap<String, u64>,
}

impl CallStats {
    /// Empty stats.
    pub fn new() -> Result<Self, BoxError> {
        let mut ok_latency_ns = Histogram::new_with_bounds(1, HISTOGRAM_START_HIGH_NS, 3)?;
        ok_latency_ns.auto(true);
        Ok(CallStats {
            ok_latency_ns,
            count: 0,
            sum_ns: 0,
            fastest_ns: None,
            slowest_ns: 0,
            codes: BTreeMap::new(),
            errors: BTreeMap::new(),
        })
    }

    /// Records one call that took `latency` and ended with `result`.
    pub fn record(&mut self, latency: Duration, result: Result<(), &Status>) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.count += 1;
        self.sum_ns += u128::from(ns);
        match result {
            Ok(()) => {
                *self.codes.entry(code_name(Code::Ok)).or_default() += 1;
                // With auto-resize on, recording cannot fail; saturating is the guard.
                self.ok_latency_ns.saturating_record(ns);
                self.fastest_ns = Some(self.fastest_ns.map_or(ns, |fastest| fastest.min(ns)));
                self.slowest_ns = self.slowest_ns.max(ns);
            }
            Err(status) => {
                *self.codes.entry(code_name(status.code())).or_default() += 1;
                let message = format!(
                    "rpc error: code = {} desc = {}",
                    code_name(status.code()),
                    status.message()
                );
                add_error(&mut self.errors, message, 1);
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &CallStats) -> Result<(), BoxError> {
        self.ok_latency_ns.add(&other.ok_latency_ns)?;
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.fastest_ns = match (self.fastest_ns, other.fastest_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.slowest_ns = self.slowest_ns.max(other.slowest_ns);
        for (code, n) in &other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        for (message, n) in &other.errors {
            add_error(&mut self.errors, message.clone(), *n);
        }
        Ok(())
    }

    /// Calls that ended OK.
    pub fn ok(&self) -> u64 {
        self.ok_latency_ns.len()
    }

    /// The ghz-style summary of these calls over a phase that lasted `total`.
    pub fn summary(&self, total: Duration, end_reason: &'static str) -> Summary {
        let total_ns = u64::try_from(total.as_nanos()).unwrap_or(u64::MAX);
        let ok = self.ok();
        let hist = &self.ok_latency_ns;
        let at = |percentile: f64| {
            if ok == 0 {
                0
            } else {
                hist.value_at_percentile(percentile)
            }
        };
        Summary {
            end_reason,
            count: self.count,
            total: total_ns,
            average: if self.count == 0 {
                0
            } else {
                u64::try_from(self.sum_ns / u128::from(self.count)).unwrap_or(u64::MAX)
            },
            fastest: self.fastest_ns.unwrap_or(0),
            slowest: self.slowest_ns,
            rps: if total.is_zero() {
                0.0
            } else {
                self.count as f64 / total.as_secs_f64()
            },
            error_distribution: self.errors.clone(),
            status_code_distribution: self
                .codes
                .iter()
                .map(|(code, n)| ((*code).to_owned(), *n))
                .collect(),
            latency_distribution: if ok == 0 {
                Vec::new()
            } else {
                PERCENTILES
                    .iter()
                    .map(|&percentage| LatencyPoint {
                        percentage,
                        latency: at(f64::from(percentage)),
                    })
                    .collect()
            },
            p999: at(99.9),
            histogram: self.buckets(),
        }
    }

    /// ghz's `histogram`: 11 marks from fastest to slowest OK call, each with the count
    /// of OK calls above the previous mark and up to it.
    fn buckets(&self) -> Vec<Bucket> {
        let ok = self.ok();
        let Some(fastest) = self.fastest_ns else {
            return Vec::new();
        };
        let slowest = self.slowest_ns.max(fastest);
        let step = (slowest - fastest) as f64 / 10.0;
        let marks: Vec<f64> = (0..=10)
            .map(|i| {
                if i == 10 {
                    slowest as f64
                } else {
                    fastest as f64 + step * f64::from(i)
                }
            })
            .collect();
        let mut counts = vec![0u64; marks.len()];
        for value in self.ok_latency_ns.iter_recorded() {
            // The histogram rounds values to a small range; take its low end, clamped
            // into the exact fastest..slowest, so the fastest call lands on the first mark.
            let low = self
                .ok_latency_ns
                .lowest_equivalent(value.value_iterated_to());
            let ns = (low as f64).clamp(fastest as f64, slowest as f64);
            let slot = marks
                .iter()
                .position(|mark| ns <= *mark)
                .unwrap_or(marks.len() - 1);
            if let Some(count) = counts.get_mut(slot) {
                *count += value.count_at_value();
            }
        }
        marks
            .iter()
            .zip(counts)
            .map(|(mark, count)| Bucket {
                mark: mark / 1e9,
                count,
                frequency: count as f64 / ok as f64,
            })
            .collect()
    }
}

fn add_error(errors: &mut BTreeMap<String, u64>, message: String, n: u64) {
    if let Some(count) = errors.get_mut(&message) {
        *count += n;
    } else if errors.len() < MAX_ERROR_KINDS {
        errors.insert(message, n);
    } else {
        *errors.entry(OTHER_ERRORS.to_owned()).or_default() += n;
    }
}

/// One phase's figures in ghz's JSON summary shape: latencies in nanoseconds,
/// `fastest`, `slowest` and the distribution over OK calls, `average` over all calls.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `duration` (the phase ran its time) or `count` (it ran its calls).
    pub end_reason: &'static str,
    /// Calls made, OK or not.
    pub count: u64,
    /// Wall time of the phase, ns.
    pub total: u64,
    /// Mean latency of all calls, ns.
    pub average: u64,
    /// Fastest OK call, ns.
    pub fastest: u64,
    /// Slowest OK call, ns.
    pub slowest: u64,
    /// Calls per second (`count / total`).
    pub rps: f64,
    /// Failed calls by error message.
    pub error_distribution: BTreeMap<String, u64>,
    /// Calls by status code name.
    pub status_code_distribution: BTreeMap<String, u64>,
    /// Latency of OK calls at ghz's percentiles.
    pub latency_distribution: Vec<LatencyPoint>,
    /// The 99.9th percentile of OK calls, ns (not in ghz, whose percentages are whole).
    pub p999: u64,
    /// Ten equal buckets from fastest to slowest, as ghz reports.
    pub histogram: Vec<Bucket>,
}

impl Summary {
    /// Latency at a percentile of `PERCENTILES`, ns (0 when there was no OK call).
    pub fn percentile(&self, percentage: u8) -> u64 {
        self.latency_distribution
            .iter()
            .find(|point| point.percentage == percentage)
            .map_or(0, |point| point.latency)
    }

    /// Calls that ended OK.
    pub fn ok(&self) -> u64 {
        self.status_code_distribution
            .get(code_name(Code::Ok))
            .copied()
            .unwrap_or(0)
    }
}

/// One point of `latencyDistribution`.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyPoint {
    /// Whole percent, as ghz.
    pub percentage: u8,
    /// ns.
    pub latency: u64,
}

/// One bucket of `histogram`.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Upper edge, seconds (as ghz).
    pub mark: f64,
    /// OK calls in the bucket.
    pub count: u64,
    /// Share of OK calls in the bucket, 0..1.
    pub frequency: f64,
}

/// All call kinds a worker (or a whole phase) saw.
#[derive(Debug, Default)]
pub struct PhaseStats {
    /// Per call kind, in `CallKind` order.
    pub calls: BTreeMap<CallKind, CallStats>,
}

impl PhaseStats {
    /// Records one call of `kind`.
    pub fn record(
        &mut self,
        kind: CallKind,
        latency: Duration,
        result: Result<(), &Status>,
    ) -> Result<(), BoxError> {
        let stats = match self.calls.entry(kind) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(CallStats::new()?),
        };
        stats.record(latency, result);
        Ok(())
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &PhaseStats) -> Result<(), BoxError> {
        for (kind, stats) in &other.calls {
            match self.calls.get_mut(kind) {
                Some(mine) => mine.merge(stats)?,
                None => {
                    self.calls.insert(*kind, stats.clone());
                }
            }
        }
        Ok(())
    }

    /// Every kind together.
    pub fn all(&self) -> Result<CallStats, BoxError> {
        let mut all = CallStats::new()?;
        for stats in self.calls.values() {
            all.merge(stats)?;
        }
        Ok(all)
    }
}

/// The name grpc-go (and so ghz) gives a status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn summary_follows_ghz_rules() {
        let mut stats = CallStats::new().expect("histogram");
        for us in 1..=100 {
            stats.record(micros(us), Ok(()));
        }
        stats.record(micros(5_000), Err(&Status::unauthenticated("no")));

        let summary = stats.summary(Duration::from_secs(1), "duration");

        assert_eq!(summary.count, 101);
        assert_eq!(summary.ok(), 100);
        assert_eq!(summary.rps, 101.0);
        assert_eq!(summary.fastest, 1_000);
        assert_eq!(
            summary.slowest, 100_000,
            "failed calls are not in fastest/slowest"
        );
        // Average is over all calls, like ghz: (5050 + 5000) us / 101.
        assert_eq!(summary.average, 99_504);
        let p50 = summary.percentile(50);
        assert!((49_900..=50_100).contains(&p50), "p50 = {p50}");
        assert_eq!(
            summary.status_code_distribution.get("Unauthenticated"),
            Some(&1)
        );
        assert_eq!(
            summary
                .error_distribution
                .get("rpc error: code = Unauthenticated desc = no"),
            Some(&1)
        );
        let bucketed: u64 = summary.histogram.iter().map(|bucket| bucket.count).sum();
        assert_eq!(bucketed, 100);
    }

    #[test]
    fn merge_adds_up_and_keeps_extremes() {
        let mut a = PhaseStats::default();
        let mut b = PhaseStats::default();
        a.record(CallKind::Whoami, micros(10), Ok(()))
            .expect("record");
        b.record(CallKind::Whoami, micros(30), Ok(()))
            .expect("record");
        b.record(CallKind::Start, micros(20), Ok(()))
            .expect("record");

        a.merge(&b).expect("merge");

        let whoami = a.calls[&CallKind::Whoami].summary(Duration::from_secs(1), "count");
        assert_eq!(whoami.count, 2);
        assert_eq!(whoami.fastest, 10_000);
        assert_eq!(whoami.slowest, 30_000);
        assert_eq!(a.all().expect("merge").count, 3);
    }

    #[test]
    fn no_ok_call_gives_empty_distribution() {
        let mut stats = CallStats::new().expect("histogram");
        stats.record(micros(10), Err(&Status::unavailable("down")));
        let summary = stats.summary(Duration::from_secs(1), "count");
        assert_eq!(summary.ok(), 0);
        assert!(summary.latency_distribution.is_empty());
        assert_eq!(summary.fastest, 0);
    }

    #[test]
    fn error_messages_are_capped() {
        let mut stats = CallStats::new().expect("histogram");
        for i in 0..100 {
            stats.record(micros(1), Err(&Status::internal(format!("e{i}"))));
        }
        assert_eq!(stats.errors.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(stats.errors.values().sum::<u64>(), 100);
    }
}
