//! Finding and stopping sandboxes an earlier runtime left behind, from their pid files.
//!
//! A pid file contains the pid and its start time (field 22 of `/proc/PID/stat`). A live process
//! with that pid and start time is the sandbox and its whole process group is killed. If the
//! leader is gone, its group may still have members; the kernel never reuses a pid that is
//! still some group's id, so killing that group cannot hit another program's processes.

use std::path::Path;

/// Kills every process group recorded under `root`; returns the sandbox names it acted on.
pub fn reap(root: &Path) -> Vec<String> {
    let mut reaped = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return reaped;
    };
    for entry in entries.flatten() {
        let folder = entry.path();
        let pid_file = super::spawn::pid_path(&folder);
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            continue;
        };
        let mut parts = text.split_whitespace();
        let pid = parts.next().and_then(|p| p.parse::<i32>().ok());
        let recorded_start = parts.next().and_then(|s| s.parse::<u64>().ok());
        if let Some(pid) = pid.filter(|pid| *pid > 1) {
            let live_start = start_time(pid as u32);
            let ours = match live_start {
                Some(start) => Some(start) == recorded_start,
                None => true,
            };
            // SAFETY: kill(2) on the process group the earlier runtime created.
            if ours && unsafe { libc::kill(-pid, libc::SIGKILL) } == 0 {
                let name = entry.file_name().to_string_lossy().into_owned();
                tracing::warn!(sandbox = %name, pid, "stopped a sandbox left by an earlier runtime");
                reaped.push(name);
            }
        }
        let _ = std::fs::remove_file(&pid_file);
    }
    reaped
}

/// Returns a process's start time in clock ticks since boot, from `/proc/PID/stat`.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable() {
        let pid = std::process::id();
        let first = start_time(pid).unwrap();
        assert_eq!(start_time(pid), Some(first));
        assert!(start_time(u32::MAX - 1).is_none());
    }
}
