//! The consistency check: a full scan of how records and index entries agree.

use super::*;

impl SledStore {
    pub(super) async fn scan_consistency(&self) -> Result<ConsistencyReport, StoreError> {
        let t = &self.trees;
        let mut report = ConsistencyReport::default();
        for entry in t.sessions.iter() {
            let (key, bytes) = entry?;
            let id = keys::id_from(&key, "session record")?;
            let record = decode(id, &bytes)?;
            report.sessions += 1;
            let user_entry = t.by_user.get(keys::user_key(&record.user_id, id)?)?;
            if user_entry.as_deref() != Some(&keys::encode_ms(record.expires_at_ms)[..]) {
                report.orphans += 1;
            }
            if !t
                .by_expiry
                .contains_key(keys::expiry_key(record.expires_at_ms, id))?
            {
                report.orphans += 1;
            }
            if record.grace_until_ms > 0
                && !t
                    .by_grace
                    .contains_key(keys::expiry_key(record.grace_until_ms, id))?
            {
                report.orphans += 1;
            }
        }
        for entry in t.by_user.iter() {
            let (key, _) = entry?;
            report.user_index_entries += 1;
            if !t
                .sessions
                .contains_key(keys::session_key(keys::session_id_of_user_key(&key)?))?
            {
                report.orphans += 1;
            }
        }
        for (tree, counter) in [
            (&t.by_expiry, &mut report.expiry_index_entries),
            (&t.by_grace, &mut 0),
        ] {
            for entry in tree.iter() {
                let (key, _) = entry?;
                *counter += 1;
                let (at_ms, id) = keys::parse_expiry_key(&key)?;
                let matches = match t.sessions.get(keys::session_key(id))? {
                    Some(bytes) => {
                        let record = decode(id, &bytes)?;
                        if std::ptr::eq(tree, &t.by_expiry) {
                            record.expires_at_ms == at_ms
                        } else {
                            record.grace_until_ms == at_ms
                        }
                    }
                    None => false,
                };
                if !matches {
                    report.orphans += 1;
                }
            }
        }
        Ok(report)
    }
}
