//! Redis servers of a test's own, in memory on free loopback ports, that it may kill,
//! freeze and thaw: one standalone server, or a 3-master Redis Cluster.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

/// A `redis-server` child of the test (in memory, loopback only), SIGKILLed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a standalone redis-server on `port` with its files in `dir`, and waits
    /// until it answers.
    pub fn start(port: u16, dir: &Path) -> RedisServer {
        RedisServer::launch(port, dir, &[])
    }

    fn launch(port: u16, dir: &Path, extra: &[&str]) -> RedisServer {
        std::fs::create_dir_all(dir).expect("redis dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("redis.log"))
            .expect("open redis log");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (is it on PATH? see scripts/redis-test-env.sh)");
        let mut server = RedisServer {
            child,
            port,
            dir: dir.to_owned(),
        };
        server.wait_answering();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Whether it answers PING with PONG.
    fn pong(&self) -> bool {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn wait_answering(&mut self) {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("poll redis-server") {
                panic!("redis-server exited ({status}):\n{}", self.log_text());
            }
            if self.pong() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server does not answer:\n{}", self.log_text());
    }

    /// SIGSTOP: the server keeps its connections open and answers nothing, as a hung or
    /// partitioned node does.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after `freeze`.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} redis-server");
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL redis-server");
        self.child.wait().expect("reap redis-server");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 3-master Redis Cluster (no replicas) of the test's own.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers under `dir`, joins them with
    /// `redis-cli --cluster create`, and waits until every node sees the cluster ok.
    pub fn start(dir: &Path) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|n| {
                // The bus port would be port + 10000, past 65535 for many free ports.
                let bus_port = free_port().to_string();
                RedisServer::launch(
                    free_port(),
                    &dir.join(format!("node-{n}")),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-port",
                        &bus_port,
                    ],
                )
            })
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = RedisCluster { nodes };
        for _ in 0..300 {
            if cluster.nodes.iter().all(|node| cluster_ok(node.port)) {
                return cluster;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the test cluster does not become ok");
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// Whether the node on `port` sees every slot of the cluster assigned and the state ok.
fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "cluster",
            "info",
        ])
        .output()
        .is_ok_and(|output| {
            let info = String::from_utf8_lossy(&output.stdout);
            info.contains("cluster_state:ok") && info.contains("cluster_slots_assigned:16384")
        })
}
