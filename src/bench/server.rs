//! A `torpor --serve` the benchmark starts as a child process on a temporary data directory,
//! with authentication off on loopback, and drives through the API client.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::api::Client;
use crate::model::ObjectKey;

pub struct BenchServer {
    child: Child,
    pub address: SocketAddr,
    pub client: Client,
}

/// The configuration every benchmark server runs with, in the given durability mode.
pub fn config(durability: &str) -> String {
    format!(
        r#"[runtime]
durability = "{durability}"
[limits]
max_active_objects = 5000
max_queued_calls = 100000
max_connections = 20000
[classes.counter]
builtin = "counter"
idle_timeout = "10m"
[classes.lazy]
builtin = "counter"
idle_timeout = "300ms"
warm_for = "0s"
[classes.warm]
builtin = "counter"
idle_timeout = "150ms"
warm_for = "10m"
[classes.session]
builtin = "session"
idle_timeout = "10m"
warm_for = "0s"
"#
    )
}

impl BenchServer {
    /// Starts a server on `data_dir` with `config`, and waits until it answers.
    pub async fn start(
        program: &Path,
        data_dir: &Path,
        config: &str,
    ) -> anyhow::Result<BenchServer> {
        std::fs::create_dir_all(data_dir)?;
        let config_path = data_dir.join("bench.toml");
        std::fs::write(&config_path, config)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = std::fs::File::create(data_dir.join("server.log"))?;
        let child = Command::new(program)
            .args([
                "--serve",
                "--no-auth",
                "--listen",
                &address.to_string(),
                "--data-dir",
            ])
            .arg(data_dir)
            .arg("--config")
            .arg(&config_path)
            // The operator's tokens would conflict with --no-auth.
            .env_remove("TORPOR_TOKEN")
            .env_remove("TORPOR_READ_TOKEN")
            .env("TORPOR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let client = Client::new(&format!("http://{address}"), None)?;
        let server = BenchServer {
            child,
            address,
            client,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.client.health().await.is_err() {
            if Instant::now() > deadline {
                bail!(
                    "the benchmark server did not start; see {}",
                    data_dir.join("server.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }

    /// The address the handler of `key` listens on, waking it if needed.
    pub async fn handler_address(&self, key: &ObjectKey) -> anyhow::Result<SocketAddr> {
        let record = self.client.wake(key).await?;
        let sandbox = record.sandbox.context("an active object has a sandbox")?;
        Ok(sandbox.address.parse()?)
    }

    /// Resident memory of the server process, in bytes.
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }

    /// Stops the server with SIGTERM, which hibernates its objects, and waits for it.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on the child this benchmark started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
