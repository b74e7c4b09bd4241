//! The device proof a proxied request carries (its `DPoP` header, RFC 9449) and the
//! request that proof must name: the client's request as the proxy received it. Envoy
//! passes that request's method and URL in the check's attributes (`ext_authz.rs`);
//! HTTP forward-auth proxies in headers, read here: `X-Original-Method` and
//! `X-Original-URL` (nginx, as docs/gateways.md configures it), else the
//! `X-Forwarded-Method`, `-Proto`, `-Host` and `-Uri` that Caddy and Traefik send.

use super::{Refusal, RequestHeaders};
use crate::session::binding::MAX_PROOF_BYTES;
use crate::session::manager::PresentedProof;

/// The header of the proof.
pub const PROOF_HEADER: &str = "dpop";
/// The client request's method, as nginx is configured to pass it.
pub const ORIGINAL_METHOD: &str = "x-original-method";
/// The client request's absolute URL, as nginx is configured to pass it.
pub const ORIGINAL_URL: &str = "x-original-url";
/// The client request's method, as Caddy and Traefik pass it.
pub const FORWARDED_METHOD: &str = "x-forwarded-method";
/// The client request's scheme (`http` or `https`), as Caddy and Traefik pass it.
pub const FORWARDED_PROTO: &str = "x-forwarded-proto";
/// The client request's host (and port), as Caddy and Traefik pass it.
pub const FORWARDED_HOST: &str = "x-forwarded-host";
/// The client request's path and query, as Caddy and Traefik pass it.
pub const FORWARDED_URI: &str = "x-forwarded-uri";

const MAX_METHOD_BYTES: usize = 16;
const MAX_URL_BYTES: usize = 8 * 1024;

/// The request a client made through the proxy: what a proof's `htm` and `htu` name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The absolute URL, query included (the proof check ignores it).
    pub uri: String,
}

impl Target {
    /// The target of `method` on `scheme://host` + `path`, if each part is one.
    pub fn from_parts(method: &str, scheme: &str, host: &str, path: &str) -> Option<Target> {
        let scheme = scheme.to_ascii_lowercase();
        let uri = format!("{scheme}://{host}{path}");
        (valid_method(method)
            && matches!(scheme.as_str(), "http" | "https")
            && valid_host(host)
            && path.starts_with('/')
            && valid_url(&uri))
        .then(|| Target {
            method: method.to_owned(),
            uri,
        })
    }
}

/// The proof `headers` carry, for the request the proxy names. A `DPoP` header sent
/// twice, over 4 KiB or not text is refused like an unreadable token. Without a named
/// request the proof names none this one can be (an empty method and URL never match).
pub fn presented(headers: &dyn RequestHeaders) -> Result<Option<PresentedProof>, Refusal> {
    let proof = match headers.values(PROOF_HEADER).as_slice() {
        [] => return Ok(None),
        [value] if value.len() <= MAX_PROOF_BYTES => std::str::from_utf8(value)
            .map_err(|_| Refusal::BadToken)?
            .trim()
            .to_owned(),
        _ => return Err(Refusal::BadToken),
    };
    let Target { method, uri } = headers.target().unwrap_or_default();
    Ok(Some(PresentedProof { proof, method, uri }))
}

/// The client's request as an HTTP forward-auth proxy passes it: the `X-Original-*`
/// pair when either is present, else the `X-Forwarded-*` set. None when a header
/// needed is missing, repeated or not one (a proxy configured otherwise).
pub fn forwarded_target(headers: &dyn RequestHeaders) -> Option<Target> {
    let original = (one(headers, ORIGINAL_METHOD), one(headers, ORIGINAL_URL));
    if let (None, None) = original {
        let method = one(headers, FORWARDED_METHOD)??;
        let scheme = one(headers, FORWARDED_PROTO)??;
        let host = one(headers, FORWARDED_HOST)??;
        let path = one(headers, FORWARDED_URI)??;
        return Target::from_parts(method, scheme, host, path);
    }
    let (method, uri) = (original.0??, original.1??);
    let scheme_ends = uri.find("://")?;
    let scheme = uri[..scheme_ends].to_ascii_lowercase();
    (valid_method(method) && matches!(scheme.as_str(), "http" | "https") && valid_url(uri)).then(
        || Target {
            method: method.to_owned(),
            uri: format!("{scheme}{}", &uri[scheme_ends..]),
        },
    )
}

/// Header `name`: None when absent, `Some(None)` when repeated or not visible ASCII.
fn one<'a>(headers: &'a dyn RequestHeaders, name: &str) -> Option<Option<&'a str>> {
    match headers.values(name).as_slice() {
        [] => None,
        [value] => Some(
            std::str::from_utf8(value)
                .ok()
                .map(str::trim)
                .filter(|text| text.bytes().all(|byte| byte.is_ascii_graphic())),
        ),
        _ => Some(None),
    }
}

fn valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= MAX_METHOD_BYTES
        && method.bytes().all(|byte| byte.is_ascii_uppercase())
}

/// A host, with its port if any: no path, query, user info or whitespace in it.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && !b"/?#@\\".contains(&byte))
}

fn valid_url(url: &str) -> bool {
    url.len() <= MAX_URL_BYTES && url.bytes().all(|byte| byte.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::super::credentials::tests::Headers;
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(name, value)| (*name, value.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn target_of(pairs: &[(&'static str, &str)]) -> Option<(String, String)> {
        forwarded_target(&headers(pairs)).map(|target| (target.method, target.uri))
    }

    #[test]
    fn forwarded_targets() {
        let named = |method: &str, uri: &str| Some((method.to_owned(), uri.to_owned()));
        const CADDY: [(&str, &str); 4] = [
            (FORWARDED_METHOD, "POST"),
            (FORWARDED_PROTO, "https"),
            (FORWARDED_HOST, "app.example:8443"),
            (FORWARDED_URI, "/orders?id=1"),
        ];
        // (case, headers, target)
        #[rustfmt::skip]
        let cases: [(&str, &[(&'static str, &str)], _); 9] = [
            ("nothing", &[], None),
            ("nginx's pair", &[(ORIGINAL_METHOD, "GET"), (ORIGINAL_URL, "HTTP://app.example/a?b")], named("GET", "http://app.example/a?b")),
            ("Caddy's set", &CADDY, named("POST", "https://app.example:8443/orders?id=1")),
            ("the pair comes first", &[(ORIGINAL_METHOD, "GET"), (ORIGINAL_URL, "http://a/x"), CADDY[0], CADDY[1], CADDY[2], CADDY[3]], named("GET", "http://a/x")),
            ("half a pair is none, even with the set", &[(ORIGINAL_URL, "http://a/x"), CADDY[0], CADDY[1], CADDY[2], CADDY[3]], None),
            ("a relative URL", &[(ORIGINAL_METHOD, "GET"), (ORIGINAL_URL, "/x")], None),
            ("another scheme", &[(ORIGINAL_METHOD, "GET"), (ORIGINAL_URL, "ftp://a/x")], None),
            ("a lower-case method", &[(FORWARDED_METHOD, "get"), CADDY[1], CADDY[2], CADDY[3]], None),
            ("a host with a path", &[CADDY[0], CADDY[1], (FORWARDED_HOST, "a/b"), CADDY[3]], None),
        ];
        for (case, pairs, target) in cases {
            assert_eq!(target_of(pairs), target, "{case}");
        }
        let twice = [
            (ORIGINAL_METHOD, "GET"),
            (ORIGINAL_METHOD, "GET"),
            (ORIGINAL_URL, "http://a/x"),
        ];
        assert_eq!(target_of(&twice), None, "a header sent twice");
    }

    #[test]
    fn a_proof_is_read_once_and_without_a_target_names_nothing() {
        let nginx = [(ORIGINAL_METHOD, "GET"), (ORIGINAL_URL, "http://a/x")];
        let read = |pairs: &[(&'static str, &str)]| {
            presented(&headers(pairs))
                .map(|proof| proof.map(|proof| (proof.proof, proof.method, proof.uri)))
        };
        let named = |proof: &str, method: &str, uri: &str| {
            Some((proof.to_owned(), method.to_owned(), uri.to_owned()))
        };
        assert!(matches!(read(&nginx), Ok(None)));
        let proof = [(PROOF_HEADER, "a.b.c")];
        assert_eq!(
            read(&[proof[0], nginx[0], nginx[1]]).ok(),
            Some(named("a.b.c", "GET", "http://a/x"))
        );
        assert_eq!(read(&proof).ok(), Some(named("a.b.c", "", "")));
        let oversized = "a".repeat(MAX_PROOF_BYTES + 1);
        for pairs in [
            vec![proof[0], (PROOF_HEADER, "d.e.f"), nginx[0], nginx[1]],
            vec![(PROOF_HEADER, oversized.as_str()), nginx[0], nginx[1]],
        ] {
            assert!(matches!(read(&pairs), Err(Refusal::BadToken)));
        }
    }
}
