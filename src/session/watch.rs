//! WatchSessions: a resumable stream of session events read from the store's event log.
//! Writers never wait for watchers: a watcher reads the log at its own pace, with a
//! bounded buffer; one that leaves its buffer full for too long is cut off.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::SendTimeoutError;

use super::{SessionError, SessionManager};
use crate::metrics::alerting::{WATCHERS_CUT_OFF, WATCHERS_OPEN, WATCH_LAG_EVENTS};
use crate::store::{EventsAfter, StoredEvent};

/// Events read from the log per store call.
const PAGE: usize = 256;
/// Items buffered per stream before the watcher counts as stalled.
const BUFFER: usize = 256;

/// What a watcher receives.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(StoredEvent),
    /// Every event up to `cursor` was sent; what follows is live.
    CaughtUp {
        cursor: u64,
    },
}

/// A watcher's request: where to resume, and whose sessions.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// None: from now on.
    pub after_cursor: Option<u64>,
    /// None: every user.
    pub user_id: Option<String>,
}

/// The stream of one watcher. Ends with RESOURCE_EXHAUSTED if it was cut off, and
/// with UNAVAILABLE at once (dropping what it had queued) when the server stops.
pub struct WatchStream {
    items: mpsc::Receiver<Result<WatchItem, SessionError>>,
    cut_off: Arc<AtomicBool>,
    closing: tokio_stream::wrappers::WatchStream<bool>,
    stall_timeout: Duration,
    ended: bool,
}

fn server_stopping() -> SessionError {
    SessionError::Unavailable(
        "the server is shutting down: resume from the last cursor received".into(),
    )
}

impl futures::Stream for WatchStream {
    type Item = Result<WatchItem, SessionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        while let Poll::Ready(Some(closing)) = self.closing.poll_next_unpin(cx) {
            if closing {
                self.ended = true;
                return Poll::Ready(Some(Err(server_stopping())));
            }
        }
        match self.items.poll_recv(cx) {
            Poll::Ready(None) => {
                self.ended = true;
                if self.cut_off.load(Ordering::Acquire) {
                    Poll::Ready(Some(Err(SessionError::ResourceExhausted(format!(
                        "watcher fell behind: its stream stayed full for {} ms; \
                         resume from the last cursor received",
                        self.stall_timeout.as_millis()
                    )))))
                } else {
                    Poll::Ready(None)
                }
            }
            other => other,
        }
    }
}

impl SessionManager {
    /// Ends every watcher's stream with UNAVAILABLE (at shutdown, so that the server
    /// can drain: a watch stream would otherwise never finish).
    pub fn close_watchers(&self) {
        self.closing.send_replace(true);
    }

    /// Starts a watcher; the stream lives until the caller drops it or is cut off.
    pub async fn watch(
        self: &Arc<Self>,
        request: WatchRequest,
        stall_timeout: Duration,
    ) -> Result<WatchStream, SessionError> {
        let head = self.store.settled_head().await?;
        let cursor = match request.after_cursor {
            Some(cursor) if cursor > head => {
                return Err(SessionError::invalid(
                    "after_cursor",
                    format!("is ahead of the event log (newest cursor {head})"),
                ))
            }
            Some(cursor) => cursor,
            None => head,
        };
        let (sender, items) = mpsc::channel(BUFFER);
        let cut_off = Arc::new(AtomicBool::new(false));
        metrics::gauge!(WATCHERS_OPEN).increment(1.0);
        let pump = Pump {
            manager: self.clone(),
            sender,
            user_id: request.user_id,
            stall_timeout,
            cut_off: cut_off.clone(),
        };
        tokio::spawn(pump.run(cursor));
        Ok(WatchStream {
            items,
            cut_off,
            closing: tokio_stream::wrappers::WatchStream::new(self.closing.subscribe()),
            stall_timeout,
            ended: false,
        })
    }
}

/// Moves events from the log into one watcher's buffer; counted among the open
/// watchers until it ends.
struct Pump {
    manager: Arc<SessionManager>,
    sender: mpsc::Sender<Result<WatchItem, SessionError>>,
    user_id: Option<String>,
    stall_timeout: Duration,
    cut_off: Arc<AtomicBool>,
}

impl Drop for Pump {
    fn drop(&mut self) {
        metrics::gauge!(WATCHERS_OPEN).decrement(1.0);
    }
}

impl Pump {
    async fn run(self, mut cursor: u64) {
        let store = &self.manager.store;
        let mut head = store.subscribe_events();
        let mut closing = self.manager.closing.subscribe();
        let mut announced = None;
        loop {
            if *closing.borrow() {
                self.send(Err(server_stopping())).await;
                return;
            }
            let events = match store.events_after(cursor, PAGE).await {
                Ok(EventsAfter::Events(events)) => events,
                Ok(EventsAfter::Pruned { pruned_through }) => {
                    let gone = SessionError::OutOfRange(format!(
                        "cursor {cursor} is older than the event log keeps (pruned through \
                         {pruned_through}): drop cached sessions and watch again without a cursor"
                    ));
                    self.send(Err(gone)).await;
                    return;
                }
                Err(error) => {
                    self.send(Err(error.into())).await;
                    return;
                }
            };
            metrics::histogram!(WATCH_LAG_EVENTS)
                .record(store.head_seq().saturating_sub(cursor) as f64);
            if events.is_empty() {
                if announced != Some(cursor) {
                    if !self.send(Ok(WatchItem::CaughtUp { cursor })).await {
                        return;
                    }
                    announced = Some(cursor);
                }
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return },
                    _ = closing.changed() => {}
                    () = self.sender.closed() => return,
                }
                continue;
            }
            for event in events {
                cursor = event.seq;
                let wanted = self
                    .user_id
                    .as_ref()
                    .is_none_or(|user_id| *user_id == event.user_id);
                if wanted && !self.send(Ok(WatchItem::Event(event))).await {
                    return;
                }
            }
        }
    }

    /// Sends one item; false when the watcher is gone or was cut off.
    async fn send(&self, item: Result<WatchItem, SessionError>) -> bool {
        match self.sender.send_timeout(item, self.stall_timeout).await {
            Ok(()) => true,
            Err(SendTimeoutError::Timeout(_)) => {
                metrics::counter!(WATCHERS_CUT_OFF).increment(1);
                self.cut_off.store(true, Ordering::Release);
                false
            }
            Err(SendTimeoutError::Closed(_)) => false,
        }
    }
}
