//! Session ids: UUID v7 whose order is creation order, also within one millisecond.
//!
//! RFC 9562 §6.2, method 1 (a fixed-length dedicated counter): after the 48-bit
//! millisecond come 42 counter bits (the 12 of `rand_a`, then the top 30 of `rand_b`)
//! and 32 random bits. The counter starts at a random value below 2^41 in each new
//! millisecond and counts up within it, so ids of one millisecond sort in the order they
//! were made, from any thread. The clock never moves an id backwards: if it steps back,
//! ids keep the newest millisecond seen until it catches up. A server resumes after the
//! newest stored id, so a restart within the same millisecond still sorts after it.

use parking_lot::Mutex;

use crate::store::SessionId;

/// Counter bits after the millisecond.
const COUNTER_BITS: u32 = 42;
/// A fresh millisecond's counter starts below this, leaving 2^41 increments of room.
const SEED_LIMIT: u64 = 1 << (COUNTER_BITS - 1);

/// Hands out session ids in strictly increasing order.
#[derive(Debug, Default)]
pub struct SessionIds {
    last: Mutex<Position>,
}

/// The millisecond and counter of the newest id handed out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    ms: u64,
    counter: u64,
}

impl SessionIds {
    /// An id of millisecond `now_ms` (or of the newest millisecond seen, if later),
    /// greater than every id handed out or resumed after.
    pub fn next(&self, now_ms: u64) -> Result<SessionId, getrandom::Error> {
        let random = getrandom::u64()?;
        let mut last = self.last.lock();
        let position = if now_ms > last.ms {
            Position {
                ms: now_ms,
                counter: (random >> 32) % SEED_LIMIT,
            }
        } else if last.counter + 1 < 1 << COUNTER_BITS {
            Position {
                ms: last.ms,
                counter: last.counter + 1,
            }
        } else {
            // 2^41 ids in one millisecond: borrow the next one.
            Position {
                ms: last.ms + 1,
                counter: 0,
            }
        };
        *last = position;
        Ok(position.id(random as u32))
    }

    /// Makes every later id sort after `newest` (an id already stored).
    pub fn resume_after(&self, newest: SessionId) {
        let mut last = self.last.lock();
        *last = (*last).max(Position::of(newest));
    }
}

impl Position {
    fn id(self, random: u32) -> SessionId {
        let counter_high = (self.counter >> 30) as u16; // 12 bits, into rand_a
        let counter_low = (self.counter & ((1 << 30) - 1)) as u32; // 30 bits, into rand_b
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&self.ms.to_be_bytes()[2..]);
        bytes[6..8].copy_from_slice(&(0x7000 | counter_high).to_be_bytes());
        bytes[8..12].copy_from_slice(&((0b10 << 30) | counter_low).to_be_bytes());
        bytes[12..].copy_from_slice(&random.to_be_bytes());
        SessionId::from_bytes(bytes)
    }

    /// The position an id was made at. An id from before the counter (random bits
    /// there) reads as some counter of its millisecond, which is all resuming needs.
    fn of(id: SessionId) -> Position {
        let bytes = id.as_bytes();
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&bytes[..6]);
        let high = u64::from(u16::from_be_bytes([bytes[6], bytes[7]]) & 0x0fff);
        let low = u64::from(u32::from_be_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11],
        ])) & ((1 << 30) - 1);
        Position {
            ms: u64::from_be_bytes(ms),
            counter: (high << 30) | low,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const MS: u64 = 1_700_000_000_123;

    #[test]
    fn ids_are_uuid_v7_of_their_millisecond() {
        let id = SessionIds::default().next(MS).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let (seconds, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(seconds * 1000 + u64::from(nanos) / 1_000_000, MS);
    }

    #[test]
    fn ids_of_one_millisecond_rise_in_the_order_they_were_made() {
        let ids = SessionIds::default();
        let made: Vec<SessionId> = (0..10_000).map(|_| ids.next(MS).unwrap()).collect();
        assert!(made.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(made.iter().all(|id| Position::of(*id).ms == MS));
    }

    #[test]
    fn a_clock_that_steps_back_never_makes_a_smaller_id() {
        let ids = SessionIds::default();
        let first = ids.next(MS).unwrap();
        let after_step_back = ids.next(MS - 5_000).unwrap();
        assert!(after_step_back > first);
        assert_eq!(Position::of(after_step_back).ms, MS);
        assert_eq!(Position::of(ids.next(MS + 1).unwrap()).ms, MS + 1);
    }

    #[test]
    fn a_full_counter_moves_on_to_the_next_millisecond() {
        let ids = SessionIds::default();
        ids.resume_after(
            Position {
                ms: MS,
                counter: (1 << COUNTER_BITS) - 1,
            }
            .id(0),
        );
        let next = ids.next(MS).unwrap();
        assert_eq!(Position::of(next).ms, MS + 1);
    }

    #[test]
    fn resuming_orders_new_ids_after_a_stored_one_of_the_same_millisecond() {
        for _ in 0..100 {
            let stored = SessionIds::default().next(MS).unwrap();
            let restarted = SessionIds::default();
            restarted.resume_after(stored);
            assert!(restarted.next(MS).unwrap() > stored);
        }
    }

    #[test]
    fn positions_read_back_from_their_ids() {
        let position = Position {
            ms: MS,
            counter: 0x2ab_cdef_0123,
        };
        assert_eq!(Position::of(position.id(u32::MAX)), position);
    }

    #[test]
    fn ids_from_many_threads_are_distinct_and_each_thread_sees_them_rise() {
        let ids = Arc::new(SessionIds::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let ids = ids.clone();
                std::thread::spawn(move || {
                    (0..2_000)
                        .map(|_| ids.next(MS).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = Vec::new();
        for thread in threads {
            let made = thread.join().unwrap();
            assert!(made.windows(2).all(|pair| pair[0] < pair[1]));
            all.extend(made);
        }
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
    }
}
