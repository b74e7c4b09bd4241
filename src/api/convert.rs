//! Session snapshots into their protobuf form.

use prost_types::Timestamp;

use crate::proto::session::v1 as pb;
use crate::session::manager::{Issued, Snapshot};
use crate::session::policy::SessionState;
use crate::session::watch::WatchItem;
use crate::store::{EndReason, EventKind, SessionId};

/// Milliseconds since the epoch as a protobuf timestamp.
pub fn timestamp(ms: u64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        // Below 1e9, so it fits.
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    })
}

/// Whole seconds, rounded up so that a session with 0.4 s left does not say 0.
pub fn whole_seconds(duration: std::time::Duration) -> i64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

impl From<SessionState> for pb::SessionState {
    fn from(state: SessionState) -> Self {
        match state {
            SessionState::Active => pb::SessionState::Active,
            SessionState::Revoked => pb::SessionState::Revoked,
            SessionState::Expired => pb::SessionState::Expired,
        }
    }
}

impl From<Snapshot> for pb::Session {
    fn from(snapshot: Snapshot) -> Self {
        let record = snapshot.record;
        pb::Session {
            session_id: SessionId::from_slice(&record.session_id)
                .map(|id| id.to_string())
                .unwrap_or_default(),
            user_id: record.user_id,
            group: record.group,
            state: pb::SessionState::from(snapshot.state) as i32,
            created_at: timestamp(record.created_at_ms),
            authenticated_at: timestamp(record.authenticated_at_ms),
            last_access_at: timestamp(record.last_access_at_ms),
            expires_at: timestamp(record.expires_at_ms),
            max_expires_at: timestamp(record.max_expires_at_ms),
            ttl_seconds: i64::try_from(record.ttl_ms / 1000).unwrap_or(i64::MAX),
            metadata: record.metadata.into_iter().collect(),
            attributes: record.attributes.into_iter().collect(),
            scope: record.scope,
            aal: record.aal,
            token_attributes: record.token_attributes.into_iter().collect(),
            external_user_id: record.external_user_id,
            client: record.client.map(|client| pb::ClientContext {
                ip: client.ip,
                user_agent: client.user_agent,
                device_id: client.device_id,
                device_label: client.device_label,
            }),
            last_ip: record.last_ip,
            last_user_agent: record.last_user_agent,
            last_seen_at: (record.last_seen_at_ms > 0)
                .then(|| timestamp(record.last_seen_at_ms))
                .flatten(),
            end_reason: pb::EndReason::from(snapshot.end_reason) as i32,
            started_by: record.started_by,
            device_key_thumbprint: record.device_jkt,
        }
    }
}

impl From<EventKind> for pb::SessionEventKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Unspecified => pb::SessionEventKind::Unspecified,
            EventKind::Started => pb::SessionEventKind::Started,
            EventKind::Refreshed => pb::SessionEventKind::Refreshed,
            EventKind::Extended => pb::SessionEventKind::Extended,
            EventKind::Revoked => pb::SessionEventKind::Revoked,
            EventKind::Expired => pb::SessionEventKind::Expired,
            EventKind::ReuseDetected => pb::SessionEventKind::ReuseDetected,
        }
    }
}

impl From<EndReason> for pb::EndReason {
    fn from(reason: EndReason) -> Self {
        match reason {
            EndReason::Unspecified => pb::EndReason::Unspecified,
            EndReason::Logout => pb::EndReason::Logout,
            EndReason::LogoutAll => pb::EndReason::LogoutAll,
            EndReason::LogoutOthers => pb::EndReason::LogoutOthers,
            EndReason::AdminRevoke => pb::EndReason::AdminRevoke,
            EndReason::BulkRevoke => pb::EndReason::BulkRevoke,
            EndReason::LimitEvicted => pb::EndReason::LimitEvicted,
            EndReason::RefreshReuse => pb::EndReason::RefreshReuse,
            EndReason::IdleTimeout => pb::EndReason::IdleTimeout,
            EndReason::LifespanEnd => pb::EndReason::LifespanEnd,
            EndReason::AbsoluteCap => pb::EndReason::AbsoluteCap,
            EndReason::UserNotBefore => pb::EndReason::UserNotBefore,
            EndReason::BindingViolation => pb::EndReason::BindingViolation,
        }
    }
}

impl From<WatchItem> for pb::SessionEvent {
    fn from(item: WatchItem) -> Self {
        match item {
            WatchItem::Event(event) => pb::SessionEvent {
                cursor: event.seq,
                kind: pb::SessionEventKind::from(event.kind()) as i32,
                session_id: SessionId::from_slice(&event.session_id)
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                end_reason: pb::EndReason::from(event.end_reason()) as i32,
                user_id: event.user_id,
                at: timestamp(event.at_ms),
                actor: event.actor,
                reason: event.note,
            },
            WatchItem::CaughtUp { cursor } => pb::SessionEvent {
                cursor,
                kind: pb::SessionEventKind::CaughtUp as i32,
                ..Default::default()
            },
        }
    }
}

/// Start and Refresh answer with the same fields, so one conversion serves both.
macro_rules! from_issued {
    ($response:ident) => {
        impl From<Issued> for pb::$response {
            fn from(issued: Issued) -> Self {
                let (access_token, access_token_expires_in_seconds) = issued
                    .access_token
                    .map(|token| (token.jwt, whole_seconds(token.expires_in)))
                    .unwrap_or_default();
                pb::$response {
                    access_token,
                    access_token_expires_in_seconds,
                    id_token: issued.id_token.unwrap_or_default(),
                    expires_in_seconds: whole_seconds(issued.session.expires_in),
                    session: Some(issued.session.into()),
                    session_token: issued.session_token,
                    refresh_token: issued.refresh_token,
                }
            }
        }
    };
}

from_issued!(StartResponse);
from_issued!(RefreshResponse);
