//! Load shedding and a deadline: at most `max_in_flight` calls run at once, and a call
//! over that answers RESOURCE_EXHAUSTED at once instead of queueing (so memory and
//! latency stay bounded under overload); a call running longer than `call_timeout`
//! answers DEADLINE_EXCEEDED. Each call carries its deadline ([`CallDeadline`]: the
//! sooner of `call_timeout` and the client's `grpc-timeout`) for handlers that wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{ready, Either, Ready};
use tokio::sync::Semaphore;
use tonic::codegen::http;
use tonic::Status;
use tower::{Layer, Service};

/// When a call must have its answer: the sooner of the server's `call_timeout` and the
/// client's own deadline (its `grpc-timeout` header), in the request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct CallDeadline(pub tokio::time::Instant);

/// The client's deadline from its `grpc-timeout` header (up to 8 digits and a unit:
/// H, M, S, m, u or n), if it sent a valid one.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..split)?, value.get(split..)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Wraps a service with [`CallLimits`].
#[derive(Clone, Debug)]
pub struct CallLimitsLayer {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    call_timeout: Duration,
}

impl CallLimitsLayer {
    /// At most `max_in_flight` calls at once, each for at most `call_timeout`.
    pub fn new(max_in_flight: usize, call_timeout: Duration) -> CallLimitsLayer {
        CallLimitsLayer {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            call_timeout,
        }
    }
}

impl<S> Layer<S> for CallLimitsLayer {
    type Service = CallLimits<S>;

    fn layer(&self, inner: S) -> CallLimits<S> {
        CallLimits {
            inner,
            limits: self.clone(),
        }
    }
}

/// Sheds calls beyond the in-flight limit and bounds each call's time.
#[derive(Clone, Debug)]
pub struct CallLimits<S> {
    inner: S,
    limits: CallLimitsLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CallLimits<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<
        Ready<Result<S::Response, S::Error>>,
        Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let Ok(permit) = self.limits.in_flight.clone().try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "server busy: {} calls in flight; retry with backoff",
                self.limits.max_in_flight
            ));
            return Either::Left(ready(Ok(status.into_http())));
        };
        let call_timeout = self.limits.call_timeout;
        let time_left =
            grpc_timeout(request.headers()).map_or(call_timeout, |client| client.min(call_timeout));
        request
            .extensions_mut()
            .insert(CallDeadline(tokio::time::Instant::now() + time_left));
        let response = self.inner.call(request);
        Either::Right(Box::pin(async move {
            let answer = tokio::time::timeout(call_timeout, response).await;
            drop(permit);
            answer.unwrap_or_else(|_| {
                Ok(Status::deadline_exceeded(format!(
                    "the call took longer than the server's call_timeout ({} ms)",
                    call_timeout.as_millis()
                ))
                .into_http())
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    type Body = tonic::body::Body;

    fn answer_code(response: &http::Response<Body>) -> Option<String> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    /// A service whose calls never finish: each holds its in-flight slot.
    fn stuck() -> impl Service<
        http::Request<()>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future = futures::future::Pending<Result<http::Response<Body>, Infallible>>,
    > + Clone {
        tower::service_fn(|_: http::Request<()>| futures::future::pending())
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_over_the_limit_is_shed_at_once() {
        let mut service = CallLimitsLayer::new(1, Duration::from_secs(60)).layer(stuck());
        let first = service.call(http::Request::new(()));
        let second = service
            .call(http::Request::new(()))
            .await
            .expect("answered");
        assert_eq!(answer_code(&second).as_deref(), Some("8")); // RESOURCE_EXHAUSTED
        drop(first);
    }

    #[test]
    fn the_clients_grpc_timeout_is_read_in_every_unit() {
        let read = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().expect("header value"));
            grpc_timeout(&headers)
        };
        assert_eq!(read("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(read("3M"), Some(Duration::from_secs(180)));
        assert_eq!(read("5S"), Some(Duration::from_secs(5)));
        assert_eq!(read("250m"), Some(Duration::from_millis(250)));
        assert_eq!(read("7u"), Some(Duration::from_micros(7)));
        assert_eq!(read("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "m", "123456789m", "10x", "-1S", "1.5S"] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_is_ended() {
        let mut service = CallLimitsLayer::new(4, Duration::from_secs(1)).layer(stuck());
        let answer = service
            .call(http::Request::new(()))
            .await
            .expect("answered");
        assert_eq!(answer_code(&answer).as_deref(), Some("4")); // DEADLINE_EXCEEDED
    }
}
