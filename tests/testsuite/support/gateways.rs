//! Gateway helpers: Envoy ext_authz CheckRequests as Envoy sends them.

/// A CheckRequest as Envoy sends it for a request with these headers.
pub fn check_request(
    headers: &[(&str, &str)],
) -> envoy_types::pb::envoy::service::auth::v3::CheckRequest {
    let headers = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/orders".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// A fresh Ed25519 device key.
pub fn device() -> sessiond::session::binding::DeviceSigner {
    sessiond::session::binding::DeviceSigner::generate_ed25519()
        .expect("the OS random generator works in tests")
}

/// Starts a session of alice in `group`, bound to `device`; its session token.
pub async fn bound_session(
    client: &mut super::Client,
    group: &str,
    device: &sessiond::session::binding::DeviceSigner,
) -> String {
    let request = sessiond::proto::session::v1::StartRequest {
        device_key: device.public_jwk_json(),
        ..super::start_request_in_group("alice", group)
    };
    super::start_with(client, request).await.session_token
}

/// The reason (`error_description`) of a gateway's RFC 9449 challenge, after checking
/// that it is a `DPoP` challenge with this `error`.
pub fn dpop_reason(challenge: &str, error: &str) -> String {
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    let (_, description) = challenge
        .split_once("error_description=\"")
        .unwrap_or_else(|| panic!("a description: {challenge}"));
    description.trim_end_matches('"').to_owned()
}
