//! No secret reaches the log: the real binary, at its most talkative (`trace`, JSON; and
//! `debug`, text), runs every call on its success and failure paths; its log holds no
//! token (with or without prefix), no token secret or SHA-256 of one in any common
//! encoding, and no attribute value. The log must hold a line per call, so an empty log
//! cannot pass.

use crate::support;

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::proto::session::v1::{
    ListUserSessionsRequest, LogoutRequest, StartRequest, StartResponse,
};
use sha2::{Digest, Sha256};
use support::*;
use tonic::Code;

/// The secrets a run handed out or sent, and how often each method was called.
#[derive(Default)]
struct Run {
    tokens: Vec<String>,
    attribute_values: Vec<String>,
    calls: BTreeMap<&'static str, usize>,
}

impl Run {
    fn called(&mut self, method: &'static str) {
        *self.calls.entry(method).or_default() += 1;
    }

    fn issued(&mut self, session_token: &str, refresh_token: &str) {
        self.tokens.push(session_token.to_owned());
        self.tokens.push(refresh_token.to_owned());
    }

    /// A fresh attribute value, distinctive enough to find anywhere.
    fn attribute(&mut self) -> String {
        let value = format!("attr-secret-{}", hex(&random::<16>()));
        self.attribute_values.push(value.clone());
        value
    }

    /// A well-formed token of `prefix` with a random secret, for `session_id` (or a
    /// random one).
    fn forged(&mut self, prefix: &str, session_id: Option<&str>) -> String {
        let id = match session_id {
            Some(id) => *uuid::Uuid::parse_str(id).expect("session id").as_bytes(),
            None => random::<16>(),
        };
        let secret = random::<32>();
        let token = format!(
            "{prefix}{}",
            URL_SAFE_NO_PAD.encode([&id[..], &secret[..]].concat())
        );
        self.tokens.push(token.clone());
        token
    }
}

/// `N` bytes from the OS CSPRNG.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("os randomness");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `[1, 2, 3` as Rust's `Debug` prints a byte slice, without the closing bracket so a
/// prefix inside a longer list matches too.
fn debug_list(bytes: &[u8]) -> String {
    let list = format!("{bytes:?}");
    list.trim_end_matches(']').to_owned()
}

/// Every form in which a token or its secret could show up in a log line.
fn secret_forms(token: &str) -> Vec<(String, String)> {
    let mut forms = vec![("token".to_owned(), token.to_owned())];
    let Some((_, body)) = token.split_once('_') else {
        return forms;
    };
    forms.push(("token body".into(), body.to_owned()));
    let Ok(raw) = URL_SAFE_NO_PAD.decode(body) else {
        return forms;
    };
    let Some(secret) = raw.get(16..).filter(|s| s.len() == 32) else {
        return forms;
    };
    let hash = Sha256::digest(secret);
    // Reuse detection keeps the first 16 bytes of the hash.
    let digest = &hash[..16];
    for (name, bytes) in [("secret", secret), ("hash", &hash[..]), ("digest", digest)] {
        forms.push((format!("{name} hex"), hex(bytes)));
        forms.push((format!("{name} HEX"), hex(bytes).to_uppercase()));
        forms.push((format!("{name} debug"), debug_list(bytes)));
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            forms.push((format!("{name} base64"), engine.encode(bytes)));
        }
    }
    forms
}

fn id_of(started: &StartResponse) -> String {
    session_of(&started.session).session_id.clone()
}

/// Every call on its success and failure paths. Returns what was handed out and sent.
async fn every_call(client: &mut Client) -> Run {
    let mut run = Run::default();

    // Start: success, and refusals that carry attribute values.
    let mut attributes = HashMap::new();
    attributes.insert("role".to_owned(), run.attribute());
    attributes.insert("tenant".to_owned(), run.attribute());
    let start = |attributes: HashMap<String, String>| StartRequest {
        user_id: "alice".into(),
        metadata: map(&[("device", "laptop")]),
        attributes,
        ..Default::default()
    };
    let first = start_with(client, start(attributes.clone())).await;
    run.called("Start");
    run.issued(&first.session_token, &first.refresh_token);
    let second = start_with(client, start(attributes.clone())).await;
    run.called("Start");
    run.issued(&second.session_token, &second.refresh_token);
    let too_many: HashMap<String, String> = (0..40)
        .map(|i| (format!("k{i}"), run.attribute()))
        .collect();
    let refusals = [
        StartRequest {
            user_id: String::new(),
            ..start(attributes.clone())
        },
        StartRequest {
            group: "no-such-group".into(),
            ..start(attributes.clone())
        },
        start(too_many),
    ];
    for request in refusals {
        assert_code(client.start(request).await, Code::InvalidArgument);
        run.called("Start");
    }

    // Whoami: success, wrong secret, unknown session, malformed, wrong kind.
    whoami_ok(client, &first.session_token).await;
    run.called("Whoami");
    let wrong_secret = run.forged("st_", Some(&id_of(&first)));
    let unknown = run.forged("st_", None);
    for token in [&wrong_secret, &unknown] {
        assert_code(whoami(client, token).await, Code::Unauthenticated);
        run.called("Whoami");
    }
    let malformed = format!("st_{}", &unknown[3..40]);
    run.tokens.push(malformed.clone());
    for token in [&malformed, &first.refresh_token] {
        assert_code(whoami(client, token).await, Code::InvalidArgument);
        run.called("Whoami");
    }

    // Refresh: rotation, replay inside the grace window, reuse after the successor
    // was used, wrong secret, malformed.
    let rotated = refresh_ok(client, &first.refresh_token).await;
    run.called("Refresh");
    run.issued(&rotated.session_token, &rotated.refresh_token);
    refresh_ok(client, &first.refresh_token).await;
    run.called("Refresh");
    whoami_ok(client, &rotated.session_token).await;
    run.called("Whoami");
    assert_code(
        refresh(client, &first.refresh_token).await,
        Code::Unauthenticated,
    );
    run.called("Refresh");
    let forged_refresh = run.forged("rt_", Some(&id_of(&second)));
    assert_code(
        refresh(client, &forged_refresh).await,
        Code::Unauthenticated,
    );
    run.called("Refresh");
    assert_code(
        refresh(client, &second.session_token).await,
        Code::InvalidArgument,
    );
    run.called("Refresh");

    // Extend: success, revoked (the reuse above), unknown, malformed.
    extend_ok(client, &id_of(&second)).await;
    run.called("Extend");
    assert_code(
        extend(client, &id_of(&first), None).await,
        Code::FailedPrecondition,
    );
    run.called("Extend");
    let unknown_id = uuid::Uuid::from_bytes(random::<16>()).to_string();
    assert_code(extend(client, &unknown_id, None).await, Code::NotFound);
    run.called("Extend");
    assert_code(
        extend(client, "not-a-uuid", None).await,
        Code::InvalidArgument,
    );
    run.called("Extend");

    // RefreshAllForUser and ListUserSessions: success and failure.
    refresh_all(client, "alice", Some(HOUR))
        .await
        .expect("alice has an active session");
    run.called("RefreshAllForUser");
    assert_code(refresh_all(client, "nobody", None).await, Code::NotFound);
    run.called("RefreshAllForUser");
    let list = |page_token: &str| ListUserSessionsRequest {
        user_id: "alice".into(),
        page_token: page_token.to_owned(),
        include_inactive: true,
        ..Default::default()
    };
    client
        .list_user_sessions(list(""))
        .await
        .expect("list succeeds");
    run.called("ListUserSessions");
    assert_code(
        client.list_user_sessions(list("!!")).await,
        Code::InvalidArgument,
    );
    run.called("ListUserSessions");

    // WatchSessions: replay of every event so far.
    let mut events = watch_ok(client, Some(0), "").await;
    events_until_caught_up(&mut events).await;
    drop(events);
    run.called("WatchSessions");

    // Logout: wrong secret, all but one, by id, by token.
    let third = start_with(client, start(attributes.clone())).await;
    run.called("Start");
    run.issued(&third.session_token, &third.refresh_token);
    let forged_logout = run.forged("st_", Some(&id_of(&third)));
    let by_token = |token: &str, all_for_user: bool, except: &str| LogoutRequest {
        session_token: token.to_owned(),
        all_for_user,
        except_session_id: except.to_owned(),
        ..Default::default()
    };
    assert_code(
        logout(client, by_token(&forged_logout, false, "")).await,
        Code::Unauthenticated,
    );
    run.called("Logout");
    logout(client, by_token(&third.session_token, true, &id_of(&third)))
        .await
        .expect("log out the other devices");
    run.called("Logout");
    logout_id(client, &id_of(&second)).await;
    run.called("Logout");
    logout_token(client, &third.session_token).await;
    run.called("Logout");
    run
}

/// Runs every call on the binary with `RUST_LOG=filter` and `args`, stops it with
/// SIGTERM, and returns its whole log with what the run handed out.
async fn logged_run(filter: &str, args: &[&str]) -> (String, Run) {
    let data_dir = tempfile::tempdir().expect("data dir");
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("sessiond.log");
    let mut daemon = Daemon::spawn(data_dir.path(), &log, filter, args);
    let mut client = SessionServiceClient::new(daemon.serving().await);

    let run = every_call(&mut client).await;

    drop(client);
    let status = daemon.terminate();
    assert!(status.success(), "sessiond exited with {status}");
    let text = std::fs::read_to_string(&log).expect("read the log");
    (text, run)
}

/// Fails naming the first secret found in `log`, with the line around it.
fn assert_no_secret(log: &str, run: &Run) {
    let mut needles: Vec<(String, String)> = run
        .tokens
        .iter()
        .flat_map(|token| secret_forms(token))
        .collect();
    for value in &run.attribute_values {
        needles.push(("attribute value".into(), value.clone()));
        let unique = value.trim_start_matches("attr-secret-");
        needles.push(("attribute value's unique part".into(), unique.to_owned()));
    }
    for (what, needle) in &needles {
        if let Some(at) = log.find(needle.as_str()) {
            let start = log[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = log[at..].find('\n').map_or(log.len(), |i| at + i);
            panic!("the log holds a {what}:\n{}", &log[start..end]);
        }
    }
}

/// Fails unless the log has at least one line per call of each method (found by
/// `marker(method)`), so a silent log cannot pass for a clean one.
fn assert_calls_logged(log: &str, run: &Run, marker: impl Fn(&str) -> String) {
    for (method, &calls) in &run.calls {
        let needle = marker(method);
        let lines = log.lines().filter(|line| line.contains(&needle)).count();
        assert!(
            lines >= calls,
            "{calls} {method} calls but {lines} log lines with {needle:?}"
        );
    }
}

on_backends!(trace_json_log_holds_no_token_hash_or_attribute: sled; flavor = "multi_thread", worker_threads = 2);
async fn trace_json_log_holds_no_token_hash_or_attribute() {
    let (log, run) = logged_run("trace", &["--log-format", "json"]).await;

    assert_calls_logged(&log, &run, |method| {
        format!("\"method\":\"/session.v1.SessionService/{method}\"")
    });
    assert_no_secret(&log, &run);
}

on_backends!(debug_text_log_holds_no_token_hash_or_attribute: sled; flavor = "multi_thread", worker_threads = 2);
async fn debug_text_log_holds_no_token_hash_or_attribute() {
    let (log, run) = logged_run("debug", &["--log-format", "text"]).await;

    assert_calls_logged(&log, &run, |method| {
        format!("method=/session.v1.SessionService/{method}")
    });
    assert_no_secret(&log, &run);
}
