//! Isolation of process sandboxes, as far as the host allows: a per-object unprivileged user,
//! pid, mount, ipc, uts and network namespaces, Landlock filesystem, network and signal rules,
//! and cgroup memory, CPU and process limits.
//!
//! The runtime probes once what the host supports and warns about the rest. For each sandbox
//! it writes an [`InitSpec`]; `torpor sandbox-init` applies it inside the new process before
//! any handler code runs.

pub(crate) mod cgroup;
pub mod init;
pub mod landlock;
mod supervise;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::sync::Arc;

pub use self::cgroup::SandboxCgroup;
use self::cgroup::{CgroupPool, Cgroups, Limits};
use self::landlock::LandlockRules;
use crate::config::{ClassConfig, Handler, SandboxSettings, SandboxUser};

/// The program a sandbox runs once it is set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Program {
    Builtin(String),
    Command(Vec<String>),
}

/// Everything `torpor sandbox-init` needs, passed to it as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    pub program: Program,
    /// The user to run as; `None` keeps the runtime's.
    pub uid: Option<u32>,
    pub namespaces: bool,
    pub network_namespace: bool,
    pub landlock: Option<LandlockRules>,
    /// `cgroup.procs` files to join.
    pub cgroup_procs: Vec<PathBuf>,
    /// `RLIMIT_DATA`, when no cgroup limits memory.
    pub data_limit_bytes: Option<u64>,
    pub hostname: String,
}

/// The host's isolation features, probed once at start-up.
#[derive(Debug)]
pub struct Isolation {
    settings: SandboxSettings,
    root: bool,
    landlock_abi: i32,
    namespaces: Result<(), String>,
    cgroups: Result<Arc<CgroupPool>, String>,
}

/// One sandbox's plan: the spec for its init and the cgroup to clean up after it.
pub struct Plan {
    pub spec: InitSpec,
    pub cgroup: Option<SandboxCgroup>,
    pub uid: Option<u32>,
}

impl Isolation {
    /// Probes the host. `host_program` is run once to see whether namespaces can be created;
    /// `folder` (the sandboxes' folder) names this runtime's cgroups.
    pub fn probe(settings: &SandboxSettings, host_program: &Path, folder: &Path) -> Isolation {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let namespaces = if !settings.namespaces {
            Err("turned off (sandbox.namespaces = false)".into())
        } else if !root {
            Err("the runtime is not running as root".into())
        } else {
            probe_namespaces(host_program)
        };
        let cgroups = if settings.cgroups {
            Cgroups::detect(&cgroup_scope(folder)).map(|cgroups| {
                let reaped = cgroups.reap();
                if reaped > 0 {
                    tracing::warn!(
                        count = reaped,
                        "stopped processes left in sandbox cgroups by an earlier runtime"
                    );
                }
                CgroupPool::new(cgroups)
            })
        } else {
            Err("turned off (sandbox.cgroups = false)".into())
        };
        let landlock_abi = if settings.landlock {
            landlock::kernel_abi()
        } else {
            0
        };
        Isolation {
            settings: settings.clone(),
            root,
            landlock_abi,
            namespaces,
            cgroups,
        }
    }

    /// Removes this runtime's cgroups, once its sandboxes have stopped.
    pub fn close(&self) {
        if let Ok(pool) = &self.cgroups {
            pool.close();
        }
    }

    /// Returns whether sandboxes run as their own users.
    pub fn separate_users(&self) -> bool {
        self.root && self.settings.user == SandboxUser::PerObject
    }

    /// Describes, one line each, the protections the host or the configuration leaves out.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.root {
            warnings.push(
                "sandboxes run as the runtime's own user, because it is not root: they can read every file it can".into(),
            );
        } else if self.settings.user == SandboxUser::Runtime {
            warnings.push("sandboxes run as root (sandbox.user = \"runtime\")".into());
        }
        if let Err(reason) = &self.namespaces {
            warnings.push(format!(
                "no namespaces for sandboxes ({reason}): they see the host's processes and share its network"
            ));
        }
        match self.landlock_abi {
            0 if !self.settings.landlock => warnings.push(
                "Landlock is turned off (sandbox.landlock = false): sandboxes can write wherever their user can and open network connections".into(),
            ),
            0 => warnings.push(
                "this kernel has no Landlock: sandboxes can write wherever their user can and open network connections".into(),
            ),
            abi if abi < 4 => warnings.push(format!(
                "this kernel's Landlock (ABI {abi}) cannot restrict TCP: sandboxes without a network namespace can open connections"
            )),
            abi if abi < 6 => warnings.push(format!(
                "this kernel's Landlock (ABI {abi}) cannot scope signals: sandboxes sharing a user can signal each other"
            )),
            _ => {}
        }
        if self.namespaces.is_err() && self.landlock_abi > 0 {
            warnings.push("Landlock does not restrict UDP: sandboxes without a network namespace can send UDP".into());
        } else if self.landlock_abi > 0 {
            warnings.push(
                "Landlock does not restrict UDP: sandboxes of classes that bind their own port \
                 (inherit_socket = false) share the host's network namespace and can send UDP"
                    .into(),
            );
        }
        if let Err(reason) = &self.cgroups {
            warnings.push(format!(
                "no cgroups ({reason}): memory is limited with RLIMIT_DATA only, and CPU and process limits are not enforced"
            ));
        }
        warnings
    }

    /// Plans one sandbox: its user, namespaces, Landlock rules and cgroup.
    pub fn plan(
        &self,
        name: &str,
        oid: i64,
        class: &ClassConfig,
        work: &Path,
        port: u16,
    ) -> std::io::Result<Plan> {
        let uid = self
            .separate_users()
            .then(|| self.settings.uid_base.saturating_add(oid.max(0) as u32));
        let namespaces = self.namespaces.is_ok();
        let landlock = (self.landlock_abi > 0).then(|| LandlockRules {
            writable: work.to_path_buf(),
            bind_port: (!class.inherit_socket).then_some(port),
            network: class.network,
        });
        let limits = Limits {
            memory_bytes: class.memory_mb * 1024 * 1024,
            vcpus: class.vcpus,
            max_processes: class.max_processes,
        };
        let cgroup = match &self.cgroups {
            Ok(pool) => Some(pool.acquire(limits)?),
            Err(_) => None,
        };
        let program = match &class.handler {
            Handler::Builtin(name) => Program::Builtin(name.clone()),
            Handler::Command(argv) => Program::Command(argv.clone()),
            Handler::Image { .. } => {
                return Err(std::io::Error::other(
                    "an image class runs under the container driver",
                ));
            }
        };
        let spec = InitSpec {
            program,
            uid,
            namespaces,
            // A handler on an inherited socket needs no network of its own: the socket was
            // made in the runtime's namespace and keeps working from inside a new one.
            network_namespace: namespaces && class.inherit_socket && !class.network,
            landlock,
            cgroup_procs: cgroup
                .as_ref()
                .map(SandboxCgroup::procs_files)
                .unwrap_or_default(),
            data_limit_bytes: cgroup.is_none().then_some(limits.memory_bytes),
            hostname: name.to_owned(),
        };
        Ok(Plan { spec, cgroup, uid })
    }
}

/// Names a cgroup folder after the data directory, with a hash of its path. One runtime owns a
/// data directory at a time, so runtimes never share (or reap) each other's cgroups.
pub(crate) fn cgroup_scope(folder: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let path = folder
        .canonicalize()
        .unwrap_or_else(|_| folder.to_path_buf());
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    let hash = path
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("data-{hash:016x}")
}

/// Runs `torpor sandbox-probe`, which tries to create the namespaces a sandbox uses. The
/// probe gets an empty environment: it needs none, and the operator's `TORPOR_*` variables
/// are the runtime's settings, not the probe's.
fn probe_namespaces(host_program: &Path) -> Result<(), String> {
    let output = std::process::Command::new(host_program)
        .arg("sandbox-probe")
        .env_clear()
        .output()
        .map_err(|e| format!("cannot run {}: {e}", host_program.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// Creates the namespaces a sandbox would, then returns: the body of `torpor sandbox-probe`.
pub fn probe_in_child() -> anyhow::Result<()> {
    let flags = libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET;
    // SAFETY: unshare(2) with namespace flags in a short-lived, single-threaded process.
    if unsafe { libc::unshare(flags) } != 0 {
        anyhow::bail!(
            "cannot create namespaces: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
