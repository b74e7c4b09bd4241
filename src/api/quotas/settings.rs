//! The `[quotas]` table: which token buckets exist, each `calls` per `per` in bursts.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use serde::Deserialize;

/// One token bucket as configured: `calls` per `per`, in bursts of up to `burst`
/// (default: `calls`), e.g. `{ calls = 20, per = "1m", burst = 5 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub calls: u32,
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    #[serde(default)]
    pub burst: Option<u32>,
}

impl Rate {
    /// The governor quota; None when a number is 0 or `per / calls` rounds to nothing.
    pub(super) fn quota(&self) -> Option<Quota> {
        let calls = NonZeroU32::new(self.calls)?;
        let burst = NonZeroU32::new(self.burst.unwrap_or(self.calls))?;
        Some(Quota::with_period(self.per / calls.get())?.allow_burst(burst))
    }
}

/// How long a refusal may be held at most when none is configured.
const DEFAULT_REFUSAL_HOLD_LIMIT: Duration = Duration::from_secs(1);

/// The `[quotas]` table: which buckets exist (none by default).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaSettings {
    /// Start calls of each caller (one anonymous caller when no callers are configured).
    pub start_per_caller: Option<Rate>,
    /// Start calls for each `user_id`, whoever calls.
    pub start_per_user: Option<Rate>,
    /// Refresh calls of each caller.
    pub refresh_per_caller: Option<Rate>,
    /// Refresh calls naming each session, failed ones included.
    pub refresh_per_session: Option<Rate>,
    /// The longest a refusal is held for its turn ("0s": refusals are never held).
    #[serde(with = "humantime_serde")]
    pub refusal_hold_limit: Duration,
}

impl Default for QuotaSettings {
    fn default() -> QuotaSettings {
        QuotaSettings {
            start_per_caller: None,
            start_per_user: None,
            refresh_per_caller: None,
            refresh_per_session: None,
            refusal_hold_limit: DEFAULT_REFUSAL_HOLD_LIMIT,
        }
    }
}

impl QuotaSettings {
    /// What makes a configured rate unusable, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        let rates = [
            self.start_per_caller,
            self.start_per_user,
            self.refresh_per_caller,
            self.refresh_per_session,
        ];
        rates
            .iter()
            .flatten()
            .any(|rate| rate.quota().is_none())
            .then_some(
                "quotas: calls and burst must be at least 1, and per long enough for a \
                 nanosecond per call",
            )
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `calls` per `per`, in bursts of `calls`.
    pub fn rate(calls: u32, per: Duration) -> Rate {
        Rate {
            calls,
            per,
            burst: None,
        }
    }

    #[test]
    fn impossible_rates_are_refused() {
        let zero = QuotaSettings {
            start_per_user: Some(rate(0, Duration::from_secs(1))),
            ..QuotaSettings::default()
        };
        assert!(zero.problem().is_some());
        let too_fine = QuotaSettings {
            start_per_caller: Some(rate(10, Duration::from_nanos(1))),
            ..QuotaSettings::default()
        };
        assert!(too_fine.problem().is_some());
        assert!(QuotaSettings::default().problem().is_none());
    }
}
