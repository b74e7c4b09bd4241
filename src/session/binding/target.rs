//! Whether a DPoP proof's `htu` names the call it came with (RFC 9449 §4.3): the URI
//! compared after the syntax- and scheme-based normalisation of RFC 3986 §6.2.2–6.2.3.

/// Whether a proof's `htu` names the call at `uri`: compared without query and fragment
/// (RFC 9449 §4.3), scheme and authority case-insensitively and without the scheme's
/// default port, an empty path as "/" (RFC 3986 §6.2.2, §6.2.3). Paths compare exactly.
/// A `uri` that is only a path (a gRPC method's, `/session.v1.SessionService/Refresh`)
/// matches any absolute `htu` with that path: proxies rewrite scheme and `:authority`.
pub fn same_target(htu: &str, uri: &str) -> bool {
    if uri.starts_with('/') {
        return path_of(&normalized(htu)) == Some(normalized(uri).as_str());
    }
    normalized(htu) == normalized(uri)
}

/// The path of an absolute, normalized URI.
fn path_of(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    rest.find('/').map(|at| &rest[at..])
}

fn normalized(uri: &str) -> String {
    // `split` always yields a first piece, the whole string when there is no separator.
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    let authority = match authority.strip_suffix(default_port) {
        Some(host) if !default_port.is_empty() => host,
        _ => &authority,
    };
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_without_query_fragment_case_or_default_port() {
        let uri = "https://api.example/session.v1.SessionService/Refresh";
        let edit = |from: &str, to: &str| uri.replacen(from, to, 1);
        // (case, htu: the uri edited, matches)
        #[rustfmt::skip]
        let cases = [
            ("the same", uri.to_owned(), true),
            ("a query", format!("{uri}?x=1"), true),
            ("scheme and host in capitals", edit("https://api.example", "HTTPS://API.Example"), true),
            ("the default port", edit(".example/", ".example:443/"), true),
            ("another port", edit(".example/", ".example:8443/"), false),
            ("a fragment", format!("{uri}#top"), true),
            ("http's default port on https", edit(".example/", ".example:80/"), false),
            ("another scheme", edit("https:", "http:"), false),
            ("another host", edit(".example/", ".example.org/"), false),
            ("empty", String::new(), false),
            ("another method", edit("Refresh", "Logout"), false),
            ("the path in capitals", edit("session.v1", "SESSION.v1"), false),
            ("no scheme", edit("https://", ""), false),
            ("a trailing slash", format!("{uri}/"), false),
        ];
        for (case, htu, matches) in cases {
            assert_eq!(same_target(&htu, uri), matches, "{case}");
            assert_eq!(same_target(uri, &htu), matches, "{case}, swapped");
        }
        // No path is "/"; what has no scheme compares as written, less its query.
        assert!(same_target("https://h.example", "https://h.example:443/?q"));
        assert!(same_target("urn:x?q", "urn:x"));
    }

    #[test]
    fn a_bare_path_matches_any_host_with_that_path() {
        let path = "/session.v1.SessionService/Refresh";
        #[rustfmt::skip]
        let cases = [
            ("any host", "http://sessiond:50051/session.v1.SessionService/Refresh", true),
            ("a query", "https://lb.example/session.v1.SessionService/Refresh?x", true),
            ("another method", "http://sessiond/session.v1.SessionService/Whoami", false),
            ("the path alone is not a URL", "/session.v1.SessionService/Refresh", false),
            ("a longer path", "http://h/prefix/session.v1.SessionService/Refresh", false),
        ];
        for (case, htu, matches) in cases {
            assert_eq!(same_target(htu, path), matches, "{case}");
        }
    }
}
