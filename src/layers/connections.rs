//! Connection bounds tonic has no setting for: at most `max_connections` at once (one
//! more is closed as soon as it is accepted); a connection that starts no call within
//! `handshake_timeout` of its accept is closed, and so is one with no call in flight for
//! `idle_timeout`. [`BoundedIncoming`] wraps the accepted TCP streams; the
//! [`CallTrackingLayer`] tells each connection when its calls start and end (a streamed
//! answer ends when its body does).
//!
//! The wrapper sits below TLS, so a TLS handshake that never finishes is cut by the same
//! deadline. Keepalive pings and streams per connection are tonic's own settings, set
//! in `server.rs` from the same [`ConnectionSettings`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::codegen::http;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use crate::metrics::alerting::CONNECTIONS_MAX;
use crate::metrics::{CONNECTIONS_CLOSED, CONNECTIONS_OPEN};

/// The `[connections]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionSettings {
    /// Connections at once; one more is closed at accept.
    pub max_connections: usize,
    /// From accept to the first call (TCP, TLS and HTTP/2 handshakes included).
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// With no call in flight for this long, a connection is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// HTTP/2 PING to the client after this long without frames from it.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// A PING not answered within this closes the connection.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// Calls (HTTP/2 streams) at once on one connection.
    pub max_concurrent_streams: u32,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
            max_concurrent_streams: 256,
        }
    }
}

impl ConnectionSettings {
    /// What makes the settings unusable, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        let durations = [
            self.handshake_timeout,
            self.idle_timeout,
            self.keepalive_interval,
            self.keepalive_timeout,
        ];
        (self.max_connections == 0
            || self.max_concurrent_streams == 0
            || durations.iter().any(Duration::is_zero))
        .then_some("every [connections] setting must be more than 0")
    }
}

/// The calls of one connection, shared by its IO and its calls.
#[derive(Debug)]
struct ConnectionCalls {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// When a call last started or ended, in ms after `accepted`; [`NO_CALL_YET`] before.
    last_change_ms: AtomicU64,
}

const NO_CALL_YET: u64 = u64::MAX;

/// What a connection's timer decides when it fires.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Close(&'static str),
    CheckAt(Instant),
}

impl ConnectionCalls {
    fn new(accepted: Instant) -> ConnectionCalls {
        ConnectionCalls {
            accepted,
            in_flight: AtomicUsize::new(0),
            last_change_ms: AtomicU64::new(NO_CALL_YET),
        }
    }

    fn mark(&self) {
        let ms = u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(NO_CALL_YET - 1);
        self.last_change_ms.store(ms, Ordering::Release);
    }

    fn call_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.mark();
    }

    fn call_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.mark();
    }

    /// Whether the connection has outlived its deadline at `now`, or when to look again.
    fn verdict(&self, settings: &ConnectionSettings, now: Instant) -> Verdict {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::CheckAt(now + settings.idle_timeout);
        }
        let (deadline, reason) = match self.last_change_ms.load(Ordering::Acquire) {
            NO_CALL_YET => (
                self.accepted + settings.handshake_timeout,
                "handshake_timeout",
            ),
            ms => (
                self.accepted + Duration::from_millis(ms) + settings.idle_timeout,
                "idle_timeout",
            ),
        };
        if now >= deadline {
            Verdict::Close(reason)
        } else {
            Verdict::CheckAt(deadline)
        }
    }
}

/// What handlers and layers find in a request's extensions about its connection (in
/// `TlsConnectInfo<ConnectionInfo>` over TLS), in place of tonic's `TcpConnectInfo`.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub tcp: TcpConnectInfo,
    calls: Arc<ConnectionCalls>,
}

/// An accepted connection under its limits: holds its place among `max_connections`
/// and fails its reads once its deadline passes, which makes the server drop it.
pub struct GuardedConnection {
    stream: TcpStream,
    calls: Arc<ConnectionCalls>,
    deadline: Pin<Box<Sleep>>,
    settings: Arc<ConnectionSettings>,
    _place: OwnedSemaphorePermit,
}

impl Drop for GuardedConnection {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

impl Connected for GuardedConnection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            tcp: self.stream.connect_info(),
            calls: self.calls.clone(),
        }
    }
}

impl AsyncRead for GuardedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // The server always has a read pending, so polling the deadline here wakes it
        // when the deadline passes.
        let this = &mut *self;
        while this.deadline.as_mut().poll(cx).is_ready() {
            match this.calls.verdict(&this.settings, Instant::now()) {
                Verdict::CheckAt(at) => this.deadline.as_mut().reset(at),
                Verdict::Close(reason) => {
                    metrics::counter!(CONNECTIONS_CLOSED, "reason" => reason).increment(1);
                    tracing::debug!(reason, "closing connection");
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, reason)));
                }
            }
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Pause after an accept error (out of file descriptors, say) before accepting again:
/// the error repeats at once, and retrying in a loop would take a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepted TCP streams as [`GuardedConnection`]s; a stream over `max_connections` is
/// closed at once and never reaches the server.
pub struct BoundedIncoming<S> {
    incoming: S,
    places: Arc<Semaphore>,
    settings: Arc<ConnectionSettings>,
    paused: Option<Pin<Box<Sleep>>>,
}

impl<S> BoundedIncoming<S> {
    /// Bounds the streams `incoming` accepts by `settings`.
    pub fn new(incoming: S, settings: ConnectionSettings) -> BoundedIncoming<S> {
        metrics::gauge!(CONNECTIONS_MAX).set(settings.max_connections as f64);
        BoundedIncoming {
            incoming,
            places: Arc::new(Semaphore::new(settings.max_connections)),
            settings: Arc::new(settings),
            paused: None,
        }
    }
}

impl<S> Stream for BoundedIncoming<S>
where
    S: Stream<Item = io::Result<TcpStream>> + Unpin,
{
    type Item = io::Result<GuardedConnection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(pause) = &mut this.paused {
                futures::ready!(pause.as_mut().poll(cx));
                this.paused = None;
            }
            let stream = match futures::ready!(Pin::new(&mut this.incoming).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(stream)) => stream,
                Some(Err(error)) => {
                    tracing::warn!(%error, "cannot accept connections; pausing accepts");
                    this.paused = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE)));
                    continue;
                }
            };
            let Ok(place) = this.places.clone().try_acquire_owned() else {
                // Dropping the stream closes it: the client sees its connection end.
                metrics::counter!(CONNECTIONS_CLOSED, "reason" => "max_connections").increment(1);
                continue;
            };
            metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
            let accepted = Instant::now();
            return Poll::Ready(Some(Ok(GuardedConnection {
                stream,
                calls: Arc::new(ConnectionCalls::new(accepted)),
                deadline: Box::pin(tokio::time::sleep_until(
                    accepted + this.settings.handshake_timeout,
                )),
                settings: this.settings.clone(),
                _place: place,
            })));
        }
    }
}

/// Wraps a service with [`CallTracking`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CallTrackingLayer;

impl<S> Layer<S> for CallTrackingLayer {
    type Service = CallTracking<S>;

    fn layer(&self, inner: S) -> CallTracking<S> {
        CallTracking { inner }
    }
}

/// Counts each call on its connection from its start until its answer's body ends.
#[derive(Clone, Debug)]
pub struct CallTracking<S> {
    inner: S,
}

/// The connection's calls, from the request's extensions (absent when the server was
/// not fed by a [`BoundedIncoming`]).
fn connection_calls<B>(request: &http::Request<B>) -> Option<Arc<ConnectionCalls>> {
    let extensions = request.extensions();
    extensions
        .get::<ConnectionInfo>()
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<ConnectionInfo>>()
                .map(TlsConnectInfo::get_ref)
        })
        .map(|info| info.calls.clone())
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CallTracking<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let call = connection_calls(&request).map(CallInFlight::new);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody { body, _call: call }))
        })
    }
}

/// One call counted on its connection until dropped.
#[derive(Debug)]
struct CallInFlight(Arc<ConnectionCalls>);

impl CallInFlight {
    fn new(calls: Arc<ConnectionCalls>) -> CallInFlight {
        calls.call_started();
        CallInFlight(calls)
    }
}

impl Drop for CallInFlight {
    fn drop(&mut self) {
        self.0.call_ended();
    }
}

/// An answer's body that keeps its call counted until the server is done with it.
#[derive(Debug)]
pub struct TrackedBody<B> {
    body: B,
    _call: Option<CallInFlight>,
}

impl<B> http_body::Body for TrackedBody<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ConnectionSettings::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_call_closes_at_the_handshake_deadline() {
        let accepted = Instant::now();
        let calls = ConnectionCalls::new(accepted);
        let deadline = accepted + Duration::from_secs(10);
        assert_eq!(
            calls.verdict(&settings(), accepted),
            Verdict::CheckAt(deadline)
        );
        assert_eq!(
            calls.verdict(&settings(), deadline),
            Verdict::Close("handshake_timeout")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_in_flight_keeps_the_connection_and_its_end_starts_the_idle_clock() {
        let accepted = Instant::now();
        let calls = Arc::new(ConnectionCalls::new(accepted));
        tokio::time::advance(Duration::from_secs(5)).await;
        let call = CallInFlight::new(calls.clone());
        let late = accepted + Duration::from_secs(3600);
        assert!(matches!(
            calls.verdict(&settings(), late),
            Verdict::CheckAt(_)
        ));
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(call);
        let idle_deadline = accepted + Duration::from_secs(10 + 60);
        assert_eq!(
            calls.verdict(&settings(), Instant::now()),
            Verdict::CheckAt(idle_deadline)
        );
        assert_eq!(
            calls.verdict(&settings(), idle_deadline),
            Verdict::Close("idle_timeout")
        );
    }

    #[test]
    fn zero_settings_are_refused() {
        assert!(ConnectionSettings::default().problem().is_none());
        let no_idle = ConnectionSettings {
            idle_timeout: Duration::ZERO,
            ..ConnectionSettings::default()
        };
        assert!(no_idle.problem().is_some());
    }
}
