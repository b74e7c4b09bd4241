//! The connection to the server: address, API key and timeout applied to every call.

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, TimeoutExpired};
use tonic_health::pb::health_client::HealthClient;

use crate::error::{causes, CtlError};

/// One unary call of the session service as a command makes it: the generated client's
/// method given the request, `async |client, request| client.start(request).await`.
pub trait UnaryCall<Req, Resp>:
    AsyncFnOnce(&mut SessionServiceClient<Channel>, Request<Req>) -> Result<Response<Resp>, Status>
{
}

impl<Req, Resp, F> UnaryCall<Req, Resp> for F where
    F: AsyncFnOnce(
        &mut SessionServiceClient<Channel>,
        Request<Req>,
    ) -> Result<Response<Resp>, Status>
{
}

/// Where and how to call: checked before anything is sent.
pub struct Target {
    endpoint: Endpoint,
    url: String,
    authorization: Option<MetadataValue<Ascii>>,
    timeout: Duration,
}

impl Target {
    /// Checks the address and API key; `timeout_seconds` bounds the connection and
    /// each call.
    pub fn new(
        addr: &str,
        api_key: Option<&str>,
        timeout_seconds: u64,
    ) -> Result<Target, CtlError> {
        let url = url(addr)?;
        let timeout = Duration::from_secs(timeout_seconds);
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|error| {
                CtlError::Usage(format!("--addr {addr:?} is not an address: {error}"))
            })?
            .connect_timeout(timeout);
        let authorization = match api_key {
            None | Some("") => None,
            Some(key) => {
                // The key itself stays out of the message: it is a secret.
                let mut value = MetadataValue::try_from(format!("Bearer {key}")).map_err(|_| {
                    CtlError::Usage(
                        "--api-key must be printable ASCII without line breaks".to_owned(),
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Target {
            endpoint,
            url,
            authorization,
            timeout,
        })
    }

    /// The URL of the gRPC method at `path` on this server (what a device proof names).
    pub fn method_url(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    /// Connects, within the timeout.
    pub async fn connect(&self) -> Result<Api, CtlError> {
        let failed = |detail| CtlError::Connect {
            addr: self.url.clone(),
            detail,
        };
        let channel = tokio::time::timeout(self.timeout, self.endpoint.connect())
            .await
            .map_err(|_| failed(format!("no connection within {}s", self.timeout.as_secs())))?
            .map_err(|error| failed(causes(&error)))?;
        Ok(Api {
            client: SessionServiceClient::new(channel.clone()),
            channel,
            authorization: self.authorization.clone(),
            timeout: self.timeout,
        })
    }

    /// Connects and sends one unary call (see `Api::call`): what most commands do.
    pub async fn call<Req, Resp>(
        &self,
        message: Req,
        send: impl UnaryCall<Req, Resp>,
    ) -> Result<Resp, CtlError> {
        self.connect().await?.call(message, send).await
    }
}

/// `addr` as an `http://` URL: a bare `HOST:PORT` gets the scheme.
fn url(addr: &str) -> Result<String, CtlError> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Err(CtlError::Usage("--addr must not be empty".to_owned()));
    }
    let url = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    if url.starts_with("https://") {
        return Err(CtlError::Usage(
            "--addr: sessionctl does not speak TLS yet; use http://".to_owned(),
        ));
    }
    if !url.starts_with("http://") {
        return Err(CtlError::Usage(format!(
            "--addr {addr:?}: the scheme must be http://"
        )));
    }
    Ok(url)
}

/// A connected client that adds the API key and the deadline to every call.
pub struct Api {
    client: SessionServiceClient<Channel>,
    /// The connection, for the services beside the session service (health).
    channel: Channel,
    authorization: Option<MetadataValue<Ascii>>,
    timeout: Duration,
}

impl Api {
    /// Sends one unary call made by `send` with `message` (API key and deadline
    /// attached) and returns the answer's message.
    pub async fn call<Req, Resp>(
        &mut self,
        message: Req,
        send: impl UnaryCall<Req, Resp>,
    ) -> Result<Resp, CtlError> {
        let request = self.request(message);
        answer(self.timeout, send(&mut self.client, request)).await
    }

    /// `message` with the API key and the deadline attached.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = self.untimed_request(message);
        request.set_timeout(self.timeout);
        request
    }

    /// `message` with the API key, for a stream that may outlast the call timeout.
    pub fn untimed_request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        request
    }

    /// A client of `grpc.health.v1` on the same connection.
    pub fn health_client(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// The generated client.
    pub fn client(&mut self) -> &mut SessionServiceClient<Channel> {
        &mut self.client
    }

    /// How long one call (or one chunk of a stream) may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The message of `response`. tonic enforces the request's deadline itself but reports
/// it as CANCELLED; it becomes DEADLINE_EXCEEDED here, as gRPC names it.
pub async fn answer<T>(
    timeout: Duration,
    response: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<T, CtlError> {
    match response.await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) if deadline_passed(&status) => Err(CtlError::Status(
            Status::deadline_exceeded(format!("no answer within {}s", timeout.as_secs())),
        )),
        Err(status) => Err(CtlError::Status(status)),
    }
}

/// Whether `status` is tonic's own client-side timeout.
fn deadline_passed(status: &Status) -> bool {
    let mut source = status.source();
    while let Some(error) = source {
        if error.is::<TimeoutExpired>() {
            return true;
        }
        source = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_host_and_port_gets_the_http_scheme() {
        assert_eq!(
            url("127.0.0.1:50051").ok(),
            Some("http://127.0.0.1:50051".into())
        );
        assert_eq!(url(" http://h:1 ").ok(), Some("http://h:1".into()));
    }

    #[test]
    fn other_schemes_and_blank_addresses_are_usage_errors() {
        for addr in ["", "https://h:1", "unix:///tmp/s"] {
            assert!(matches!(url(addr), Err(CtlError::Usage(_))), "{addr:?}");
        }
    }

    #[test]
    fn a_bad_api_key_is_refused_without_echoing_it() {
        let error = Target::new("h:1", Some("sec\nret"), 1).err();
        match error {
            Some(CtlError::Usage(message)) => assert!(!message.contains("sec")),
            _ => panic!("expected a usage error"),
        }
    }
}
