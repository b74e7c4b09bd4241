//! The ghz load configs in `bench/ghz/` are ones ghz can run against this server: each
//! uses only ghz's config-file keys, has what a run needs, and names in `call` a method
//! that the running server's reflection resolves (ghz finds it the same way: the configs
//! carry no proto file), with inline `data` fields of that method's request message.

use crate::common;

use std::path::PathBuf;

use common::TestServer;
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto};
use serde_json::{Map, Value};
use tonic::transport::Channel;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

/// Every key of ghz's JSON config file: the `json` tags of `runner.Config` in
/// github.com/bojand/ghz (`runner/config.go`), the format `ghz --config` reads.
const GHZ_KEYS: &[&str] = &[
    "proto",
    "protoset",
    "call",
    "cacert",
    "cert",
    "key",
    "count-errors",
    "skipTLS",
    "skipFirst",
    "cname",
    "authority",
    "insecure",
    "total",
    "async",
    "concurrency",
    "concurrency-schedule",
    "concurrency-start",
    "concurrency-end",
    "concurrency-step",
    "concurrency-step-duration",
    "concurrency-max-duration",
    "connections",
    "rps",
    "duration",
    "duration-stop",
    "max-duration",
    "timeout",
    "data",
    "data-file",
    "binary-file",
    "metadata",
    "metadata-file",
    "stream-interval",
    "stream-call-duration",
    "stream-call-count",
    "stream-dynamic-messages",
    "output",
    "format",
    "connect-timeout",
    "keepalive",
    "cpus",
    "import-paths",
    "name",
    "tags",
    "reflect-metadata",
    "debug",
    "host",
    "enable-compression",
    "load-schedule",
    "load-start",
    "load-end",
    "load-step",
    "load-step-duration",
    "load-max-duration",
    "lb-strategy",
    "max-recv-message-size",
    "max-send-message-size",
    "disable-template-functions",
    "disable-template-data",
];

/// Keys whose value ghz reads as a Go duration (`"10s"`, `"500ms"`).
const DURATION_KEYS: &[&str] = &["duration", "max-duration", "timeout", "connect-timeout"];

/// Keys whose value ghz reads as a count (a non-negative integer).
const COUNT_KEYS: &[&str] = &["total", "concurrency", "connections", "rps", "cpus"];

/// One config file of `bench/ghz/`: its name and its top-level object.
struct GhzConfig {
    file: String,
    keys: Map<String, Value>,
}

impl GhzConfig {
    /// The string value of `key` (panics, naming the file, if absent or not a string).
    fn text(&self, key: &str) -> &str {
        self.keys
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: {key:?} must be a string", self.file))
    }
}

/// Every `*.json` in `bench/ghz/`, parsed, by file name.
fn ghz_configs() -> Vec<GhzConfig> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/ghz");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("bench/ghz exists")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no ghz configs in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).expect("read a ghz config");
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{file}: not JSON: {error}"));
            let Value::Object(keys) = value else {
                panic!("{file}: a ghz config is a JSON object");
            };
            GhzConfig { file, keys }
        })
        .collect()
}

/// Whether `text` is a Go duration as these configs write them: digits and one unit.
fn is_go_duration(text: &str) -> bool {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && ["ns", "us", "ms", "s", "m", "h"].contains(&&text[digits..])
}

/// `package.Service` and `Method` of ghz's `call`, written `package.Service/Method` or
/// `package.Service.Method`.
fn service_and_method(call: &str) -> Option<(&str, &str)> {
    call.rsplit_once('/').or_else(|| call.rsplit_once('.'))
}

#[test]
fn ghz_configs_use_only_ghz_keys() {
    for config in ghz_configs() {
        let unknown: Vec<&String> = config
            .keys
            .keys()
            .filter(|key| !GHZ_KEYS.contains(&key.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{}: not ghz config keys: {unknown:?}",
            config.file
        );
    }
}

#[test]
fn ghz_configs_have_what_a_run_needs() {
    for config in ghz_configs() {
        let file = &config.file;
        let has = |key: &str| config.keys.contains_key(key);
        assert!(
            service_and_method(config.text("call")).is_some(),
            "{file}: call is package.Service/Method"
        );
        assert!(!config.text("host").is_empty(), "{file}: host is set");
        // No proto or protoset: ghz then asks the server's reflection, as intended.
        assert!(
            !has("proto") && !has("protoset"),
            "{file}: reflection, not a proto file"
        );
        // The server speaks plaintext unless [tls] is configured; ghz defaults to TLS.
        assert_eq!(
            config.keys.get("insecure"),
            Some(&Value::Bool(true)),
            "{file}: insecure = true"
        );
        assert!(
            has("total") ^ has("duration"),
            "{file}: exactly one of total and duration bounds the run"
        );
        assert!(
            has("data") ^ has("data-file"),
            "{file}: exactly one of data and data-file gives the requests"
        );
        for key in DURATION_KEYS.iter().filter(|key| has(key)) {
            assert!(
                is_go_duration(config.text(key)),
                "{file}: {key} is a Go duration"
            );
        }
        for key in COUNT_KEYS.iter().filter(|key| has(key)) {
            assert!(
                config.keys[*key].as_u64().is_some_and(|count| count > 0),
                "{file}: {key} is a positive integer"
            );
        }
    }
}

/// One reflection request, its one answer.
async fn reflect(channel: &Channel, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection stream is healthy")
        .expect("one response");
    response.message_response.expect("a reflection answer")
}

/// The file descriptors reflection returns for `symbol` (the file defining it, and the
/// files it imports).
async fn files_defining(channel: &Channel, symbol: &str) -> Vec<FileDescriptorProto> {
    match reflect(
        channel,
        MessageRequest::FileContainingSymbol(symbol.to_owned()),
    )
    .await
    {
        MessageResponse::FileDescriptorResponse(files) => files
            .file_descriptor_proto
            .iter()
            .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).expect("a descriptor"))
            .collect(),
        other => panic!("reflection does not resolve {symbol}: {other:?}"),
    }
}

/// The message `full_name` (`package.Message`) among `files`.
fn message<'a>(files: &'a [FileDescriptorProto], full_name: &str) -> Option<&'a DescriptorProto> {
    files.iter().find_map(|file| {
        let name = full_name.strip_prefix(&format!("{}.", file.package()))?;
        file.message_type
            .iter()
            .find(|message| message.name() == name)
    })
}

on_backends!(ghz_calls_are_methods_the_server_reflects: sled);
async fn ghz_calls_are_methods_the_server_reflects() {
    let test = TestServer::start().await;
    let channel = test.channel().await;
    let MessageResponse::ListServicesResponse(listed) =
        reflect(&channel, MessageRequest::ListServices(String::new())).await
    else {
        panic!("reflection does not list services");
    };
    let services: Vec<&str> = listed.service.iter().map(|s| s.name.as_str()).collect();

    for config in ghz_configs() {
        let file = &config.file;
        let call = config.text("call");
        let (service, method) = service_and_method(call).expect("call has a method");
        assert!(
            services.contains(&service),
            "{file}: {service} is not among the reflected services {services:?}"
        );
        let files = files_defining(&channel, service).await;
        let input_type = files
            .iter()
            .filter_map(|proto| {
                let name = service.strip_prefix(&format!("{}.", proto.package()))?;
                proto.service.iter().find(|s| s.name() == name)
            })
            .flat_map(|descriptor| &descriptor.method)
            .find(|m| m.name() == method)
            .unwrap_or_else(|| panic!("{file}: {service} has no method {method}"))
            .input_type()
            .trim_start_matches('.')
            .to_owned();
        if let Some(data) = config.keys.get("data") {
            let request = files_defining(&channel, &input_type).await;
            let request = message(&request, &input_type)
                .unwrap_or_else(|| panic!("{file}: reflection lacks {input_type}"));
            let fields = data.as_object().expect("data is one request object");
            for key in fields.keys() {
                // ghz reads data as protobuf JSON: proto names and JSON names both work.
                let known = request
                    .field
                    .iter()
                    .any(|field| field.name() == key || field.json_name() == key);
                assert!(known, "{file}: {input_type} has no field {key:?}");
            }
        }
    }
}
