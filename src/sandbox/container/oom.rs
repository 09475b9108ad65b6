//! Telling a memory kill from other deaths where the engine cannot: Podman on cgroup v1 hosts
//! reports `OOMKilled: false` for containers the kernel killed at their memory limit. When the
//! container's first process is visible on this host, its memory cgroup's kill counter is read
//! the moment the process ends, before the engine removes the cgroup.

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::sandbox::isolation::cgroup::oom_kills;
use crate::sandbox::pidfd::Pidfd;

/// A container's memory cgroup and its kill count when the container started.
pub struct MemoryCgroup {
    dir: PathBuf,
    v2: bool,
    baseline: u64,
}

impl MemoryCgroup {
    /// Finds the memory cgroup of process `pid` from `/proc/PID/cgroup`.
    pub fn of(pid: u32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let v1 = text.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| PathBuf::from("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')))
        });
        let (dir, v2) = match v1 {
            Some(dir) => (dir, false),
            None => {
                let path = text.lines().find_map(|line| line.strip_prefix("0::"))?;
                (
                    PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/')),
                    true,
                )
            }
        };
        if !dir.is_dir() {
            return None;
        }
        let baseline = oom_kills(&dir, v2);
        Some(Self { dir, v2, baseline })
    }

    fn killed(&self) -> bool {
        oom_kills(&self.dir, self.v2) > self.baseline
    }
}

struct Readable(Arc<Pidfd>);

impl AsRawFd for Readable {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Resolves once the process behind `pidfd` has ended, with whether the kernel killed
/// something in `cgroup` for memory meanwhile.
pub async fn watch(pidfd: Arc<Pidfd>, cgroup: MemoryCgroup) -> bool {
    // SAFETY: the Arc keeps the pidfd open, unchanged, for as long as the AsyncFd owns it,
    // and `as_raw_fd` always returns that descriptor.
    let registered =
        unsafe { AsyncFd::register_with_interest(Readable(pidfd), Interest::READABLE) };
    let Ok(readable) = registered else {
        return false;
    };
    match readable.readable().await {
        Ok(_) => cgroup.killed(),
        Err(_) => false,
    }
}
