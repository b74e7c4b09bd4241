//! `ProofMarks` kept in this process's memory (the sled store's: one server per data
//! dir), each forgotten once its time passes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Marks with their deadlines. Expired ones are dropped whenever the map has doubled
/// since the last sweep, so it holds about the marks of one window.
#[derive(Default)]
pub struct MemoryMarks {
    inner: Mutex<Marks>,
}

#[derive(Default)]
struct Marks {
    until: HashMap<String, Instant>,
    /// Size after the last sweep of expired marks.
    swept_at_len: usize,
}

impl MemoryMarks {
    /// Sets `key` until `now + ttl`; false when it is already set.
    pub fn mark_once(&self, key: &str, ttl: Duration, now: Instant) -> bool {
        let mut marks = self.inner.lock();
        if marks.until.len() >= (marks.swept_at_len * 2).max(1024) {
            marks.until.retain(|_, until| *until > now);
            marks.swept_at_len = marks.until.len();
        }
        match marks.until.get_mut(key) {
            Some(until) if *until > now => false,
            Some(until) => {
                *until = now + ttl;
                true
            }
            None => {
                marks.until.insert(key.to_owned(), now + ttl);
                true
            }
        }
    }

    /// Whether `key` is set at `now`.
    pub fn is_marked(&self, key: &str, now: Instant) -> bool {
        self.inner
            .lock()
            .until
            .get(key)
            .is_some_and(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_holds_for_its_ttl_and_expired_ones_are_swept() {
        let marks = MemoryMarks::default();
        let start = Instant::now();
        let ttl = Duration::from_secs(60);
        assert!(marks.mark_once("a", ttl, start));
        assert!(!marks.mark_once("a", ttl, start + Duration::from_secs(59)));
        assert!(marks.is_marked("a", start + Duration::from_secs(59)));
        assert!(!marks.is_marked("a", start + ttl));
        assert!(
            marks.mark_once("a", ttl, start + ttl),
            "an expired mark is set anew"
        );
        for n in 0..5000 {
            let at = start + Duration::from_millis(n);
            marks.mark_once(&n.to_string(), Duration::from_millis(10), at);
        }
        let kept = marks.inner.lock().until.len();
        assert!(kept < 5000, "expired marks were swept ({kept} kept)");
    }
}
