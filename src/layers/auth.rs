//! Caller authentication: who is calling (an API key sent as `authorization: Bearer …`,
//! or the subject of a verified client certificate), checked against the call's
//! permission before the body is read, then left for the handlers in the request's
//! extensions (`crate::caller`). With no callers configured, every call passes (the
//! server then refuses to listen beyond loopback). Health and reflection stay open.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{ready, Either, Ready};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use strum::{IntoEnumIterator, VariantNames};
use subtle::ConstantTimeEq;
use tonic::codegen::http;
use tonic::transport::server::TlsConnectInfo;
use tonic::Status;
use tower::{Layer, Service};

use super::connections::ConnectionInfo;
use crate::caller::{Caller, Permission};
use crate::session::GroupAccess;

/// One caller as written in the config file (`[[callers]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// Name used in logs and errors.
    pub name: String,
    /// Hex SHA-256 of the caller's API key (the key itself is never stored).
    #[serde(default)]
    pub api_key_sha256: Option<String>,
    /// Common name of the caller's client certificate (mTLS).
    #[serde(default)]
    pub cert_subject: Option<String>,
    /// Calls it may make, by name (`Whoami`, `LogoutAll`, …), or `"*"` for all.
    pub calls: Vec<String>,
    /// Groups whose sessions it may touch; absent: all groups.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

/// Why the callers in the config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CallerConfigError {
    #[error("caller {0:?}: api_key_sha256 must be 64 hex digits (sha256sum of the key)")]
    BadKeyHash(String),
    #[error("caller {0:?}: needs api_key_sha256 or cert_subject")]
    NoCredential(String),
    #[error("caller {caller:?}: unknown call {call:?} (known: {}, *)", Permission::VARIANTS.join(", "))]
    UnknownCall { caller: String, call: String },
    #[error("two callers share the credential of {0:?}")]
    Duplicate(String),
}

/// Every configured caller, by credential.
#[derive(Clone, Debug, Default)]
pub struct Callers {
    by_key_hash: Vec<([u8; 32], Caller)>,
    by_subject: HashMap<String, Caller>,
}

impl Callers {
    /// Checks and indexes the configured callers.
    pub fn new(configs: &[CallerConfig]) -> Result<Callers, CallerConfigError> {
        let mut callers = Callers::default();
        for config in configs {
            let caller = Caller::new(
                config.name.clone(),
                permissions(config)?,
                match &config.groups {
                    Some(groups) => GroupAccess::Only(groups.iter().cloned().collect()),
                    None => GroupAccess::All,
                },
            );
            if config.api_key_sha256.is_none() && config.cert_subject.is_none() {
                return Err(CallerConfigError::NoCredential(config.name.clone()));
            }
            if let Some(hex) = &config.api_key_sha256 {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(hex.trim(), &mut hash)
                    .map_err(|_| CallerConfigError::BadKeyHash(config.name.clone()))?;
                if callers.by_key_hash.iter().any(|(known, _)| *known == hash) {
                    return Err(CallerConfigError::Duplicate(config.name.clone()));
                }
                callers.by_key_hash.push((hash, caller.clone()));
            }
            if let Some(subject) = &config.cert_subject {
                if callers.by_subject.insert(subject.clone(), caller).is_some() {
                    return Err(CallerConfigError::Duplicate(config.name.clone()));
                }
            }
        }
        Ok(callers)
    }

    /// Whether any caller is configured (else authentication is off).
    pub fn is_empty(&self) -> bool {
        self.by_key_hash.is_empty() && self.by_subject.is_empty()
    }

    /// Whether any caller authenticates with an API key.
    pub fn uses_api_keys(&self) -> bool {
        !self.by_key_hash.is_empty()
    }

    fn identify<B>(&self, request: &http::Request<B>) -> Result<&Caller, Status> {
        if let Some(value) = request.headers().get(http::header::AUTHORIZATION) {
            let key = value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    Status::unauthenticated("authorization must be \"Bearer <api key>\"")
                })?;
            let hash: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
            return self
                .by_key_hash
                .iter()
                .find(|(known, _)| bool::from(known.ct_eq(&hash)))
                .map(|(_, caller)| caller)
                .ok_or_else(|| Status::unauthenticated("unknown API key"));
        }
        if let Some(subject) = client_cert_subject(request) {
            return self.by_subject.get(&subject).ok_or_else(|| {
                Status::permission_denied(format!(
                    "client certificate {subject:?} is not a configured caller"
                ))
            });
        }
        Err(Status::unauthenticated(
            "no credentials: send \"authorization: Bearer <api key>\" or a client certificate",
        ))
    }
}

fn permissions(config: &CallerConfig) -> Result<BTreeSet<Permission>, CallerConfigError> {
    let mut permissions = BTreeSet::new();
    for call in &config.calls {
        if call == "*" {
            permissions.extend(Permission::iter());
        } else {
            permissions.insert(call.parse().map_err(|_| CallerConfigError::UnknownCall {
                caller: config.name.clone(),
                call: call.clone(),
            })?);
        }
    }
    Ok(permissions)
}

/// The common name of the verified client certificate, if the peer sent one.
fn client_cert_subject<B>(request: &http::Request<B>) -> Option<String> {
    let certs = request
        .extensions()
        .get::<TlsConnectInfo<ConnectionInfo>>()?
        .peer_certs()?;
    let (_, cert) = x509_parser::parse_x509_certificate(certs.first()?.as_ref()).ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(name.to_owned())
}

/// Wraps a service with [`CallerAuth`].
#[derive(Clone, Debug)]
pub struct CallerAuthLayer {
    callers: Arc<Callers>,
}

impl CallerAuthLayer {
    /// Authenticates against `callers` (none: every call passes).
    pub fn new(callers: Callers) -> CallerAuthLayer {
        CallerAuthLayer {
            callers: Arc::new(callers),
        }
    }
}

impl<S> Layer<S> for CallerAuthLayer {
    type Service = CallerAuth<S>;

    fn layer(&self, inner: S) -> CallerAuth<S> {
        CallerAuth {
            inner,
            callers: self.callers.clone(),
        }
    }
}

/// Identifies the caller, checks its permission for the call, and hands the
/// [`Caller`] to the handler in the request's extensions.
#[derive(Clone, Debug)]
pub struct CallerAuth<S> {
    inner: S,
    callers: Arc<Callers>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CallerAuth<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        if self.callers.is_empty() {
            return Either::Right(self.inner.call(request));
        }
        let caller = match Permission::for_path(request.uri().path()) {
            Ok(None) => return Either::Right(self.inner.call(request)),
            Ok(Some(permission)) => self.callers.identify(&request).and_then(|caller| {
                caller.authorize(permission)?;
                Ok(caller.clone())
            }),
            Err(status) => Err(status),
        };
        match caller {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Either::Right(self.inner.call(request))
            }
            Err(status) => Either::Left(ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(calls: &[&str]) -> CallerConfig {
        CallerConfig {
            name: "edge".into(),
            api_key_sha256: Some(hex::encode(Sha256::digest(b"key-1"))),
            cert_subject: None,
            calls: calls.iter().map(|c| c.to_string()).collect(),
            groups: None,
        }
    }

    fn request(key: Option<&str>) -> http::Request<()> {
        let mut request = http::Request::new(());
        if let Some(key) = key {
            request.headers_mut().insert(
                http::header::AUTHORIZATION,
                format!("Bearer {key}").parse().expect("ascii"),
            );
        }
        request
    }

    #[test]
    fn a_known_key_names_its_caller() {
        let callers = Callers::new(&[caller(&["Whoami"])]).expect("valid");
        let found = callers.identify(&request(Some("key-1"))).expect("known");
        assert_eq!(found.name(), "edge");
        assert!(found.may(Permission::Whoami));
        assert!(!found.may(Permission::Start));
    }

    #[test]
    fn unknown_or_missing_keys_are_unauthenticated() {
        let callers = Callers::new(&[caller(&["*"])]).expect("valid");
        for key in [Some("key-2"), None] {
            let status = callers.identify(&request(key)).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
        }
    }

    #[test]
    fn unknown_call_names_are_config_errors() {
        assert!(Callers::new(&[caller(&["Whoamy"])]).is_err());
    }

    #[test]
    fn the_unknown_call_error_lists_every_known_name() {
        let error = Callers::new(&[caller(&["Whoamy"])]).expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "caller \"edge\": unknown call \"Whoamy\" (known: Start, Refresh, Extend, \
             Whoami, Logout, LogoutAll, RefreshAllForUser, ListUserSessions, WatchSessions, \
             Reauthenticate, UpdateAttributes, RotateSigningKey, Backup, ListRevocations, \
             ExtAuthz, RevokeUserSessions, ListSessions, RevokeSessions, *)"
        );
        assert!(Callers::new(&[caller(&["ExtAuthz", "ListRevocations"])]).is_ok());
    }

    #[test]
    fn a_key_hash_must_be_64_hex_digits() {
        let mut config = caller(&["*"]);
        config.api_key_sha256 = Some("ab".repeat(31));
        assert!(matches!(
            Callers::new(&[config]),
            Err(CallerConfigError::BadKeyHash(_))
        ));
    }
}
