//! Small helpers shared by the integration tests: calls with their common shapes,
//! status assertions, timestamp reading and token tampering.
#![allow(dead_code)] // each test binary uses its own part of the helpers

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

/// `n` map entries `k0=v0`, `k1=v1`, ...
pub fn map_of_len(n: usize) -> HashMap<String, String> {
    (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
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

// --- WatchSessions -------------------------------------------------------------------

/// How long a test waits for one item of a stream before it fails (instead of hanging).
pub const STREAM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The stream WatchSessions answers with.
pub type Events = tonic::Streaming<sessiond::proto::session::v1::SessionEvent>;

/// A WatchSessions request; `user_id` "" means every user.
pub fn watch_request(
    after_cursor: Option<u64>,
    user_id: &str,
) -> sessiond::proto::session::v1::WatchSessionsRequest {
    sessiond::proto::session::v1::WatchSessionsRequest {
        after_cursor,
        user_id: user_id.to_owned(),
    }
}

/// Opens a WatchSessions stream (the call itself may fail).
pub async fn watch_sessions(
    client: &mut Client,
    after_cursor: Option<u64>,
    user_id: &str,
) -> Result<Events, Status> {
    tokio::time::timeout(
        STREAM_WAIT,
        client.watch_sessions(watch_request(after_cursor, user_id)),
    )
    .await
    .expect("WatchSessions answers within the stream wait")
    .map(tonic::Response::into_inner)
}

/// Opens a WatchSessions stream, expecting the call to succeed.
pub async fn watch_ok(client: &mut Client, after_cursor: Option<u64>, user_id: &str) -> Events {
    watch_sessions(client, after_cursor, user_id)
        .await
        .expect("WatchSessions succeeds")
}

/// The next item of a stream: an event, its end (None) or its error status. Panics if
/// nothing comes within `STREAM_WAIT`.
pub async fn next_item(
    events: &mut Events,
) -> Result<Option<sessiond::proto::session::v1::SessionEvent>, Status> {
    tokio::time::timeout(STREAM_WAIT, events.message())
        .await
        .expect("the watch stream yields an item within the stream wait")
}

/// The next event of a stream (CAUGHT_UP markers included), expecting one.
pub async fn next_event(events: &mut Events) -> sessiond::proto::session::v1::SessionEvent {
    match next_item(events).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the watch stream ended; expected an event"),
        Err(status) => panic!(
            "the watch stream failed with {:?} ({}); expected an event",
            status.code(),
            status.message()
        ),
    }
}

/// The kind of an event (UNSPECIFIED for an unknown number).
pub fn kind_of(
    event: &sessiond::proto::session::v1::SessionEvent,
) -> sessiond::proto::session::v1::SessionEventKind {
    sessiond::proto::session::v1::SessionEventKind::try_from(event.kind).unwrap_or_default()
}

/// Whether an event is a CAUGHT_UP marker.
pub fn is_caught_up(event: &sessiond::proto::session::v1::SessionEvent) -> bool {
    kind_of(event) == sessiond::proto::session::v1::SessionEventKind::CaughtUp
}

/// The next item, expecting a CAUGHT_UP marker; returns its cursor.
pub async fn expect_caught_up(events: &mut Events) -> u64 {
    let event = next_event(events).await;
    assert!(
        is_caught_up(&event),
        "expected a CAUGHT_UP marker, got {event:?}"
    );
    event.cursor
}

/// How long a test collects a run of stream items before it fails (so an endless stream
/// of unexpected items fails too, instead of hanging).
pub const COLLECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The next `n` session events, skipping CAUGHT_UP markers.
pub async fn next_session_events(
    events: &mut Events,
    n: usize,
) -> Vec<sessiond::proto::session::v1::SessionEvent> {
    let collect = async {
        let mut found = Vec::with_capacity(n);
        while found.len() < n {
            let event = next_event(events).await;
            if !is_caught_up(&event) {
                found.push(event);
            }
        }
        found
    };
    tokio::time::timeout(COLLECT_WAIT, collect)
        .await
        .unwrap_or_else(|_| panic!("{n} session events within the collect wait"))
}

/// The session events up to the next CAUGHT_UP marker, and that marker's cursor.
pub async fn events_until_caught_up(
    events: &mut Events,
) -> (Vec<sessiond::proto::session::v1::SessionEvent>, u64) {
    let collect = async {
        let mut found = Vec::new();
        loop {
            let event = next_event(events).await;
            if is_caught_up(&event) {
                return (found, event.cursor);
            }
            found.push(event);
        }
    };
    tokio::time::timeout(COLLECT_WAIT, collect)
        .await
        .expect("a CAUGHT_UP marker within the collect wait")
}

/// Every event still in the log (a watch from cursor 0 up to its CAUGHT_UP marker).
pub async fn event_log(client: &mut Client) -> Vec<sessiond::proto::session::v1::SessionEvent> {
    let mut events = watch_ok(client, Some(0), "").await;
    events_until_caught_up(&mut events).await.0
}

/// The status a watch fails with: the call's own, or the first item's. Panics if the
/// stream yields an event or ends cleanly instead.
pub async fn watch_error(client: &mut Client, after_cursor: Option<u64>, user_id: &str) -> Status {
    match watch_sessions(client, after_cursor, user_id).await {
        Err(status) => status,
        Ok(mut events) => match next_item(&mut events).await {
            Err(status) => status,
            Ok(item) => panic!("expected the watch to fail, got {item:?}"),
        },
    }
}

/// A timestamp in milliseconds since the epoch.
pub fn ms_of(ts: Option<&prost_types::Timestamp>) -> i64 {
    let ts = ts.expect("timestamp is set");
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

// --- The real binary ------------------------------------------------------------------

/// A loopback port nothing listens on (bound, read and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// One run of the real `sessiond` binary on a free loopback port, its stderr appended
/// to a log file; SIGKILLed and reaped when dropped, so a failing test leaves no process
/// behind.
pub struct Daemon {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    log: std::path::PathBuf,
}

impl Daemon {
    /// Longest wait for the binary to exit (and for `terminate`'s SIGTERM to take).
    pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

    /// Longest wait for the binary to serve (longer than `PATIENCE`: on Redis it first
    /// connects to the store).
    pub const SERVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

    /// Longest wait for one call's answer from a client of `client()`: a hung call fails
    /// the test instead of hanging it.
    pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    /// Starts the binary on `data_dir` with `RUST_LOG=rust_log` and `args` (config,
    /// store flags ...).
    pub fn spawn<I, S>(
        data_dir: &std::path::Path,
        log: &std::path::Path,
        rust_log: &str,
        args: I,
    ) -> Daemon
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sessiond"))
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn sessiond");
        Daemon {
            child,
            addr,
            log: log.to_owned(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the binary wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How it exited, if it did.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("poll child")
    }

    /// Panics (with its log) if the process is gone.
    #[track_caller]
    pub fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.exited() {
            panic!("sessiond exited {when} ({status}):\n{}", self.log_text());
        }
    }

    /// A channel once the session service reports SERVING (bounded wait).
    pub async fn serving(&mut self) -> Channel {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
        let deadline = std::time::Instant::now() + Self::SERVE_PATIENCE;
        loop {
            self.assert_running("before it served");
            if let Ok(channel) = Channel::from_shared(self.url())
                .expect("url")
                .connect()
                .await
            {
                let health = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest {
                        service: "session.v1.SessionService".into(),
                    })
                    .await;
                if health.is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving) {
                    return channel;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sessiond did not serve within {:?}:\n{}",
                Self::SERVE_PATIENCE,
                self.log_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A fresh channel (for health), whose calls give up after `CALL_TIMEOUT`.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect_timeout(Self::CALL_TIMEOUT)
            .timeout(Self::CALL_TIMEOUT)
            .connect()
            .await
            .expect("connect to sessiond")
    }

    /// A client on a fresh connection (the process must be serving), whose calls fail
    /// DEADLINE_EXCEEDED or CANCELLED after `CALL_TIMEOUT` without an answer.
    pub async fn client(&self) -> Client {
        Client::new(self.channel().await)
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the killed child");
    }

    /// SIGTERM, and the exit status (bounded wait).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + Self::PATIENCE;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "sessiond did not stop within {:?} of SIGTERM:\n{}",
                    Self::PATIENCE,
                    self.log_text()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A no-op once `kill` or `terminate` reaped it: the child's exit status is known.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hex SHA-256 of an API key, as `api_key_sha256` in `[[callers]]` wants it.
pub fn sha256_hex(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `message` with the API key `key` in its `authorization` metadata.
pub fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii key"),
    );
    request
}

// --- Gateways --------------------------------------------------------------------------

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
