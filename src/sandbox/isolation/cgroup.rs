//! Per-sandbox cgroups for memory, CPU and process limits, under the runtime's own cgroup,
//! for cgroup v1 (one hierarchy per controller) and v2 (one unified hierarchy).
//!
//! The runtime creates a sandbox's cgroups and writes their limits. The sandbox joins them
//! itself before it runs any handler code, so nothing escapes the limits at start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The cgroup hierarchies the runtime can create cgroups in.
#[derive(Debug, Clone)]
pub enum Cgroups {
    /// One folder per controller: memory, and cpu and pids where mounted.
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
    /// One folder with the memory, cpu and pids controllers enabled for its children.
    V2 { base: PathBuf },
}

/// The limits of one sandbox.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: u64,
    pub vcpus: f64,
    pub max_processes: u64,
}

/// One sandbox's cgroup folders.
#[derive(Debug)]
pub struct SandboxCgroup {
    name: String,
    dirs: Vec<PathBuf>,
    memory: PathBuf,
    v2: bool,
    /// The OOM-kill count when this sandbox got the cgroup, which may have served others.
    oom_baseline: u64,
    pool: Arc<CgroupPool>,
}

/// Cgroups kept for reuse. Creating a memory cgroup takes milliseconds, longer than the rest of
/// a wake, so a cgroup whose sandbox exited is emptied and handed to the next one instead.
#[derive(Debug)]
pub struct CgroupPool {
    cgroups: Cgroups,
    free: Mutex<Vec<String>>,
    next: AtomicU64,
}

/// Free cgroups kept; more are removed when released.
const POOL_KEEP: usize = 64;
/// Free cgroups made at start-up, in the background.
const POOL_PREPARE: usize = 8;

/// The folder under the runtime's own cgroup that holds every runtime's sandbox cgroups. Each
/// runtime has a folder of its own in it, named after its data directory.
const PARENT: &str = "torpor-sandboxes";
const CFS_PERIOD_US: u64 = 100_000;

impl Cgroups {
    /// Finds writable cgroup hierarchies with a memory controller and makes this runtime's
    /// folder in them; `scope` names the folder. The error gives the reason there are none.
    pub fn detect(scope: &str) -> Result<Cgroups, String> {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read mountinfo: {e}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mut v1 = Vec::new();
        let mut v2 = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(mount_point), Some(fstype), Some(options)) =
                (fields.get(4), fields.get(dash + 1), fields.get(dash + 3))
            else {
                continue;
            };
            match *fstype {
                "cgroup" => v1.push((PathBuf::from(mount_point), options.to_string())),
                "cgroup2" => v2 = Some(PathBuf::from(mount_point)),
                _ => {}
            }
        }
        let own_path = |controller: Option<&str>| -> Option<String> {
            own.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                let matches = match controller {
                    Some(name) => controllers.split(',').any(|c| c == name),
                    None => controllers.is_empty(),
                };
                matches.then(|| path.trim_start_matches('/').to_owned())
            })
        };
        let v1_dir = |controller: &str| -> Option<PathBuf> {
            let (mount, _) = v1
                .iter()
                .find(|(_, options)| options.split(',').any(|o| o == controller))?;
            let dir = mount
                .join(own_path(Some(controller))?)
                .join(PARENT)
                .join(scope);
            std::fs::create_dir_all(&dir).ok()?;
            Some(dir)
        };
        if let Some(memory) = v1_dir("memory") {
            return Ok(Cgroups::V1 {
                memory,
                cpu: v1_dir("cpu"),
                pids: v1_dir("pids"),
            });
        }
        if let Some(mount) = v2 {
            let controllers =
                std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "memory") {
                return v2_base(&mount.join(own_path(None).unwrap_or_default()), scope);
            }
        }
        Err("no writable cgroup hierarchy with a memory controller".into())
    }

    /// Creates cgroup `name`'s folders if missing; returns them all and the memory one.
    fn folders(&self, name: &str) -> std::io::Result<(Vec<PathBuf>, PathBuf)> {
        match self {
            Cgroups::V1 { memory, cpu, pids } => {
                let dirs: Vec<PathBuf> = [Some(memory), cpu.as_ref(), pids.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|p| p.join(name))
                    .collect();
                for dir in &dirs {
                    make(dir)?;
                }
                Ok((dirs, memory.join(name)))
            }
            Cgroups::V2 { base } => {
                let dir = base.join(name);
                make(&dir)?;
                Ok((vec![dir.clone()], dir))
            }
        }
    }

    /// Writes `limits` into cgroup `name`'s files.
    fn set_limits(&self, name: &str, limits: Limits) -> std::io::Result<()> {
        let quota = ((limits.vcpus * CFS_PERIOD_US as f64) as u64).max(1000);
        let memory = limits.memory_bytes.to_string();
        match self {
            Cgroups::V1 {
                memory: memory_root,
                cpu,
                pids,
            } => {
                let dir = memory_root.join(name);
                // Without swap accounting the memsw file is absent, and memory is the limit.
                // Lowering memory below a higher memsw limit is allowed; the other order is not.
                let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "-1");
                std::fs::write(dir.join("memory.limit_in_bytes"), &memory)?;
                let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &memory);
                if let Some(cpu) = cpu {
                    std::fs::write(
                        cpu.join(name).join("cpu.cfs_period_us"),
                        CFS_PERIOD_US.to_string(),
                    )?;
                    std::fs::write(cpu.join(name).join("cpu.cfs_quota_us"), quota.to_string())?;
                }
                if let Some(pids) = pids {
                    std::fs::write(
                        pids.join(name).join("pids.max"),
                        limits.max_processes.to_string(),
                    )?;
                }
            }
            Cgroups::V2 { base } => {
                let dir = base.join(name);
                std::fs::write(dir.join("memory.max"), &memory)?;
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                let _ = std::fs::write(dir.join("cpu.max"), format!("{quota} {CFS_PERIOD_US}"));
                let _ = std::fs::write(dir.join("pids.max"), limits.max_processes.to_string());
            }
        }
        Ok(())
    }

    /// Removes every sandbox cgroup of this runtime and its own folder, at shutdown.
    pub fn remove_all(&self) {
        self.reap();
        for dir in self.parents() {
            remove(dir);
        }
    }

    fn parents(&self) -> Vec<&PathBuf> {
        match self {
            Cgroups::V1 { memory, cpu, pids } => [Some(memory), cpu.as_ref(), pids.as_ref()]
                .into_iter()
                .flatten()
                .collect(),
            Cgroups::V2 { base } => vec![base],
        }
    }

    /// Kills whatever is left in sandbox cgroups from an earlier run and removes them;
    /// returns how many cgroups held processes.
    pub fn reap(&self) -> usize {
        let parents: Vec<&PathBuf> = match self {
            Cgroups::V1 { memory, cpu, pids } => [Some(memory), cpu.as_ref(), pids.as_ref()]
                .into_iter()
                .flatten()
                .collect(),
            Cgroups::V2 { base } => vec![base],
        };
        let mut reaped = 0;
        for parent in parents {
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            for entry in entries.flatten().filter(|e| e.path().is_dir()) {
                if kill_all(&entry.path()) > 0 {
                    reaped += 1;
                }
                remove(&entry.path());
            }
        }
        reaped
    }
}

/// Enables the controllers for the children of `own/torpor-sandboxes/scope` under cgroup v2.
// NOTE: written to the cgroup v2 documentation but never run here; the hosts this was
// developed on mount cgroup v1.
fn v2_base(own: &Path, scope: &str) -> Result<Cgroups, String> {
    let parent = own.join(PARENT);
    let base = parent.join(scope);
    make(&parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    make(&base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    for dir in [own, &parent, &base] {
        std::fs::write(dir.join("cgroup.subtree_control"), "+memory +cpu +pids")
            .map_err(|e| format!("cannot enable controllers in {}: {e}", dir.display()))?;
    }
    Ok(Cgroups::V2 { base })
}

fn make(dir: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => Err(err),
        _ => Ok(()),
    }
}

/// SIGKILLs every process in a cgroup; returns how many there were.
fn kill_all(dir: &Path) -> usize {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let pids: Vec<i32> = procs
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for pid in &pids {
        // SAFETY: kill(2) on processes inside a cgroup this runtime created for sandboxes.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    pids.len()
}

/// Removes a cgroup folder once its processes are gone (cgroups are removed with rmdir).
fn remove(dir: &Path) {
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    tracing::warn!(cgroup = %dir.display(), "cannot remove a sandbox cgroup");
}

impl CgroupPool {
    /// Starts a pool over `cgroups`, preparing a few free cgroups in the background.
    pub fn new(cgroups: Cgroups) -> Arc<CgroupPool> {
        let pool = Arc::new(CgroupPool {
            cgroups,
            free: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
        });
        let preparing = Arc::clone(&pool);
        std::thread::spawn(move || {
            for _ in 0..POOL_PREPARE {
                let name = preparing.new_name();
                if preparing.cgroups.folders(&name).is_ok() {
                    preparing.free_list().push(name);
                }
            }
        });
        pool
    }

    /// Removes the pool's cgroups; sandboxes must have stopped.
    pub fn close(&self) {
        self.free_list().clear();
        self.cgroups.remove_all();
    }

    fn new_name(&self) -> String {
        format!("s{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn free_list(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands out a cgroup with `limits`, reusing a free one when there is one.
    pub fn acquire(self: &Arc<Self>, limits: Limits) -> std::io::Result<SandboxCgroup> {
        let reused = self.free_list().pop();
        let name = reused.unwrap_or_else(|| self.new_name());
        let (dirs, memory) = self.cgroups.folders(&name)?;
        self.cgroups.set_limits(&name, limits)?;
        let v2 = matches!(self.cgroups, Cgroups::V2 { .. });
        let oom_baseline = oom_kills(&memory, v2);
        Ok(SandboxCgroup {
            name,
            dirs,
            memory,
            v2,
            oom_baseline,
            pool: Arc::clone(self),
        })
    }
}

pub fn oom_kills(memory: &Path, v2: bool) -> u64 {
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let text = std::fs::read_to_string(memory.join(file)).unwrap_or_default();
    text.lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some("oom_kill")).then(|| parts.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

impl SandboxCgroup {
    /// Returns the `cgroup.procs` files a process writes `0` to in order to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Returns whether the kernel's OOM killer killed a process of this sandbox for exceeding
    /// the memory limit.
    pub fn oom_killed(&self) -> bool {
        oom_kills(&self.memory, self.v2) > self.oom_baseline
    }

    /// Kills anything left and returns the cgroup to the pool, or removes it if the pool is full.
    pub fn release(self) {
        for dir in &self.dirs {
            kill_all(dir);
        }
        let mut free = self.pool.free_list();
        if free.len() < POOL_KEEP {
            free.push(self.name);
            return;
        }
        drop(free);
        for dir in &self.dirs {
            remove(dir);
        }
    }
}
