//! OpenTelemetry traces from the real binary to a real OTLP receiver in this process (a
//! tonic server of the collector's `TraceService`): a caller's `traceparent` continues
//! through sessiond, spans follow the RPC conventions with store steps as children,
//! gateways continue the checked request's trace, sampling keeps sampled parents, a dead
//! collector costs no call, no secret reaches a span, and JSON logs carry the trace id.
//! On sled, and on Redis where a test Redis is configured. A call from the Python client,
//! installed from its wheel, continues its caller's trace too.

use crate::common;
use crate::plain_http;
use crate::support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::foreign_client::{root, run_ok, toolchain_available};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use sessiond::proto::session::v1::{RefreshRequest, StartResponse, WhoamiRequest};
use support::*;
use tokio_stream::wrappers::TcpListenerStream;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Everything the receiver was sent: each span with its resource's `service.name`.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| resource.attributes.iter())
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| text(attribute.value.as_ref()?.value.as_ref()?))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves the collector on a free loopback port, for the life of the test.
    async fn start() -> (Collector, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let collector = Collector::default();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        (collector, addr)
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().unwrap().clone()
    }

    fn named(&self, name: &str) -> Vec<Span> {
        self.spans()
            .into_iter()
            .map(|(_, span)| span)
            .filter(|span| span.name == name)
            .collect()
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

/// The value of attribute `key` of `span`, as text (numbers in decimal).
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|attribute| attribute.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    match value {
        Value::IntValue(number) => Some(number.to_string()),
        other => text(other),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A W3C `traceparent` in [`TRACE_ID`], naming `parent` as the caller's span.
fn traceparent(parent: &str, sampled: bool) -> String {
    format!(
        "00-{TRACE_ID}-{parent}-{}",
        if sampled { "01" } else { "00" }
    )
}

fn with_traceparent<T>(message: T, traceparent: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    request
}

/// The store flags of the backend this test runs on: sled, or `redis` when
/// `SESSIOND_TEST_REDIS_URL` names one (see `traces_on_redis`).
fn store_args(redis: Option<&str>) -> Vec<String> {
    match redis {
        None => Vec::new(),
        Some(url) => vec![
            "--store".into(),
            "redis".into(),
            "--redis-url".into(),
            url.into(),
            "--redis-key-prefix".into(),
            common::unique_key_prefix(),
        ],
    }
}

/// The real binary exporting to `collector` with `ratio`, JSON logs of every call, its
/// admin port on `admin`.
fn traced_daemon(
    dir: &tempfile::TempDir,
    collector: SocketAddr,
    ratio: &str,
    admin: SocketAddr,
    redis: Option<&str>,
) -> Daemon {
    let mut args: Vec<String> = [
        "--otlp-endpoint",
        &format!("http://{collector}"),
        "--trace-sampling-ratio",
        ratio,
        "--log-format",
        "json",
        "--log-calls",
        "all",
        "--metrics-listen",
        &admin.to_string(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(store_args(redis));
    Daemon::spawn(
        &dir.path().join("data"),
        &dir.path().join("sessiond.log"),
        "info",
        args,
    )
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Start, Whoami, Refresh and both gateways in the caller's trace: then, after SIGTERM
/// (which sends what is queued), what the collector holds.
async fn a_callers_trace_continues_through_sessiond_on(redis: Option<&str>) {
    let (collector, collector_addr) = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = loopback();
    let mut sessiond = traced_daemon(&dir, collector_addr, "1", admin, redis);
    sessiond.serving().await;
    let mut client = sessiond.client().await;

    let started: StartResponse = client
        .start(with_traceparent(
            start_request("alice"),
            &traceparent("00f067aa0ba902b7", true),
        ))
        .await
        .expect("start")
        .into_inner();
    client
        .whoami(with_traceparent(
            WhoamiRequest {
                session_token: started.session_token.clone(),
                ..Default::default()
            },
            &traceparent("00f067aa0ba902b8", true),
        ))
        .await
        .expect("whoami");
    let refreshed = client
        .refresh(with_traceparent(
            RefreshRequest {
                refresh_token: started.refresh_token.clone(),
                ..Default::default()
            },
            &traceparent("00f067aa0ba902b9", true),
        ))
        .await
        .expect("refresh")
        .into_inner();
    let bearer = format!("Bearer {}", refreshed.session_token);
    let forward = plain_http::get(
        admin,
        "/auth",
        &[
            ("authorization", &bearer),
            ("traceparent", &traceparent("00f067aa0ba902ba", true)),
        ],
    )
    .await;
    assert_eq!(forward.status, 200, "{forward:?}");
    let checked = AuthorizationClient::new(sessiond.channel().await)
        .check(check_request(&[
            ("authorization", &bearer),
            ("traceparent", &traceparent("00f067aa0ba902bb", true)),
        ]))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(checked.status.map(|status| status.code), Some(0));
    assert!(sessiond.terminate().success());
    // Read once it exited: the log writer's queue is written out by then.
    let log = std::fs::read_to_string(dir.path().join("sessiond.log")).unwrap();

    let whoami = collector.named("session.v1.SessionService/Whoami");
    assert_eq!(whoami.len(), 1, "one span per call: {whoami:?}");
    let whoami = &whoami[0];
    assert_eq!(hex(&whoami.trace_id), TRACE_ID);
    assert_eq!(hex(&whoami.parent_span_id), "00f067aa0ba902b8");
    assert_eq!(whoami.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("rpc.system", "grpc"),
        ("rpc.service", "session.v1.SessionService"),
        ("rpc.method", "Whoami"),
        ("rpc.grpc.status_code", "0"),
    ] {
        assert_eq!(attribute(whoami, key).as_deref(), Some(value), "{key}");
    }
    assert!(collector
        .spans()
        .iter()
        .all(|(service, _)| service == "sessiond"));

    // The store's step is a child of the call that wrote.
    let start = &collector.named("session.v1.SessionService/Start")[0];
    let store_step = if redis.is_some() {
        "redis.commit_script"
    } else {
        "sled.commit"
    };
    assert!(
        collector
            .named(store_step)
            .iter()
            .any(|step| step.parent_span_id == start.span_id && step.trace_id == start.trace_id),
        "a {store_step} span under Start: {:?}",
        collector.spans()
    );

    // Both gateways: a span in the checked request's trace, under the caller's span.
    let gateway_parents: Vec<String> = collector
        .named("gateway.check")
        .iter()
        .filter(|span| hex(&span.trace_id) == TRACE_ID)
        .map(|span| hex(&span.parent_span_id))
        .collect();
    for parent in ["00f067aa0ba902ba", "00f067aa0ba902bb"] {
        assert!(
            gateway_parents.iter().any(|p| p == parent),
            "{parent} in {gateway_parents:?}"
        );
    }

    // Logs join traces: the Whoami line names its trace and span.
    let whoami_line = log
        .lines()
        .find(|line| line.contains("\"method\":\"/session.v1.SessionService/Whoami\""))
        .unwrap_or_else(|| panic!("a Whoami line:\n{log}"));
    assert!(
        whoami_line.contains(&format!("\"trace_id\":\"{TRACE_ID}\"")),
        "{whoami_line}"
    );
    assert!(whoami_line.contains(&format!("\"span_id\":\"{}\"", hex(&whoami.span_id))));

    // No token, nor its secret half, in any span.
    let exported = format!("{:?}", collector.spans());
    for token in [
        &started.session_token,
        &started.refresh_token,
        &refreshed.session_token,
        &refreshed.refresh_token,
    ] {
        let secret = &token[token.len() - 20..];
        assert!(!exported.contains(secret), "a token reached a span");
    }
}

on_backends!(a_callers_trace_continues_through_sessiond: sled, redis; flavor = "multi_thread", worker_threads = 2);
async fn a_callers_trace_continues_through_sessiond() {
    // On Redis: the standalone test Redis (its one URL).
    let url = common::backend()
        .redis_env()
        .map(|var| common::redis_urls(var).remove(0));
    a_callers_trace_continues_through_sessiond_on(url.as_deref()).await;
}

on_backends!(a_zero_ratio_records_only_what_a_sampled_caller_asks_for: sled; flavor = "multi_thread", worker_threads = 2);
async fn a_zero_ratio_records_only_what_a_sampled_caller_asks_for() {
    let (collector, collector_addr) = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut sessiond = traced_daemon(&dir, collector_addr, "0", loopback(), None);
    sessiond.serving().await;
    let mut client = sessiond.client().await;
    let started = start_session(&mut client, "bob").await;
    let whoami = |traceparent: &str| {
        with_traceparent(
            WhoamiRequest {
                session_token: started.session_token.clone(),
                ..Default::default()
            },
            traceparent,
        )
    };
    client
        .whoami(whoami(&traceparent("00f067aa0ba902c1", false)))
        .await
        .expect("unsampled caller");
    client
        .whoami(whoami(&traceparent("00f067aa0ba902c2", true)))
        .await
        .expect("sampled caller");
    assert!(sessiond.terminate().success());

    let recorded: Vec<String> = collector
        .spans()
        .iter()
        .filter(|(_, span)| span.parent_span_id.is_empty() || hex(&span.trace_id) != TRACE_ID)
        .map(|(_, span)| span.name.clone())
        .collect();
    assert!(
        recorded.is_empty(),
        "no trace of our own at ratio 0: {recorded:?}"
    );
    let whoami = collector.named("session.v1.SessionService/Whoami");
    assert_eq!(whoami.len(), 1, "only the sampled caller's: {whoami:?}");
    assert_eq!(hex(&whoami[0].parent_span_id), "00f067aa0ba902c2");
}

on_backends!(a_dead_collector_costs_no_call_and_its_drops_are_counted: sled; flavor = "multi_thread", worker_threads = 2);
async fn a_dead_collector_costs_no_call_and_its_drops_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let admin = loopback();
    // Nothing listens there.
    let mut sessiond = traced_daemon(&dir, loopback(), "1", admin, None);
    sessiond.serving().await;
    let mut client = sessiond.client().await;
    for round in 0..100 {
        let started = start_session(&mut client, "carol").await;
        whoami(&mut client, &started.session_token)
            .await
            .unwrap_or_else(|status| panic!("round {round}: {status:?}"));
    }
    let mut dropped = 0.0;
    for _ in 0..100 {
        let metrics = plain_http::get(admin, "/metrics", &[]).await;
        let text = String::from_utf8_lossy(&metrics.body).into_owned();
        dropped = text
            .lines()
            .filter(|line| line.starts_with("sessiond_trace_spans_dropped_total"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if dropped > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(dropped > 0.0, "spans the collector never got are counted");
    assert!(
        sessiond.terminate().success(),
        "a dead collector does not stop a clean exit"
    );
}

on_backends!(a_python_clients_traceparent_makes_sessiond_span_its_child: sled; flavor = "multi_thread", worker_threads = 2);
async fn a_python_clients_traceparent_makes_sessiond_span_its_child() {
    if !toolchain_available(
        "python traceparent",
        &["python3"],
        "Install python3 (with venv)",
    ) {
        return;
    }
    let (collector, collector_addr) = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Ratio 0: only what a sampled caller asks for is recorded.
    let mut sessiond = traced_daemon(&dir, collector_addr, "0", loopback(), None);
    sessiond.serving().await;
    let mut python = std::process::Command::new("bash");
    python
        .arg(root().join("clients/python/scripts/test-installed.sh"))
        .args(["-k", "traceparent"])
        .env("SESSIOND_ADDR", sessiond.addr.to_string())
        .env(
            "SESSIOND_TRACEPARENT",
            traceparent("00f067aa0ba902d1", true),
        );
    run_ok("the Python client's traceparent test", python).await;
    assert!(sessiond.terminate().success());

    let whoami = collector.named("session.v1.SessionService/Whoami");
    assert_eq!(whoami.len(), 1, "the Python caller's Whoami: {whoami:?}");
    assert_eq!(hex(&whoami[0].trace_id), TRACE_ID);
    assert_eq!(hex(&whoami[0].parent_span_id), "00f067aa0ba902d1");
}
