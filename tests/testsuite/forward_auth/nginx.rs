//! GET /auth behind a real nginx (`auth_request`), with the locations of docs/gateways.md
//! as written there: only sessiond's admin port and the upstream are put in.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::common::TestServer;
use super::gateway::{binary, documented_block, installed, Gateway};
use super::plain_http::EchoUpstream;
use super::support::free_port;
use super::{admin_addr, only_valid_sessions_pass, GATEWAY};

/// The nginx config of the docs (docs/gateways.md), with the test's ports put in for
/// sessiond's admin port and the app, and a temp prefix for everything nginx writes.
fn nginx_conf(dir: &Path, listen: u16, admin: SocketAddr, upstream: SocketAddr) -> String {
    let documented = documented_block("nginx");
    for placeholder in ["http://127.0.0.1:9090/auth", "proxy_pass http://app;"] {
        assert!(
            documented.contains(placeholder),
            "the documented nginx block names {placeholder}:\n{documented}"
        );
    }
    let locations = documented
        .replace(
            "http://127.0.0.1:9090/auth",
            &format!("http://{admin}/auth"),
        )
        .replace(
            "proxy_pass http://app;",
            &format!("proxy_pass http://{upstream};"),
        );
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

{locations}
    }}
}}
"#
    )
}

/// A real nginx on a free loopback port in front of `upstream`, asking `test`'s
/// `GET /auth`; None (said loudly) when nginx is not installed.
pub(super) fn start_nginx(test: &TestServer, upstream: &EchoUpstream) -> Option<Gateway> {
    // /usr/sbin is not on every PATH.
    let nginx = installed(
        binary(&["nginx", "/usr/sbin/nginx"], "-v"),
        "nginx forward-auth",
        "nginx",
    )?;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        nginx_conf(dir.path(), port, admin_addr(test), upstream.addr),
    )
    .expect("write conf");
    let mut command = Command::new(nginx);
    command
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .args(["-g", "daemon off;"]);
    Some(Gateway::start(
        command,
        dir,
        "error.log",
        SocketAddr::from(([127, 0, 0, 1], port)),
    ))
}

on_backends!(nginx_auth_request_lets_only_valid_sessions_through_with_their_user: sled, redis);
async fn nginx_auth_request_lets_only_valid_sessions_through_with_their_user() {
    let test = TestServer::with_config(GATEWAY).await;
    let upstream = EchoUpstream::start().await;
    let Some(gateway) = start_nginx(&test, &upstream) else {
        return;
    };
    only_valid_sessions_pass(&test, &upstream, &gateway).await;
}
