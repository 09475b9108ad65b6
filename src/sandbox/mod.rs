//! Sandboxes: where an object's handler runs, behind one driver trait.
//!
//! The runtime calls a [`SandboxDriver`] to start a sandbox for an object, learns the address its
//! handler serves on and when it exits, and stops it at hibernation. The trait carries no
//! process-specific types, so container and Kubernetes drivers can implement it too.

pub mod container;
pub mod isolation;
pub mod pidfd;
pub mod process;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::config::ClassConfig;
use crate::model::ObjectKey;

pub use container::ContainerDriver;
pub use process::ProcessDriver;

/// A sandbox's name: `{class}.{oid}`, where `oid` is the object's row id in the store.
///
/// Class names never contain `.` and row ids are never reused, so two objects never share a
/// name, whatever characters their ids hold (`a-b/c` and `a/b-c` get different names).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SandboxName(String);

impl SandboxName {
    pub fn new(key: &ObjectKey, oid: i64) -> Self {
        Self(format!("{}.{oid}", key.class))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts a name read back from disk only if it has the `{class}.{oid}` shape.
    pub fn from_existing(name: &str) -> Option<Self> {
        let (class, oid) = name.split_once('.')?;
        crate::model::ClassName::parse(class).ok()?;
        oid.parse::<u64>().ok()?;
        Some(Self(name.to_owned()))
    }
}

impl fmt::Display for SandboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The inputs a driver needs to start one object's sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub name: SandboxName,
    /// The object's row id, from which a per-object user id is derived.
    pub oid: i64,
    pub key: ObjectKey,
    pub generation: u64,
    pub class: Arc<ClassConfig>,
}

/// A sandbox's exit, as its driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// e.g. `exit status 1` or `killed by signal 9 (SIGKILL)`.
    pub detail: String,
}

/// A synchronous check that a sandbox has ended, for the moment between its end and the
/// driver's notification of it.
pub trait ExitProbe: Send + Sync + fmt::Debug {
    /// Whether the sandbox has ended; must be cheap enough to run before every call.
    fn has_exited(&self) -> bool;
}

/// How long to wait for a driver's report of an exit that has happened: a process driver
/// reports within microseconds, a container engine within a second or so.
const REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A started sandbox. Cloning shares the exit notification.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub name: SandboxName,
    pub address: SocketAddr,
    pub pid: Option<u32>,
    /// The engine's name for it, for sandboxes that are containers.
    pub container: Option<String>,
    exit: watch::Receiver<Option<ExitInfo>>,
    probe: Option<Arc<dyn ExitProbe>>,
}

impl Sandbox {
    pub fn new(
        name: SandboxName,
        address: SocketAddr,
        pid: Option<u32>,
        exit: watch::Receiver<Option<ExitInfo>>,
        probe: Option<Arc<dyn ExitProbe>>,
    ) -> Self {
        Self {
            name,
            address,
            pid,
            container: None,
            exit,
            probe,
        }
    }

    /// Names the container the sandbox is.
    pub fn in_container(mut self, name: String) -> Self {
        self.container = Some(name);
        self
    }

    /// Returns how it ended, or `None` while it runs. A sandbox that ended a moment ago but whose driver has not
    /// reported it yet counts as ended, so no call is sent to it.
    pub fn exited(&self) -> Option<ExitInfo> {
        if let Some(info) = self.exit.borrow().clone() {
            return Some(info);
        }
        match &self.probe {
            Some(probe) if probe.has_exited() => Some(ExitInfo {
                detail: "the process ended".into(),
            }),
            _ => None,
        }
    }

    /// Returns how it ended, waiting up to two seconds for the driver's report when only the
    /// probe has seen the exit.
    pub async fn exit_detail(&self) -> String {
        let reported = tokio::time::timeout(REPORT_WAIT, self.wait_exit());
        match reported.await {
            Ok(info) => info.detail,
            Err(_) => self.exited().map(|info| info.detail).unwrap_or_default(),
        }
    }

    /// Waits up to `notice` for its end to be reported. When the end has happened but the
    /// driver has not reported it yet (a container engine may take a moment to), waits up to
    /// two seconds more, for the report's detail.
    pub async fn exit_within(&self, notice: std::time::Duration) -> Option<ExitInfo> {
        if let Ok(info) = tokio::time::timeout(notice, self.wait_exit()).await {
            return Some(info);
        }
        self.exited()?;
        Some(
            tokio::time::timeout(REPORT_WAIT, self.wait_exit())
                .await
                .unwrap_or_else(|_| ExitInfo {
                    detail: "the process ended".into(),
                }),
        )
    }

    /// Waits until it ends.
    pub async fn wait_exit(&self) -> ExitInfo {
        let mut exit = self.exit.clone();
        loop {
            if let Some(info) = exit.borrow_and_update().clone() {
                return info;
            }
            if exit.changed().await.is_err() {
                return exit.borrow().clone().unwrap_or_else(|| ExitInfo {
                    detail: "exit watcher stopped".into(),
                });
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start sandbox {name}: {reason}")]
    Start { name: SandboxName, reason: String },
    #[error("sandbox {name}: {reason}")]
    Io { name: String, reason: String },
}

#[async_trait]
pub trait SandboxDriver: Send + Sync + 'static {
    /// Returns the driver's name as records show it (`process`).
    fn kind(&self) -> &'static str;

    /// Describes each protection this host cannot give sandboxes, for a warning at start-up.
    fn warnings(&self) -> Vec<String>;

    /// Creates the sandbox if it does not exist and starts it. Returns once the handler
    /// process runs; readiness is the runtime's to check.
    async fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError>;

    /// Stops it: a polite signal, then a forced one after the grace period.
    async fn stop(&self, sandbox: &Sandbox) -> Result<(), SandboxError>;

    /// Pauses every process of the sandbox, keeping its memory, for the warm tier.
    async fn freeze(&self, sandbox: &Sandbox) -> Result<(), SandboxError>;

    /// Resumes a frozen sandbox.
    async fn thaw(&self, sandbox: &Sandbox) -> Result<(), SandboxError>;

    /// Removes everything the sandbox left: working directory and logs.
    async fn destroy(&self, name: &SandboxName) -> Result<(), SandboxError>;

    /// Returns the end of the sandbox's log, at most `max_bytes`.
    async fn logs(&self, name: &SandboxName, max_bytes: usize) -> Result<String, SandboxError>;

    /// Releases what the driver holds for all sandboxes, once every sandbox has stopped.
    fn close(&self);

    /// Stops sandboxes that an earlier runtime on this data directory left running; returns
    /// their names.
    async fn reap_orphans(&self) -> Result<Vec<String>, SandboxError>;
}
