//! The calls the bench can drive: their kinds (flag names, gRPC methods, what each acts
//! on), and how each is made: the request built, the credentials attached, the answer
//! awaited within the timeout.

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::proto::session::v1::{
    ExtendRequest, RefreshAllForUserRequest, RefreshRequest, StartRequest, StartResponse,
    WhoamiRequest,
};
use sessiond::session::binding::DeviceSigner;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::error::BoxError;

/// The service the health Check asks about: sessiond reports it SERVING once ready.
const HEALTH_SERVICE: &str = "session.v1.SessionService";

/// A call the bench can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum CallKind {
    /// `Whoami` with a prepared session token.
    Whoami,
    /// `Start` for a new user id each call.
    Start,
    /// `Refresh` along each worker's own chains of refresh tokens.
    Refresh,
    /// `Extend` of a prepared session, by id.
    Extend,
    /// `RefreshAllForUser` of a prepared user with a few sessions.
    RefreshAll,
    /// `grpc.health.v1.Health/Check`: the empty call, our ceiling.
    Health,
}

impl CallKind {
    /// Every kind, in flag order.
    pub const ALL: [CallKind; 6] = [
        CallKind::Whoami,
        CallKind::Start,
        CallKind::Refresh,
        CallKind::Extend,
        CallKind::RefreshAll,
        CallKind::Health,
    ];

    /// The flag spelling (`refresh-all`).
    pub fn name(self) -> &'static str {
        match self {
            CallKind::Whoami => "whoami",
            CallKind::Start => "start",
            CallKind::Refresh => "refresh",
            CallKind::Extend => "extend",
            CallKind::RefreshAll => "refresh-all",
            CallKind::Health => "health",
        }
    }

    /// The kind a flag spelling names.
    pub fn from_name(name: &str) -> Option<CallKind> {
        CallKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The full gRPC method.
    pub fn method(self) -> &'static str {
        match self {
            CallKind::Whoami => "session.v1.SessionService/Whoami",
            CallKind::Start => "session.v1.SessionService/Start",
            CallKind::Refresh => "session.v1.SessionService/Refresh",
            CallKind::Extend => "session.v1.SessionService/Extend",
            CallKind::RefreshAll => "session.v1.SessionService/RefreshAllForUser",
            CallKind::Health => "grpc.health.v1.Health/Check",
        }
    }

    /// Whether the call works on a prepared session of the worker.
    pub fn needs_session(self) -> bool {
        matches!(
            self,
            CallKind::Whoami | CallKind::Refresh | CallKind::Extend
        )
    }

    /// Whether the call works on a prepared user with several sessions.
    pub fn needs_user(self) -> bool {
        self == CallKind::RefreshAll
    }
}

/// One prepared session: its id and current tokens. Refresh replaces the tokens.
#[derive(Debug, Clone)]
pub struct Slot {
    pub session_id: String,
    pub session_token: String,
    pub refresh_token: String,
    /// A Refresh failed, so which refresh token is current is unknown: presenting the
    /// old one could be reuse. The slot is not used again.
    pub broken: bool,
}

impl Slot {
    /// The session a Start answered with; None when the answer holds no session.
    pub fn started(response: StartResponse) -> Option<Slot> {
        Some(Slot {
            session_id: response.session?.session_id,
            session_token: response.session_token,
            refresh_token: response.refresh_token,
            broken: false,
        })
    }
}

/// The credentials every SessionService call carries (health and reflection need none),
/// and the device key sessions are bound to with `--bound`.
#[derive(Clone, Default)]
pub struct Auth {
    bearer: Option<MetadataValue<Ascii>>,
    device: Option<Arc<DeviceSigner>>,
}

impl Auth {
    /// Calls carry `authorization: Bearer <key>`, as a `[[callers]]` API key.
    pub fn api_key(key: &str) -> Result<Auth, BoxError> {
        let bearer = format!("Bearer {key}")
            .parse()
            .map_err(|_| "--api-key must be printable ASCII")?;
        Ok(Auth {
            bearer: Some(bearer),
            device: None,
        })
    }

    /// These credentials, and a new device key every session is bound to.
    pub fn bound(self) -> Result<Auth, BoxError> {
        let device = DeviceSigner::generate_ed25519()?;
        Ok(Auth {
            device: Some(Arc::new(device)),
            ..self
        })
    }

    /// The device key's JWK for Start (empty: unbound).
    fn device_key(&self) -> String {
        self.device
            .as_ref()
            .map(|device| device.public_jwk_json())
            .unwrap_or_default()
    }

    /// `message` as a request with the credentials and, when bound, a DPoP proof of
    /// `token` for the call `kind`.
    fn proven<T>(&self, message: T, kind: CallKind, token: &str) -> Result<Request<T>, Status> {
        let mut request = self.request(message);
        if let Some(device) = &self.device {
            // Only the path of htu is compared on a direct call.
            let url = format!("http://sessiond/{}", kind.method());
            let proof = device
                .proof("POST", &url, token, None, now_ms())
                .map_err(|error| Status::internal(format!("signing a proof: {error}")))?;
            let proof = MetadataValue::try_from(proof)
                .map_err(|_| Status::internal("a proof is not ASCII"))?;
            request.metadata_mut().insert("dpop", proof);
        }
        Ok(request)
    }

    /// `message` as a request with the credentials attached.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(bearer) = &self.bearer {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        request
    }
}

/// The clients of one channel, with the credentials: every call the bench makes goes
/// through one, each bounded by `timeout` (DEADLINE_EXCEEDED after it).
#[derive(Clone)]
pub struct Caller {
    sessions: SessionServiceClient<Channel>,
    health: HealthClient<Channel>,
    auth: Auth,
    timeout: Duration,
}

impl Caller {
    /// Calls over `channel` with `auth`, each given `timeout` to answer.
    pub fn new(channel: &Channel, auth: &Auth, timeout: Duration) -> Caller {
        Caller {
            sessions: SessionServiceClient::new(channel.clone()),
            health: HealthClient::new(channel.clone()),
            auth: auth.clone(),
            timeout,
        }
    }

    /// `Whoami` with the slot's session token.
    pub async fn whoami(&mut self, slot: &Slot) -> Result<(), Status> {
        let message = WhoamiRequest {
            session_token: slot.session_token.clone(),
            client: None,
        };
        let request = self
            .auth
            .proven(message, CallKind::Whoami, &slot.session_token)?;
        bounded(self.timeout, self.sessions.whoami(request))
            .await
            .map(drop)
    }

    /// `Refresh` with the slot's refresh token: the slot takes the new pair, or is
    /// marked broken when the call fails (its current token is then unknown).
    pub async fn refresh(&mut self, slot: &mut Slot) -> Result<(), Status> {
        let message = RefreshRequest {
            refresh_token: slot.refresh_token.clone(),
            ..Default::default()
        };
        let request = self
            .auth
            .proven(message, CallKind::Refresh, &slot.refresh_token)?;
        match bounded(self.timeout, self.sessions.refresh(request)).await {
            Ok(response) => {
                let response = response.into_inner();
                slot.session_token = response.session_token;
                slot.refresh_token = response.refresh_token;
                Ok(())
            }
            Err(status) => {
                slot.broken = true;
                Err(status)
            }
        }
    }

    /// `Extend` of the slot's session, by id.
    pub async fn extend(&mut self, slot: &Slot) -> Result<(), Status> {
        let request = self.auth.request(ExtendRequest {
            session_id: slot.session_id.clone(),
            keep_alive_seconds: None,
        });
        bounded(self.timeout, self.sessions.extend(request))
            .await
            .map(drop)
    }

    /// A `Start` like a login: one user id, a device in the metadata.
    pub async fn start(&mut self, user_id: String) -> Result<StartResponse, Status> {
        let request = self.auth.request(StartRequest {
            user_id,
            metadata: [("device".to_owned(), "sessiond-bench".to_owned())].into(),
            device_key: self.auth.device_key(),
            ..Default::default()
        });
        bounded(self.timeout, self.sessions.start(request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// `RefreshAllForUser` of `user_id`.
    pub async fn refresh_all(&mut self, user_id: String) -> Result<(), Status> {
        let request = self.auth.request(RefreshAllForUserRequest {
            user_id,
            ..Default::default()
        });
        bounded(self.timeout, self.sessions.refresh_all_for_user(request))
            .await
            .map(drop)
    }

    /// One health Check of `session.v1.SessionService`; an answer other than SERVING
    /// counts as UNAVAILABLE.
    pub async fn health(&mut self) -> Result<(), Status> {
        let request = HealthCheckRequest {
            service: HEALTH_SERVICE.into(),
        };
        let response = bounded(self.timeout, self.health.check(request))
            .await?
            .into_inner();
        if response.status == ServingStatus::Serving as i32 {
            Ok(())
        } else {
            Err(Status::unavailable(format!(
                "health of {HEALTH_SERVICE} is {:?}, not SERVING",
                ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown)
            )))
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Awaits a call, giving up after `timeout` with DEADLINE_EXCEEDED.
async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<tonic::Response<T>, Status> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {timeout:?} (client timeout)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::CallKind;

    #[test]
    fn names_round_trip() {
        for kind in CallKind::ALL {
            assert_eq!(CallKind::from_name(kind.name()), Some(kind));
            assert_eq!(
                kind.to_possible_value()
                    .map(|value| value.get_name().to_owned()),
                Some(kind.name().to_owned())
            );
        }
    }
}
