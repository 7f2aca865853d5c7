//! Test support: real `redis-server` processes on free local ports, standalone or as a
//! three-master cluster. Tests skip with a message when the binaries are missing, and
//! fail when the `CI` environment variable is set.

#![doc(hidden)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` the test owns; killed on drop.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    cluster: bool,
}

fn binary_missing(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_err()
}

/// Skips (or, under CI, fails) when a binary is missing.
fn require(names: &[&str]) -> bool {
    let missing: Vec<_> = names.iter().filter(|n| binary_missing(n)).collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("{missing:?} not found (Debian: apt-get install redis-server)");
    if std::env::var_os("CI").is_some() {
        panic!("{message}; CI must install it");
    }
    eprintln!("skipped: {message}");
    false
}

/// A loopback port nobody listens on now (below 55000: a cluster node's bus port is its
/// port + 10000).
pub fn free_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 55000 {
            return port;
        }
    }
}

async fn answers_ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").await.is_ok()
        && tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut reply))
            .await
            .is_ok_and(|r| r.is_ok())
        && &reply == b"+PONG\r\n"
}

impl RedisServer {
    /// A standalone server, or `None` (after saying why) when `redis-server` is missing.
    pub async fn start_or_skip() -> Option<Self> {
        if !require(&["redis-server"]) {
            return None;
        }
        let mut server = Self::new(free_port(), false);
        server.start().await;
        Some(server)
    }

    fn new(port: u16, cluster: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("pv-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            port,
            dir,
            child: None,
            cluster,
        }
    }

    /// The running server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// (Re)starts the server on its port, waiting until it answers.
    pub async fn start(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.cluster {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{}.conf", self.port),
            ]);
        }
        self.child = Some(command.spawn().expect("redis-server starts"));
        for _ in 0..200 {
            if answers_ping(self.port).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {} did not answer", self.port);
    }

    /// Kills the server (an outage); `start` brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`true`) or thaws (`false`) the server: a hung Redis that accepts
    /// connections but never answers.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// How many keys the server holds.
    pub async fn key_count(&self) -> usize {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut self.connection().await)
            .await
            .unwrap();
        keys.len()
    }

    /// Keys that would live forever (`PTTL` -1).
    pub async fn keys_without_ttl(&self) -> Vec<String> {
        let mut connection = self.connection().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut connection)
            .await
            .unwrap();
        let mut forever = Vec::new();
        for key in keys {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            if ttl == -1 {
                forever.push(key);
            }
        }
        forever
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.freeze(false);
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three masters joined into a Redis Cluster with `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start_or_skip() -> Option<Self> {
        if !require(&["redis-server", "redis-cli"]) {
            return None;
        }
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let mut node = RedisServer::new(free_port(), true);
            node.start().await;
            nodes.push(node);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            created.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        for _ in 0..200 {
            let info = Command::new("redis-cli")
                .args(["-p", &nodes[0].port.to_string(), "cluster", "info"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                return Some(Self { nodes });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cluster did not become ready");
    }

    /// The seed URLs, comma-separated, for `store.redis_url`.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
