//! Delivery: a handle on the target opened *before* the target is inspected, and
//! the signal sent through that handle, so a pid recycled in between is never hit.
//! Linux: a pidfd. macOS (no pidfd): the start time is checked again just before `kill`.

use rustix::process::Signal as OsSignal;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DeliverError {
    /// The process exited (ESRCH).
    #[error("process exited")]
    Gone,
    /// The pid names no process this daemon can open (e.g. a thread id, not a process id).
    #[error("not a process id")]
    NotAProcess,
    #[error("{0}")]
    Os(std::io::Error),
}

impl From<rustix::io::Errno> for DeliverError {
    fn from(errno: rustix::io::Errno) -> Self {
        if errno == rustix::io::Errno::SRCH {
            DeliverError::Gone
        } else {
            DeliverError::Os(errno.into())
        }
    }
}

fn os_pid(pid: u32) -> Result<rustix::process::Pid, DeliverError> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or(DeliverError::NotAProcess)
}

/// A pinned process: the pidfd refers to exactly one process for its whole life,
/// even after the number is reused.
#[cfg(target_os = "linux")]
pub struct Handle {
    pidfd: std::os::fd::OwnedFd,
}

#[cfg(target_os = "linux")]
impl Handle {
    pub fn open(pid: u32) -> Result<Handle, DeliverError> {
        use rustix::process::{PidfdFlags, pidfd_open};
        match pidfd_open(os_pid(pid)?, PidfdFlags::empty()) {
            Ok(pidfd) => Ok(Handle { pidfd }),
            // A thread id that is not a thread-group leader: there is no such process.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => {
                Err(DeliverError::NotAProcess)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Signal the pinned process; `_start_time` is already guaranteed by the pidfd.
    pub fn send(&self, signal: OsSignal, _start_time: u64) -> Result<(), DeliverError> {
        rustix::process::pidfd_send_signal(&self.pidfd, signal).map_err(DeliverError::from)
    }
}

/// macOS has no pidfd: remember the pid and re-check the start time right before `kill`,
/// which narrows the reuse window to two syscalls.
#[cfg(not(target_os = "linux"))]
pub struct Handle {
    pid: u32,
}

#[cfg(not(target_os = "linux"))]
impl Handle {
    pub fn open(pid: u32) -> Result<Handle, DeliverError> {
        // Existence check only (ESRCH → Gone); identity is established by the start time.
        rustix::process::test_kill_process(os_pid(pid)?).map_err(DeliverError::from)?;
        Ok(Handle { pid })
    }

    pub fn send(&self, signal: OsSignal, start_time: u64) -> Result<(), DeliverError> {
        match super::target::inspect(self.pid) {
            Ok(now) if now.start_time == start_time => {}
            // The process that was checked has exited (its pid may already be someone else's).
            Ok(_) | Err(super::target::TargetError::Gone) => return Err(DeliverError::Gone),
            Err(e) => return Err(DeliverError::Os(std::io::Error::other(e.to_string()))),
        }
        rustix::process::kill_process(os_pid(self.pid)?, signal).map_err(DeliverError::from)
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn pidfd_reaches_the_pinned_child_and_reports_gone_after_reaping() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let handle = Handle::open(child.id()).unwrap();
        handle.send(OsSignal::KILL, 0).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped: the pidfd now refers to nothing, whatever the number means today.
        assert!(matches!(
            handle.send(OsSignal::CONT, 0),
            Err(DeliverError::Gone)
        ));
    }

    #[test]
    fn impossible_pids_are_not_processes() {
        assert!(matches!(Handle::open(0), Err(DeliverError::NotAProcess)));
        assert!(matches!(
            Handle::open(u32::MAX),
            Err(DeliverError::NotAProcess)
        ));
        // Above pid_max (at most 2^22): no such process.
        assert!(matches!(Handle::open(1 << 30), Err(DeliverError::Gone)));
    }
}
