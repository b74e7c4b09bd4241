//! The real `sessiond` binary on a free loopback port, its log, and the API-key
//! helpers its callers need.

use super::*;

/// A loopback port nothing listens on (bound and released), below the kernel's
/// ephemeral range (32768 up by default): a port the kernel picks there can be taken by
/// any process's outgoing connection before the server binds it. Each test process
/// starts at its own offset and counts on, so parallel tests never pick the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(997) % SPAN;
    for _ in 0..SPAN {
        let candidate = FIRST + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = u16::try_from(candidate).expect("under 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN);
}

/// One run of the real `sessiond` binary on a free loopback port, its stderr appended
/// to a log file; SIGKILLed and reaped when dropped, so a failing test leaves no process
/// behind.
pub struct Daemon {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    log: std::path::PathBuf,
}

impl Daemon {
    /// Longest wait for the binary to exit (and for `terminate`'s SIGTERM to take).
    pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

    /// Longest wait for the binary to serve (longer than `PATIENCE`: on Redis it first
    /// connects to the store).
    pub const SERVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

    /// Longest wait for one call's answer from a client of `client()`: a hung call fails
    /// the test instead of hanging it.
    pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    /// Starts the binary on `data_dir` with `RUST_LOG=rust_log` and `args` (config,
    /// store flags ...).
    pub fn spawn<I, S>(
        data_dir: &std::path::Path,
        log: &std::path::Path,
        rust_log: &str,
        args: I,
    ) -> Daemon
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sessiond"))
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn sessiond");
        Daemon {
            child,
            addr,
            log: log.to_owned(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the binary wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How it exited, if it did.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("poll child")
    }

    /// Panics (with its log) if the process is gone.
    #[track_caller]
    pub fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.exited() {
            panic!("sessiond exited {when} ({status}):\n{}", self.log_text());
        }
    }

    /// A channel once the session service reports SERVING (bounded wait).
    pub async fn serving(&mut self) -> Channel {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
        let deadline = std::time::Instant::now() + Self::SERVE_PATIENCE;
        loop {
            self.assert_running("before it served");
            if let Ok(channel) = Channel::from_shared(self.url())
                .expect("url")
                .connect()
                .await
            {
                let health = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest {
                        service: "session.v1.SessionService".into(),
                    })
                    .await;
                if health.is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving) {
                    return channel;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sessiond did not serve within {:?}:\n{}",
                Self::SERVE_PATIENCE,
                self.log_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A fresh channel (for health), whose calls give up after `CALL_TIMEOUT`.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect_timeout(Self::CALL_TIMEOUT)
            .timeout(Self::CALL_TIMEOUT)
            .connect()
            .await
            .expect("connect to sessiond")
    }

    /// A client on a fresh connection (the process must be serving), whose calls fail
    /// DEADLINE_EXCEEDED or CANCELLED after `CALL_TIMEOUT` without an answer.
    pub async fn client(&self) -> Client {
        Client::new(self.channel().await)
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the killed child");
    }

    /// SIGTERM, and the exit status (bounded wait).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + Self::PATIENCE;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "sessiond did not stop within {:?} of SIGTERM:\n{}",
                    Self::PATIENCE,
                    self.log_text()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A no-op once `kill` or `terminate` reaped it: the child's exit status is known.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hex SHA-256 of an API key, as `api_key_sha256` in `[[callers]]` wants it.
pub fn sha256_hex(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `message` with the API key `key` in its `authorization` metadata.
pub fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii key"),
    );
    request
}
