//! The `[gateway]` table: where the session token is found in a proxied request, which
//! groups pass, and the headers the upstream receives.

use serde::Deserialize;

/// How gateways find the session token and what they tell the upstream.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// Header carrying the session token, as `Bearer st_…` or the bare token; empty:
    /// none (cookie only).
    pub token_header: String,
    /// Cookie carrying the session token when the header is absent; None: none.
    pub token_cookie: Option<String>,
    /// Groups whose sessions pass; a valid session of another group is refused (403).
    /// None: every group.
    pub groups: Option<Vec<String>>,
    /// Header the upstream receives the session's user id in.
    pub user_id_header: String,
    /// Header the upstream receives the session id in.
    pub session_id_header: String,
    /// Header the upstream receives the session's group in.
    pub group_header: String,
    /// Header the upstream receives a fresh access token (JWT) in, when the session's
    /// group issues them (`access_token_ttl`).
    pub access_token_header: String,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            token_header: "authorization".to_owned(),
            token_cookie: None,
            groups: None,
            user_id_header: "x-user-id".to_owned(),
            session_id_header: "x-session-id".to_owned(),
            group_header: "x-session-group".to_owned(),
            access_token_header: "x-access-token".to_owned(),
        }
    }
}

impl GatewaySettings {
    /// The same settings with header names in lower case, as proxies pass them.
    pub fn normalized(mut self) -> GatewaySettings {
        for name in [
            &mut self.token_header,
            &mut self.user_id_header,
            &mut self.session_id_header,
            &mut self.group_header,
            &mut self.access_token_header,
        ] {
            name.make_ascii_lowercase();
        }
        self
    }

    /// The headers a grant sets upstream: a client's copies never reach it.
    pub fn upstream_headers(&self) -> [&str; 4] {
        [
            &self.user_id_header,
            &self.session_id_header,
            &self.group_header,
            &self.access_token_header,
        ]
    }

    /// Why these settings cannot work, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        let upstream = self.upstream_headers();
        if !self.token_header.is_empty() && !is_token(&self.token_header) {
            Some("gateway.token_header must be a header name (letters, digits, '-', ...)")
        } else if self
            .token_cookie
            .as_deref()
            .is_some_and(|name| !is_token(name))
        {
            Some("gateway.token_cookie must be a cookie name (letters, digits, '-', '_', ...)")
        } else if self.token_header.is_empty() && self.token_cookie.is_none() {
            Some("gateway needs token_header or token_cookie: where else is the token?")
        } else if upstream.iter().any(|name| !is_token(name)) {
            Some("gateway's upstream header names must be header names (letters, digits, '-', ...)")
        } else if upstream.contains(&self.token_header.as_str())
            || (1..upstream.len()).any(|i| upstream[..i].contains(&upstream[i]))
        {
            Some(
                "gateway's upstream header names must differ from each other and from token_header",
            )
        } else if self.groups.as_ref().is_some_and(Vec::is_empty) {
            Some("gateway.groups must name at least one group (leave it out for every group)")
        } else {
            None
        }
    }
}

/// Whether `name` is an HTTP token (RFC 9110): what header and cookie names are made of.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_work() {
        assert_eq!(GatewaySettings::default().problem(), None);
    }

    #[test]
    fn an_upstream_header_may_not_be_where_the_token_comes_from() {
        let settings = GatewaySettings {
            user_id_header: "Authorization".into(),
            ..GatewaySettings::default()
        }
        .normalized();
        assert!(settings.problem().is_some());
    }

    #[test]
    fn upstream_headers_differ() {
        let settings = GatewaySettings {
            group_header: "x-user-id".into(),
            ..GatewaySettings::default()
        };
        assert!(settings.problem().is_some());
    }

    #[test]
    fn a_token_needs_somewhere_to_come_from() {
        let cookie_only = GatewaySettings {
            token_header: String::new(),
            token_cookie: Some("session".into()),
            ..GatewaySettings::default()
        };
        assert_eq!(cookie_only.problem(), None);
        let nowhere = GatewaySettings {
            token_cookie: None,
            ..cookie_only
        };
        assert!(nowhere.problem().is_some());
    }

    #[test]
    fn names_with_spaces_or_separators_are_refused() {
        for bad in ["x user", "x:user", ""] {
            let settings = GatewaySettings {
                user_id_header: bad.into(),
                ..GatewaySettings::default()
            };
            assert!(settings.problem().is_some(), "{bad:?}");
        }
    }
}
