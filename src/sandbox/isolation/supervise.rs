//! The processes between the runtime and a handler in a pid namespace.
//!
//! `torpor sandbox-init` starts outside the namespace, forks the namespace's init (pid 1
//! inside) and stays outside as the supervisor that the runtime waits for. The init mounts
//! the namespace's `/proc`, forks the handler and stays as a minimal init: it forwards stop
//! signals to the handler, reaps orphans and exits when the handler exits. The handler is
//! therefore not pid 1. The kernel ignores a signal sent to a namespace's init when that
//! init has no handler for it, so a handler running as pid 1 without a SIGTERM handler would
//! sit out the whole `runtime.stop_grace`. The handler here stops on SIGTERM like any
//! process.
//!
//! The init sends the handler's wait status to the supervisor over a socket, and the
//! supervisor exits the same way, so the runtime receives the handler's exit status or
//! signal.
//! The init cannot pass a signal on by dying of it: a namespace's init cannot kill itself
//! with a signal.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::bail;

/// The process that stop signals are forwarded to, for the signal handler.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

/// Signals forwarded to the handler.
const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

/// Forks the namespace's init, which forks the handler. Returns in the handler process only:
/// the supervisor and the init never return.
pub fn enter_namespace(hostname: &str) -> anyhow::Result<()> {
    let (supervisor_end, init_end) = socket_pair()?;
    // SAFETY: fork(2) in a single-threaded process; the child continues with plain Rust.
    match unsafe { libc::fork() } {
        -1 => bail!(
            "cannot fork into the pid namespace: {}",
            std::io::Error::last_os_error()
        ),
        0 => {
            drop(supervisor_end);
            run_init(init_end, hostname)
        }
        init => {
            drop(init_end);
            supervise(init, supervisor_end)
        }
    }
}

/// Sets the parent-death signal to SIGKILL and exits at once if the parent is no longer
/// `expected_parent`, because a parent that died before the call never sends the signal.
///
/// The kernel clears the parent-death signal when a process changes its user or group, so a
/// sandbox calls this again after dropping privileges.
pub fn die_with_parent(expected_parent: libc::pid_t) -> anyhow::Result<()> {
    // SAFETY: prctl with integer arguments and getppid have no memory effects.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            bail!(
                "cannot set the parent-death signal: {}",
                std::io::Error::last_os_error()
            );
        }
        if libc::getppid() != expected_parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// The init's part: set up the namespace, fork the handler and wait for it. Returns in the
/// handler process only.
fn run_init(report: OwnedFd, hostname: &str) -> anyhow::Result<()> {
    // The supervisor is outside the namespace, where getppid cannot see it, so its death is
    // checked on the socket: once the supervisor's end is closed, the init's end hangs up.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        bail!(
            "cannot set the parent-death signal: {}",
            std::io::Error::last_os_error()
        );
    }
    if peer_closed(&report) {
        // SAFETY: _exit ends this forked process without running the parent's exit handlers.
        unsafe { libc::_exit(1) };
    }
    mount_proc()?;
    let name = hostname.as_bytes();
    // SAFETY: sethostname reads `name.len()` bytes from a valid slice.
    unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };

    // Blocked until the handler's pid is stored, so a stop signal that arrives in between is
    // forwarded rather than lost.
    set_mask(libc::SIG_BLOCK);
    // SAFETY: fork(2) in a single-threaded process.
    match unsafe { libc::fork() } {
        -1 => bail!(
            "cannot fork the handler: {}",
            std::io::Error::last_os_error()
        ),
        0 => {
            drop(report);
            // The mask survives exec, and the handler must receive stop signals.
            set_mask(libc::SIG_UNBLOCK);
            Ok(())
        }
        handler => reap_until(handler, report),
    }
}

/// Forwards stop signals to `handler`, reaps every child, and exits once `handler` has: its
/// wait status goes to the supervisor through `report`.
fn reap_until(handler: libc::pid_t, report: OwnedFd) -> ! {
    forward_stop_signals(handler);
    set_mask(libc::SIG_UNBLOCK);
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let reaped = unsafe { libc::waitpid(-1, &mut status, 0) };
        if reaped == handler {
            let bytes = status.to_ne_bytes();
            // SAFETY: writes 4 bytes from a valid buffer to a descriptor this process owns;
            // _exit ends this forked process without the parent's exit handlers.
            unsafe {
                libc::write(report.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                libc::_exit(exit_code(status));
            }
        }
        if reaped < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // SAFETY: as above.
            unsafe { libc::_exit(1) };
        }
        // Any other pid was an orphan of the handler's, reparented to this init.
    }
}

/// Forwards stop signals to the init, waits for it, and exits as the handler did.
fn supervise(init: libc::pid_t, report: OwnedFd) -> ! {
    forward_stop_signals(init);
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let waited = unsafe { libc::waitpid(init, &mut status, 0) };
        if waited == init {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::process::exit(1);
        }
    }
    // The init's own status is used when it died before it sent one, e.g. killed by SIGKILL.
    exit_as(read_status(&report).unwrap_or(status))
}

/// Exits the way a process with wait `status` did: by the same signal, or with the same code.
fn exit_as(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // SAFETY: restores the default action and re-raises, so our parent receives the signal.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    std::process::exit(exit_code(status));
}

/// Returns the exit code a shell gives for wait `status`: the code, or 128 plus the signal.
fn exit_code(status: libc::c_int) -> libc::c_int {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

extern "C" fn forward(signal: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    }
}

fn forward_stop_signals(to: libc::pid_t) {
    FORWARD_TO.store(to, Ordering::SeqCst);
    for signal in STOP_SIGNALS {
        // SAFETY: installs an async-signal-safe handler.
        unsafe { libc::signal(signal, forward as *const () as libc::sighandler_t) };
    }
}

/// Blocks or unblocks the stop signals for this (single-threaded) process.
fn set_mask(how: libc::c_int) {
    // SAFETY: the set is initialised by sigemptyset before use; sigprocmask reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in STOP_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// Makes mount changes private to this namespace and mounts a `/proc` that shows only its
/// processes.
fn mount_proc() -> anyhow::Result<()> {
    // SAFETY: mount(2) with valid, NUL-terminated arguments.
    unsafe {
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
    }
    Ok(())
}

/// Creates a connected pair of non-blocking Unix stream sockets, closed on exec.
fn socket_pair() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: socketpair writes two descriptors into a valid array.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } != 0 {
        bail!(
            "cannot create the sandbox's status socket: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: both descriptors were just created and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Returns whether every copy of the socket's other end is closed.
fn peer_closed(socket: &OwnedFd) -> bool {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & libc::POLLHUP != 0
}

/// Reads the wait status the init sent, if it sent one.
fn read_status(socket: &OwnedFd) -> Option<libc::c_int> {
    let mut bytes = [0u8; 4];
    // SAFETY: reads at most 4 bytes into a valid buffer; the socket is non-blocking.
    let read = unsafe { libc::read(socket.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) };
    (read == 4).then(|| libc::c_int::from_ne_bytes(bytes))
}
