//! Envoy's ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`), served on
//! the gRPC port beside `SessionService`: the gatekeeper's decision as a CheckResponse.
//! A pass sets the upstream headers (replacing the client's copies) and removes the
//! ones it leaves unset; a refusal is a denied response with its HTTP status and headers
//! (the challenge, and `dpop-nonce` when a proof needs a nonce); when
//! sessiond cannot decide, the call fails (UNAVAILABLE when the store is unreachable),
//! so Envoy's `failure_mode_allow` and `status_on_error` decide, never an OK.

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode,
};
use envoy_types::ext_authz::v3::{
    CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use tonic::{Request, Response, Status};

use super::proof::Target;
use super::{Gatekeeper, Grant, Refusal, RequestHeaders};
use crate::caller;

/// Largest CheckRequest decoded. Every request Envoy can forward must fit (its own
/// header limit is at most 8 MiB): one refused for its size would be a call failure,
/// which `failure_mode_allow` could turn into a pass.
pub const MAX_CHECK_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The Authorization service of Envoy's ext_authz filter.
pub struct ExtAuthz {
    gatekeeper: Arc<Gatekeeper>,
}

impl ExtAuthz {
    /// Decides with `gatekeeper`.
    pub fn new(gatekeeper: Arc<Gatekeeper>) -> ExtAuthz {
        ExtAuthz { gatekeeper }
    }
}

/// The proxied request's headers, from the map Envoy fills by default and from
/// `header_map` (filled instead with `encode_raw_headers`).
struct EnvoyHeaders<'a>(Option<&'a HttpRequest>);

impl RequestHeaders for EnvoyHeaders<'_> {
    fn values(&self, name: &str) -> Vec<&[u8]> {
        let Some(http) = self.0 else {
            return Vec::new();
        };
        let raw = http.header_map.iter().flat_map(|map| &map.headers);
        http.headers
            .get(name)
            .map(String::as_bytes)
            .into_iter()
            .chain(
                raw.filter(|header| header.key.eq_ignore_ascii_case(name))
                    .map(|header| match header.raw_value.as_slice() {
                        [] => header.value.as_bytes(),
                        raw_value => raw_value,
                    }),
            )
            .collect()
    }

    /// The request Envoy checks: `scheme://host` + `path` (the query in it).
    fn target(&self) -> Option<Target> {
        let http = self.0?;
        Target::from_parts(&http.method, &http.scheme, &http.host, &http.path)
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let http = request
            .attributes
            .as_ref()
            .and_then(|attributes| attributes.request.as_ref())
            .and_then(|request| request.http.as_ref());
        let caller = caller::acting(&extensions).access;
        let decision = self.gatekeeper.check(caller, &EnvoyHeaders(http)).await;
        match decision {
            Ok(grant) => Ok(Response::new(allowed(grant))),
            Err(Refusal::Undecided(status)) => Err(status),
            Err(refusal) => Ok(Response::new(denied(&refusal))),
        }
    }
}

fn allowed(grant: Grant) -> CheckResponse {
    let mut ok = OkHttpResponseBuilder::new();
    for (name, value) in grant.set {
        ok.add_header(
            name,
            value,
            Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
            false,
        );
    }
    // Envoy removes after it sets: only the headers left unset are named here.
    for name in grant.unset {
        ok.remove_header(name);
    }
    let mut response = CheckResponse::with_status(Status::ok(""));
    response.set_http_response(ok);
    response
}

fn denied(refusal: &Refusal) -> CheckResponse {
    let mut denied = DeniedHttpResponseBuilder::new();
    let status = HttpStatusCode::try_from(i32::from(refusal.http_status()))
        .unwrap_or(HttpStatusCode::Forbidden);
    denied.set_http_status(status);
    for (name, value) in refusal.headers() {
        denied.add_header(
            name,
            value,
            Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
            false,
        );
    }
    let mut response = CheckResponse::with_status(match refusal {
        Refusal::GroupNotAccepted => Status::permission_denied("group not accepted"),
        _ => Status::unauthenticated("no valid session token"),
    });
    response.set_http_response(denied);
    response
}
