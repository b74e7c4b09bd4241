//! The session event log: pages of events (one per transaction that logged any),
//! reading after a cursor, pruning past retention, showing events to watchers only once
//! they are durable, and moving a log of one event per key into pages.

use async_trait::async_trait;
use prost::Message;
use sled::transaction::TransactionalTree;
use tokio::sync::watch;

use super::keys;
use super::tx::TxError;
use super::SledStore;
use crate::store::{EventLog, EventsAfter, StoreError, StoredEvent};

/// The events one transaction logged, stored under the seq of the first: one sled key
/// per batch of changes instead of one per event.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct EventPage {
    #[prost(message, repeated, tag = "1")]
    pub(super) events: Vec<StoredEvent>,
}

/// The tree of event pages.
pub(super) const PAGES_TREE: &str = "seq_eventpage";

/// The tree of one event per key that earlier versions wrote, moved into pages at open.
const SINGLE_EVENTS_TREE: &str = "seq_event";

/// Events per page when moving the old log.
const MOVED_PER_PAGE: usize = 128;

/// Stores `events` (logged by one transaction, in seq order) as one page; its bytes.
pub(super) fn store_page(
    events: &TransactionalTree,
    page: &[StoredEvent],
) -> Result<usize, TxError> {
    let Some((key, bytes)) = page_entry(page) else {
        return Ok(0);
    };
    let paged = bytes.len();
    events.insert(&key[..], bytes)?;
    Ok(paged)
}

/// The key and bytes of one page holding `events` (in seq order); None when empty.
pub(super) fn page_entry(events: &[StoredEvent]) -> Option<([u8; 8], Vec<u8>)> {
    let first = events.first()?;
    let page = EventPage {
        events: events.to_vec(),
    };
    Some((keys::event_key(first.seq), page.encode_to_vec()))
}

fn decode_page(key: &[u8], bytes: &[u8]) -> Result<EventPage, StoreError> {
    let seq = keys::decode_u64(key, "event")?;
    EventPage::decode(bytes).map_err(|source| StoreError::CorruptEvent { seq, source })
}

/// The seq of the newest event in the log of `pages`, 0 when empty.
pub(super) fn last_seq(pages: &sled::Tree) -> Result<u64, StoreError> {
    Ok(match pages.last()? {
        Some((key, bytes)) => decode_page(&key, &bytes)?
            .events
            .last()
            .map_or(0, |event| event.seq),
        None => 0,
    })
}

/// Moves a log of one event per key (written before pages) into `pages`, then drops it.
/// A crash part way leaves the old log, and the next open moves it again into the
/// same pages.
pub(super) fn move_single_events(db: &sled::Db, pages: &sled::Tree) -> Result<(), StoreError> {
    if !db
        .tree_names()
        .iter()
        .any(|name| name == SINGLE_EVENTS_TREE.as_bytes())
    {
        return Ok(());
    }
    let single = db.open_tree(SINGLE_EVENTS_TREE)?;
    let mut page = Vec::with_capacity(MOVED_PER_PAGE);
    let mut entries = single.iter();
    loop {
        let next = entries.next().transpose()?;
        if let Some((key, bytes)) = &next {
            let seq = keys::decode_u64(key, "event")?;
            page.push(
                StoredEvent::decode(&**bytes)
                    .map_err(|source| StoreError::CorruptEvent { seq, source })?,
            );
        }
        if page.len() == MOVED_PER_PAGE || (next.is_none() && !page.is_empty()) {
            let events = std::mem::take(&mut page);
            pages.insert(
                keys::event_key(events[0].seq),
                EventPage { events }.encode_to_vec(),
            )?;
        }
        if next.is_none() {
            break;
        }
    }
    pages.flush()?;
    db.drop_tree(SINGLE_EVENTS_TREE)?;
    Ok(())
}

impl SledStore {
    /// Shows events through `last_seq` to watchers; the caller made them durable.
    pub(super) fn publish(&self, last_seq: Option<u64>) {
        if let Some(seq) = last_seq {
            self.head.send_if_modified(|head| {
                let moved = seq > *head;
                *head = (*head).max(seq);
                moved
            });
        }
    }
}

#[async_trait]
impl EventLog for SledStore {
    async fn events_after(&self, after_seq: u64, limit: usize) -> Result<EventsAfter, StoreError> {
        let pruned_through = match self.engine().trees.meta.get(keys::EVENTS_PRUNED_THROUGH)? {
            Some(value) => keys::decode_u64(&value, "meta")?,
            None => 0,
        };
        if after_seq < pruned_through {
            return Ok(EventsAfter::Pruned { pruned_through });
        }
        let head = self.head_seq();
        let wanted = after_seq.saturating_add(1);
        // The page holding `wanted` starts at or before it.
        let first_page = match self
            .engine()
            .trees
            .events
            .range(..=keys::event_key(wanted))
            .next_back()
        {
            Some(entry) => entry?.0,
            None => sled::IVec::from(&keys::event_key(wanted)[..]),
        };
        let mut events = Vec::new();
        'pages: for entry in self.engine().trees.events.range(first_page..) {
            let (key, bytes) = entry?;
            for event in decode_page(&key, &bytes)?.events {
                // Past the head: committed but not yet durable; shown after the flush.
                if events.len() == limit || event.seq > head {
                    break 'pages;
                }
                if event.seq >= wanted {
                    events.push(event);
                }
            }
        }
        Ok(EventsAfter::Events(events))
    }

    /// Prunes whole pages whose every event was logged before `before_ms`, oldest
    /// first, until `limit` events or more are pruned.
    async fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        // The rebuild at open counts the pages there were: none may go before it has.
        if !self.rebuilt() {
            return Ok(0);
        }
        self.watch_io(
            async {
                let mut doomed = Vec::new();
                let mut pruned = 0;
                let mut pruned_through = 0;
                let mut pruned_bytes = 0;
                for entry in self.engine().trees.events.iter() {
                    let (key, bytes) = entry?;
                    let page = decode_page(&key, &bytes)?;
                    let (Some(last), true) = (
                        page.events.last(),
                        page.events.iter().all(|event| event.at_ms < before_ms),
                    ) else {
                        break;
                    };
                    if pruned >= limit {
                        break;
                    }
                    pruned += page.events.len();
                    pruned_bytes += bytes.len() as i64;
                    pruned_through = last.seq;
                    doomed.push(key);
                }
                if doomed.is_empty() {
                    return Ok(0);
                }
                self.write(|tx, _| {
                    for key in &doomed {
                        tx.events.remove(key)?;
                    }
                    tx.meta.insert(
                        keys::EVENTS_PRUNED_THROUGH,
                        &keys::event_key(pruned_through)[..],
                    )?;
                    Ok(((), 0))
                })?;
                self.live.add(0, -pruned_bytes);
                Ok(pruned)
            }
            .await,
        )
    }

    fn head_seq(&self) -> u64 {
        *self.head.borrow()
    }

    fn subscribe_events(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}
