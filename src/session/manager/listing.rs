//! ListUserSessions: a user's sessions, newest first, one page at a time.

use super::*;

impl SessionManager {
    /// A page of a user's sessions, newest first, starting before `before`; only the
    /// active ones unless `include_inactive`.
    pub async fn list_user_sessions(
        &self,
        access: Acting<'_>,
        user_id: &str,
        page_size: usize,
        before: Option<SessionId>,
        include_inactive: bool,
    ) -> Result<SessionPage, SessionError> {
        let now = self.clock.now_ms();
        let mut sessions = Vec::new();
        let mut cursor = before;
        loop {
            let batch = self.store.list_user(user_id, cursor, page_size).await?;
            let exhausted = batch.len() < page_size;
            let mut batch = batch.into_iter().peekable();
            while let Some(record) = batch.next() {
                cursor = Some(session_id_of(&record)?);
                if !access.allows(&record.group) {
                    continue;
                }
                let session = self.snapshot(record, now);
                if include_inactive || session.state == SessionState::Active {
                    sessions.push(session);
                }
                if sessions.len() == page_size {
                    let more = batch.peek().is_some() || !exhausted;
                    return Ok(SessionPage {
                        sessions,
                        next: cursor.filter(|_| more),
                    });
                }
            }
            if exhausted {
                return Ok(SessionPage {
                    sessions,
                    next: None,
                });
            }
        }
    }
}
