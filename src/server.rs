//! Assembles the process: store, session rules, gRPC services with their layers,
//! health and reflection, the sweeper, and a graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::server::HealthReporter;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};

use crate::api::quotas::Quotas;
use crate::api::SessionApi;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, TlsConfig};
use crate::gateway::ext_authz::{ExtAuthz, MAX_CHECK_REQUEST_BYTES};
use crate::gateway::Gatekeeper;
use crate::layers::request_id::{self, NewRequestId};
use crate::layers::{
    BoundedIncoming, CallLimitsLayer, CallLogLayer, CallTrackingLayer, CallerAuthLayer,
    ClientFaultsLayer, WithVersion,
};
use crate::proto::session::v1::session_service_server::SessionServiceServer;
use crate::session::manager::Signer;
use crate::session::{SessionError, SessionManager};
use crate::signing::{KeyFiles, KeyRing, KeyVault, SigningError};
use crate::store::redis::RedisStore;
use crate::store::sled::SledStore;
use crate::store::{ConsistencyReport, SessionStore, StoreError, StoreKind};

/// How long a stop waits for connections to drain before it closes them.
const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Signing(#[from] SigningError),
    #[error("reading the newest session: {0}")]
    Session(#[from] crate::session::SessionError),
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot read {path}: {source}")]
    ReadTls {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    #[error("server task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("stopped: the session store cannot write ({0}); restart once the disk is fixed")]
    StoreFault(String),
}

/// A server serving on its listener, until `stop`.
pub struct RunningServer {
    local_addr: SocketAddr,
    manager: Arc<SessionManager>,
    sweep_batch: usize,
    health: HealthReporter,
    stopping: watch::Sender<bool>,
    serving: JoinHandle<Result<(), tonic::transport::Error>>,
    sweeping: JoinHandle<()>,
    admin: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
}

/// Opens the store in `config.data_dir` and serves on `listener` with `clock`.
pub async fn start(
    config: &Config,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
) -> Result<RunningServer, ServerError> {
    let admin_listener = match config.metrics_listen {
        Some(addr) => {
            // Installed before anything records, so no early count is lost.
            crate::metrics::prometheus();
            Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            )
        }
        None => None,
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    // Signing keys live beside the sessions: in the data dir with sled, shared by every
    // server in Redis.
    let (store, vault): (Arc<dyn SessionStore>, Box<dyn KeyVault>) = match config.store {
        StoreKind::Sled => (
            SledStore::open_with(&config.data_dir, config.durability, &config.sled)?,
            Box::new(KeyFiles::new(config.data_dir.join("keys"))?),
        ),
        StoreKind::Redis => {
            let store = RedisStore::connect(&config.redis, clock.clone()).await?;
            let vault = Box::new(store.key_vault());
            (store, vault)
        }
    };
    let keys = Arc::new(KeyRing::open(vault).await?);
    // Held refusals count as calls in flight: they may take at most half the slots.
    let quotas = Arc::new(Quotas::new(
        &config.quotas,
        &clock,
        config.limits.calls.max_in_flight / 2,
    ));
    let manager = Arc::new(
        SessionManager::new(
            store,
            config.policies.clone(),
            clock,
            config.session.clone(),
        )
        .with_signer(Signer {
            keys: keys.clone(),
            issuer: config.jwt_issuer.clone(),
        }),
    );
    manager.resume_session_ids().await?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;

    let gatekeeper = Arc::new(Gatekeeper::new(manager.clone(), config.gateway.clone()));
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<SessionServiceServer<SessionApi>>()
        .await;
    health.set_serving::<AuthorizationServer<ExtAuthz>>().await;
    let api = SessionApi::new(
        manager.clone(),
        config.limits.request.clone(),
        config.limits.calls.call_timeout,
        config.watch_stall_timeout,
    )
    .with_quotas(quotas.clone());
    let (stopping, mut stop_serving) = watch::channel(false);
    // Outermost first: every call counts as in flight on its connection (which is then
    // not idle) until its answer ends; every call gets a request id (the caller's if
    // usable) that its answer carries back; every call is logged and counted, even a shed or
    // refused one, with its code as the caller sees it (after tonic's client faults are
    // re-labelled); shedding comes before authentication so overload costs no hashing;
    // the caller reaches the handlers through the request's extensions.
    let layers = tower::ServiceBuilder::new()
        .layer(CallTrackingLayer)
        .map_request(request_id::drop_unusable::<tonic::body::Body>)
        .layer(SetRequestIdLayer::new(request_id::REQUEST_ID, NewRequestId))
        .layer(PropagateRequestIdLayer::new(request_id::REQUEST_ID))
        .layer(CallLogLayer::new(config.call_log))
        .layer(ClientFaultsLayer)
        .layer(CallLimitsLayer::new(config.limits.calls))
        .layer(CallerAuthLayer::new(config.callers.clone()))
        .into_inner();
    let connections = &config.connections;
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(connections.keepalive_interval))
        .http2_keepalive_timeout(Some(connections.keepalive_timeout))
        .max_concurrent_streams(connections.max_concurrent_streams);
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(server_tls(tls)?)?;
    } else if config.callers.uses_api_keys() && !config.listen.ip().is_loopback() {
        tracing::warn!("API keys configured without [tls]: keys cross the network in clear text");
    }
    let router = builder
        .layer(layers)
        .add_service(WithVersion(health_service))
        .add_optional_service(
            // Both reflection versions: grpcurl and ghz of different ages ask for either.
            config
                .reflection
                .then(|| reflection().build_v1().map(WithVersion))
                .transpose()?,
        )
        .add_optional_service(
            config
                .reflection
                .then(|| reflection().build_v1alpha().map(WithVersion))
                .transpose()?,
        )
        .add_service(
            SessionServiceServer::new(api)
                .max_decoding_message_size(config.limits.request.max_request_bytes),
        )
        .add_service(
            AuthorizationServer::new(ExtAuthz::new(gatekeeper.clone()))
                .max_decoding_message_size(MAX_CHECK_REQUEST_BYTES),
        );
    let serving = tokio::spawn(router.serve_with_incoming_shutdown(
        // Without TCP_NODELAY an answer that follows a flush waits for the client's
        // delayed ACK (~40 ms): tonic sets it only on listeners it binds itself.
        BoundedIncoming::new(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            connections.clone(),
        ),
        async move {
            // An error means the sender is gone: stop then too.
            let _ = stop_serving.wait_for(|stop| *stop).await;
        },
    ));
    // Ends by itself at stop; nothing to flush.
    tokio::spawn(quotas.forget_idle_forever(stopping.subscribe()));
    let sweeping = tokio::spawn(sweep_forever(
        manager.clone(),
        keys.clone(),
        config.sweeper.clone(),
        stopping.subscribe(),
    ));
    let admin = match admin_listener {
        Some(listener) => {
            let addr = listener.local_addr().map_err(|source| ServerError::Bind {
                addr: local_addr,
                source,
            })?;
            tracing::info!(%addr, "metrics at http://{addr}/metrics");
            let task = tokio::spawn(crate::admin::serve(
                listener,
                keys.clone(),
                gatekeeper,
                stopping.subscribe(),
            ));
            Some((addr, task))
        }
        None => None,
    };
    tracing::info!(%local_addr, data_dir = %config.data_dir.display(), store = ?config.store, durability = ?config.durability, "serving");
    Ok(RunningServer {
        local_addr,
        manager,
        sweep_batch: config.sweeper.batch_size,
        health,
        stopping,
        serving,
        sweeping,
        admin,
    })
}

fn server_tls(tls: &TlsConfig) -> Result<ServerTlsConfig, ServerError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ServerError::ReadTls {
            path: path.to_owned(),
            source,
        })
    };
    let mut config =
        ServerTlsConfig::new().identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
    if let Some(ca) = &tls.client_ca {
        config = config
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(true);
    }
    Ok(config)
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(crate::proto::ENVOY_EXT_AUTHZ_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Sweeps expired sessions and learns signing keys other servers added, every interval.
async fn sweep_forever(
    manager: Arc<SessionManager>,
    keys: Arc<KeyRing>,
    config: crate::config::SweeperConfig,
    mut stopping: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        match manager.sweep(config.batch_size).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "swept expired sessions"),
            Err(error) => tracing::error!(%error, "sweep failed"),
        }
        if let Err(error) = keys.reload().await {
            tracing::warn!(%error, "cannot reload signing keys");
        }
    }
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the admin HTTP port (metrics), when it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(addr, _)| *addr)
    }

    /// Runs one full sweep now, by the server's clock; returns how many it deleted.
    pub async fn sweep_now(&self) -> Result<usize, SessionError> {
        self.manager.sweep(self.sweep_batch).await
    }

    /// Scans the store and reports how records and indexes agree.
    pub async fn check_consistency(&self) -> Result<ConsistencyReport, StoreError> {
        self.manager.store().check_consistency().await
    }

    /// Resolves once the store can no longer write (see `Persistence::write_fault`),
    /// with the detail, after turning health NOT_SERVING: a server that cannot write
    /// never reports SERVING. Pending forever on a store that never faults.
    pub async fn store_fault(&self) -> String {
        let mut fault = self.manager.store().write_fault();
        let detail = match fault.wait_for(Option::is_some).await {
            Ok(detail) => detail.clone().unwrap_or_default(),
            Err(_) => return std::future::pending().await,
        };
        self.health
            .set_not_serving::<SessionServiceServer<SessionApi>>()
            .await;
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        detail
    }

    /// Stops accepting, finishes the calls in flight, stops the sweeper, flushes.
    pub async fn stop(self) -> Result<(), ServerError> {
        self.health
            .set_not_serving::<SessionServiceServer<SessionApi>>()
            .await;
        self.health
            .set_not_serving::<AuthorizationServer<ExtAuthz>>()
            .await;
        // Watch streams never end by themselves: end them so the server can drain.
        self.manager.close_watchers();
        // Both receivers may be gone already; the tasks are awaited below either way.
        let _ = self.stopping.send(true);
        // Calls in flight finish; a connection that still has not drained by the
        // deadline (a client that stopped reading its stream) is cut.
        let mut serving = self.serving;
        match tokio::time::timeout(DRAIN_DEADLINE, &mut serving).await {
            Ok(served) => served??,
            Err(_) => {
                tracing::warn!(
                    deadline_ms = DRAIN_DEADLINE.as_millis() as u64,
                    "connections did not drain in time: closing them"
                );
                serving.abort();
            }
        }
        self.sweeping.await?;
        if let Some((addr, admin)) = self.admin {
            if let Err(error) = admin.await? {
                tracing::warn!(%addr, %error, "admin port stopped with an error");
            }
        }
        self.manager.store().flush().await?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Serves `config` on the system clock until SIGINT or SIGTERM, then stops gracefully.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let running = start(&config, Arc::new(SystemClock), listener).await?;
    tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            tracing::info!("shutdown signal: draining calls");
            running.stop().await
        }
        detail = running.store_fault() => {
            // The calls in flight still get their answers; the store's last flush may
            // fail like the write did, and what it held unacknowledged is not owed.
            if let Err(error) = running.stop().await {
                tracing::warn!(%error, "stop after the store fault");
            }
            Err(ServerError::StoreFault(detail))
        }
    }
}

async fn shutdown_signal() -> Result<(), ServerError> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServerError::Signal)?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.map_err(ServerError::Signal),
        _ = terminate.recv() => Ok(()),
    }
}
