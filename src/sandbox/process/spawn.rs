//! Starting one handler process: its folder, log, environment, listening socket and the
//! watcher that reports its exit.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use tokio::sync::watch;

use crate::model::format_ms;
use crate::sandbox::isolation::Isolation;
use crate::sandbox::pidfd::Pidfd;
use crate::sandbox::{ExitInfo, ExitProbe, Sandbox, SandboxSpec};

/// A log above this size is moved to `sandbox.log.1` when the sandbox next starts.
const LOG_ROTATE_BYTES: u64 = 1024 * 1024;
/// The descriptor an inherited listening socket is passed on.
const LISTEN_FD: i32 = 3;

pub fn log_path(folder: &Path) -> PathBuf {
    folder.join("sandbox.log")
}

pub fn pid_path(folder: &Path) -> PathBuf {
    folder.join("pid")
}

fn work_dir(folder: &Path) -> PathBuf {
    folder.join("work")
}

pub fn start(
    folder: &Path,
    host_program: &Path,
    isolation: &Isolation,
    spec: &SandboxSpec,
) -> Result<Sandbox, String> {
    let work = work_dir(folder);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let mut log = open_log(folder)?;
    let _ = writeln!(
        log,
        "--- {} starting {} generation {} ---",
        format_ms(crate::model::now_ms()),
        spec.key,
        spec.generation
    );

    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let plan = isolation
        .plan(
            spec.name.as_str(),
            spec.oid,
            &spec.class,
            &work,
            address.port(),
        )
        .map_err(|e| format!("cannot create the sandbox's cgroup: {e}"))?;
    if let Some(uid) = plan.uid {
        confine_folders(folder, &work, uid)
            .map_err(|e| format!("cannot hand {} to uid {uid}: {e}", work.display()))?;
    }
    let init_spec = serde_json::to_string(&plan.spec).map_err(|e| e.to_string())?;
    let (program, args) = (
        host_program.to_path_buf(),
        vec!["sandbox-init".to_owned(), init_spec],
    );

    let mut command = tokio::process::Command::new(&program);
    command
        .args(&args)
        .current_dir(&work)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .env("HOME", &work)
        .env("LANG", "C.UTF-8")
        .env("PYTHONUNBUFFERED", "1")
        .envs(&spec.class.env)
        .env("TORPOR_CLASS", spec.key.class.as_str())
        .env("TORPOR_OBJECT_ID", spec.key.id.as_str())
        .env("TORPOR_SANDBOX", spec.name.as_str())
        .env("TORPOR_GENERATION", spec.generation.to_string())
        .env("TORPOR_LISTEN", address.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log.try_clone().map_err(|e| e.to_string())?)
        .kill_on_drop(false);
    let inherited = if spec.class.inherit_socket {
        command.env("TORPOR_LISTEN_FD", LISTEN_FD.to_string());
        Some(listener.as_raw_fd())
    } else {
        None
    };
    // A handler that binds TORPOR_LISTEN itself needs the port free. Another process could
    // take the port between here and the handler's bind, and that wake then fails.
    let listener = if inherited.is_some() {
        Some(listener)
    } else {
        drop(listener);
        None
    };

    let parent = std::process::id() as i32;
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (setsid, prctl, getppid, dup2, fcntl, _exit).
    unsafe {
        command.pre_exec(move || child_setup(parent, inherited));
    }
    // NOTE: PR_SET_PDEATHSIG fires when the *thread* that forked exits. This runs on a tokio
    // worker thread, which lives as long as the runtime; never call it from spawn_blocking.
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    drop(listener);
    let pid = child.id();
    if let Some(pid) = pid {
        write_pid_file(folder, pid);
    }

    let probe = pid
        .and_then(Pidfd::open)
        .map(|fd| Arc::new(fd) as Arc<dyn ExitProbe>);
    let (exit_sender, exit) = watch::channel(None);
    let folder = folder.to_path_buf();
    let memory_mb = spec.class.memory_mb;
    let cgroup = plan.cgroup;
    tokio::spawn(async move {
        let mut detail = match child.wait().await {
            Ok(status) => describe(status),
            Err(err) => format!("cannot wait for the process: {err}"),
        };
        if let Some(cgroup) = cgroup {
            if cgroup.oom_killed() {
                detail.push_str(&format!(
                    "; it exceeded its memory limit of {memory_mb} MiB"
                ));
            }
            // Released before the exit is reported, so the next wake finds it free; emptying a
            // cgroup whose processes have exited takes microseconds.
            cgroup.release();
        }
        let _ = std::fs::remove_file(pid_path(&folder));
        let _ = writeln!(
            log,
            "--- {} exited: {detail} ---",
            format_ms(crate::model::now_ms())
        );
        let _ = exit_sender.send(Some(ExitInfo { detail }));
    });
    Ok(Sandbox::new(spec.name.clone(), address, pid, exit, probe))
}

fn child_setup(parent: i32, inherited: Option<i32>) -> std::io::Result<()> {
    // SAFETY: plain system calls on this process; see the caller.
    unsafe {
        if libc::setsid() < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // If the runtime died between fork and prctl, no signal will ever come, so exit now.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        if let Some(fd) = inherited {
            if fd == LISTEN_FD {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, LISTEN_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Gives the work folder to the sandbox's user and closes its parent folder to it, so it can
/// reach nothing of the data directory but its own folder.
fn confine_folders(folder: &Path, work: &Path, uid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(work, Some(uid), Some(uid))?;
    std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o700))?;
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
}

fn open_log(folder: &Path) -> Result<File, String> {
    let path = log_path(folder);
    if std::fs::metadata(&path)
        .map(|m| m.len() > LOG_ROTATE_BYTES)
        .unwrap_or(false)
    {
        let _ = std::fs::rename(&path, folder.join("sandbox.log.1"));
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Records the pid and its start time, so a later runtime kills this process and not one
/// that reused its pid.
fn write_pid_file(folder: &Path, pid: u32) {
    let start = super::orphans::start_time(pid).unwrap_or(0);
    if let Err(err) = std::fs::write(pid_path(folder), format!("{pid} {start}\n")) {
        tracing::warn!(folder = %folder.display(), error = %err, "cannot write sandbox pid file");
    }
}

pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(signal) => format!("killed by signal {signal} ({})", signal_name(signal)),
        None => status.to_string(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGXCPU => "SIGXCPU",
        _ => "signal",
    }
}
