//! UpdateAttributes: changes a session's attributes and token-scoped attributes within
//! the size limits. `attributes_decision` is the rule.

use super::{AttributeChanges, SessionManager, Snapshot};
use crate::session::access::Acting;
use crate::session::policy::{GroupPolicy, SessionState};
use crate::session::SessionError;
use crate::store::{Commit, Decision, SessionId, SessionRecord};

/// The UpdateAttributes rule over `record` (of group `policy`) at `now_ms`: removals
/// apply before additions, and the result must fit; the outcome is why not, if not.
pub(super) fn attributes_decision(
    record: &SessionRecord,
    policy: &GroupPolicy,
    access: Acting<'_>,
    changes: &AttributeChanges,
    fits: &(dyn Fn(&SessionRecord) -> Result<(), SessionError> + Sync),
    now_ms: u64,
) -> (Decision, Result<(), SessionError>) {
    let refusal = access.check(&record.group).err().or_else(|| {
        (policy.state_at(record, now_ms) != SessionState::Active).then(|| {
            SessionError::FailedPrecondition(
                "only an active session's attributes can change".into(),
            )
        })
    });
    if let Some(refusal) = refusal {
        return (Decision::Keep, Err(refusal));
    }
    let mut next = record.clone();
    for key in &changes.remove {
        next.attributes.remove(key);
    }
    next.attributes.extend(changes.set.clone());
    for key in &changes.token_remove {
        next.token_attributes.remove(key);
    }
    next.token_attributes.extend(changes.token_set.clone());
    match fits(&next) {
        Err(refusal) => (Decision::Keep, Err(refusal)),
        Ok(()) => (Decision::Put(Box::new(next), None), Ok(())),
    }
}

impl SessionManager {
    /// Changes a session's attributes and token attributes; `fits` checks the result
    /// against the size limits.
    pub async fn update_attributes(
        &self,
        access: Acting<'_>,
        session_id: SessionId,
        changes: AttributeChanges,
        fits: &(dyn Fn(&SessionRecord) -> Result<(), SessionError> + Sync),
    ) -> Result<Snapshot, SessionError> {
        let now = self.clock.now_ms();
        let (stored, outcome) = self
            .decide(session_id, Commit::Durable, |record| {
                let policy = self.policies.for_record(record);
                attributes_decision(record, policy, access, &changes, fits, now)
            })
            .await?
            .ok_or_else(|| SessionError::NotFound(format!("no session with id {session_id}")))?;
        outcome.map(|()| self.snapshot(stored, now))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::fixtures::{acting, at_minute, elsewhere, policy, put, revoked, session};
    use super::*;
    use crate::session::access::GroupAccess;

    fn pairs(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn said(outcome: &Result<(), SessionError>) -> &'static str {
        match outcome {
            Ok(()) => "changed",
            Err(SessionError::PermissionDenied(_)) => "permission denied",
            Err(SessionError::FailedPrecondition(_)) => "failed precondition",
            Err(SessionError::InvalidArgument { .. }) => "invalid argument",
            Err(_) => "other error",
        }
    }

    /// At most two attributes.
    fn at_most_two(record: &SessionRecord) -> Result<(), SessionError> {
        match record.attributes.len() {
            0..=2 => Ok(()),
            _ => Err(SessionError::invalid("attributes", "too many")),
        }
    }

    #[test]
    fn attribute_outcomes() {
        let record = SessionRecord {
            attributes: pairs(&[("plan", "free"), ("team", "red")]),
            token_attributes: pairs(&[("step", "1")]),
            ..session()
        };
        let bump = AttributeChanges {
            set: pairs(&[("plan", "pro")]),
            remove: keys(&["team"]),
            token_set: pairs(&[("step", "2")]),
            token_remove: Vec::new(),
        };
        let re_add = AttributeChanges {
            set: pairs(&[("team", "blue")]),
            remove: keys(&["team"]),
            token_set: BTreeMap::new(),
            token_remove: keys(&["step"]),
        };
        let grow = AttributeChanges {
            set: pairs(&[("region", "eu")]),
            ..AttributeChanges::default()
        };
        // (case, record, access, changes, now, outcome, attributes after, token attributes after)
        #[rustfmt::skip]
        let cases = [
            ("set and remove", record.clone(), GroupAccess::All, &bump, at_minute(1), "changed", pairs(&[("plan", "pro")]), pairs(&[("step", "2")])),
            ("removals apply before additions", record.clone(), GroupAccess::All, &re_add, at_minute(1), "changed", pairs(&[("plan", "free"), ("team", "blue")]), pairs(&[])),
            ("the result must fit", record.clone(), GroupAccess::All, &grow, at_minute(1), "invalid argument", record.attributes.clone(), record.token_attributes.clone()),
            ("group out of reach", record.clone(), elsewhere(), &bump, at_minute(1), "permission denied", record.attributes.clone(), record.token_attributes.clone()),
            ("revoked session", revoked(record.clone()), GroupAccess::All, &bump, at_minute(1), "failed precondition", record.attributes.clone(), record.token_attributes.clone()),
            ("expired session", record.clone(), GroupAccess::All, &bump, at_minute(60), "failed precondition", record.attributes.clone(), record.token_attributes.clone()),
        ];
        for (case, record, access, changes, now, outcome, attributes, token_attributes) in cases {
            let (decision, got) = attributes_decision(
                &record,
                &policy(),
                acting(&access),
                changes,
                &at_most_two,
                now,
            );
            assert_eq!(said(&got), outcome, "{case}");
            let (stored, logged) = put(decision).unwrap_or((record, None));
            assert_eq!(logged, None, "{case}: attribute changes log no event");
            assert_eq!(stored.attributes, attributes, "{case}");
            assert_eq!(stored.token_attributes, token_attributes, "{case}");
        }
    }
}
