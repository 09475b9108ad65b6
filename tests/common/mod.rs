//! Shared test helpers: a real `torpor --serve` on a loopback port with its own data
//! directory, and a runtime embedded through the Rust API. Every test uses real handler
//! processes and a real SQLite file.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use torpor::config::Config;
use torpor::runtime::{Runtime, RuntimeOptions};

/// The full API token every test server requires.
pub const TOKEN: &str = "test-token-0123456789abcdef";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_torpor"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Returns a configuration with short timeouts for tests, with `extra` TOML appended.
pub fn test_config(extra: &str) -> String {
    format!(
        r#"
[runtime]
stop_grace = "1s"
shutdown_grace = "3s"

[defaults]
idle_timeout = "30s"
wake_timeout = "5s"

[classes.counter]
builtin = "counter"

[classes.kv]
builtin = "kv"
{extra}
"#
    )
}

/// Starts a runtime in-process on `dir` with the given configuration text.
pub async fn runtime(dir: &Path, config: &str) -> Runtime {
    let config =
        Config::parse(config, Path::new(env!("CARGO_MANIFEST_DIR"))).expect("test config is valid");
    Runtime::start(RuntimeOptions {
        config,
        data_dir: dir.to_path_buf(),
        host_program: bin(),
    })
    .await
    .expect("runtime starts")
}

/// A `torpor --serve` child process.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts a server on `data_dir`, with `config` written to a file when given.
    pub async fn start(data_dir: &Path, config: Option<&str>) -> Server {
        let config_path = config.map(|text| {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        Self::start_with(data_dir, config_path).await
    }

    pub async fn start_with(data_dir: &Path, config: Option<PathBuf>) -> Server {
        Self::start_on(data_dir, config, free_port()).await
    }

    /// Starts a server on `data_dir` listening on `port`.
    pub async fn start_on(data_dir: &Path, config: Option<PathBuf>, port: u16) -> Server {
        Self::start_with_env(data_dir, config, port, &[]).await
    }

    /// Starts a server on `data_dir` listening on `port`, with `vars` added to its
    /// environment.
    pub async fn start_with_env(
        data_dir: &Path,
        config: Option<PathBuf>,
        port: u16,
        vars: &[(&str, &str)],
    ) -> Server {
        let mut command = Command::new(bin());
        command
            .arg("--serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .env("TORPOR_TOKEN", TOKEN)
            .env("TORPOR_LOG", "info")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data_dir.with_extension("log"))
                    .unwrap(),
            ));
        if let Some(config) = &config {
            command.arg("--config").arg(config);
        }
        let child = command.spawn().expect("torpor starts");
        let server = Server {
            child,
            port,
            data_dir: data_dir.to_path_buf(),
            config,
            http: authorized_client(),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = self.http.get(self.url("/v1/health")).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "server on port {} did not become ready; log: {}",
            self.port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn call(&self, class: &str, id: &str, method: &str, body: &str) -> (u16, Value) {
        self.post(&format!("/v1/objects/{class}/{id}/call/{method}"), body)
            .await
    }

    /// Sends `signal` and waits for the process to exit.
    pub fn stop(&mut self, signal: i32) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the child this test started.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        self.child.wait().unwrap()
    }

    /// Stops this server with `signal` and starts another on the same data directory and port.
    pub async fn restart(mut self, signal: i32) -> Server {
        self.stop(signal);
        let data_dir = self.data_dir.clone();
        let config = self.config.clone();
        Server::start_on(&data_dir, config, self.port).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the child this test started.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

/// An HTTP client that sends the test token with every request.
pub fn authorized_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Returns whether a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid as i32, 0) } == 0;
    if !exists {
        return false;
    }
    // A zombie has exited; only its parent has not collected it yet.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .trim_start()
        .starts_with('Z')
}

/// Polls `check` every 10 ms until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}
