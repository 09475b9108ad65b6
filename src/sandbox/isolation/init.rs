//! `torpor sandbox-init`: the first program in every sandbox. It runs as the runtime's user,
//! joins the sandbox's cgroups, enters new namespaces, restricts itself with Landlock, drops
//! to the sandbox's user and then becomes the handler: a built-in class is served in this
//! process, a command replaces it with exec.
//!
//! With a pid namespace, this process stays outside as a supervisor: it forwards stop signals
//! to the handler (pid 1 inside) and exits the way the handler did, so the runtime sees the
//! handler's exit status.

use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, bail};

use super::InitSpec;
use super::landlock;

/// The handler's pid, for the supervisor's signal handler.
static HANDLER: AtomicI32 = AtomicI32::new(0);

/// Runs the sandbox described by the JSON `spec`; returns only for a built-in class that has
/// stopped serving, or with an error.
pub fn run(spec: &str) -> anyhow::Result<()> {
    let spec: InitSpec = serde_json::from_str(spec).context("invalid sandbox spec")?;
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
        fork_into_namespace(&spec)?;
    }
    if let Some(rules) = &spec.landlock {
        let status = landlock::restrict(rules).context("cannot apply the Landlock ruleset")?;
        eprintln!("sandbox: Landlock {status}");
    }
    if let Some(uid) = spec.uid {
        drop_privileges(uid)?;
    }
    match &spec.program {
        super::Program::Builtin(name) => crate::host::serve(name),
        super::Program::Command(argv) => {
            let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
            let user = spec.uid.map(|u| format!(" as uid {u}")).unwrap_or_default();
            bail!(
                "cannot run {:?}{user}: {err}; the program, its arguments and their folders must be \
                 readable by that user (or set sandbox.user = \"runtime\")",
                argv[0]
            )
        }
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
/// takes effect for the next child, which `fork_into_namespace` makes.
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

/// Forks the handler as pid 1 of the new pid namespace, with its own `/proc`. The caller
/// becomes the supervisor and never returns; the handler continues in the child.
fn fork_into_namespace(spec: &InitSpec) -> anyhow::Result<()> {
    // SAFETY: fork(2) in a single-threaded process; the child continues with plain Rust.
    match unsafe { libc::fork() } {
        -1 => bail!(
            "cannot fork into the pid namespace: {}",
            std::io::Error::last_os_error()
        ),
        0 => {
            // SAFETY: prctl and mount(2) calls with valid, NUL-terminated arguments.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // Keep mount changes inside this namespace, then show only its own processes.
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                );
                let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                if libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    flags,
                    std::ptr::null(),
                ) != 0
                {
                    bail!(
                        "cannot mount /proc in the sandbox: {}",
                        std::io::Error::last_os_error()
                    );
                }
                let name = spec.hostname.as_bytes();
                libc::sethostname(name.as_ptr().cast(), name.len());
            }
            Ok(())
        }
        child => supervise(child),
    }
}

extern "C" fn forward(signal: libc::c_int) {
    let pid = HANDLER.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Forwards stop signals to the handler, waits for it, and exits as it did.
fn supervise(child: libc::pid_t) -> ! {
    HANDLER.store(child, Ordering::SeqCst);
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installs an async-signal-safe handler.
        unsafe { libc::signal(signal, forward as *const () as libc::sighandler_t) };
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let waited = unsafe { libc::waitpid(child, &mut status, 0) };
        if waited == child {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::process::exit(1);
        }
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // SAFETY: restores the default action and re-raises, so our parent receives the signal.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        std::process::exit(128 + signal);
    }
    std::process::exit(libc::WEXITSTATUS(status));
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
