//! The connection to the server: address, API key and timeout applied to every call.

use std::collections::HashSet;
use std::error::Error;
use std::future::Future;
use std::time::Duration;

use sessiond::proto::session::v1 as pb;
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, TimeoutExpired};
use tonic_health::pb::health_client::HealthClient;

use crate::cli::Call;
use crate::error::{causes, CtlError};
use crate::render::Answer;

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
    /// Sends `call` (every page of it, for `list --all-pages`) and returns the answer.
    pub async fn send(&mut self, call: Call) -> Result<Answer, CtlError> {
        Ok(match call {
            Call::Start(message) => {
                let request = self.request(*message);
                Answer::Start(answer(self.timeout, self.client.start(request)).await?)
            }
            Call::Whoami(message) => {
                let request = self.request(message);
                Answer::Whoami(answer(self.timeout, self.client.whoami(request)).await?)
            }
            Call::Refresh(message) => {
                let request = self.request(message);
                Answer::Refresh(answer(self.timeout, self.client.refresh(request)).await?)
            }
            Call::Extend(message) => {
                let request = self.request(message);
                Answer::Extend(answer(self.timeout, self.client.extend(request)).await?)
            }
            Call::Logout(message) => {
                let request = self.request(message);
                Answer::Logout(answer(self.timeout, self.client.logout(request)).await?)
            }
            Call::RefreshAll(message) => {
                let request = self.request(message);
                let response = self.client.refresh_all_for_user(request);
                Answer::RefreshAll(answer(self.timeout, response).await?)
            }
            Call::List { request, all_pages } => Answer::List(self.list(request, all_pages).await?),
            Call::Backup { out } => Answer::Backup(self.backup(&out).await?),
            Call::RevokeUser(message) => {
                let request = self.request(message);
                let response = answer(self.timeout, self.client.revoke_user_sessions(request));
                let revoked_count = response.await?.revoked_count;
                Answer::Logout(pb::LogoutResponse { revoked_count })
            }
            Call::Admin(call) => Answer::Admin(self.send_admin(call, now_seconds()).await?),
        })
    }

    /// One page, or with `all_pages` every page from `first` on, merged into one.
    async fn list(
        &mut self,
        first: pb::ListUserSessionsRequest,
        all_pages: bool,
    ) -> Result<pb::ListUserSessionsResponse, CtlError> {
        let mut message = first;
        let mut merged = pb::ListUserSessionsResponse::default();
        let mut seen_tokens = HashSet::from([message.page_token.clone()]);
        loop {
            let request = self.request(message.clone());
            let page = answer(self.timeout, self.client.list_user_sessions(request)).await?;
            merged.sessions.extend(page.sessions);
            merged.next_page_token = page.next_page_token;
            if !all_pages || merged.next_page_token.is_empty() {
                return Ok(merged);
            }
            // A token seen before would page in a circle forever.
            if !seen_tokens.insert(merged.next_page_token.clone()) {
                return Err(CtlError::Status(Status::internal(
                    "the server repeated a next_page_token; paging stopped",
                )));
            }
            message.page_token.clone_from(&merged.next_page_token);
        }
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

/// Now, in whole seconds (dates an answer's human form).
fn now_seconds() -> i64 {
    use sessiond::clock::Clock;
    i64::try_from(sessiond::clock::SystemClock.now_ms() / 1000).unwrap_or(i64::MAX)
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
