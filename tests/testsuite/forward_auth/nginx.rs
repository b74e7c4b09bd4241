//! GET /auth behind a real nginx (`auth_request`), configured as docs/gateways.md says.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::common::TestServer;
use super::gateway::{binary, installed, Gateway};
use super::plain_http::EchoUpstream;
use super::support::free_port;
use super::{admin_addr, only_valid_sessions_pass, GATEWAY};

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

on_backends!(nginx_auth_request_lets_only_valid_sessions_through_with_their_user: sled, redis);
async fn nginx_auth_request_lets_only_valid_sessions_through_with_their_user() {
    // /usr/sbin is not on every PATH.
    let Some(nginx) = installed(
        binary(&["nginx", "/usr/sbin/nginx"], "-v"),
        "nginx forward-auth",
        "nginx",
    ) else {
        return;
    };
    let test = TestServer::with_config(GATEWAY).await;
    let upstream = EchoUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        nginx_conf(dir.path(), port, admin_addr(&test), upstream.addr),
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
    let gateway = Gateway::start(
        command,
        dir,
        "error.log",
        SocketAddr::from(([127, 0, 0, 1], port)),
    );
    only_valid_sessions_pass(&test, &upstream, &gateway).await;
}
