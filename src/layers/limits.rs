//! Load shedding and a deadline: at most `max_in_flight` calls run at once, and a call
//! over that answers RESOURCE_EXHAUSTED at once instead of queueing (so memory and
//! latency stay bounded under overload); a call running longer than `call_timeout`
//! answers DEADLINE_EXCEEDED.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{ready, Either, Ready};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tonic::codegen::http;
use tonic::Status;
use tower::{Layer, Service};

/// The call limits of the `[limits]` table (which also holds the request-shape limits
/// of `api::validate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CallLimitSettings {
    /// Calls running at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Longest a call may run before it answers DEADLINE_EXCEEDED.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
}

impl Default for CallLimitSettings {
    fn default() -> Self {
        CallLimitSettings {
            max_in_flight: 4096,
            call_timeout: Duration::from_secs(10),
        }
    }
}

impl CallLimitSettings {
    /// What makes these limits unusable, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        (self.max_in_flight == 0 || self.call_timeout.is_zero())
            .then_some("limits.max_in_flight and limits.call_timeout must be more than 0")
    }
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
    pub fn new(settings: CallLimitSettings) -> CallLimitsLayer {
        CallLimitsLayer {
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            max_in_flight: settings.max_in_flight,
            call_timeout: settings.call_timeout,
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

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Ok(permit) = self.limits.in_flight.clone().try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "server busy: {} calls in flight; retry with backoff",
                self.limits.max_in_flight
            ));
            return Either::Left(ready(Ok(status.into_http())));
        };
        let call_timeout = self.limits.call_timeout;
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

    fn settings(max_in_flight: usize, call_timeout: Duration) -> CallLimitSettings {
        CallLimitSettings {
            max_in_flight,
            call_timeout,
        }
    }

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
        let mut service = CallLimitsLayer::new(settings(1, Duration::from_secs(60))).layer(stuck());
        let first = service.call(http::Request::new(()));
        let second = service
            .call(http::Request::new(()))
            .await
            .expect("answered");
        assert_eq!(answer_code(&second).as_deref(), Some("8")); // RESOURCE_EXHAUSTED
        drop(first);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_is_ended() {
        let mut service = CallLimitsLayer::new(settings(4, Duration::from_secs(1))).layer(stuck());
        let answer = service
            .call(http::Request::new(()))
            .await
            .expect("answered");
        assert_eq!(answer_code(&answer).as_deref(), Some("4")); // DEADLINE_EXCEEDED
    }
}
