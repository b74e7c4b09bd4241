//! Server reflection as grpcurl uses it: a dynamic client that has no proto file lists the
//! services, resolves their descriptors and calls them, Envoy's ext_authz `Check` included;
//! health and reflection answers name the server's version.

use crate::common;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use common::TestServer;
use prost::bytes::{Buf, BufMut};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use support::*;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic_reflection::pb::{v1, v1alpha};

const AUTHORIZATION: &str = "envoy.service.auth.v3.Authorization";

/// Asks one reflection question over v1 or v1alpha, as grpcurl of either age does.
#[derive(Clone, Copy)]
enum Reflection {
    V1,
    V1Alpha,
}

/// What grpcurl learns from reflection: the services listed, and files by name.
enum Answer {
    Services(Vec<String>),
    Files(Vec<Vec<u8>>),
}

/// One question over one reflection version's generated types (v1 and v1alpha have the
/// same messages in two packages).
macro_rules! ask_over {
    ($version:ident, $channel:expr, $question:expr) => {{
        use $version::server_reflection_request::MessageRequest;
        use $version::server_reflection_response::MessageResponse;
        let request = $version::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(match $question {
                Question::List => MessageRequest::ListServices(String::new()),
                Question::Symbol(s) => MessageRequest::FileContainingSymbol(s),
                Question::File(f) => MessageRequest::FileByFilename(f),
            }),
        };
        let mut client = $version::server_reflection_client::ServerReflectionClient::new($channel);
        let mut answers = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection answers")
            .into_inner();
        match answers.message().await.unwrap().unwrap().message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                Answer::Services(list.service.into_iter().map(|s| s.name).collect())
            }
            Some(MessageResponse::FileDescriptorResponse(files)) => {
                Answer::Files(files.file_descriptor_proto)
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }};
}

impl Reflection {
    async fn ask(self, channel: Channel, question: Question) -> Answer {
        match self {
            Reflection::V1 => ask_over!(v1, channel, question),
            Reflection::V1Alpha => ask_over!(v1alpha, channel, question),
        }
    }

    async fn services(self, channel: Channel) -> Vec<String> {
        match self.ask(channel, Question::List).await {
            Answer::Services(services) => services,
            Answer::Files(_) => panic!("files for a list"),
        }
    }

    /// The descriptors of `symbol`, then of every file they import, fetched by name the
    /// way grpcurl does until nothing is missing.
    async fn pool_for(self, channel: Channel, symbol: &str) -> DescriptorPool {
        let mut files = BTreeMap::new();
        let mut wanted = vec![Question::Symbol(symbol.to_owned())];
        while let Some(question) = wanted.pop() {
            let Answer::Files(answer) = self.ask(channel.clone(), question).await else {
                panic!("a list for a file");
            };
            for bytes in answer {
                let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
                files.insert(file.name().to_owned(), file);
            }
            let known: BTreeSet<&String> = files.keys().collect();
            let missing: BTreeSet<String> = files
                .values()
                .flat_map(|file| file.dependency.iter())
                .filter(|name| !known.contains(name))
                .cloned()
                .collect();
            wanted.extend(missing.into_iter().map(Question::File));
        }
        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_protos(files.into_values())
            .expect("reflection describes every file it imports");
        pool
    }
}

enum Question {
    List,
    Symbol(String),
    File(String),
}

/// Calls `method` with a request written as JSON, as `grpcurl -d '…'` does, and answers
/// the response as JSON.
async fn call_json(
    channel: Channel,
    method: &MethodDescriptor,
    request: serde_json::Value,
) -> Result<serde_json::Value, tonic::Status> {
    let request = DynamicMessage::deserialize(method.input(), request).expect("request JSON");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let response = grpc
        .unary(
            tonic::Request::new(request.encode_to_vec()),
            path.parse().unwrap(),
            RawCodec,
        )
        .await?
        .into_inner();
    let response = DynamicMessage::decode(method.output(), response.as_slice()).unwrap();
    Ok(serde_json::to_value(&response).unwrap())
}

/// Messages as the bytes of their encoding, as a client without generated code sends them.
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

fn check_request_json(authorization: &str) -> serde_json::Value {
    serde_json::json!({
        "attributes": { "request": { "http": {
            "method": "GET",
            "path": "/orders",
            "host": "app.example",
            "headers": { "authorization": authorization },
        }}}
    })
}

on_backends!(reflection_lists_envoy_authorization_beside_the_session_service: sled);
async fn reflection_lists_envoy_authorization_beside_the_session_service() {
    let test = TestServer::start().await;
    for reflection in [Reflection::V1, Reflection::V1Alpha] {
        let services = reflection.services(test.channel().await).await;
        for service in [
            "session.v1.SessionService",
            "grpc.health.v1.Health",
            AUTHORIZATION,
        ] {
            assert!(
                services.iter().any(|s| s == service),
                "{service} in {services:?}"
            );
        }
    }
}

on_backends!(a_client_with_no_proto_files_calls_envoy_check_through_reflection: sled);
async fn a_client_with_no_proto_files_calls_envoy_check_through_reflection() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    for reflection in [Reflection::V1, Reflection::V1Alpha] {
        let pool = reflection
            .pool_for(test.channel().await, AUTHORIZATION)
            .await;
        let check = pool
            .get_service_by_name(AUTHORIZATION)
            .expect("the service is described")
            .methods()
            .find(|method| method.name() == "Check")
            .expect("Check is described");

        let allowed = call_json(
            test.channel().await,
            &check,
            check_request_json(&format!("Bearer {}", started.session_token)),
        )
        .await
        .expect("Check answers");
        assert_eq!(
            allowed["status"].get("code"),
            None,
            "OK is code 0: {allowed}"
        );
        let upstream = allowed["okResponse"]["headers"].to_string();
        assert!(upstream.contains("alice"), "identity headers: {upstream}");

        let denied = call_json(
            test.channel().await,
            &check,
            check_request_json("Bearer st_bogus"),
        )
        .await
        .expect("Check answers");
        assert_eq!(denied["status"]["code"], 16, "UNAUTHENTICATED: {denied}");
        assert_eq!(denied["deniedResponse"]["status"]["code"], "Unauthorized");
    }
}

on_backends!(health_and_reflection_answers_carry_the_server_version: sled);
async fn health_and_reflection_answers_carry_the_server_version() {
    let test = TestServer::start().await;
    let version = env!("CARGO_PKG_VERSION");
    let health = tonic_health::pb::health_client::HealthClient::new(test.channel().await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers");
    assert_eq!(
        health
            .metadata()
            .get("x-sessiond-version")
            .map(|v| v.to_str().unwrap()),
        Some(version)
    );
    let reflection =
        v1::server_reflection_client::ServerReflectionClient::new(test.channel().await)
            .server_reflection_info(tokio_stream::iter([v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                )),
            }]))
            .await
            .expect("reflection answers");
    assert_eq!(
        reflection
            .metadata()
            .get("x-sessiond-version")
            .map(|v| v.to_str().unwrap()),
        Some(version)
    );
    // Not on the hot path: SessionService's answers carry nothing extra.
    let mut client = test.client().await;
    let started = client.start(start_request("alice")).await.expect("start");
    assert!(started.metadata().get("x-sessiond-version").is_none());
}
