//! ListSessions: sessions of every user that match a filter, newest first, and the walk
//! over the store that RevokeSessions shares.

use super::*;
use crate::session::filter::SessionFilter;

/// Records one store read hands back during a walk.
const WALK_BATCH: usize = 256;
/// Most sessions a page of ListSessions reads that the filter skips: past it the page
/// ends early (with a token to go on), so one call's cost stays bounded.
const PAGE_SKIP_BUDGET: usize = 10_000;

impl SessionManager {
    /// A page of the sessions `filter` matches within reach, newest first, starting
    /// before `before`.
    pub async fn list_sessions(
        &self,
        access: Acting<'_>,
        filter: &SessionFilter,
        page_size: usize,
        before: Option<SessionId>,
    ) -> Result<SessionPage, SessionError> {
        let now = self.clock.now_ms();
        let mut sessions = Vec::new();
        let next = self
            .walk_matching(
                access,
                filter,
                before,
                page_size.saturating_add(PAGE_SKIP_BUDGET),
                now,
                &mut |session| {
                    sessions.push(session);
                    sessions.len() < page_size
                },
            )
            .await?;
        Ok(SessionPage { sessions, next })
    }

    /// Walks the sessions within reach that `filter` matches, newest first, from before
    /// `cursor`, handing each to `visit` until it returns false or `budget` records were
    /// read. Returns the id to resume before, or None when the walk is complete.
    ///
    /// A user_id reads the user's index; created_before starts from its id bound and
    /// created_after stops at its bound (ids are UUID v7); other fields only skip.
    pub(super) async fn walk_matching(
        &self,
        access: Acting<'_>,
        filter: &SessionFilter,
        cursor: Option<SessionId>,
        budget: usize,
        now_ms: u64,
        visit: &mut (dyn FnMut(Snapshot) -> bool + Send),
    ) -> Result<Option<SessionId>, SessionError> {
        let lower = filter.lower_id();
        let mut cursor = match (cursor, filter.upper_id()) {
            (Some(cursor), Some(upper)) => Some(cursor.min(upper)),
            (cursor, upper) => cursor.or(upper),
        };
        let mut read = 0;
        loop {
            let want = WALK_BATCH.min(budget - read);
            if want == 0 {
                return Ok(cursor);
            }
            let batch = match &filter.user_id {
                Some(user_id) => self.store.list_user(user_id, cursor, want).await?,
                None => self.store.records_before(cursor, want).await?,
            };
            let exhausted = batch.len() < want;
            for record in batch {
                let id = session_id_of(&record)?;
                if lower.is_some_and(|lower| id < lower) {
                    return Ok(None);
                }
                cursor = Some(id);
                read += 1;
                if !access.allows(&record.group) {
                    continue;
                }
                let session = self.snapshot(record, now_ms);
                if filter.matches(&session.record, session.state) && !visit(session) {
                    return Ok(cursor);
                }
            }
            if exhausted {
                return Ok(None);
            }
        }
    }
}
