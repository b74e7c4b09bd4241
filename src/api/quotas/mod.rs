//! Quotas on Start and Refresh: token buckets per caller, per user (Start) and per
//! session (Refresh), on the server's clock; a call over one fails RESOURCE_EXHAUSTED
//! with how long to wait. Every quota is off unless configured.
//!
//! Refusals of one key are answered at most one per retry delay; one that comes sooner
//! is held until its turn (at most `refusal_hold_limit`). A client that retries at once
//! without reading RetryInfo, or sends many calls at once, then gets its refusals at
//! about the pace its bucket refills instead of spending the server's CPU on a flood of
//! refusals that would slow every other caller. A client that waits as told is never
//! held.
//!
//! They are checked here, at the gRPC edge, and not in a tower layer: the user id is in
//! Start's body and the session id inside Refresh's token, which only the handlers
//! decode. The caller's bucket is checked first, so a flooding caller is refused before
//! it can add keys to the per-user or per-session maps.

mod settings;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::RateLimiter;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

pub use settings::{QuotaSettings, Rate};

use crate::caller::Caller;
use crate::clock::Clock;
use crate::metrics::alerting::QUOTA_REFUSALS;
use crate::session::SessionError;
use crate::store::SessionId;

/// How often keys whose bucket has refilled are dropped, bounding the maps' memory.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(10);

/// The server's clock as governor reads it: time since the epoch.
#[derive(Clone)]
struct ServerClock(Arc<dyn Clock>);

impl governor::clock::Clock for ServerClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_ms())
    }
}

/// One keyed token bucket and the words that explain a refusal.
struct Bucket<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, ServerClock, NoOpMiddleware<Duration>>,
    clock: ServerClock,
    rate: Rate,
    /// "Start calls of this caller", "Refresh calls of this session"...
    what: &'static str,
    /// The setting's name, the label of its refusals' count.
    setting: &'static str,
    /// When the next refusal of each recently refused key may be answered.
    paced: Mutex<HashMap<K, Instant>>,
    holds: Arc<Holds>,
}

/// How long refusals may be held, and how many at once across every bucket: past that
/// a refusal is answered at once, so held refusals never take every call slot.
struct Holds {
    limit: Duration,
    slots: Semaphore,
}

impl Holds {
    /// Waits `hold`, if a slot is free.
    async fn hold(&self, hold: Duration) {
        if hold.is_zero() {
            return;
        }
        // The slot goes back when the permit drops, however the wait ends (answered, or
        // the call dropped).
        let Ok(_slot) = self.slots.try_acquire() else {
            return;
        };
        tracing::debug!(
            decision = "quota_refusal_held",
            hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
            "quota refusal held until its turn"
        );
        tokio::time::sleep(hold).await;
    }
}

impl<K: Hash + Eq + Clone> Bucket<K> {
    fn new(
        rate: Option<Rate>,
        clock: &Arc<dyn Clock>,
        setting: &'static str,
        what: &'static str,
        holds: &Arc<Holds>,
    ) -> Option<Bucket<K>> {
        let rate = rate?;
        // Checked when the config was read; a rate that slipped past stays off.
        let quota = rate.quota()?;
        let clock = ServerClock(clock.clone());
        Some(Bucket {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock.clone()),
            clock,
            rate,
            what,
            setting,
            paced: Mutex::default(),
            holds: holds.clone(),
        })
    }

    /// Takes a token for `key`, or refuses. Refusals of one key are answered at most
    /// one per retry delay: a refusal that comes sooner is held until its turn, at most
    /// the holds' limit (and only while a hold slot is free).
    /// A hold never takes more than half the time left before `deadline`, so the
    /// client hears the refusal (and when to retry) rather than its own timeout.
    async fn admit(&self, key: &K, deadline: Instant) -> Result<(), SessionError> {
        use governor::clock::Clock as _;
        let Err(not_until) = self.limiter.check_key(key) else {
            return Ok(());
        };
        metrics::counter!(QUOTA_REFUSALS, "quota" => self.setting).increment(1);
        let retry_after = not_until.wait_time_from(self.clock.now());
        let hold = self.turn(key, retry_after);
        let hold = hold.min(deadline.saturating_duration_since(Instant::now()) / 2);
        self.holds.hold(hold).await;
        // The delay stays as measured before the hold: a hold answers a client that came
        // too soon, it does not move its turn closer.
        Err(SessionError::OverQuota {
            message: format!(
                "over quota: {} exceed {} per {}; retry in {} ms",
                self.what,
                self.rate.calls,
                humantime_serde::re::humantime::format_duration(self.rate.per),
                retry_after.as_millis().max(1)
            ),
            retry_after,
        })
    }

    /// How long a refusal of `key` waits for its turn; books the turn after it.
    fn turn(&self, key: &K, retry_after: Duration) -> Duration {
        let now = Instant::now();
        let latest = now + self.holds.limit;
        let mut paced = self
            .paced
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let next = paced.entry(key.clone()).or_insert(now);
        let answer_at = (*next).clamp(now, latest);
        *next = answer_at + retry_after;
        answer_at - now
    }

    /// Drops the keys whose bucket is full again and whose refusals are all answered.
    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = Instant::now();
        let mut paced = self
            .paced
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        paced.retain(|_, next| *next > now);
        paced.shrink_to_fit();
    }
}

/// Every configured bucket.
#[derive(Default)]
pub struct Quotas {
    start_per_caller: Option<Bucket<String>>,
    start_per_user: Option<Bucket<String>>,
    refresh_per_caller: Option<Bucket<String>>,
    refresh_per_session: Option<Bucket<SessionId>>,
}

/// The key of a caller's buckets: its name, or "" for the one anonymous caller.
fn caller_key(caller: Option<&Caller>) -> String {
    caller
        .map(|caller| caller.name().to_owned())
        .unwrap_or_default()
}

impl Quotas {
    /// The buckets `settings` asks for, on `clock`, holding at most `max_held` refusals
    /// at once.
    pub fn new(settings: &QuotaSettings, clock: &Arc<dyn Clock>, max_held: usize) -> Quotas {
        let holds = Arc::new(Holds {
            limit: settings.refusal_hold_limit,
            slots: Semaphore::new(max_held.min(Semaphore::MAX_PERMITS)),
        });
        Quotas {
            start_per_caller: Bucket::new(
                settings.start_per_caller,
                clock,
                "start_per_caller",
                "Start calls of this caller",
                &holds,
            ),
            start_per_user: Bucket::new(
                settings.start_per_user,
                clock,
                "start_per_user",
                "Start calls for this user",
                &holds,
            ),
            refresh_per_caller: Bucket::new(
                settings.refresh_per_caller,
                clock,
                "refresh_per_caller",
                "Refresh calls of this caller",
                &holds,
            ),
            refresh_per_session: Bucket::new(
                settings.refresh_per_session,
                clock,
                "refresh_per_session",
                "Refresh calls of this session",
                &holds,
            ),
        }
    }

    /// Takes a Start of `user_id` by `caller` from their buckets, or says when to retry.
    pub async fn admit_start(
        &self,
        caller: Option<&Caller>,
        user_id: &str,
        deadline: Instant,
    ) -> Result<(), SessionError> {
        if let Some(bucket) = &self.start_per_caller {
            bucket.admit(&caller_key(caller), deadline).await?;
        }
        if let Some(bucket) = &self.start_per_user {
            bucket.admit(&user_id.to_owned(), deadline).await?;
        }
        Ok(())
    }

    /// Takes a Refresh of `session_id` by `caller` from their buckets, or says when to
    /// retry.
    pub async fn admit_refresh(
        &self,
        caller: Option<&Caller>,
        session_id: SessionId,
        deadline: Instant,
    ) -> Result<(), SessionError> {
        if let Some(bucket) = &self.refresh_per_caller {
            bucket.admit(&caller_key(caller), deadline).await?;
        }
        if let Some(bucket) = &self.refresh_per_session {
            bucket.admit(&session_id, deadline).await?;
        }
        Ok(())
    }

    /// Drops the keys whose bucket is full again (they are as good as new).
    pub fn forget_idle(&self) {
        let by_name = [
            &self.start_per_caller,
            &self.start_per_user,
            &self.refresh_per_caller,
        ];
        by_name.into_iter().flatten().for_each(Bucket::forget_idle);
        if let Some(bucket) = &self.refresh_per_session {
            bucket.forget_idle();
        }
    }

    /// Forgets idle keys every few seconds until `stopping` turns true.
    pub async fn forget_idle_forever(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(FORGET_IDLE_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.forget_idle(),
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::settings::tests::rate;
    use super::*;
    use crate::clock::ManualClock;

    /// A deadline no hold in these tests reaches.
    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn quotas(settings: QuotaSettings) -> (Arc<ManualClock>, Quotas) {
        quotas_holding(settings, 1024)
    }

    fn quotas_holding(settings: QuotaSettings, max_held: usize) -> (Arc<ManualClock>, Quotas) {
        let clock = Arc::new(ManualClock::new(1_767_225_600_000));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        (clock, Quotas::new(&settings, &dyn_clock, max_held))
    }

    #[tokio::test]
    async fn a_user_over_its_rate_is_told_when_to_retry_and_admitted_then() {
        let (clock, quotas) = quotas(QuotaSettings {
            start_per_user: Some(rate(2, Duration::from_secs(60))),
            ..QuotaSettings::default()
        });
        quotas.admit_start(None, "ada", far()).await.expect("first");
        quotas
            .admit_start(None, "ada", far())
            .await
            .expect("second");
        let Err(SessionError::OverQuota { retry_after, .. }) =
            quotas.admit_start(None, "ada", far()).await
        else {
            panic!("the third Start within a minute is over quota");
        };
        assert_eq!(retry_after, Duration::from_secs(30));
        quotas
            .admit_start(None, "bob", far())
            .await
            .expect("another user has its own bucket");
        clock.advance(retry_after);
        quotas
            .admit_start(None, "ada", far())
            .await
            .expect("admitted after the wait");
    }

    #[tokio::test]
    async fn no_settings_no_limit() {
        let (_, quotas) = quotas(QuotaSettings::default());
        for _ in 0..10_000 {
            quotas
                .admit_start(None, "ada", far())
                .await
                .expect("no quota configured");
        }
    }

    #[tokio::test]
    async fn idle_keys_are_forgotten_once_their_bucket_refills() {
        let (clock, quotas) = quotas(QuotaSettings {
            refresh_per_session: Some(rate(1, Duration::from_secs(1))),
            ..QuotaSettings::default()
        });
        let bucket = quotas.refresh_per_session.as_ref().expect("configured");
        for _ in 0..100 {
            quotas
                .admit_refresh(None, uuid::Uuid::now_v7(), far())
                .await
                .expect("one each");
        }
        assert_eq!(bucket.limiter.len(), 100);
        clock.advance(Duration::from_secs(2));
        quotas.forget_idle();
        assert_eq!(bucket.limiter.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_that_come_sooner_than_told_wait_their_turn() {
        let (_, held) = quotas(QuotaSettings {
            start_per_caller: Some(rate(1, Duration::from_secs(60))),
            refusal_hold_limit: Duration::from_secs(1),
            ..QuotaSettings::default()
        });
        held.admit_start(None, "ada", far()).await.expect("first");
        let began = Instant::now();
        let mut answered_after = Vec::new();
        for _ in 0..3 {
            let refused = held.admit_start(None, "ada", far()).await;
            assert!(matches!(refused, Err(SessionError::OverQuota { .. })));
            answered_after.push(began.elapsed());
        }
        let seconds = |n| Duration::from_secs(n);
        assert_eq!(answered_after, [seconds(0), seconds(1), seconds(2)]);

        let (_, unheld) = quotas(QuotaSettings {
            start_per_caller: Some(rate(1, Duration::from_secs(60))),
            refusal_hold_limit: Duration::ZERO,
            ..QuotaSettings::default()
        });
        let began = Instant::now();
        for _ in 0..4 {
            let _ = unheld.admit_start(None, "ada", far()).await;
        }
        assert_eq!(
            began.elapsed(),
            Duration::ZERO,
            "a zero limit holds nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_most_held_refusals_are_answered_at_once() {
        let (_, quotas) = quotas_holding(
            QuotaSettings {
                start_per_caller: Some(rate(1, Duration::from_secs(60))),
                refusal_hold_limit: Duration::from_secs(1),
                ..QuotaSettings::default()
            },
            1,
        );
        quotas.admit_start(None, "ada", far()).await.expect("first");
        let _ = quotas.admit_start(None, "ada", far()).await;
        let began = Instant::now();
        let answered_after = || async {
            let refused = quotas.admit_start(None, "ada", far()).await;
            assert!(matches!(refused, Err(SessionError::OverQuota { .. })));
            began.elapsed()
        };
        let (held, not_held) = tokio::join!(answered_after(), answered_after());
        assert_eq!(held, Duration::from_secs(1), "the one slot holds the first");
        assert_eq!(not_held, Duration::ZERO, "no slot left: answered at once");
    }
}
