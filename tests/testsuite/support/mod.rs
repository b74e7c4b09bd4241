//! Small helpers shared by the integration tests: calls with their common shapes,
//! status assertions, timestamp reading and token tampering; WatchSessions in `watch`,
//! the real binary in `daemon`, gateway requests in `gateways`, Redis servers of a test's own in
//! `redis_server`.

mod daemon;
mod gateways;
mod redis_server;
mod watch;

pub use daemon::*;
pub use gateways::*;
pub use redis_server::*;
pub use watch::*;

use std::collections::HashMap;
use std::fmt::Debug;

use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::proto::session::v1::{
    ExtendRequest, ExtendResponse, LogoutRequest, LogoutResponse, RefreshAllForUserRequest,
    RefreshAllForUserResponse, RefreshRequest, RefreshResponse, Session, StartRequest,
    StartResponse, WhoamiRequest, WhoamiResponse,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::common::START_MS;

/// The generated client every test talks through.
pub type Client = SessionServiceClient<Channel>;

/// The test clock's start in whole seconds, as timestamps carry it.
pub const START_S: i64 = (START_MS / 1000) as i64;

/// One minute, one hour and one day in seconds.
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// The default group's lifespan and max lifetime, in seconds.
pub const DEFAULT_LIFESPAN_S: i64 = DAY;
pub const DEFAULT_MAX_LIFETIME_S: i64 = 30 * DAY;

/// `n` seconds as a `Duration`, for `TestServer::advance`.
pub fn secs(n: i64) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(n).expect("non-negative seconds"))
}

/// A Start request for `user` in the default group with nothing else set.
pub fn start_request(user: &str) -> StartRequest {
    StartRequest {
        user_id: user.to_owned(),
        ..Default::default()
    }
}

/// A Start request for `user` with a lifespan of `ttl_seconds`.
pub fn start_request_with_ttl(user: &str, ttl_seconds: i64) -> StartRequest {
    StartRequest {
        user_id: user.to_owned(),
        ttl_seconds: Some(ttl_seconds),
        ..Default::default()
    }
}

/// A Start request for `user` in `group`.
pub fn start_request_in_group(user: &str, group: &str) -> StartRequest {
    StartRequest {
        user_id: user.to_owned(),
        group: group.to_owned(),
        ..Default::default()
    }
}

/// Starts a session for `user` in the default group.
pub async fn start_session(client: &mut Client, user: &str) -> StartResponse {
    start_with(client, start_request(user)).await
}

/// Starts a session for `user` with a lifespan of `ttl_seconds`.
pub async fn start_session_with_ttl(
    client: &mut Client,
    user: &str,
    ttl_seconds: i64,
) -> StartResponse {
    start_with(client, start_request_with_ttl(user, ttl_seconds)).await
}

/// Starts a session for `user` in `group`.
pub async fn start_session_in_group(client: &mut Client, user: &str, group: &str) -> StartResponse {
    start_with(client, start_request_in_group(user, group)).await
}

/// Sends `request` to Start and expects success.
pub async fn start_with(client: &mut Client, request: StartRequest) -> StartResponse {
    client
        .start(request)
        .await
        .expect("start succeeds")
        .into_inner()
}

/// Whoami with `token`.
pub async fn whoami(client: &mut Client, token: &str) -> Result<WhoamiResponse, Status> {
    client
        .whoami(WhoamiRequest {
            session_token: token.to_owned(),
            client: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Whoami with `token`, expecting success.
pub async fn whoami_ok(client: &mut Client, token: &str) -> WhoamiResponse {
    whoami(client, token).await.expect("whoami succeeds")
}

/// Refresh with `token`.
pub async fn refresh(client: &mut Client, token: &str) -> Result<RefreshResponse, Status> {
    client
        .refresh(RefreshRequest {
            refresh_token: token.to_owned(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Refresh with `token`, expecting success.
pub async fn refresh_ok(client: &mut Client, token: &str) -> RefreshResponse {
    refresh(client, token).await.expect("refresh succeeds")
}

/// Extend `session_id` with an optional keep-alive.
pub async fn extend(
    client: &mut Client,
    session_id: &str,
    keep_alive_seconds: Option<i64>,
) -> Result<ExtendResponse, Status> {
    client
        .extend(ExtendRequest {
            session_id: session_id.to_owned(),
            keep_alive_seconds,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Extend `session_id` (group lifespan), expecting success.
pub async fn extend_ok(client: &mut Client, session_id: &str) -> ExtendResponse {
    extend(client, session_id, None)
        .await
        .expect("extend succeeds")
}

/// Logout with the given request.
pub async fn logout(client: &mut Client, request: LogoutRequest) -> Result<LogoutResponse, Status> {
    client
        .logout(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Logout of one session by its token, expecting success; returns revoked_count.
pub async fn logout_token(client: &mut Client, token: &str) -> u32 {
    logout(
        client,
        LogoutRequest {
            session_token: token.to_owned(),
            ..Default::default()
        },
    )
    .await
    .expect("logout by token succeeds")
    .revoked_count
}

/// Logout of one session by its id, expecting success; returns revoked_count.
pub async fn logout_id(client: &mut Client, session_id: &str) -> u32 {
    logout(
        client,
        LogoutRequest {
            session_id: session_id.to_owned(),
            ..Default::default()
        },
    )
    .await
    .expect("logout by id succeeds")
    .revoked_count
}

/// RefreshAllForUser for `user` with an optional keep-alive.
pub async fn refresh_all(
    client: &mut Client,
    user: &str,
    keep_alive_seconds: Option<i64>,
) -> Result<RefreshAllForUserResponse, Status> {
    client
        .refresh_all_for_user(RefreshAllForUserRequest {
            user_id: user.to_owned(),
            keep_alive_seconds,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts that `result` failed with `code` and returns the status for more checks.
#[track_caller]
pub fn assert_code<T: Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got success: {value:?}"),
        Err(status) => {
            assert_eq!(
                status.code(),
                code,
                "expected {code:?}, got {:?}: {}",
                status.code(),
                status.message()
            );
            status
        }
    }
}

/// Asserts that `result` failed INVALID_ARGUMENT with a message naming `field`.
#[track_caller]
pub fn assert_invalid_field<T: Debug>(result: Result<T, Status>, field: &str) {
    let status = assert_code(result, Code::InvalidArgument);
    assert!(
        status.message().contains(field),
        "INVALID_ARGUMENT message should name `{field}`: {:?}",
        status.message()
    );
}

/// The session of a response, which the server always sets.
#[track_caller]
pub fn session_of(session: &Option<Session>) -> &Session {
    session.as_ref().expect("response carries a session")
}

/// Reading a session's timestamps as whole seconds since the epoch.
pub trait SessionTimes {
    fn created_at_s(&self) -> i64;
    fn authenticated_at_s(&self) -> i64;
    fn last_access_at_s(&self) -> i64;
    fn expires_at_s(&self) -> i64;
    fn max_expires_at_s(&self) -> i64;
}

fn seconds(ts: Option<&prost_types::Timestamp>, name: &str) -> i64 {
    ts.unwrap_or_else(|| panic!("session has {name}")).seconds
}

impl SessionTimes for Session {
    fn created_at_s(&self) -> i64 {
        seconds(self.created_at.as_ref(), "created_at")
    }
    fn authenticated_at_s(&self) -> i64 {
        seconds(self.authenticated_at.as_ref(), "authenticated_at")
    }
    fn last_access_at_s(&self) -> i64 {
        seconds(self.last_access_at.as_ref(), "last_access_at")
    }
    fn expires_at_s(&self) -> i64 {
        seconds(self.expires_at.as_ref(), "expires_at")
    }
    fn max_expires_at_s(&self) -> i64 {
        seconds(self.max_expires_at.as_ref(), "max_expires_at")
    }
}

/// A `HashMap<String, String>` from literal pairs.
pub fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Swaps one base64url character for another one.
fn other_char(c: char) -> char {
    if c == 'A' {
        'B'
    } else {
        'A'
    }
}

/// The token with its last character changed: same session, wrong secret.
///
/// The body is 48 bytes (16-byte id, 32-byte secret) = 64 base64 characters with no
/// padding bits, so every variant of the last character is still well formed.
pub fn with_wrong_secret(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let last = chars.len() - 1;
    chars[last] = other_char(chars[last]);
    chars.into_iter().collect()
}

/// The token with the first character after the prefix changed: a well-formed token
/// for a session id the server never issued.
pub fn with_unknown_session(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let first = token.find('_').expect("token has a prefix") + 1;
    chars[first] = other_char(chars[first]);
    chars.into_iter().collect()
}

/// The 32 random bytes of a token (`<prefix>_<base64url(16-byte id ‖ secret)>`).
pub fn secret_of(token: &str) -> Vec<u8> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token[3..])
        .expect("base64url token");
    assert_eq!(raw.len(), 48, "token body is 48 bytes");
    raw[16..].to_vec()
}

/// Whether `needle` stands somewhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Session ids of a list of sessions, sorted.
pub fn sorted_ids<'a>(sessions: impl IntoIterator<Item = &'a Session>) -> Vec<String> {
    let mut ids: Vec<String> = sessions.into_iter().map(|s| s.session_id.clone()).collect();
    ids.sort();
    ids
}

/// GET http://addr/metrics (the admin port) over a plain socket: HTTP/1.0, so the server
/// closes after. Returns the whole response, headers included.
pub async fn scrape_metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect metrics port");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    response
}
