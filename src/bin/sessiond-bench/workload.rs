//! The workers that make the calls and the phases that run them until a deadline or a
//! call count, paced when asked; the order of the calls in a mix. What the calls need
//! is made in `prepare`, how each is made is in `calls`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::Status;

use crate::calls::{Auth, CallKind, Caller, Slot};
use crate::error::BoxError;
use crate::prepare::Prepared;
use crate::stats::PhaseStats;

/// The order a worker makes its calls in: each kind `weight` times per round,
/// interleaved (smooth weighted round-robin), so a 90/5/5 mix is spread evenly.
pub fn schedule(weights: &[(CallKind, u32)]) -> Vec<CallKind> {
    let divisor = weights
        .iter()
        .fold(0, |acc, (_, weight)| gcd(acc, *weight))
        .max(1);
    let weights: Vec<(CallKind, i64)> = weights
        .iter()
        .map(|(kind, weight)| (*kind, i64::from(*weight / divisor)))
        .collect();
    let total: i64 = weights.iter().map(|(_, weight)| weight).sum();
    let mut current = vec![0i64; weights.len()];
    let mut order = Vec::new();
    for _ in 0..total {
        let mut best = 0;
        for (i, (_, weight)) in weights.iter().enumerate() {
            current[i] += weight;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(weights[best].0);
    }
    order
}

/// The greatest common divisor, to reduce mix weights to their smallest round.
fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// When a phase stops.
#[derive(Debug, Clone)]
pub enum Stop {
    /// No call starts after this instant.
    Deadline(Instant),
    /// Tickets left: each call takes one.
    Count(Arc<AtomicU64>),
}

impl Stop {
    /// Stop after `duration` from now.
    pub fn after(duration: Duration) -> Stop {
        Stop::Deadline(Instant::now() + duration)
    }

    /// Stop after `count` calls in all.
    pub fn count(count: u64) -> Stop {
        Stop::Count(Arc::new(AtomicU64::new(count)))
    }

    /// Whether one more call may start (and, for a count, takes its ticket).
    fn next(&self) -> bool {
        match self {
            Stop::Deadline(deadline) => Instant::now() < *deadline,
            Stop::Count(left) => left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// `duration` or `count`, for the report's `endReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Stop::Deadline(_) => "duration",
            Stop::Count(_) => "count",
        }
    }
}

/// One task's worth of load: its caller, its own sessions, and where it is in the
/// schedule. Workers outlive phases, so refresh chains carry over from warm-up.
pub struct Worker {
    index: usize,
    caller: Caller,
    slots: Slots,
    users: Arc<[String]>,
    next_user: usize,
    concurrency: usize,
    run_tag: Arc<str>,
    started: u64,
    pace: Option<Arc<Pace>>,
}

/// A cap on calls per second shared by every worker of the sessiond phases (a soak
/// runs at a set load instead of as fast as the cores allow).
pub type Pace = governor::DefaultDirectRateLimiter;

/// A pace of `per_second` calls in all, or none.
pub fn pace(per_second: Option<u32>) -> Option<Arc<Pace>> {
    let per_second = std::num::NonZeroU32::new(per_second?)?;
    Some(Arc::new(governor::RateLimiter::direct(
        governor::Quota::per_second(per_second),
    )))
}

/// What one call came to.
enum Outcome {
    /// The call was made.
    Done(Duration, Result<(), Status>),
    /// The worker has no usable session left.
    NoSession,
}

impl Worker {
    /// Makes calls from `schedule` until `stop`.
    async fn run(
        mut self,
        schedule: Arc<[CallKind]>,
        stop: Stop,
    ) -> Result<(Worker, PhaseStats, bool), BoxError> {
        let mut stats = PhaseStats::default();
        let mut position = self.index;
        let mut ran_dry = false;
        while stop.next() {
            let Some(kind) = schedule.get(position % schedule.len().max(1)).copied() else {
                break;
            };
            position = position.wrapping_add(1);
            if let Some(pace) = &self.pace {
                pace.until_ready().await;
            }
            match self.call(kind).await {
                Outcome::Done(latency, result) => {
                    stats.record(kind, latency, result.as_ref().map(|_| ()))?
                }
                Outcome::NoSession => {
                    ran_dry = true;
                    break;
                }
            }
        }
        Ok((self, stats, ran_dry))
    }

    /// Makes one call of `kind` on what it acts on (picked before the clock starts).
    async fn call(&mut self, kind: CallKind) -> Outcome {
        match kind {
            CallKind::Whoami => match self.slots.next() {
                Some(slot) => timed(self.caller.whoami(slot)).await,
                None => Outcome::NoSession,
            },
            CallKind::Refresh => match self.slots.next() {
                Some(slot) => timed(self.caller.refresh(slot)).await,
                None => Outcome::NoSession,
            },
            CallKind::Extend => match self.slots.next() {
                Some(slot) => timed(self.caller.extend(slot)).await,
                None => Outcome::NoSession,
            },
            CallKind::Start => {
                self.started += 1;
                let user_id = format!("bench-{}-w{}-{}", self.run_tag, self.index, self.started);
                timed(async { self.caller.start(user_id).await.map(drop) }).await
            }
            CallKind::RefreshAll => match self.next_user() {
                Some(user_id) => timed(self.caller.refresh_all(user_id)).await,
                None => Outcome::NoSession,
            },
            CallKind::Health => timed(self.caller.health()).await,
        }
    }

    /// The next refresh-all user: workers start apart and stride by the worker count.
    fn next_user(&mut self) -> Option<String> {
        if self.users.is_empty() {
            return None;
        }
        let index = (self.index + self.next_user * self.concurrency) % self.users.len();
        self.next_user = self.next_user.wrapping_add(1);
        self.users.get(index).cloned()
    }

    /// Prepared sessions this worker can no longer use.
    pub fn broken_slots(&self) -> usize {
        self.slots.broken()
    }
}

/// Makes `call` and measures how long it took.
async fn timed(call: impl std::future::Future<Output = Result<(), Status>>) -> Outcome {
    let started = Instant::now();
    let result = call.await;
    Outcome::Done(started.elapsed(), result)
}

/// A worker's prepared sessions, handed out round-robin; a broken one is skipped.
#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    next: usize,
}

impl Slots {
    /// The next usable session, or None when every one is broken (or there is none).
    fn next(&mut self) -> Option<&mut Slot> {
        let len = self.slots.len();
        let index = (0..len)
            .map(|step| (self.next + step) % len)
            .find(|&index| self.slots.get(index).is_some_and(|slot| !slot.broken))?;
        self.next = index + 1;
        self.slots.get_mut(index)
    }

    /// Sessions that can no longer be used.
    fn broken(&self) -> usize {
        self.slots.iter().filter(|slot| slot.broken).count()
    }
}

/// Builds `concurrency` workers over the channels round-robin, dealing the prepared
/// sessions out like cards (session i to worker i mod concurrency); each call may take
/// `timeout`.
pub fn workers(
    channels: &[Channel],
    auth: &Auth,
    prepared: Prepared,
    concurrency: usize,
    run_tag: &str,
    pace: Option<Arc<Pace>>,
    timeout: Duration,
) -> Vec<Worker> {
    let users: Arc<[String]> = prepared.users.into();
    let run_tag: Arc<str> = run_tag.into();
    let mut workers: Vec<Worker> = channels
        .iter()
        .cycle()
        .take(concurrency)
        .enumerate()
        .map(|(index, channel)| Worker {
            index,
            caller: Caller::new(channel, auth, timeout),
            slots: Slots::default(),
            users: users.clone(),
            next_user: 0,
            concurrency,
            run_tag: run_tag.clone(),
            started: 0,
            pace: pace.clone(),
        })
        .collect();
    for (i, slot) in prepared.slots.into_iter().enumerate() {
        if let Some(worker) = workers.get_mut(i % concurrency.max(1)) {
            worker.slots.slots.push(slot);
        }
    }
    workers
}

/// What one phase measured.
pub struct PhaseOutcome {
    /// Merged over workers.
    pub stats: PhaseStats,
    /// Wall time from the first call to the last answer.
    pub elapsed: Duration,
    /// Workers that stopped early because all their sessions broke.
    pub ran_dry: usize,
}

/// Runs every worker on `schedule` until `stop`; hands the workers back for the next
/// phase. `stop` is built by the caller just before, so a deadline counts from here.
pub async fn run_phase(
    workers: Vec<Worker>,
    schedule: &[CallKind],
    stop: Stop,
) -> Result<(Vec<Worker>, PhaseOutcome), BoxError> {
    let schedule: Arc<[CallKind]> = schedule.into();
    let began = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in workers {
        tasks.spawn(worker.run(schedule.clone(), stop.clone()));
    }
    let mut workers = Vec::with_capacity(tasks.len());
    let mut stats = PhaseStats::default();
    let mut ran_dry = 0;
    while let Some(joined) = tasks.join_next().await {
        let (worker, worker_stats, dry) = joined??;
        stats.merge(&worker_stats)?;
        ran_dry += usize::from(dry);
        workers.push(worker);
    }
    let elapsed = began.elapsed();
    workers.sort_by_key(|worker| worker.index);
    Ok((
        workers,
        PhaseOutcome {
            stats,
            elapsed,
            ran_dry,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::{schedule, Stop};
    use crate::calls::CallKind;

    #[test]
    fn schedule_interleaves_by_weight() {
        let order = schedule(&[
            (CallKind::Whoami, 90),
            (CallKind::Refresh, 5),
            (CallKind::Start, 5),
        ]);
        assert_eq!(order.len(), 20, "weights are reduced by their gcd");
        assert_eq!(order.iter().filter(|k| **k == CallKind::Whoami).count(), 18);
        assert_eq!(order.iter().filter(|k| **k == CallKind::Refresh).count(), 1);
        assert_eq!(order.iter().filter(|k| **k == CallKind::Start).count(), 1);
        assert_eq!(schedule(&[(CallKind::Health, 7)]), vec![CallKind::Health]);
    }

    #[test]
    fn count_stop_hands_out_exactly_count_tickets() {
        let stop = Stop::count(3);
        assert!(stop.next() && stop.next() && stop.next());
        assert!(!stop.next());
        assert!(!stop.next());
    }
}
