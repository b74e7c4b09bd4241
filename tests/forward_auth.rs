//! HTTP forward-auth (`GET /auth` on the admin port): directly, and behind a real nginx
//! (`auth_request`) in front of an upstream that echoes the headers it receives. nginx
//! runs from a temp dir of its own on a loopback port. Without nginx the nginx test is
//! skipped, loudly, except under CI (`CI` set), where it fails.

mod common;
mod plain_http;
mod support;

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestServer;
use plain_http::{echoed, get, Answer, EchoUpstream};
use support::*;

/// Access tokens in the default group, none in `plain`; the token comes in the `sid`
/// cookie (or `authorization`); `plain` and `default` pass, `other` does not.
const GATEWAY: &str = r#"metrics_listen = "127.0.0.1:0"

[groups.default]
access_token_ttl = "5m"

[groups.plain]
lifespan = "1h"

[groups.other]
lifespan = "1h"

[gateway]
token_cookie = "sid"
groups = ["default", "plain"]
"#;

fn admin_addr(test: &TestServer) -> SocketAddr {
    test.running().metrics_addr().expect("admin port on")
}

async fn auth(test: &TestServer, headers: &[(&str, &str)]) -> Answer {
    get(admin_addr(test), "/auth", headers).await
}

fn cookie(token: &str) -> String {
    format!("theme=dark; sid={token}")
}

#[tokio::test]
async fn a_valid_session_gets_200_with_the_upstream_headers_and_no_body() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let answer = auth(&test, &[("cookie", &cookie(&started.session_token))]).await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-user-id"), ["alice"]);
    assert_eq!(
        answer.header("x-session-id"),
        [session_of(&started.session).session_id.as_str()]
    );
    assert_eq!(answer.header("x-session-group"), ["default"]);
    assert_eq!(answer.header("x-access-token").len(), 1);
    assert_eq!(answer.header("cache-control"), ["no-store"]);
    assert!(answer.body.is_empty(), "never a body: {answer:?}");
}

#[tokio::test]
async fn missing_bad_and_foreign_tokens_are_refused() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let valid = start_session(&mut client, "bob").await;
    let other = start_session_in_group(&mut client, "bob", "other").await;
    let oversized = cookie(&"a".repeat(9 * 1024));

    let missing = auth(&test, &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        ["Bearer realm=\"sessiond\""]
    );
    for headers in [
        [("authorization", "Bearer st_garbage".to_owned())],
        [("cookie", cookie(&with_wrong_secret(&valid.session_token)))],
        [("cookie", oversized)],
    ] {
        let refused = auth(&test, &[(headers[0].0, &headers[0].1)]).await;
        assert_eq!(refused.status, 401, "{:.60}", headers[0].1);
        assert_eq!(
            refused.header("www-authenticate"),
            ["Bearer realm=\"sessiond\", error=\"invalid_token\""]
        );
        assert!(refused.header("x-user-id").is_empty());
    }
    let foreign = auth(&test, &[("cookie", &cookie(&other.session_token))]).await;
    assert_eq!(foreign.status, 403);
    assert!(foreign.header("x-user-id").is_empty());
}

// --- Behind nginx ---------------------------------------------------------------------

/// The nginx binary: on PATH, or where Debian puts it (/usr/sbin is not on every PATH).
fn nginx_binary() -> Option<PathBuf> {
    ["nginx", "/usr/sbin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|binary| {
            Command::new(binary)
                .arg("-v")
                .output()
                .is_ok_and(|output| output.status.success())
        })
}

/// The nginx config of the docs (docs/gateways.md), with the test's ports and a temp
/// prefix for everything nginx writes.
fn nginx_conf(dir: &Path, listen: u16, admin: SocketAddr, upstream: SocketAddr) -> String {
    let dir = dir.display();
    // As root, nginx would switch to `nobody`, which cannot enter the private temp dir.
    let user = match std::fs::metadata(dir.to_string()).map(|meta| meta.uid()) {
        Ok(0) => "user root;",
        _ => "",
    };
    format!(
        r#"{user}
worker_processes 1;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{listen};

        location = /_sessiond_auth {{
            internal;
            proxy_pass http://{admin}/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}

        location / {{
            auth_request /_sessiond_auth;
            auth_request_set $user $upstream_http_x_user_id;
            auth_request_set $session_id $upstream_http_x_session_id;
            auth_request_set $session_group $upstream_http_x_session_group;
            auth_request_set $access_token $upstream_http_x_access_token;
            proxy_set_header x-user-id $user;
            proxy_set_header x-session-id $session_id;
            proxy_set_header x-session-group $session_group;
            proxy_set_header x-access-token $access_token;
            proxy_pass http://{upstream};
        }}
    }}
}}
"#
    )
}

/// An nginx child of the test (single process, no daemon), SIGKILLed on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn start(binary: &Path, admin: SocketAddr, upstream: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir.path(), port, admin, upstream)).expect("write conf");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let mut nginx = Nginx {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        nginx.wait_listening();
        nginx
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll nginx") {
                panic!("nginx exited ({status}):\n{}", self.error_log());
            }
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "nginx does not listen on {}:\n{}",
            self.addr,
            self.error_log()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn nginx_auth_request_lets_only_valid_sessions_through_with_their_user() {
    let Some(binary) = nginx_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is not installed: CI needs it for the forward-auth test (.ci/run installs it)"
        );
        eprintln!(
            "\n*** SKIPPED nginx forward-auth: nginx is not installed, so GET /auth was NOT \
             tested behind nginx. Install nginx (Debian: apt-get install nginx) to run it. ***\n"
        );
        return;
    };
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let upstream = EchoUpstream::start().await;
    let nginx = Nginx::start(&binary, admin_addr(&test), upstream.addr);
    let valid = start_session(&mut client, "alice").await;
    let plain = start_session_in_group(&mut client, "alice", "plain").await;
    let revoked = start_session(&mut client, "alice").await;
    let expiring = start_session_with_ttl(&mut client, "alice", 60).await;
    logout_token(&mut client, &revoked.session_token).await;

    // A valid cookie: through, as alice; the client's own x-user-id does not survive.
    let passed = get(
        nginx.addr,
        "/orders",
        &[
            ("cookie", &cookie(&valid.session_token)),
            ("x-user-id", "mallory"),
        ],
    )
    .await;
    assert_eq!(passed.status, 200, "{passed:?}\n{}", nginx.error_log());
    let seen = echoed(&passed);
    assert_eq!(seen["x-user-id"], ["alice"]);
    assert_eq!(
        seen["x-session-id"],
        [session_of(&valid.session).session_id.clone()]
    );
    assert_eq!(seen["x-access-token"].len(), 1);

    // A group without access tokens: no forged token reaches the upstream either.
    let plain_passed = get(
        nginx.addr,
        "/orders",
        &[
            ("cookie", &cookie(&plain.session_token)),
            ("x-access-token", "forged"),
        ],
    )
    .await;
    assert_eq!(plain_passed.status, 200, "{plain_passed:?}");
    assert!(!echoed(&plain_passed).contains_key("x-access-token"));

    // Missing, revoked and expired tokens: 401 from nginx, and the upstream never asked.
    test.advance(secs(61));
    let reached = upstream.requests();
    for (what, headers) in [
        ("missing", vec![("x-user-id", "mallory".to_owned())]),
        ("revoked", vec![("cookie", cookie(&revoked.session_token))]),
        ("expired", vec![("cookie", cookie(&expiring.session_token))]),
    ] {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let refused = get(nginx.addr, "/orders", &headers).await;
        assert_eq!(refused.status, 401, "{what}: {refused:?}");
        assert!(
            !refused.header("www-authenticate").is_empty(),
            "{what}: nginx passes the challenge on"
        );
    }
    assert_eq!(
        upstream.requests(),
        reached,
        "no refused request reached the upstream"
    );
}
