//! Requests whose fields are checked together: Start's parameters and UpdateAttributes'
//! changes, each field against its limit and named when refused.

use super::fields::{device_key, seconds};
use super::RequestLimits;
use crate::proto::session::v1 as pb;
use crate::session::manager::{AttributeChanges, StartParams};
use crate::session::SessionError;
use crate::store::SessionRecord;

impl RequestLimits {
    /// Start's parameters, every field checked (empty `external_user_id`: none).
    pub fn start(&self, request: pb::StartRequest) -> Result<StartParams, SessionError> {
        Ok(StartParams {
            user_id: self.user_id("user_id", request.user_id)?,
            group: self.group(request.group)?,
            ttl: seconds("ttl_seconds", request.ttl_seconds)?,
            metadata: self.map("metadata", request.metadata)?,
            attributes: self.map("attributes", request.attributes)?,
            scope: self.scope(request.scope)?,
            token_attributes: self.map("token_attributes", request.token_attributes)?,
            issue_id_token: request.issue_id_token,
            external_user_id: match request.external_user_id.as_str() {
                "" => String::new(),
                _ => self.user_id("external_user_id", request.external_user_id)?,
            },
            client: self.client(request.client)?,
            device_key: device_key(&request.device_key)?,
        })
    }

    /// UpdateAttributes' changes, each map and key list within the limits.
    pub fn attribute_changes(
        &self,
        request: pb::UpdateAttributesRequest,
    ) -> Result<AttributeChanges, SessionError> {
        Ok(AttributeChanges {
            set: self.map("set", request.set)?,
            remove: self.keys("remove", request.remove)?,
            token_set: self.map("token_set", request.token_set)?,
            token_remove: self.keys("token_remove", request.token_remove)?,
        })
    }

    /// A session's maps, once changed, still fit the entry limit.
    pub fn attributes_fit(&self, record: &SessionRecord) -> Result<(), SessionError> {
        self.entries("set", record.attributes.len())?;
        self.entries("token_set", record.token_attributes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{invalid_field, map, tight};
    use super::*;

    fn start(user_id: &str) -> pb::StartRequest {
        pb::StartRequest {
            user_id: user_id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_start_takes_every_field_over() {
        let params = tight()
            .start(pb::StartRequest {
                group: "web".into(),
                ttl_seconds: Some(60),
                metadata: map(&[("ip", "x")]),
                attributes: map(&[("a", "1")]),
                scope: "read".into(),
                token_attributes: map(&[("t", "2")]),
                issue_id_token: true,
                external_user_id: "ext-1".into(),
                client: Some(pb::ClientContext::default()),
                ..start("alice")
            })
            .expect("valid");
        assert_eq!(params.user_id, "alice");
        assert_eq!(params.group.as_deref(), Some("web"));
        assert_eq!(params.ttl, Some(std::time::Duration::from_secs(60)));
        assert_eq!(params.metadata.get("ip").map(String::as_str), Some("x"));
        assert_eq!(params.attributes.get("a").map(String::as_str), Some("1"));
        assert_eq!(params.scope, "read");
        assert_eq!(
            params.token_attributes.get("t").map(String::as_str),
            Some("2")
        );
        assert!(params.issue_id_token);
        assert_eq!(params.external_user_id, "ext-1");
        assert!(params.client.is_some());
        let defaults = tight().start(start("alice")).expect("valid");
        assert_eq!((defaults.group, defaults.ttl), (None, None));
        assert_eq!(defaults.external_user_id, "");
    }

    #[test]
    fn a_bad_start_field_is_named() {
        let too_many = map(&[("a", ""), ("b", ""), ("c", "")]);
        let cases = [
            (start(""), "user_id"),
            (
                pb::StartRequest {
                    group: "g".repeat(9),
                    ..start("alice")
                },
                "group",
            ),
            (
                pb::StartRequest {
                    ttl_seconds: Some(0),
                    ..start("alice")
                },
                "ttl_seconds",
            ),
            (
                pb::StartRequest {
                    metadata: too_many.clone(),
                    ..start("alice")
                },
                "metadata",
            ),
            (
                pb::StartRequest {
                    attributes: map(&[("kkkkk", "")]),
                    ..start("alice")
                },
                "attributes",
            ),
            (
                pb::StartRequest {
                    token_attributes: map(&[("k", "123456789")]),
                    ..start("alice")
                },
                "token_attributes",
            ),
            (
                pb::StartRequest {
                    scope: "s".repeat(9),
                    ..start("alice")
                },
                "scope",
            ),
            (
                pb::StartRequest {
                    external_user_id: "  ".into(),
                    ..start("alice")
                },
                "external_user_id",
            ),
            (
                pb::StartRequest {
                    client: Some(pb::ClientContext {
                        ip: "nope".into(),
                        ..Default::default()
                    }),
                    ..start("alice")
                },
                "client.ip",
            ),
        ];
        for (request, field) in cases {
            assert_eq!(
                invalid_field(tight().start(request.clone())),
                field,
                "{request:?}"
            );
        }
    }

    #[test]
    fn each_attribute_change_is_bounded_and_named() {
        let request = |set, remove: &[&str], token_set, token_remove: &[&str]| {
            let keys = |keys: &[&str]| keys.iter().map(|key| key.to_string()).collect();
            pb::UpdateAttributesRequest {
                set,
                remove: keys(remove),
                token_set,
                token_remove: keys(token_remove),
                ..Default::default()
            }
        };
        let changes = tight()
            .attribute_changes(request(map(&[("a", "1")]), &["b"], map(&[]), &["c"]))
            .expect("valid");
        assert_eq!(
            (changes.remove, changes.token_remove),
            (vec!["b".into()], vec!["c".into()])
        );
        let too_many = || map(&[("a", ""), ("b", ""), ("c", "")]);
        let cases = [
            (request(too_many(), &[], map(&[]), &[]), "set"),
            (request(map(&[]), &["a", "b", "c"], map(&[]), &[]), "remove"),
            (request(map(&[]), &[], too_many(), &[]), "token_set"),
            (request(map(&[]), &[], map(&[]), &[""]), "token_remove"),
        ];
        for (request, field) in cases {
            let result = tight().attribute_changes(request.clone());
            assert_eq!(invalid_field(result), field, "{request:?}");
        }
    }

    #[test]
    fn changed_attributes_must_still_fit_the_entry_limit() {
        let limits = tight();
        let mut record = SessionRecord {
            attributes: map(&[("a", ""), ("b", "")]).into_iter().collect(),
            ..SessionRecord::default()
        };
        assert!(limits.attributes_fit(&record).is_ok());
        record.attributes.insert("c".into(), String::new());
        assert_eq!(invalid_field(limits.attributes_fit(&record)), "set");
        record.attributes.clear();
        record.token_attributes = map(&[("a", ""), ("b", ""), ("c", "")])
            .into_iter()
            .collect();
        assert_eq!(invalid_field(limits.attributes_fit(&record)), "token_set");
    }
}
