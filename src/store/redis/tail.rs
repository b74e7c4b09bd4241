//! The near cache's tail: polls every shard's event stream and quiet-change stream
//! (records changed with no event) from where it last read, drops the records they
//! name, and marks the cache caught up as of the moment each full pass began.

use std::sync::Weak;

use futures::future::try_join_all;
use prost::Message;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use tokio::time::Instant;

use super::{RedisStore, SHARDS};
use crate::store::{SessionId, StoreError, StoredEvent};

/// Entries read from one stream per command: a shard with more is read again at once.
const BATCH: usize = 512;

/// Where the tail has read one shard to: the last entry id of each of its streams.
#[derive(Clone)]
struct ShardCursor {
    events: String,
    quiet: String,
}

/// While the store lives: keeps its near cache (if any) in step with every server's
/// changes. A failed pass makes the cache stop answering at once (logged once per
/// episode); the next good pass resumes from the same cursors.
pub(super) async fn tail_changes(store: Weak<RedisStore>) {
    let mut cursors: Option<Vec<ShardCursor>> = None;
    let mut failing = false;
    loop {
        let Some(store) = store.upgrade() else {
            return;
        };
        let Some(near) = store.near.as_ref() else {
            return;
        };
        let started = Instant::now();
        let pass = match &cursors {
            Some(at) => store.read_changes(at).await.map(Some),
            None => store.stream_ends().await.map(|ends| {
                cursors = Some(ends);
                None
            }),
        };
        let mut more = false;
        match pass {
            Ok(read) => {
                if let Some((ids, next, full)) = read {
                    near.drop_changed(ids);
                    cursors = Some(next);
                    more = full;
                }
                // A shard that filled its batch may hold more: not caught up yet.
                if !more {
                    near.caught_up(started);
                }
                if std::mem::take(&mut failing) {
                    tracing::info!("near cache: change streams read again; answering from memory");
                }
            }
            Err(error) => {
                near.lost();
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%error, "near cache: cannot read the change streams; reads go to Redis");
                }
            }
        }
        let interval = near.poll_interval();
        drop(store);
        if !more {
            tokio::time::sleep_until(started + interval).await;
        }
    }
}

/// The session a stream entry names: an event's `session_id`, or a quiet change's `s`.
fn named_session(entry: &StreamId) -> Result<SessionId, StoreError> {
    let field = |name: &str| -> Option<Vec<u8>> {
        entry
            .map
            .get(name)
            .and_then(|value| redis::from_redis_value_ref(value).ok())
    };
    let bytes = match field("e") {
        Some(event) => {
            StoredEvent::decode(event.as_slice())
                .map_err(|_| StoreError::MalformedKey("event entry"))?
                .session_id
        }
        None => field("s").ok_or(StoreError::MalformedKey("quiet change entry"))?,
    };
    SessionId::from_slice(&bytes).map_err(|_| StoreError::MalformedKey("changed session id"))
}

impl RedisStore {
    /// Every shard's streams' last entry ids, where a tail starting now begins.
    async fn stream_ends(&self) -> Result<Vec<ShardCursor>, StoreError> {
        try_join_all((0..SHARDS).map(|shard| async move {
            Ok(ShardCursor {
                events: self.last_entry(self.keys.events(shard)).await?,
                quiet: self.last_entry(self.keys.quiet_changes(shard)).await?,
            })
        }))
        .await
    }

    async fn last_entry(&self, key: String) -> Result<String, StoreError> {
        let reply: StreamRangeReply = self
            .query(
                redis::cmd("XREVRANGE")
                    .arg(key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |entry| entry.id))
    }

    /// One pass: what every shard's streams hold after `cursors` (one XREAD per shard:
    /// its two streams share its hash slot). Returns the sessions named, the new
    /// cursors, and whether some stream filled its batch.
    async fn read_changes(
        &self,
        cursors: &[ShardCursor],
    ) -> Result<(Vec<SessionId>, Vec<ShardCursor>, bool), StoreError> {
        let shards = try_join_all(cursors.iter().enumerate().map(|(shard, at)| async move {
            let shard = shard as u16;
            let (events, quiet) = (self.keys.events(shard), self.keys.quiet_changes(shard));
            let reply: Option<StreamReadReply> = self
                .query(
                    redis::cmd("XREAD")
                        .arg("COUNT")
                        .arg(BATCH)
                        .arg("STREAMS")
                        .arg(&events)
                        .arg(&quiet)
                        .arg(&at.events)
                        .arg(&at.quiet),
                )
                .await?;
            let mut next = at.clone();
            let mut ids = Vec::new();
            let mut full = false;
            for stream in reply.map(|reply| reply.keys).unwrap_or_default() {
                full |= stream.ids.len() >= BATCH;
                for entry in &stream.ids {
                    ids.push(named_session(entry)?);
                }
                if let Some(last) = stream.ids.last() {
                    let cursor = if stream.key == events {
                        &mut next.events
                    } else {
                        &mut next.quiet
                    };
                    cursor.clone_from(&last.id);
                }
            }
            Ok::<_, StoreError>((ids, next, full))
        }))
        .await?;
        let mut ids = Vec::new();
        let mut next = Vec::with_capacity(shards.len());
        let mut full = false;
        for (shard_ids, cursor, shard_full) in shards {
            ids.extend(shard_ids);
            next.push(cursor);
            full |= shard_full;
        }
        Ok((ids, next, full))
    }
}
