//! A gateway process of a test (nginx or Caddy, configured from its block of
//! docs/gateways.md): a child on a loopback port, run from a temp dir of its own that
//! holds its config and its log, SIGKILLed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    /// Everything the gateway writes goes here.
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Gateway {
    /// Runs `command` (its config already written into `dir`), with its output in `log`
    /// under `dir`, and waits until it listens on `addr`.
    pub fn start(
        mut command: Command,
        dir: tempfile::TempDir,
        log: &str,
        addr: SocketAddr,
    ) -> Gateway {
        let log = dir.path().join(log);
        let output = std::fs::File::create(dir.path().join("output.log")).expect("output log");
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("output log"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {command:?}: {error}"));
        let mut gateway = Gateway {
            child,
            addr,
            dir,
            log,
        };
        gateway.wait_listening();
        gateway
    }

    /// What the gateway logged, and printed.
    pub fn log(&self) -> String {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        format!(
            "{}{}",
            read(&self.log),
            read(&self.dir.path().join("output.log"))
        )
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll gateway") {
                panic!("the gateway exited ({status}):\n{}", self.log());
            }
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the gateway does not listen on {}:\n{}",
            self.addr,
            self.log()
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first of `candidates` that runs with `version_arg`, or None.
pub fn binary(candidates: &[&str], version_arg: &str) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|binary| {
        Command::new(binary)
            .arg(version_arg)
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// None, after saying loudly that `what` was not tested, when `binary` is missing; under
/// CI (`CI` set) a missing binary fails instead.
pub fn installed(binary: Option<PathBuf>, what: &str, package: &str) -> Option<PathBuf> {
    if binary.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{package} is not installed: CI needs it for the {what} test (.ci/run installs it)"
        );
        eprintln!(
            "\n*** SKIPPED {what}: {package} is not installed, so GET /auth was NOT tested \
             behind it. Install it (Debian: apt-get install {package}) to run it. ***\n"
        );
    }
    binary
}

/// The one fenced block of language `lang` in docs/gateways.md, as written there.
pub fn documented_block(lang: &str) -> String {
    let docs = include_str!("../../../docs/gateways.md");
    let (_, after) = docs
        .split_once(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("docs/gateways.md has a {lang} block"));
    let (block, _) = after.split_once("```").expect("the block ends");
    block.to_owned()
}
