//! The revocation feed for services that verify access tokens locally: the sessions
//! revoked while an access token of theirs may still be unexpired, read from the event
//! log (so it survives restarts and is the same on every server of a shared store).

use std::time::Duration;

use super::policy::Policies;
use super::{SessionError, SessionManager};
use crate::clock::millis;
use crate::store::{EventKind, EventsAfter, SessionId, StoredEvent};

/// How much later than its revocation an access token of a session may still expire,
/// beyond the group's `access_token_ttl`: a token signed by a call that read the session
/// just before the revocation landed, and clock differences between servers.
pub const SIGNING_MARGIN: Duration = Duration::from_secs(30);

/// Events read from the log per store call.
const SCAN_PAGE: usize = 256;
/// Most events one page examines, so that one call's work stays bounded.
const SCAN_BUDGET: usize = 16 * 1024;

/// How long after a revocation an access token of the session may still be unexpired:
/// the longest `access_token_ttl` of any group plus [`SIGNING_MARGIN`].
pub fn revocation_window(policies: &Policies) -> Duration {
    policies
        .iter()
        .filter_map(|(_, policy)| policy.access_token_ttl)
        .max()
        .unwrap_or_default()
        .saturating_add(SIGNING_MARGIN)
}

/// Whether an event log kept for `event_retention` holds every revocation the feed must
/// list (always, when no group issues access tokens).
pub fn retention_covers_the_feed(policies: &Policies, event_retention: Duration) -> bool {
    let issues_access_tokens = policies
        .iter()
        .any(|(_, policy)| policy.access_token_ttl.is_some());
    !issues_access_tokens || event_retention >= revocation_window(policies)
}

/// A session whose access tokens must not be honoured until `not_after_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub session_id: SessionId,
    pub user_id: String,
    pub revoked_at_ms: u64,
    /// No access token of the session expires after this.
    pub not_after_ms: u64,
}

/// One page of the feed.
#[derive(Clone, Debug)]
pub struct RevocationPage {
    /// Oldest first.
    pub revocations: Vec<Revocation>,
    /// The last event this page examined: where the next page (or a watcher) resumes.
    pub cursor: u64,
    /// The page reached the newest event.
    pub caught_up: bool,
    /// See [`revocation_window`].
    pub window: Duration,
}

/// The first event after a cursor, as a probe of the log sees it.
enum Probe {
    Pruned { pruned_through: u64 },
    Nothing,
    Event(StoredEvent),
}

impl SessionManager {
    /// See [`revocation_window`].
    pub fn revocation_window(&self) -> Duration {
        revocation_window(&self.policies)
    }

    /// Up to `page_size` revocations from the event log after `after_cursor`, or, without
    /// one, from the oldest event that can still matter; only those whose `not_after` is
    /// still ahead.
    pub async fn list_revocations(
        &self,
        after_cursor: Option<u64>,
        page_size: usize,
    ) -> Result<RevocationPage, SessionError> {
        let now = self.clock.now_ms();
        let window = self.revocation_window();
        let since = now.saturating_sub(millis(window));
        let head = self.store.settled_head().await?;
        let mut cursor = match after_cursor {
            Some(cursor) if cursor > head => {
                return Err(SessionError::invalid(
                    "after_cursor",
                    format!("is ahead of the event log (newest cursor {head})"),
                ))
            }
            Some(cursor) => cursor,
            None => self.first_cursor_since(since, head).await?,
        };
        let mut revocations = Vec::new();
        let mut examined = 0;
        loop {
            let events = match self.store.events_after(cursor, SCAN_PAGE).await? {
                EventsAfter::Events(events) => events,
                EventsAfter::Pruned { pruned_through } => {
                    return Err(SessionError::OutOfRange(format!(
                        "cursor {cursor} is older than the event log keeps (pruned through \
                         {pruned_through}): list revocations again without a cursor"
                    )))
                }
            };
            if events.is_empty() {
                return Ok(RevocationPage {
                    revocations,
                    cursor,
                    caught_up: true,
                    window,
                });
            }
            for event in events {
                cursor = event.seq;
                examined += 1;
                if let Some(revocation) = revocation_of(&event, window, now) {
                    revocations.push(revocation);
                }
                if revocations.len() >= page_size || examined >= SCAN_BUDGET {
                    return Ok(RevocationPage {
                        revocations,
                        cursor,
                        caught_up: false,
                        window,
                    });
                }
            }
        }
    }

    /// A cursor after which the log holds only events at or after `since_ms`, and before
    /// which (nearly) none: a binary search over cursors, jumping to the events it meets.
    /// Events are logged in time order to within milliseconds; the window's margin
    /// covers that.
    async fn first_cursor_since(&self, since_ms: u64, head: u64) -> Result<u64, SessionError> {
        // Every event at or before `low` is older than `since_ms` (or gone); every event
        // after `high` is not.
        let (mut low, mut high) = (0, head);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.probe(middle).await? {
                Probe::Pruned { pruned_through } => low = pruned_through.clamp(low, high),
                Probe::Nothing => high = middle,
                Probe::Event(event) if event.at_ms >= since_ms => high = middle,
                // After `middle`, so `low` moves; at most `high`, since it is old.
                Probe::Event(event) => low = event.seq.clamp(low + 1, high),
            }
        }
        Ok(low)
    }

    async fn probe(&self, after: u64) -> Result<Probe, SessionError> {
        Ok(match self.store.events_after(after, 1).await? {
            EventsAfter::Pruned { pruned_through } => Probe::Pruned { pruned_through },
            EventsAfter::Events(events) => events
                .into_iter()
                .next()
                .map_or(Probe::Nothing, Probe::Event),
        })
    }
}

/// The revocation an event makes, if it revokes a session whose tokens may still be
/// unexpired at `now_ms`.
fn revocation_of(event: &StoredEvent, window: Duration, now_ms: u64) -> Option<Revocation> {
    let revokes = matches!(event.kind(), EventKind::Revoked | EventKind::ReuseDetected);
    let not_after_ms = event.at_ms.saturating_add(millis(window));
    if !revokes || not_after_ms <= now_ms {
        return None;
    }
    Some(Revocation {
        session_id: SessionId::from_slice(&event.session_id).ok()?,
        user_id: event.user_id.clone(),
        revoked_at_ms: event.at_ms,
        not_after_ms,
    })
}
