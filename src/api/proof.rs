//! The device proof a call carries in its metadata (`dpop`, where DPoP carries its
//! `DPoP` header) and the request that proof must name: the gRPC call itself, or, when a
//! service forwards its own client's proof, that client's request (`dpop-method` and
//! `dpop-url`, as the service received it). docs/binding.md has the mapping.

use tonic::metadata::MetadataMap;

use crate::session::manager::PresentedProof;
use crate::session::SessionError;

/// The metadata key of the proof.
pub const PROOF_KEY: &str = "dpop";
/// The method of the client's request a forwarded proof was made for.
pub const METHOD_KEY: &str = "dpop-method";
/// The URL of the client's request a forwarded proof was made for.
pub const URL_KEY: &str = "dpop-url";

const MAX_METHOD_BYTES: usize = 16;
const MAX_URL_BYTES: usize = 2048;

/// The proof in `metadata`, if any, for the gRPC method at `path`
/// (`/session.v1.SessionService/Refresh`). A direct call's proof names `POST` and that
/// path (its scheme and host are not compared: proxies rewrite `:authority`).
pub fn presented_proof(
    metadata: &MetadataMap,
    path: &str,
) -> Result<Option<PresentedProof>, SessionError> {
    let Some(proof) = text(metadata, PROOF_KEY)? else {
        return Ok(None);
    };
    let method = match text(metadata, METHOD_KEY)? {
        Some(method) if valid_method(&method) => method,
        Some(_) => {
            return Err(SessionError::invalid(
                METHOD_KEY,
                format!("must be an HTTP method (A-Z, at most {MAX_METHOD_BYTES} bytes)"),
            ))
        }
        None => "POST".to_owned(),
    };
    let uri = match text(metadata, URL_KEY)? {
        Some(url) if valid_url(&url) => url,
        Some(_) => {
            return Err(SessionError::invalid(
                URL_KEY,
                format!("must be an absolute http or https URL of at most {MAX_URL_BYTES} bytes"),
            ))
        }
        None => path.to_owned(),
    };
    Ok(Some(PresentedProof { proof, method, uri }))
}

/// A metadata value as text; a value that is not visible ASCII is refused by key.
fn text(metadata: &MetadataMap, key: &'static str) -> Result<Option<String>, SessionError> {
    match metadata.get(key) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.to_owned()))
            .map_err(|_| SessionError::invalid(key, "must be visible ASCII text")),
    }
}

fn valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= MAX_METHOD_BYTES
        && method.bytes().all(|byte| byte.is_ascii_uppercase())
}

fn valid_url(url: &str) -> bool {
    url.len() <= MAX_URL_BYTES && (url.starts_with("https://") || url.starts_with("http://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFRESH: &str = "/session.v1.SessionService/Refresh";

    fn metadata(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        for (key, value) in pairs {
            metadata.insert(*key, value.parse().expect("test values are ASCII"));
        }
        metadata
    }

    /// The method and URL a proof must name, or the refusal's message.
    type Named = Result<Option<(String, String)>, String>;
    /// (case, metadata, what it names)
    type Case = (&'static str, &'static [(&'static str, &'static str)], Named);

    fn presented(pairs: &[(&'static str, &str)]) -> Named {
        presented_proof(&metadata(pairs), REFRESH)
            .map(|proof| proof.map(|proof| (proof.method, proof.uri)))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn proof_targets() {
        let named = |method: &str, uri: &str| Ok(Some((method.to_owned(), uri.to_owned())));
        const URL: &str = "https://app.example/orders?id=1";
        #[rustfmt::skip]
        let cases: [Case; 6] = [
            ("no proof", &[], Ok(None)),
            ("a forwarded target without a proof is ignored", &[(URL_KEY, URL)], Ok(None)),
            ("a direct call names the gRPC method", &[(PROOF_KEY, "a.b.c")], named("POST", REFRESH)),
            ("a forwarded proof names the client's request", &[(PROOF_KEY, "a.b.c"), (METHOD_KEY, "GET"), (URL_KEY, URL)], named("GET", URL)),
            ("a lower-case method is refused", &[(PROOF_KEY, "a.b.c"), (METHOD_KEY, "get")], Err("dpop-method must be an HTTP method (A-Z, at most 16 bytes)".into())),
            ("a relative url is refused", &[(PROOF_KEY, "a.b.c"), (URL_KEY, "/orders")], Err("dpop-url must be an absolute http or https URL of at most 2048 bytes".into())),
        ];
        for (case, pairs, outcome) in cases {
            assert_eq!(presented(pairs), outcome, "{case}");
        }
    }
}
