//! Pidfds (Linux 5.3+): a descriptor for one process that turns readable once it has exited,
//! even before it is reaped, so a driver can tell a sandbox has ended before it hears so.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::ExitProbe;

#[derive(Debug)]
pub struct Pidfd(OwnedFd);

impl Pidfd {
    pub fn open(pid: u32) -> Option<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the descriptor was just created and nothing else owns it.
        Some(Self(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl ExitProbe for Pidfd {
    fn has_exited(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready > 0 && poll.revents & libc::POLLIN != 0
    }
}
