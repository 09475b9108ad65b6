//! `torpor sandbox-init`: the first program in every sandbox. It runs as the runtime's user,
//! joins the sandbox's cgroups, enters new namespaces, restricts itself with Landlock, drops
//! to the sandbox's user and then becomes the handler: a built-in class is served in this
//! process, a command replaces it with exec.
//!
//! With a pid namespace, this process stays outside as a supervisor and the namespace gets a
//! minimal init of its own; see [`super::supervise`].

use std::ffi::CString;
use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::path::Path;

use anyhow::{Context, bail};

use super::InitSpec;
use super::landlock;
use super::supervise;

/// Runs the sandbox described by the JSON `spec`; returns only for a built-in class that has
/// stopped serving, or with an error.
pub fn run(spec: &str) -> anyhow::Result<()> {
    let spec: InitSpec = serde_json::from_str(spec).context("invalid sandbox spec")?;
    // The process the handler dies with: the runtime, or in a pid namespace its init (pid 1).
    // SAFETY: getppid has no preconditions.
    let mut parent = unsafe { libc::getppid() };
    if spec.namespaces {
        unshare(&spec)?;
    }
    // Joined after unshare: a network namespace made from inside a memory cgroup takes
    // several milliseconds longer to create. The handler is forked after this, so it runs
    // inside the cgroups either way.
    for procs in &spec.cgroup_procs {
        std::fs::write(procs, "0")
            .with_context(|| format!("cannot join cgroup {}", procs.display()))?;
    }
    if let Some(bytes) = spec.data_limit_bytes {
        set_limit(libc::RLIMIT_DATA, bytes)?;
    }
    if spec.namespaces {
        supervise::enter_namespace(&spec.hostname)?;
        parent = 1;
    }
    if let Some(rules) = &spec.landlock {
        let status = landlock::restrict(rules).context("cannot apply the Landlock ruleset")?;
        eprintln!("sandbox: Landlock {status}");
    }
    if let Some(uid) = spec.uid {
        drop_privileges(uid)?;
        // Switching users cleared the parent-death signal the runtime set.
        supervise::die_with_parent(parent)?;
    }
    match &spec.program {
        super::Program::Builtin(name) => crate::host::serve(name),
        super::Program::Command(argv) => {
            check_readable(&argv[1..], spec.uid)?;
            let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
            let program = &argv[0];
            if !program.contains('/') {
                check_in_path(program, spec.uid)?;
            }
            match err.kind() {
                ErrorKind::NotFound => bail!("cannot run {program:?}: not found"),
                ErrorKind::PermissionDenied => bail!(
                    "cannot run {program:?}{}: permission denied; {}",
                    as_user(spec.uid),
                    readable_hint(spec.uid)
                ),
                _ => bail!("cannot run {program:?}{}: {err}", as_user(spec.uid)),
            }
        }
    }
}

/// Fails with a hint about the sandbox's user when an absolute path among `args` cannot be
/// read by it. The handler would fail on such a path too, but with its own error, which does
/// not say that the sandbox runs as another user.
fn check_readable(args: &[String], uid: Option<u32>) -> anyhow::Result<()> {
    for arg in args.iter().filter(|arg| arg.starts_with('/')) {
        let Ok(path) = CString::new(arg.as_bytes()) else {
            continue;
        };
        // SAFETY: access(2) reads a valid NUL-terminated path.
        if unsafe { libc::access(path.as_ptr(), libc::R_OK) } == 0 {
            continue;
        }
        // A path that does not exist may be one the handler creates; only a denied one is
        // certain to fail.
        let err = std::io::Error::last_os_error();
        if err.kind() == ErrorKind::PermissionDenied {
            bail!(
                "cannot read {arg:?}{}: permission denied; {}",
                as_user(uid),
                readable_hint(uid)
            );
        }
    }
    Ok(())
}

/// Fails with "not found" when no folder in `PATH` contains `program`, naming the folders the
/// sandbox's user cannot search. Such a folder makes exec report "permission denied" even
/// when the program is in none of them.
fn check_in_path(program: &str, uid: Option<u32>) -> anyhow::Result<()> {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut denied = Vec::new();
    for folder in path.split(':').filter(|folder| !folder.is_empty()) {
        match std::fs::metadata(Path::new(folder).join(program)) {
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == ErrorKind::PermissionDenied => denied.push(folder),
            Err(_) => {}
        }
    }
    if denied.is_empty() {
        bail!("cannot run {program:?}: not found in PATH ({path})");
    }
    bail!(
        "cannot run {program:?}: not found in PATH ({path}), where {} cannot be searched{}",
        denied.join(", "),
        as_user(uid)
    )
}

fn as_user(uid: Option<u32>) -> String {
    uid.map(|uid| format!(" as uid {uid}")).unwrap_or_default()
}

fn readable_hint(uid: Option<u32>) -> &'static str {
    match uid {
        Some(_) => {
            "the program, its arguments and their folders must be readable by that user (or set \
             sandbox.user = \"runtime\")"
        }
        None => "the program and its arguments must be readable by the runtime's user",
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> anyhow::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads one valid rlimit struct.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        bail!(
            "cannot set resource limit: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Enters new pid, mount, ipc and uts (and, if asked, network) namespaces. The pid namespace
/// takes effect for the next child, the namespace's init.
fn unshare(spec: &InitSpec) -> anyhow::Result<()> {
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if spec.network_namespace {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare(2) with namespace flags only; this process is single-threaded here.
    if unsafe { libc::unshare(flags) } != 0 {
        bail!(
            "cannot create namespaces: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn drop_privileges(uid: u32) -> anyhow::Result<()> {
    // SAFETY: plain credential system calls on this process.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(uid) != 0
            || libc::setuid(uid) != 0
        {
            bail!(
                "cannot switch to uid {uid}: {}",
                std::io::Error::last_os_error()
            );
        }
        if libc::getuid() != uid || libc::geteuid() != uid {
            bail!(
                "still running as uid {} after switching to {uid}",
                libc::geteuid()
            );
        }
    }
    Ok(())
}
