//! The server's version on the answers of health and reflection (`x-sessiond-version`
//! response metadata), so a client or an operator's tool can log which sessiond it talks
//! to. Kept off SessionService's answers: the hot path carries nothing it does not need.

use std::task::{Context, Poll};

use futures::future::{MapOk, TryFutureExt};
use tonic::codegen::http::{HeaderValue, Request, Response};
use tonic::server::NamedService;
use tower::Service;

/// The response header (gRPC initial metadata) that carries the version.
pub const VERSION_HEADER: &str = "x-sessiond-version";

/// A gRPC service whose every answer carries the server's version.
#[derive(Debug, Clone)]
pub struct WithVersion<S>(pub S);

impl<S: NamedService> NamedService for WithVersion<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for WithVersion<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = MapOk<S::Future, fn(Response<ResponseBody>) -> Response<ResponseBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        self.0.call(request).map_ok(with_version)
    }
}

fn with_version<B>(mut response: Response<B>) -> Response<B> {
    response.headers_mut().insert(
        VERSION_HEADER,
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    response
}
