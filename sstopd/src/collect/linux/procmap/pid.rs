//! Reading one `/proc/<pid>`: its socket inodes and, for socket owners, who it is.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::parse::{
    Stat, display_cmdline, display_name, parse_stat, parse_status_uid, socket_inode,
};
use crate::collect::{ProcKey, ProcessInfo};

/// Why a pid could not be read this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidError {
    /// ENOENT/ESRCH: the process exited mid-scan. Normal.
    Gone,
    /// EACCES/EPERM: another user's process and we lack CAP_SYS_PTRACE/CAP_DAC_READ_SEARCH.
    Denied,
    /// EMFILE/ENFILE: out of descriptors; the scan stops here (partial).
    NoFds,
    /// Anything else (odd content, unexpected errno).
    Other,
}

impl PidError {
    pub fn from_io(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => PidError::Gone,
            Some(libc::EACCES) | Some(libc::EPERM) => PidError::Denied,
            Some(libc::EMFILE) | Some(libc::ENFILE) => PidError::NoFds,
            _ if e.kind() == io::ErrorKind::NotFound => PidError::Gone,
            _ => PidError::Other,
        }
    }
}

/// Socket inodes held by the process at `dir` (`/proc/<pid>`), sorted and de-duplicated.
/// The directory handle is dropped before returning: no descriptor outlives the call.
///
/// Each link is read relative to the open `fd` directory with one reused buffer: a
/// readlink by full path walks `/proc/<pid>/fd/` again for every descriptor, which
/// doubled the cost of a scan of a process holding thousands of sockets.
pub fn socket_inodes(dir: &Path) -> Result<Vec<u64>, PidError> {
    use rustix::fs::{CWD, Dir, Mode, OFlags, openat, readlinkat};
    let err = |e: rustix::io::Errno| PidError::from_io(&io::Error::from(e));
    let fd = openat(
        CWD,
        dir.join("fd"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    let entries = Dir::read_from(&fd).map_err(err)?;
    let mut inodes = Vec::new();
    let mut buf = Vec::with_capacity(64);
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => match err(e) {
                // The process exited while we listed its fds: what we have is stale anyway.
                PidError::Gone => return Err(PidError::Gone),
                PidError::NoFds => return Err(PidError::NoFds),
                _ => continue,
            },
        };
        let name = entry.file_name();
        if name.to_bytes().starts_with(b".") {
            continue;
        }
        // A closed-meanwhile fd gives ENOENT here; skip it.
        if let Ok(target) = readlinkat(&fd, name, std::mem::take(&mut buf)) {
            if let Some(inode) = socket_inode(target.as_bytes()) {
                inodes.push(inode);
            }
            buf = target.into_bytes();
        }
    }
    inodes.sort_unstable();
    inodes.dedup();
    Ok(inodes)
}

/// `/proc/<pid>/stat`, parsed.
pub fn read_stat(dir: &Path) -> Result<Stat, PidError> {
    let raw = std::fs::read(dir.join("stat")).map_err(|e| PidError::from_io(&e))?;
    parse_stat(&raw).ok_or(PidError::Other)
}

/// Everything shown about a process. `stat` was read just before (identity check).
pub fn read_info(dir: &Path, stat: Stat) -> Result<ProcessInfo, PidError> {
    let status = std::fs::read(dir.join("status")).map_err(|e| PidError::from_io(&e))?;
    let uid = parse_status_uid(&String::from_utf8_lossy(&status)).ok_or(PidError::Other)?;
    let cmdline = std::fs::read(dir.join("cmdline")).map_err(|e| PidError::from_io(&e))?;
    // The exe link is only worth a syscall when comm was cut (and may be unreadable).
    let exe = if stat.comm.len() == super::parse::COMM_MAX {
        std::fs::read_link(dir.join("exe"))
            .ok()
            .map(|p| p.into_os_string())
    } else {
        None
    };
    let name = display_name(
        &stat.comm,
        &cmdline,
        exe.as_deref().map(|e: &OsStr| e.as_bytes()),
        stat.is_kernel_thread(),
    );
    Ok(ProcessInfo {
        key: ProcKey {
            pid: stat.pid,
            start_time: stat.start_time,
        },
        ppid: stat.ppid,
        uid,
        comm: stat.comm,
        name,
        cmdline: display_cmdline(&cmdline),
        alive: true,
    })
}
