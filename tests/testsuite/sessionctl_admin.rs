//! sessionctl's admin commands against a live server: search, revoke (--dry-run and
//! not), reauth, attrs set / rm, keys rotate, jwks and watch, run as the built binary.

use crate::common;
use crate::support;

use std::process::Command;

use common::TestServer;
use serde_json::Value;
use support::*;

/// Runs `sessionctl --addr URL --json ARGS` off the async runtime and parses stdout,
/// after checking it succeeded.
pub async fn ctl_json(url: &str, args: &[&str]) -> Value {
    serde_json::from_str(&ctl_stdout(url, args).await).expect("stdout is JSON")
}

/// Runs `sessionctl --addr URL --json ARGS` off the async runtime and returns stdout,
/// after checking it succeeded.
async fn ctl_stdout(url: &str, args: &[&str]) -> String {
    let mut all = vec!["--addr".to_owned(), url.to_owned(), "--json".to_owned()];
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sessionctl"))
            .env_remove("SESSIOND_API_KEY")
            .args(&all)
            .output()
            .expect("run sessionctl")
    })
    .await
    .expect("join");
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 stdout")
}

on_backends!(search_and_revoke_follow_the_filter_and_the_dry_run_changes_nothing: sled);
async fn search_and_revoke_follow_the_filter_and_the_dry_run_changes_nothing() {
    let test = TestServer::start().await;
    let url = test.url();
    let mut client = test.client().await;
    let alice = start_session(&mut client, "alice").await;
    test.advance(secs(1));
    let bob = start_session(&mut client, "bob").await;

    let found = ctl_json(&url, &["search", "--user-id", "bob", "--state", "active"]).await;
    let sessions = found["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0]["session_id"],
        session_of(&bob.session).session_id
    );
    let everyone = ctl_json(&url, &["search"]).await;
    assert_eq!(everyone["sessions"].as_array().expect("sessions").len(), 2);

    let dry = ctl_json(
        &url,
        &[
            "revoke",
            "--user-id",
            "alice",
            "--reason",
            "drill",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(dry["matched_count"], 1);
    assert_eq!(dry["revoked_count"], 0);
    whoami_ok(&mut client, &alice.session_token).await;

    let done = ctl_json(&url, &["revoke", "--user-id", "alice", "--reason", "drill"]).await;
    assert_eq!(done["revoked_count"], 1);
    assert!(whoami(&mut client, &alice.session_token).await.is_err());
    whoami_ok(&mut client, &bob.session_token).await;
}

on_backends!(reauth_and_attrs_change_the_session_they_name: sled);
async fn reauth_and_attrs_change_the_session_they_name() {
    let test = TestServer::start().await;
    let url = test.url();
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();

    let reauthed = ctl_json(&url, &["reauth", &id, "--aal", "aal2"]).await;
    assert_eq!(reauthed["session"]["aal"], "aal2");

    let set = ctl_json(&url, &["attrs", "set", &id, "role=admin", "tenant=t1"]).await;
    assert_eq!(set["session"]["attributes"]["role"], "admin");
    let removed = ctl_json(&url, &["attrs", "rm", &id, "role"]).await;
    assert!(removed["session"]["attributes"].get("role").is_none());
    assert_eq!(removed["session"]["attributes"]["tenant"], "t1");
}

on_backends!(keys_rotate_publishes_a_new_key_in_the_jwks: sled);
async fn keys_rotate_publishes_a_new_key_in_the_jwks() {
    let test = TestServer::with_config(
        "[groups.default]\naccess_token_ttl = \"5m\"\naudience = \"shop\"\n",
    )
    .await;
    let url = test.url();
    let rotated = ctl_json(&url, &["keys", "rotate"]).await;
    let kid = rotated["kid"].as_str().expect("kid").to_owned();
    let jwks = ctl_json(&url, &["jwks"]).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|key| key["kid"].as_str())
        .collect();
    assert!(kids.contains(&kid.as_str()), "{kids:?} lacks {kid}");
}

on_backends!(watch_prints_one_json_event_per_line_and_resumes_after_a_cursor: sled);
async fn watch_prints_one_json_event_per_line_and_resumes_after_a_cursor() {
    let test = TestServer::start().await;
    let url = test.url();
    let mut client = test.client().await;
    let alice = start_session(&mut client, "alice").await;
    logout_token(&mut client, &alice.session_token).await;

    let text = ctl_stdout(&url, &["watch", "--after", "0", "--count", "3"]).await;
    let events: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["STARTED", "REVOKED", "CAUGHT_UP"]);
    assert_eq!(events[1]["end_reason"], "LOGOUT");
    assert_eq!(events[1]["user_id"], "alice");

    let after = events[0]["cursor"].as_u64().expect("a cursor").to_string();
    let resumed = ctl_stdout(&url, &["watch", "--after", &after, "--count", "1"]).await;
    let first: Value = serde_json::from_str(resumed.trim()).expect("a JSON line");
    assert_eq!(first["kind"], "REVOKED");
}
