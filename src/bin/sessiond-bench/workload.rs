//! The calls, the workers that make them and the phases that run the workers until a
//! deadline or a call count (what they need is made in `prepare`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::proto::session::v1::{
    ExtendRequest, RefreshAllForUserRequest, RefreshRequest, StartRequest, WhoamiRequest,
};
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::prepare::Prepared;
use crate::stats::PhaseStats;
use crate::BoxError;

/// The service the health Check asks about: sessiond reports it SERVING once ready.
pub const HEALTH_SERVICE: &str = "session.v1.SessionService";

/// A call the bench can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum CallKind {
    /// `Whoami` with a prepared session token.
    Whoami,
    /// `Start` for a new user id each call.
    Start,
    /// `Refresh` along each worker's own chains of refresh tokens.
    Refresh,
    /// `Extend` of a prepared session, by id.
    Extend,
    /// `RefreshAllForUser` of a prepared user with a few sessions.
    RefreshAll,
    /// `grpc.health.v1.Health/Check`: the empty call, our ceiling.
    Health,
}

impl CallKind {
    /// Every kind, in flag order.
    pub const ALL: [CallKind; 6] = [
        CallKind::Whoami,
        CallKind::Start,
        CallKind::Refresh,
        CallKind::Extend,
        CallKind::RefreshAll,
        CallKind::Health,
    ];

    /// The flag spelling (`refresh-all`).
    pub fn name(self) -> &'static str {
        match self {
            CallKind::Whoami => "whoami",
            CallKind::Start => "start",
            CallKind::Refresh => "refresh",
            CallKind::Extend => "extend",
            CallKind::RefreshAll => "refresh-all",
            CallKind::Health => "health",
        }
    }

    /// The kind a flag spelling names.
    pub fn from_name(name: &str) -> Option<CallKind> {
        CallKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The full gRPC method.
    pub fn method(self) -> &'static str {
        match self {
            CallKind::Whoami => "session.v1.SessionService/Whoami",
            CallKind::Start => "session.v1.SessionService/Start",
            CallKind::Refresh => "session.v1.SessionService/Refresh",
            CallKind::Extend => "session.v1.SessionService/Extend",
            CallKind::RefreshAll => "session.v1.SessionService/RefreshAllForUser",
            CallKind::Health => "grpc.health.v1.Health/Check",
        }
    }

    /// Whether the call works on a prepared session of the worker.
    fn needs_session(self) -> bool {
        matches!(
            self,
            CallKind::Whoami | CallKind::Refresh | CallKind::Extend
        )
    }
}

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

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One prepared session: its id and current tokens. Refresh replaces the tokens.
#[derive(Debug, Clone)]
pub struct Slot {
    pub(crate) session_id: String,
    pub(crate) session_token: String,
    pub(crate) refresh_token: String,
    /// A Refresh failed, so which refresh token is current is unknown: presenting the
    /// old one could be reuse. The slot is not used again.
    pub(crate) broken: bool,
}

/// The credentials every SessionService call carries (health and reflection need none).
#[derive(Clone, Debug, Default)]
pub struct Auth {
    bearer: Option<MetadataValue<Ascii>>,
}

impl Auth {
    /// Calls carry `authorization: Bearer <key>`, as a `[[callers]]` API key.
    pub fn api_key(key: &str) -> Result<Auth, BoxError> {
        let bearer = format!("Bearer {key}")
            .parse()
            .map_err(|_| "--api-key must be printable ASCII")?;
        Ok(Auth {
            bearer: Some(bearer),
        })
    }

    /// `message` as a request with the credentials attached.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(bearer) = &self.bearer {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        request
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

/// One task's worth of load: its clients, its own sessions, and where it is in the
/// schedule. Workers outlive phases, so refresh chains carry over from warm-up.
pub struct Worker {
    index: usize,
    sessions: SessionServiceClient<Channel>,
    auth: Auth,
    health: HealthClient<Channel>,
    slots: Vec<Slot>,
    next_slot: usize,
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
    /// Makes calls from `schedule` until `stop`, each bounded by `timeout`.
    async fn run(
        mut self,
        schedule: Arc<[CallKind]>,
        stop: Stop,
        timeout: Duration,
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
            match self.call(kind, timeout).await {
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

    /// Makes one call of `kind` and times it.
    async fn call(&mut self, kind: CallKind, timeout: Duration) -> Outcome {
        let slot = if kind.needs_session() {
            match self.next_slot() {
                Some(slot) => Some(slot),
                None => return Outcome::NoSession,
            }
        } else {
            None
        };
        let started = Instant::now();
        let result = match kind {
            CallKind::Whoami => {
                let Some(slot) = slot.and_then(|slot| self.slots.get(slot)) else {
                    return Outcome::NoSession;
                };
                let request = WhoamiRequest {
                    session_token: slot.session_token.clone(),
                    client: None,
                };
                bounded(timeout, self.sessions.whoami(self.auth.request(request)))
                    .await
                    .map(drop)
            }
            CallKind::Refresh => {
                let Some(slot) = slot.and_then(|slot| self.slots.get_mut(slot)) else {
                    return Outcome::NoSession;
                };
                let request = RefreshRequest {
                    refresh_token: slot.refresh_token.clone(),
                    ..Default::default()
                };
                match bounded(timeout, self.sessions.refresh(self.auth.request(request))).await {
                    Ok(response) => {
                        let response = response.into_inner();
                        slot.session_token = response.session_token;
                        slot.refresh_token = response.refresh_token;
                        Ok(())
                    }
                    Err(status) => {
                        slot.broken = true;
                        Err(status)
                    }
                }
            }
            CallKind::Extend => {
                let Some(slot) = slot.and_then(|slot| self.slots.get(slot)) else {
                    return Outcome::NoSession;
                };
                let request = ExtendRequest {
                    session_id: slot.session_id.clone(),
                    keep_alive_seconds: None,
                };
                bounded(timeout, self.sessions.extend(self.auth.request(request)))
                    .await
                    .map(drop)
            }
            CallKind::Start => {
                self.started += 1;
                let request = start_request(format!(
                    "bench-{}-w{}-{}",
                    self.run_tag, self.index, self.started
                ));
                bounded(timeout, self.sessions.start(self.auth.request(request)))
                    .await
                    .map(drop)
            }
            CallKind::RefreshAll => {
                let Some(user_id) = self.next_user() else {
                    return Outcome::NoSession;
                };
                let request = RefreshAllForUserRequest {
                    user_id,
                    ..Default::default()
                };
                bounded(
                    timeout,
                    self.sessions
                        .refresh_all_for_user(self.auth.request(request)),
                )
                .await
                .map(drop)
            }
            CallKind::Health => health_check(&mut self.health, timeout).await,
        };
        Outcome::Done(started.elapsed(), result)
    }

    /// The index of the next usable slot, round-robin.
    fn next_slot(&mut self) -> Option<usize> {
        let len = self.slots.len();
        for step in 0..len {
            let index = (self.next_slot + step) % len;
            if self.slots.get(index).is_some_and(|slot| !slot.broken) {
                self.next_slot = index + 1;
                return Some(index);
            }
        }
        None
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
        self.slots.iter().filter(|slot| slot.broken).count()
    }
}

/// Awaits a call, giving up after `timeout` with DEADLINE_EXCEEDED.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<tonic::Response<T>, Status> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {timeout:?} (client timeout)"
        ))),
    }
}

/// One health Check of `session.v1.SessionService`; an answer other than SERVING
/// counts as UNAVAILABLE.
pub async fn health_check(
    client: &mut HealthClient<Channel>,
    timeout: Duration,
) -> Result<(), Status> {
    let request = HealthCheckRequest {
        service: HEALTH_SERVICE.into(),
    };
    let response = bounded(timeout, client.check(request)).await?.into_inner();
    if response.status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        Err(Status::unavailable(format!(
            "health of {HEALTH_SERVICE} is {:?}, not SERVING",
            ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown)
        )))
    }
}

/// A Start like a login: one user id, a device in the metadata.
pub(crate) fn start_request(user_id: String) -> StartRequest {
    StartRequest {
        user_id,
        metadata: [("device".to_owned(), "sessiond-bench".to_owned())].into(),
        ..Default::default()
    }
}

/// Builds `concurrency` workers over the channels round-robin, dealing the prepared
/// sessions out like cards (session i to worker i mod concurrency).
pub fn workers(
    channels: &[Channel],
    auth: &Auth,
    prepared: Prepared,
    concurrency: usize,
    run_tag: &str,
    pace: Option<Arc<Pace>>,
) -> Vec<Worker> {
    let users: Arc<[String]> = prepared.users.into();
    let run_tag: Arc<str> = run_tag.into();
    let mut workers: Vec<Worker> = channels
        .iter()
        .cycle()
        .take(concurrency)
        .enumerate()
        .map(|(index, channel)| {
            let channel = channel.clone();
            Worker {
                index,
                sessions: SessionServiceClient::new(channel.clone()),
                auth: auth.clone(),
                health: HealthClient::new(channel),
                slots: Vec::new(),
                next_slot: 0,
                users: users.clone(),
                next_user: 0,
                concurrency,
                run_tag: run_tag.clone(),
                started: 0,
                pace: pace.clone(),
            }
        })
        .collect();
    for (i, slot) in prepared.slots.into_iter().enumerate() {
        if let Some(worker) = workers.get_mut(i % concurrency.max(1)) {
            worker.slots.push(slot);
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
    timeout: Duration,
) -> Result<(Vec<Worker>, PhaseOutcome), BoxError> {
    let schedule: Arc<[CallKind]> = schedule.into();
    let began = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in workers {
        tasks.spawn(worker.run(schedule.clone(), stop.clone(), timeout));
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
    use super::*;

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

    #[test]
    fn names_round_trip() {
        for kind in CallKind::ALL {
            assert_eq!(CallKind::from_name(kind.name()), Some(kind));
            assert_eq!(
                kind.to_possible_value()
                    .map(|value| value.get_name().to_owned()),
                Some(kind.name().to_owned())
            );
        }
    }
}
