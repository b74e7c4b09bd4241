//! A canned `session.v1.SessionService/Whoami`: one fixed answer the size and shape of a
//! real one, and no session logic, so sessiond's Whoami can be measured against what
//! tonic alone pays for a Whoami's request and answer (every other method: UNIMPLEMENTED).

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use prost_types::Timestamp;
use sessiond::api::codec::SessionCodec;
use sessiond::proto::session::v1 as pb;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

/// The path of the one method served.
const WHOAMI: &str = "/session.v1.SessionService/Whoami";

/// Answers every Whoami with the same session: the fields a `sessiond-bench` session
/// carries (its ids, timestamps, TTL and one metadata entry).
#[derive(Clone, Debug)]
pub struct CannedWhoami {
    answer: pb::WhoamiResponse,
}

impl CannedWhoami {
    pub fn new() -> CannedWhoami {
        let at = |seconds: i64| {
            Some(Timestamp {
                seconds: 1_796_000_000 + seconds,
                nanos: 123_456_789,
            })
        };
        let session = pb::Session {
            session_id: "0193f2a4-7c1e-7d3a-9b2e-5f0c1a2b3c4d".to_owned(),
            user_id: "bench-1a2b3c4d-u1234".to_owned(),
            state: pb::SessionState::Active.into(),
            created_at: at(0),
            authenticated_at: at(0),
            last_access_at: at(30),
            expires_at: at(3_600),
            max_expires_at: at(86_400),
            ttl_seconds: 3_600,
            metadata: [("device".to_owned(), "sessiond-bench".to_owned())].into(),
            aal: "aal1".to_owned(),
            ..Default::default()
        };
        CannedWhoami {
            answer: pb::WhoamiResponse {
                session: Some(session),
                expires_in_seconds: 3_570,
                cache_until: at(60),
            },
        }
    }
}

impl NamedService for CannedWhoami {
    const NAME: &'static str = "session.v1.SessionService";
}

impl UnaryService<pb::WhoamiRequest> for CannedWhoami {
    type Response = pb::WhoamiResponse;
    type Future = Ready<Result<Response<pb::WhoamiResponse>, Status>>;

    fn call(&mut self, _request: Request<pb::WhoamiRequest>) -> Self::Future {
        ready(Ok(Response::new(self.answer.clone())))
    }
}

/// Routes as tonic's generated servers do, with sessiond's codec.
impl<B> tower::Service<http::Request<B>> for CannedWhoami
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != WHOAMI {
            return Box::pin(ready(Ok(Status::unimplemented("").into_http())));
        }
        let method = self.clone();
        Box::pin(async move {
            let mut grpc = Grpc::new(SessionCodec::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}
