//! Finding the session token among a proxied request's headers: the token header first,
//! then the cookie. Nothing longer than [`MAX_HEADER_BYTES`] is read at all.

use super::proof::Target;
use super::GatewaySettings;

/// Longest header value searched for a token; a longer one is refused unread.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// A proxied request's headers, whatever form the proxy passed them in.
pub trait RequestHeaders {
    /// Every value of header `name` (lower case), in the order received.
    fn values(&self, name: &str) -> Vec<&[u8]>;

    /// The client's request as the proxy passed it (method and absolute URL), which a
    /// device proof must name; None when the proxy passed none.
    fn target(&self) -> Option<Target>;
}

/// What a request carries where the session token is expected.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// Neither the token header nor the cookie.
    Missing,
    /// Something that cannot be a token: oversized, not text, empty, or the token
    /// header twice (which copy would the upstream have trusted?).
    Unreadable,
    /// A candidate token, still to be parsed.
    Token(&'a str),
}

/// The session token `headers` carry where `settings` say to look.
pub fn find<'a>(headers: &'a dyn RequestHeaders, settings: &GatewaySettings) -> Credential<'a> {
    if !settings.token_header.is_empty() {
        match headers.values(&settings.token_header).as_slice() {
            [] => {}
            [value] => return from_header(value),
            _ => return Credential::Unreadable,
        }
    }
    match &settings.token_cookie {
        Some(cookie) => from_cookies(&headers.values("cookie"), cookie),
        None => Credential::Missing,
    }
}

fn text(value: &[u8]) -> Option<&str> {
    if value.len() > MAX_HEADER_BYTES {
        return None;
    }
    std::str::from_utf8(value).ok()
}

/// `Bearer <token>` (any case of the scheme) or the bare token.
fn from_header(value: &[u8]) -> Credential<'_> {
    let Some(value) = text(value).map(str::trim) else {
        return Credential::Unreadable;
    };
    let token = match value.split_once(char::is_whitespace) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim_start(),
        None if value.eq_ignore_ascii_case("bearer") => "",
        _ => value,
    };
    if token.is_empty() {
        Credential::Unreadable
    } else {
        Credential::Token(token)
    }
}

/// The first value of cookie `name`. Pairs are split on `;` and also on `,` (a cookie
/// value cannot hold either, and a proxy may join two Cookie headers with a comma).
fn from_cookies<'a>(values: &[&'a [u8]], name: &str) -> Credential<'a> {
    for value in values {
        let Some(value) = text(value) else {
            return Credential::Unreadable;
        };
        let found = value
            .split([';', ','])
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| key.trim() == name);
        if let Some((_, token)) = found {
            return match token.trim().trim_matches('"') {
                "" => Credential::Missing,
                token => Credential::Token(token),
            };
        }
    }
    Credential::Missing
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Headers as a test writes them; the request they name is read as `/auth` reads it.
    pub(in crate::gateway) struct Headers(pub Vec<(&'static str, Vec<u8>)>);

    impl RequestHeaders for Headers {
        fn values(&self, name: &str) -> Vec<&[u8]> {
            self.0
                .iter()
                .filter(|(key, _)| *key == name)
                .map(|(_, value)| value.as_slice())
                .collect()
        }

        fn target(&self) -> Option<Target> {
            crate::gateway::proof::forwarded_target(self)
        }
    }

    fn settings() -> GatewaySettings {
        GatewaySettings {
            token_cookie: Some("sid".into()),
            ..GatewaySettings::default()
        }
    }

    fn find_in(headers: &[(&'static str, &str)]) -> String {
        let headers = Headers(
            headers
                .iter()
                .map(|(name, value)| (*name, value.as_bytes().to_vec()))
                .collect(),
        );
        format!("{:?}", find(&headers, &settings()))
    }

    #[test]
    fn a_bearer_header_or_a_bare_one_gives_the_token() {
        assert_eq!(
            find_in(&[("authorization", "Bearer st_a")]),
            "Token(\"st_a\")"
        );
        assert_eq!(
            find_in(&[("authorization", "bearer  st_a ")]),
            "Token(\"st_a\")"
        );
        assert_eq!(find_in(&[("authorization", "st_a")]), "Token(\"st_a\")");
    }

    #[test]
    fn the_cookie_is_read_when_the_header_is_absent() {
        let cookies = [("cookie", "theme=dark; sid=st_b; other=1")];
        assert_eq!(find_in(&cookies), "Token(\"st_b\")");
        assert_eq!(
            find_in(&[("cookie", "a=1,sid=\"st_c\"")]),
            "Token(\"st_c\")"
        );
        let both = [("authorization", "Bearer st_a"), ("cookie", "sid=st_b")];
        assert_eq!(find_in(&both), "Token(\"st_a\")");
    }

    #[test]
    fn nothing_where_the_token_belongs_is_missing() {
        assert_eq!(find_in(&[]), "Missing");
        assert_eq!(find_in(&[("cookie", "theme=dark")]), "Missing");
        assert_eq!(find_in(&[("cookie", "sid=")]), "Missing");
    }

    #[test]
    fn oversized_repeated_or_empty_headers_are_unreadable() {
        let huge = format!("Bearer st_{}", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(find_in(&[("authorization", &huge)]), "Unreadable");
        let huge_cookie = format!("sid=st_{}", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(find_in(&[("cookie", &huge_cookie)]), "Unreadable");
        let twice = [("authorization", "st_a"), ("authorization", "st_b")];
        assert_eq!(find_in(&twice), "Unreadable");
        assert_eq!(find_in(&[("authorization", "Bearer ")]), "Unreadable");
        let binary = Headers(vec![("authorization", vec![0xff, 0xfe])]);
        assert_eq!(find(&binary, &settings()), Credential::Unreadable);
    }
}
