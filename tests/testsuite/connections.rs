//! Connection bounds on a real server over loopback: silent connections are closed at
//! the handshake deadline, connections over `max_connections` at once, idle ones after
//! `idle_timeout`; normal clients keep working meanwhile.

use crate::common;
use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use common::TestServer;
use futures::StreamExt;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::codegen::{http, Bytes};

/// What an HTTP/2 client sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Longest a test waits for something the server must do, so a broken bound fails the
/// test instead of hanging it (not a speed assertion: the bounds under test are far
/// shorter).
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A TCP connection that has sent the HTTP/2 preface and will send nothing more.
async fn silent_connection(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(PREFACE).await.expect("send the preface");
    stream
}

/// Reads until the server closes the connection; returns how many bytes came first.
async fn bytes_until_closed(stream: &mut TcpStream) -> usize {
    let read_all = async {
        let mut total = 0;
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, read_all)
        .await
        .expect("the server closes the connection")
}

fn addr_of(server: &TestServer) -> SocketAddr {
    server.running().local_addr()
}

on_backends!(silent_connections_are_all_closed_while_clients_keep_working: sled);
async fn silent_connections_are_all_closed_while_clients_keep_working() {
    const SILENT: usize = 2_000;
    let server = TestServer::with_config(
        "[connections]\nhandshake_timeout = \"500ms\"\nmax_connections = 4096\n",
    )
    .await;
    let addr = addr_of(&server);
    let silent = tokio::spawn(async move {
        futures::stream::iter(0..SILENT)
            .map(|_| async move {
                let mut stream = silent_connection(addr).await;
                bytes_until_closed(&mut stream).await
            })
            .buffer_unordered(200)
            .collect::<Vec<usize>>()
            .await
    });
    let mut client = server.client().await;
    for n in 0..50 {
        let started = start_session(&mut client, &format!("user-{n}")).await;
        whoami_ok(&mut client, &started.session_token).await;
    }
    let closed = silent.await.expect("silent connections task");
    assert_eq!(closed.len(), SILENT, "every silent connection was closed");
    let mut client = server.client().await;
    start_session(&mut client, "after").await;
}

on_backends!(a_connection_over_the_limit_is_closed_at_once: sled);
async fn a_connection_over_the_limit_is_closed_at_once() {
    let server =
        TestServer::with_config("[connections]\nmax_connections = 4\nhandshake_timeout = \"1h\"\n")
            .await;
    let addr = addr_of(&server);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = silent_connection(addr).await;
        let mut first = [0u8; 1];
        let read = tokio::time::timeout(HANG_GUARD, stream.read(&mut first)).await;
        assert!(
            matches!(read, Ok(Ok(1))),
            "an accepted connection hears the server's SETTINGS: {read:?}"
        );
        held.push(stream);
    }
    let mut over = silent_connection(addr).await;
    assert_eq!(
        bytes_until_closed(&mut over).await,
        0,
        "closed without a byte of HTTP/2"
    );
    drop(held.pop());
    // The server frees the place once it has seen the close; until then new
    // connections are refused, so try a few times.
    let mut served = false;
    for _ in 0..100 {
        let mut stream = silent_connection(addr).await;
        let mut first = [0u8; 1];
        if let Ok(Ok(1)) = tokio::time::timeout(HANG_GUARD, stream.read(&mut first)).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a closed connection's place is taken again");
}

/// A gRPC health Check on a raw HTTP/2 connection, answered OK.
async fn health_check(send: &mut h2::client::SendRequest<Bytes>, addr: SocketAddr) {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let mut ready = send.clone().ready().await.expect("connection ready");
    let (response, mut request_body) = ready.send_request(request, false).expect("send");
    // One gRPC message: not compressed, 0 bytes long (an empty HealthCheckRequest).
    request_body
        .send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .expect("send the message");
    let mut body = response.await.expect("response").into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body");
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body
        .trailers()
        .await
        .expect("trailers")
        .expect("grpc-status");
    assert_eq!(
        trailers.get("grpc-status").map(|value| value.as_bytes()),
        Some(&b"0"[..])
    );
}

/// A raw HTTP/2 connection to `server` that has made one call; the connection future is
/// handed back unpolled, so the client answers nothing (not even PINGs) until polled.
async fn h2_after_one_call(
    server: &TestServer,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::Connection<TcpStream, Bytes>,
) {
    let addr = addr_of(server);
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut send, mut connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::select! {
        ended = &mut connection => panic!("the connection ended during a call: {ended:?}"),
        () = health_check(&mut send, addr) => {}
    }
    (send, connection)
}

on_backends!(a_connection_idle_after_its_calls_is_closed: sled);
async fn a_connection_idle_after_its_calls_is_closed() {
    let server = TestServer::with_config("[connections]\nidle_timeout = \"300ms\"\n").await;
    let (send, connection) = h2_after_one_call(&server).await;
    // The client keeps its handle, so only the server can end the connection.
    tokio::time::timeout(HANG_GUARD, connection)
        .await
        .expect("the server closes the idle connection")
        .ok();
    drop(send);
}

on_backends!(a_connection_with_a_stream_open_is_not_idle: sled);
async fn a_connection_with_a_stream_open_is_not_idle() {
    let server = TestServer::with_config("[connections]\nidle_timeout = \"300ms\"\n").await;
    let mut watcher = server.client().await;
    let mut events = watch_ok(&mut watcher, None, "ada").await;
    expect_caught_up(&mut events).await;
    // Longer than idle_timeout with the watch in flight and nothing else on its
    // connection.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut client = server.client().await;
    start_session(&mut client, "ada").await;
    let started = next_session_events(&mut events, 1).await;
    assert_eq!(started.len(), 1, "the watch outlived the idle timeout");
}

on_backends!(a_client_whose_idle_connection_was_closed_calls_again: sled);
async fn a_client_whose_idle_connection_was_closed_calls_again() {
    let server = TestServer::with_config("[connections]\nidle_timeout = \"300ms\"\n").await;
    let mut client = server.client().await;
    let started = start_session(&mut client, "ada").await;
    // Longer than idle_timeout: the server closes the client's connection meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    whoami_ok(&mut client, &started.session_token).await;
}

on_backends!(the_server_advertises_its_streams_per_connection: sled);
async fn the_server_advertises_its_streams_per_connection() {
    let server = TestServer::with_config("[connections]\nmax_concurrent_streams = 7\n").await;
    let (_send, connection) = h2_after_one_call(&server).await;
    assert_eq!(connection.max_concurrent_send_streams(), 7);
}

on_backends!(a_peer_that_stops_answering_pings_is_let_go: sled);
async fn a_peer_that_stops_answering_pings_is_let_go() {
    let server = TestServer::with_config(
        "[connections]\nidle_timeout = \"1h\"\nkeepalive_interval = \"200ms\"\nkeepalive_timeout = \"200ms\"\n",
    )
    .await;
    let (send, connection) = h2_after_one_call(&server).await;
    // Longer than interval + timeout, with the PING unanswered: the client is not polled.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::time::timeout(HANG_GUARD, connection)
        .await
        .expect("the server closed the connection")
        .ok();
    drop(send);
}
