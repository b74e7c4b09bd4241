//! Session events on Redis Streams: one stream per shard, fencing so watchers see
//! events in cursor order, reading after a cursor and pruning past retention.

use std::sync::atomic::Ordering;
use std::sync::Weak;

use async_trait::async_trait;
use futures::future::try_join_all;
use prost::Message;
use redis::streams::StreamRangeReply;
use tokio::sync::watch;

use super::{RedisStore, EVENT_POLL, SHARDS};
use crate::store::{EventLog, EventsAfter, StoreError, StoredEvent};

/// A watcher's cursor of event `seq` of `shard`.
pub(super) fn cursor_of(seq: u64, shard: u16) -> u64 {
    seq * u64::from(SHARDS) + u64::from(shard)
}

/// The seq of a stream entry id "<seq>-1".
pub(super) fn parse_entry_seq(id: &str) -> Result<u64, StoreError> {
    id.split_once('-')
        .and_then(|(seq, _)| seq.parse().ok())
        .ok_or(StoreError::MalformedKey("event entry id"))
}

/// While the store lives: makes events final often enough for live watchers.
pub(super) async fn show_events(store: Weak<RedisStore>) {
    loop {
        tokio::time::sleep(EVENT_POLL).await;
        let Some(store) = store.upgrade() else {
            return;
        };
        if store.head.receiver_count() > 0 {
            if let Err(error) = store.settle().await {
                tracing::debug!(%error, "cannot settle events now");
            }
        }
    }
}

impl RedisStore {
    /// Fences every shard at G (the lowest top after fencing), so every event at or
    /// below G is final; the head becomes the newest of those events' cursors.
    pub(super) async fn settle(&self) -> Result<u64, StoreError> {
        let tops = try_join_all((0..SHARDS).map(|shard| {
            let mut conn = self.conn();
            let key = self.keys.events_top(shard);
            async move { self.fence.key(key).invoke_async::<u64>(&mut conn).await }
        }))
        .await?;
        let final_seq = tops.into_iter().min().unwrap_or(0);
        let newest = try_join_all((0..SHARDS).map(|shard| {
            let key = self.keys.events(shard);
            async move {
                let reply: StreamRangeReply = self
                    .query(
                        redis::cmd("XREVRANGE")
                            .arg(key)
                            .arg(format!("{final_seq}-1"))
                            .arg("-")
                            .arg("COUNT")
                            .arg(1),
                    )
                    .await?;
                reply
                    .ids
                    .first()
                    .map(|entry| parse_entry_seq(&entry.id).map(|seq| cursor_of(seq, shard)))
                    .transpose()
            }
        }))
        .await?;
        self.final_seq.fetch_max(final_seq, Ordering::AcqRel);
        let head = newest.into_iter().flatten().max().unwrap_or(0);
        self.head.send_if_modified(|current| {
            let moved = head > *current;
            *current = (*current).max(head);
            moved
        });
        Ok(self.head_seq())
    }

    /// Events of one shard after cursor `after`, numbered up to `through_seq`.
    pub(super) async fn shard_events(
        &self,
        shard: u16,
        after: u64,
        through_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let shards = u64::from(SHARDS);
        let (after_seq, after_shard) = (after / shards, after % shards);
        let first_seq = if u64::from(shard) > after_shard {
            after_seq
        } else {
            after_seq + 1
        };
        if first_seq > through_seq {
            return Ok(Vec::new());
        }
        let reply: StreamRangeReply = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.keys.events(shard))
                    .arg(format!("{first_seq}-0"))
                    .arg(format!("{through_seq}-1"))
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        reply
            .ids
            .iter()
            .map(|entry| {
                let cursor = cursor_of(parse_entry_seq(&entry.id)?, shard);
                let bytes: Vec<u8> = entry
                    .map
                    .get("e")
                    .and_then(|value| redis::from_redis_value_ref(value).ok())
                    .ok_or(StoreError::MalformedKey("event entry"))?;
                let mut event = StoredEvent::decode(bytes.as_slice()).map_err(|source| {
                    StoreError::CorruptEvent {
                        seq: cursor,
                        source,
                    }
                })?;
                event.seq = cursor;
                Ok(event)
            })
            .collect()
    }
}

#[async_trait]
impl EventLog for RedisStore {
    async fn events_after(&self, after_seq: u64, limit: usize) -> Result<EventsAfter, StoreError> {
        let pruned_through: Option<u64> = self
            .query(redis::cmd("GET").arg(self.keys.events_pruned()))
            .await?;
        if let Some(pruned_through) = pruned_through.filter(|pruned| after_seq < *pruned) {
            return Ok(EventsAfter::Pruned { pruned_through });
        }
        let final_seq = self.final_seq.load(Ordering::Acquire);
        let mut events: Vec<StoredEvent> = try_join_all(
            (0..SHARDS).map(|shard| self.shard_events(shard, after_seq, final_seq, limit)),
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
        events.sort_by_key(|event| event.seq);
        events.truncate(limit);
        Ok(EventsAfter::Events(events))
    }

    async fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for shard in 0..SHARDS {
            if pruned >= limit {
                break;
            }
            // Old by time, so final whatever the fences say.
            let oldest = self
                .shard_events(shard, 0, u64::MAX / u64::from(SHARDS), limit - pruned)
                .await?;
            let doomed: Vec<&StoredEvent> = oldest
                .iter()
                .take_while(|event| event.at_ms < before_ms)
                .collect();
            let Some(last) = doomed.last() else {
                continue;
            };
            // Raised before the trim: a watcher may be told "pruned" a moment early,
            // never find a silent gap.
            self.raise
                .key(self.keys.events_pruned())
                .arg(last.seq)
                .invoke_async::<()>(&mut self.conn())
                .await?;
            let last_seq = last.seq / u64::from(SHARDS);
            self.query::<()>(
                redis::cmd("XTRIM")
                    .arg(self.keys.events(shard))
                    .arg("MINID")
                    .arg(format!("{}-0", last_seq + 1)),
            )
            .await?;
            pruned += doomed.len();
        }
        Ok(pruned)
    }

    fn head_seq(&self) -> u64 {
        *self.head.borrow()
    }

    fn subscribe_events(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    async fn settled_head(&self) -> Result<u64, StoreError> {
        self.settle().await
    }
}
