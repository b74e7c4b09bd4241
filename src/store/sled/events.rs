//! The session event log: reading after a cursor, pruning past retention, and showing
//! events to watchers only once they are durable.

use super::*;

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

    pub(super) async fn read_events_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<EventsAfter, StoreError> {
        let pruned_through = match self.trees.meta.get(keys::EVENTS_PRUNED_THROUGH)? {
            Some(value) => keys::decode_u64(&value, "meta")?,
            None => 0,
        };
        if after_seq < pruned_through {
            return Ok(EventsAfter::Pruned { pruned_through });
        }
        let head = self.head_seq();
        let mut events = Vec::new();
        for entry in self
            .trees
            .events
            .range(keys::event_key(after_seq.saturating_add(1))..)
            .take(limit)
        {
            let (key, bytes) = entry?;
            let seq = keys::decode_u64(&key, "event")?;
            // Past the head: committed but not yet durable; shown after the flush.
            if seq > head {
                break;
            }
            let event = StoredEvent::decode(&*bytes)
                .map_err(|source| StoreError::CorruptEvent { seq, source })?;
            events.push(event);
        }
        Ok(EventsAfter::Events(events))
    }

    pub(super) async fn prune_events_before(
        &self,
        before_ms: u64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut doomed = Vec::new();
        for entry in self.trees.events.iter().take(limit) {
            let (key, bytes) = entry?;
            let seq = keys::decode_u64(&key, "event")?;
            let event = StoredEvent::decode(&*bytes)
                .map_err(|source| StoreError::CorruptEvent { seq, source })?;
            if event.at_ms >= before_ms {
                break;
            }
            doomed.push(seq);
        }
        let Some(&last) = doomed.last() else {
            return Ok(0);
        };
        self.write(|tx, _| {
            for seq in &doomed {
                tx.events.remove(&keys::event_key(*seq)[..])?;
            }
            tx.meta
                .insert(keys::EVENTS_PRUNED_THROUGH, &keys::event_key(last)[..])?;
            Ok(((), 0))
        })?;
        Ok(doomed.len())
    }
}
