//! HTTP forward-auth on the admin port: `GET /auth` for nginx `auth_request`, Caddy
//! `forward_auth` and Traefik `ForwardAuth`. The proxy sends the client's headers; 200
//! carries the upstream headers (for the proxy to copy), 401/403 refuse, 503/500 mean
//! sessiond could not decide. Never a body: the access token travels in a header only.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::proof::{self, Target};
use super::{Gatekeeper, RequestHeaders};
use crate::session::GroupAccess;

/// The `/auth` route.
pub fn router(gatekeeper: Arc<Gatekeeper>) -> Router {
    Router::new()
        .route("/auth", get(check))
        .with_state(gatekeeper)
}

impl RequestHeaders for HeaderMap {
    fn values(&self, name: &str) -> Vec<&[u8]> {
        self.get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    /// `X-Original-Method` and `X-Original-URL`, else the `X-Forwarded-*` set.
    fn target(&self) -> Option<Target> {
        proof::forwarded_target(self)
    }
}

async fn check(State(gatekeeper): State<Arc<Gatekeeper>>, request: HeaderMap) -> Response {
    // The admin port knows no callers: every group the gateway settings accept.
    let decision = gatekeeper.check(&GroupAccess::All, &request).await;
    let mut headers = HeaderMap::new();
    // Answers hold a token and differ per client: no cache may keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let status = match decision {
        Ok(grant) => match upstream_headers(grant.set) {
            Some(upstream) => {
                headers.extend(upstream);
                StatusCode::OK
            }
            None => {
                tracing::error!("forward-auth: a session's fields are not valid header values");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        },
        Err(refusal) => {
            for (name, value) in refusal.headers() {
                // A challenge and a base64url nonce are always header values.
                if let Ok(value) = HeaderValue::try_from(value) {
                    headers.insert(name, value);
                }
            }
            StatusCode::from_u16(refusal.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
    };
    (status, headers).into_response()
}

/// The grant's headers, or None if one cannot be sent (then nothing passes: a proxy
/// would forward the request without it).
fn upstream_headers(set: Vec<(String, String)>) -> Option<HeaderMap> {
    set.into_iter()
        .map(|(name, value)| {
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_bytes(value.as_bytes()).ok()?,
            ))
        })
        .collect()
}
