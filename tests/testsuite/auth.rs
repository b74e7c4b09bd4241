//! Caller authentication (API keys, mTLS), per-caller permissions, and limits.

use crate::common;
use crate::support;

use std::path::Path;

use common::TestServer;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::proto::session::v1::{LogoutRequest, StartRequest, WhoamiRequest};
use support::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;

const LOGIN_KEY: &str = "login-key-7c1f";
const EDGE_KEY: &str = "edge-key-91ab";
const ADMIN_KEY: &str = "admin-key-3e55";
const PARTNER_KEY: &str = "partner-key-0d42";

fn callers_toml() -> String {
    format!(
        r#"
[groups.partner]
lifespan = "1h"

[[callers]]
name = "login"
api_key_sha256 = "{}"
calls = ["Start", "Refresh", "Logout"]

[[callers]]
name = "edge"
api_key_sha256 = "{}"
calls = ["Whoami"]

[[callers]]
name = "admin"
api_key_sha256 = "{}"
calls = ["*"]

[[callers]]
name = "partner"
api_key_sha256 = "{}"
calls = ["Start", "Whoami"]
groups = ["partner"]
"#,
        sha256_hex(LOGIN_KEY),
        sha256_hex(EDGE_KEY),
        sha256_hex(ADMIN_KEY),
        sha256_hex(PARTNER_KEY)
    )
}

async fn start_as(client: &mut Client, key: &str, request: StartRequest) -> StartResponseResult {
    client
        .start(with_key(request, key))
        .await
        .map(|r| r.into_inner())
}

type StartResponseResult = Result<sessiond::proto::session::v1::StartResponse, tonic::Status>;

on_backends!(a_call_without_credentials_is_unauthenticated: sled, cluster);
async fn a_call_without_credentials_is_unauthenticated() {
    let test = TestServer::with_config(&callers_toml()).await;
    let mut client = test.client().await;

    assert_code(
        client.start(start_request("alice")).await,
        Code::Unauthenticated,
    );
}

on_backends!(an_unknown_api_key_is_unauthenticated: sled, cluster);
async fn an_unknown_api_key_is_unauthenticated() {
    let test = TestServer::with_config(&callers_toml()).await;
    let mut client = test.client().await;

    assert_code(
        start_as(&mut client, "not-a-key", start_request("alice")).await,
        Code::Unauthenticated,
    );
}

on_backends!(a_caller_makes_only_its_own_calls: sled, cluster);
async fn a_caller_makes_only_its_own_calls() {
    let test = TestServer::with_config(&callers_toml()).await;
    let mut client = test.client().await;
    let started = start_as(&mut client, LOGIN_KEY, start_request("alice"))
        .await
        .expect("login may start");

    let whoami = |key: &'static str| {
        with_key(
            WhoamiRequest {
                session_token: started.session_token.clone(),
                client: None,
            },
            key,
        )
    };
    assert!(
        client.whoami(whoami(EDGE_KEY)).await.is_ok(),
        "edge may whoami"
    );
    assert_code(
        client.whoami(whoami(LOGIN_KEY)).await,
        Code::PermissionDenied,
    );
    assert_code(
        start_as(&mut client, EDGE_KEY, start_request("bob")).await,
        Code::PermissionDenied,
    );
}

on_backends!(logout_of_all_sessions_needs_its_own_permission: sled, cluster);
async fn logout_of_all_sessions_needs_its_own_permission() {
    let test = TestServer::with_config(&format!(
        "{}\n[[callers]]\nname = \"logout-one\"\napi_key_sha256 = \"{}\"\ncalls = [\"Logout\"]\n",
        callers_toml(),
        sha256_hex("logout-one-key")
    ))
    .await;
    let mut client = test.client().await;
    let started = start_as(&mut client, LOGIN_KEY, start_request("alice"))
        .await
        .expect("start");
    let all = |key: &str| {
        with_key(
            LogoutRequest {
                session_token: started.session_token.clone(),
                all_for_user: true,
                ..Default::default()
            },
            key,
        )
    };

    assert_code(
        client.logout(all("logout-one-key")).await,
        Code::PermissionDenied,
    );
    let revoked = client
        .logout(all(ADMIN_KEY))
        .await
        .expect("admin may end all")
        .into_inner()
        .revoked_count;
    assert_eq!(revoked, 1);
}

on_backends!(a_caller_limited_to_groups_cannot_touch_others: sled, cluster);
async fn a_caller_limited_to_groups_cannot_touch_others() {
    let test = TestServer::with_config(&callers_toml()).await;
    let mut client = test.client().await;
    let default_session = start_as(&mut client, ADMIN_KEY, start_request("alice"))
        .await
        .expect("admin starts in default");

    assert_code(
        start_as(&mut client, PARTNER_KEY, start_request("bob")).await,
        Code::PermissionDenied,
    );
    let partner_session = start_as(
        &mut client,
        PARTNER_KEY,
        start_request_in_group("bob", "partner"),
    )
    .await
    .expect("partner starts in its group");
    let whoami = |token: &str| {
        with_key(
            WhoamiRequest {
                session_token: token.to_owned(),
                client: None,
            },
            PARTNER_KEY,
        )
    };
    assert!(client
        .whoami(whoami(&partner_session.session_token))
        .await
        .is_ok());
    assert_code(
        client.whoami(whoami(&default_session.session_token)).await,
        Code::PermissionDenied,
    );
}

on_backends!(health_and_reflection_need_no_credentials: sled, cluster);
async fn health_and_reflection_need_no_credentials() {
    let test = TestServer::with_config(&callers_toml()).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(test.channel().await);

    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "session.v1.SessionService".into(),
        })
        .await
        .expect("health is open")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

on_backends!(reflection_can_be_turned_off: sled, cluster);
async fn reflection_can_be_turned_off() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let test = TestServer::with_config("reflection = false").await;
    let mut reflection = ServerReflectionClient::new(test.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let answer = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await;
    assert_code(answer.map(|_| ()), Code::Unimplemented);
}

on_backends!(a_user_at_the_session_limit_is_refused_when_the_policy_says_so: sled, cluster);
async fn a_user_at_the_session_limit_is_refused_when_the_policy_says_so() {
    let test = TestServer::with_config(
        "[groups.default]\nmax_sessions_per_user = 2\non_session_limit = \"refuse\"",
    )
    .await;
    let mut client = test.client().await;
    let first = start_session(&mut client, "alice").await;
    start_session(&mut client, "alice").await;

    let status = assert_code(
        client.start(start_request("alice")).await,
        Code::ResourceExhausted,
    );
    assert!(status.message().contains("maximum"), "{}", status.message());
    whoami_ok(&mut client, &first.session_token).await;
    start_session(&mut client, "bob").await;
}

on_backends!(an_oversized_request_is_refused: sled, cluster);
async fn an_oversized_request_is_refused() {
    let test = TestServer::with_config("[limits]\nmax_request_bytes = 1024").await;
    let mut client = test.client().await;
    let mut request = start_request("alice");
    request.metadata.insert("note".into(), "x".repeat(1000));
    request.attributes.insert("more".into(), "y".repeat(1000));

    let status = client.start(request).await.expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("limit"), "{}", status.message());
}

/// A CA, a server certificate for localhost and client certificates it signs.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "sessiond test CA");
        let key = KeyPair::generate().expect("ca key");
        let ca = params.self_signed(&key).expect("self-signed ca");
        Pki {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for `name`, as a server or a client.
    fn leaf(&self, name: &str, server: bool) -> (String, String) {
        let sans = if server {
            vec!["localhost".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages.push(if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        });
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        (cert.pem(), key.serialize_pem())
    }

    /// Writes the server's files into `dir` and returns the `[tls]` table.
    fn server_toml(&self, dir: &Path) -> String {
        let (cert, key) = self.leaf("localhost", true);
        std::fs::write(dir.join("server.pem"), cert).expect("write cert");
        std::fs::write(dir.join("server.key"), key).expect("write key");
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).expect("write ca");
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n",
            dir.join("server.pem"),
            dir.join("server.key"),
            dir.join("ca.pem")
        )
    }
}

async fn tls_client(test: &TestServer, pki: &Pki, client_cert: Option<(String, String)>) -> Client {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = client_cert {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let url = format!("https://localhost:{}", test.running().local_addr().port());
    let channel = Channel::from_shared(url)
        .expect("url")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("tls connect");
    SessionServiceClient::new(channel)
}

on_backends!(a_client_certificate_names_the_caller: sled, cluster);
async fn a_client_certificate_names_the_caller() {
    let pki = Pki::new();
    let files = tempfile::tempdir().expect("tls dir");
    let toml = format!(
        "{}\n[[callers]]\nname = \"edge-mtls\"\ncert_subject = \"edge.internal\"\ncalls = [\"Start\", \"Whoami\"]\n",
        pki.server_toml(files.path())
    );
    let test = TestServer::with_config(&toml).await;

    let mut edge = tls_client(&test, &pki, Some(pki.leaf("edge.internal", false))).await;
    let started = edge
        .start(start_request("alice"))
        .await
        .expect("edge may start")
        .into_inner();
    assert!(edge
        .whoami(WhoamiRequest {
            session_token: started.session_token.clone(),
            client: None,
        })
        .await
        .is_ok());
    assert_code(
        edge.extend(sessiond::proto::session::v1::ExtendRequest {
            session_id: session_of(&started.session).session_id.clone(),
            keep_alive_seconds: None,
        })
        .await,
        Code::PermissionDenied,
    );

    let mut stranger = tls_client(&test, &pki, Some(pki.leaf("stranger", false))).await;
    assert_code(
        stranger.start(start_request("mallory")).await,
        Code::PermissionDenied,
    );
    let mut anonymous = tls_client(&test, &pki, None).await;
    assert_code(
        anonymous.start(start_request("mallory")).await,
        Code::Unauthenticated,
    );
}
