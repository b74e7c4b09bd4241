//! What the calls need, made before any timing: sessions to validate, refresh or
//! extend, and users with several sessions each, started concurrently over the
//! channels; and the same as a ghz data array.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use tonic::transport::Channel;

use crate::calls::{Auth, CallKind, Caller, Slot};
use crate::error::BoxError;
use crate::stats::code_name;

/// What the calls need, made before any timing.
#[derive(Default)]
pub struct Prepared {
    /// Sessions for whoami/refresh/extend, in start order.
    pub slots: Vec<Slot>,
    /// Users with `sessions_per_user` sessions each, for refresh-all.
    pub users: Vec<String>,
    /// Start calls made.
    pub starts: u64,
    /// How long preparing took.
    pub elapsed: Duration,
}

/// Starts `sessions` sessions and `users` × `sessions_per_user` more, `concurrency` at a
/// time, over the channels round-robin. The first failure stops everything.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
pub async fn prepare(
    channels: &[Channel],
    auth: &Auth,
    run_tag: &str,
    sessions: u64,
    users: u64,
    sessions_per_user: u64,
    concurrency: usize,
    timeout: Duration,
) -> Result<Prepared, BoxError> {
    let began = Instant::now();
    let start = |user_id: String, channel: &Channel| {
        let mut caller = Caller::new(channel, auth, timeout);
        async move {
            let response = caller.start(user_id.clone()).await.map_err(|status| {
                format!(
                    "preparing: Start for {user_id} failed: {} ({})",
                    code_name(status.code()),
                    status.message()
                )
            })?;
            Slot::started(response).ok_or_else(|| {
                BoxError::from(format!(
                    "preparing: Start for {user_id} returned no session"
                ))
            })
        }
    };

    // `cycle` over an empty slice is empty: no channel, nothing prepared (and no panic).
    let slots: Vec<Slot> = futures::stream::iter((0..sessions).zip(channels.iter().cycle()))
        .map(|(i, channel)| start(format!("bench-{run_tag}-u{i}"), channel))
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;

    let user_ids: Vec<String> = (0..users)
        .map(|u| format!("bench-{run_tag}-r{u}"))
        .collect();
    let per_user = usize::try_from(sessions_per_user).unwrap_or(usize::MAX);
    let user_sessions = user_ids
        .iter()
        .flat_map(|user| std::iter::repeat_n(user, per_user))
        .zip(channels.iter().cycle());
    futures::stream::iter(user_sessions)
        .map(|(user, channel)| start(user.clone(), channel))
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|_| async { Ok(()) })
        .await?;

    Ok(Prepared {
        slots,
        users: user_ids,
        starts: sessions + users * sessions_per_user,
        elapsed: began.elapsed(),
    })
}

impl Prepared {
    /// The ghz data array for `kind`: one request message per prepared session (or
    /// user). None for calls that need nothing prepared.
    pub fn ghz_data(&self, kind: CallKind) -> Option<Vec<serde_json::Value>> {
        let field = |name: &str, value: &str| serde_json::json!({ name: value });
        match kind {
            CallKind::Whoami => Some(
                self.slots
                    .iter()
                    .map(|slot| field("session_token", &slot.session_token))
                    .collect(),
            ),
            CallKind::Refresh => Some(
                self.slots
                    .iter()
                    .map(|slot| field("refresh_token", &slot.refresh_token))
                    .collect(),
            ),
            CallKind::Extend => Some(
                self.slots
                    .iter()
                    .map(|slot| field("session_id", &slot.session_id))
                    .collect(),
            ),
            CallKind::RefreshAll => Some(
                self.users
                    .iter()
                    .map(|user| field("user_id", user))
                    .collect(),
            ),
            CallKind::Start | CallKind::Health => None,
        }
    }
}
