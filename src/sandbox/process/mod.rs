//! The process driver: each sandbox is a child process in its own session and process group,
//! with a folder under `DATA_DIR/sandboxes/{name}/` holding its working directory, its log and
//! a pid file.
//!
//! Children get `PR_SET_PDEATHSIG = SIGKILL`, so they die with the runtime even when it is
//! killed. The pid files let the next runtime stop any processes those children started.

mod orphans;
mod spawn;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::isolation::Isolation;
use super::{Sandbox, SandboxDriver, SandboxError, SandboxName, SandboxSpec};
use crate::config::SandboxSettings;

/// Runs handlers as child processes.
pub struct ProcessDriver {
    root: PathBuf,
    host_program: PathBuf,
    stop_grace: Duration,
    isolation: Isolation,
    /// Process group of each running sandbox, for `stop`.
    groups: Mutex<HashMap<SandboxName, i32>>,
}

impl ProcessDriver {
    /// `root` is `DATA_DIR/sandboxes`; `host_program` is the torpor binary that serves
    /// built-in classes (`torpor object-host NAME`).
    pub fn new(
        root: PathBuf,
        host_program: PathBuf,
        stop_grace: Duration,
        settings: &SandboxSettings,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&root).map_err(|e| {
            anyhow::anyhow!("cannot create the sandbox folder {}: {e}", root.display())
        })?;
        let isolation = Isolation::probe(settings, &host_program, &root);
        if isolation.separate_users() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self {
            root,
            host_program,
            stop_grace,
            isolation,
            groups: Mutex::new(HashMap::new()),
        })
    }

    fn folder(&self, name: &SandboxName) -> PathBuf {
        self.root.join(name.as_str())
    }

    fn signal_group(&self, name: &SandboxName, signal: i32) {
        let group = self.groups.lock().ok().and_then(|g| g.get(name).copied());
        if let Some(pgid) = group {
            // SAFETY: kill(2) has no memory effects; a negative pid addresses the process
            // group this driver created with setsid(2).
            unsafe { libc::kill(-pgid, signal) };
        }
    }
}

#[async_trait]
impl SandboxDriver for ProcessDriver {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn warnings(&self) -> Vec<String> {
        self.isolation.warnings()
    }

    fn close(&self) {
        self.isolation.close();
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        let folder = self.folder(&spec.name);
        let sandbox =
            spawn::start(&folder, &self.host_program, &self.isolation, spec).map_err(|reason| {
                SandboxError::Start {
                    name: spec.name.clone(),
                    reason,
                }
            })?;
        if let Some(pid) = sandbox.pid
            && let Ok(mut groups) = self.groups.lock()
        {
            groups.insert(spec.name.clone(), pid as i32);
        }
        Ok(sandbox)
    }

    async fn stop(&self, sandbox: &Sandbox) -> Result<(), SandboxError> {
        if sandbox.exited().is_none() {
            // A frozen sandbox handles SIGTERM only once it runs again.
            self.signal_group(&sandbox.name, libc::SIGCONT);
            self.signal_group(&sandbox.name, libc::SIGTERM);
            if tokio::time::timeout(self.stop_grace, sandbox.wait_exit())
                .await
                .is_err()
            {
                tracing::warn!(sandbox = %sandbox.name, grace = ?self.stop_grace, "sandbox ignored SIGTERM; killing it");
            }
        }
        // Whatever else the handler started in its group goes too.
        self.signal_group(&sandbox.name, libc::SIGKILL);
        sandbox.wait_exit().await;
        if let Ok(mut groups) = self.groups.lock() {
            groups.remove(&sandbox.name);
        }
        Ok(())
    }

    async fn freeze(&self, sandbox: &Sandbox) -> Result<(), SandboxError> {
        self.signal_group(&sandbox.name, libc::SIGSTOP);
        Ok(())
    }

    async fn thaw(&self, sandbox: &Sandbox) -> Result<(), SandboxError> {
        self.signal_group(&sandbox.name, libc::SIGCONT);
        Ok(())
    }

    async fn destroy(&self, name: &SandboxName) -> Result<(), SandboxError> {
        let folder = self.folder(name);
        match tokio::fs::remove_dir_all(&folder).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(SandboxError::Io {
                name: name.to_string(),
                reason: err.to_string(),
            }),
        }
    }

    async fn logs(&self, name: &SandboxName, max_bytes: usize) -> Result<String, SandboxError> {
        let path = spawn::log_path(&self.folder(name));
        let name = name.to_string();
        tokio::task::spawn_blocking(move || tail(&path, max_bytes))
            .await
            .map_err(|e| SandboxError::Io {
                name: name.clone(),
                reason: e.to_string(),
            })?
            .map_err(|e| SandboxError::Io {
                name,
                reason: e.to_string(),
            })
    }

    async fn reap_orphans(&self) -> Result<Vec<String>, SandboxError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || orphans::reap(&root))
            .await
            .map_err(|e| SandboxError::Io {
                name: "sandboxes".into(),
                reason: e.to_string(),
            })
    }
}

/// Returns the last `max_bytes` of a file from a line boundary, or nothing if it does not exist.
fn tail(path: &Path, max_bytes: usize) -> std::io::Result<String> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(err) => return Err(err),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max_bytes as u64);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((len - start) as usize);
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0
        && let Some(newline) = text.find('\n')
    {
        return Ok(text[newline + 1..].to_owned());
    }
    Ok(text)
}
