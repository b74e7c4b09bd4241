//! Metrics (off by default; counters move with the calls) and request ids.

use crate::common;
use crate::support;

use common::TestServer;
use support::*;

/// The value of the first sample line starting with `prefix`, or 0.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

on_backends!(metrics_are_off_by_default: sled, cluster);
async fn metrics_are_off_by_default() {
    let test = TestServer::start().await;
    assert!(test.running().metrics_addr().is_none());
}

on_backends!(metrics_count_calls_and_session_events: sled, cluster);
async fn metrics_count_calls_and_session_events() {
    let test = TestServer::with_config(
        "metrics_listen = \"127.0.0.1:0\"\n[groups.default]\nrefresh_grace = \"0s\"",
    )
    .await;
    let addr = test.running().metrics_addr().expect("metrics port on");
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;
    whoami_ok(&mut client, &started.session_token).await;
    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;
    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        tonic::Code::Unauthenticated,
    );
    assert_code(
        whoami(&mut client, "st_bad").await,
        tonic::Code::InvalidArgument,
    );
    drop(refreshed);

    let text = scrape_metrics(addr).await;
    assert!(
        sample(
            &text,
            "sessiond_calls_total{method=\"/session.v1.SessionService/Start\",code=\"OK\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "sessiond_calls_total{method=\"/session.v1.SessionService/Whoami\",code=\"INVALID_ARGUMENT\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "sessiond_sessions_started_total") >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "sessiond_sessions_refreshed_total") >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "sessiond_refresh_reuse_detected_total") >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "sessiond_sessions_revoked_total{reason=\"reuse\"}") >= 1.0,
        "{text}"
    );
    assert!(text.contains("sessiond_call_duration_seconds"), "{text}");
    if common::backend() == common::Backend::Sled {
        // Only sled flushes; a Redis store has no flush to time.
        assert!(
            text.contains("sessiond_store_flush_duration_seconds"),
            "{text}"
        );
    }
    assert!(text.contains("sessiond_sessions_stored"), "{text}");
}

on_backends!(every_answer_carries_a_request_id: sled, cluster);
async fn every_answer_carries_a_request_id() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let ok = client.start(start_request("alice")).await.expect("start");
    let failed = client
        .whoami(sessiond::proto::session::v1::WhoamiRequest::default())
        .await
        .expect_err("empty token");

    let id = ok
        .metadata()
        .get("x-request-id")
        .expect("request id on success");
    assert!(!id.is_empty());
    assert!(
        failed.metadata().get("x-request-id").is_some(),
        "request id on error"
    );
}

on_backends!(a_callers_request_id_is_echoed: sled, cluster);
async fn a_callers_request_id_is_echoed() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut request = tonic::Request::new(start_request("alice"));
    request
        .metadata_mut()
        .insert("x-request-id", "trace-42".parse().expect("ascii"));

    let response = client.start(request).await.expect("start");

    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .map(|v| v.to_str().ok()),
        Some(Some("trace-42"))
    );
}
