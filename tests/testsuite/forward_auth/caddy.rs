//! GET /auth behind a real Caddy (`forward_auth`), with the Caddyfile of docs/gateways.md
//! as written there: only its site address, sessiond's admin port and the upstream are
//! put in for the test's own.

use std::net::SocketAddr;
use std::process::Command;

use super::common::TestServer;
use super::gateway::{binary, documented_block, installed, Gateway};
use super::plain_http::EchoUpstream;
use super::support::free_port;
use super::{admin_addr, only_valid_sessions_pass, GATEWAY};

/// The documented Caddyfile for the test: Caddy's own admin endpoint and automatic HTTPS
/// off, everything it stores under `dir`, listening on `listen` over plain HTTP.
fn caddyfile(
    dir: &std::path::Path,
    listen: SocketAddr,
    admin: SocketAddr,
    upstream: SocketAddr,
) -> String {
    let documented = documented_block("caddyfile");
    for placeholder in ["app.example.com {", "127.0.0.1:9090", "app:8080"] {
        assert!(
            documented.contains(placeholder),
            "the documented Caddyfile names {placeholder}:\n{documented}"
        );
    }
    let site = documented
        .replace("app.example.com {", &format!("http://{listen} {{"))
        .replace("127.0.0.1:9090", &admin.to_string())
        .replace("app:8080", &upstream.to_string());
    format!(
        "{{\n    admin off\n    auto_https off\n    storage file_system {}\n}}\n\n{site}",
        dir.join("storage").display()
    )
}

/// A real Caddy on a free loopback port in front of `upstream`, asking `test`'s
/// `GET /auth`; None (said loudly) when Caddy is not installed.
pub(super) fn start_caddy(test: &TestServer, upstream: &EchoUpstream) -> Option<Gateway> {
    let caddy = installed(binary(&["caddy"], "version"), "Caddy forward-auth", "caddy")?;
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = dir.path().join("Caddyfile");
    std::fs::write(
        &config,
        caddyfile(dir.path(), listen, admin_addr(test), upstream.addr),
    )
    .expect("write Caddyfile");
    let mut command = Command::new(caddy);
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&config)
        // Caddy keeps its data and config under these: the temp dir, not the user's.
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    Some(Gateway::start(command, dir, "output.log", listen))
}

on_backends!(caddy_forward_auth_lets_only_valid_sessions_through_with_their_user: sled, redis);
async fn caddy_forward_auth_lets_only_valid_sessions_through_with_their_user() {
    let test = TestServer::with_config(GATEWAY).await;
    let upstream = EchoUpstream::start().await;
    let Some(gateway) = start_caddy(&test, &upstream) else {
        return;
    };
    only_valid_sessions_pass(&test, &upstream, &gateway).await;
}
