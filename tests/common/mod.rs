//! Test harness: a real `sessiond` served in-process on a loopback port, with a temp
//! data dir and a `ManualClock`, reached through the generated client.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::sync::Arc;
use std::time::Duration;

use sessiond::config::Config;
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::server::{self, RunningServer};
use sessiond::session::clock::ManualClock;
use tempfile::TempDir;
use tonic::transport::Channel;

/// 2026-01-01T00:00:00Z: tests start their clock here, so timestamps are readable.
pub const START_MS: u64 = 1_767_225_600_000;

/// A running server, its clock and its data dir (deleted on drop).
pub struct TestServer {
    pub clock: Arc<ManualClock>,
    pub data_dir: TempDir,
    pub running: Option<RunningServer>,
    toml: String,
}

impl TestServer {
    /// Starts a server with the default config (no file).
    pub async fn start() -> TestServer {
        Self::with_config("").await
    }

    /// Starts a server whose config file holds `toml` (the data dir is set by the harness).
    pub async fn with_config(toml: &str) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(START_MS));
        let mut server = TestServer {
            clock,
            data_dir,
            running: None,
            toml: toml.to_owned(),
        };
        server.boot().await;
        server
    }

    /// The config the server runs with.
    pub fn config(&self) -> Config {
        let mut config = Config::from_toml_str(&self.toml).expect("valid test config");
        config.data_dir = self.data_dir.path().to_path_buf();
        config.listen = "127.0.0.1:0".parse().expect("loopback address");
        config
    }

    async fn boot(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let running = server::start(&self.config(), self.clock.clone(), listener)
            .await
            .expect("server starts");
        self.running = Some(running);
    }

    /// The running server (panics after `stop`).
    pub fn running(&self) -> &RunningServer {
        self.running.as_ref().expect("server is running")
    }

    /// `http://127.0.0.1:PORT` of the running server.
    pub fn url(&self) -> String {
        format!("http://{}", self.running().local_addr())
    }

    /// A fresh connected client.
    pub async fn client(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel().await)
    }

    /// A fresh connected channel (for health and reflection clients).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("valid url")
            .connect()
            .await
            .expect("connect to test server")
    }

    /// Graceful stop: drains calls, flushes and closes the store.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
    }

    /// Stops and starts again on the same data dir (and the same clock).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}
