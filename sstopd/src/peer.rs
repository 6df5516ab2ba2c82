//! Who is on the other end of a Unix socket, as the kernel says (never as the
//! peer claims): `SO_PEERCRED` (+ `SO_PEERGROUPS` on Linux, `getpeereid` on macOS).

/// Credentials of a connected viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    /// 0 when the OS does not report it.
    pub pid: u32,
    /// Supplementary groups (may be empty where the OS does not report them).
    pub groups: Vec<u32>,
}

impl Peer {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

#[cfg(target_os = "linux")]
impl Peer {
    /// Credentials of the process at the other end of a connected Unix socket.
    pub fn from_fd(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Peer> {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        let cred = getsockopt(&fd, PeerCredentials).map_err(std::io::Error::from)?;
        Ok(Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: u32::try_from(cred.pid()).unwrap_or(0),
            groups: peer_groups(fd).unwrap_or_default(),
        })
    }
}

#[cfg(target_os = "macos")]
impl Peer {
    /// Credentials of the process at the other end of a connected Unix socket:
    /// `LOCAL_PEERCRED` (uid + groups, the first being the effective gid) and
    /// `LOCAL_PEERPID`.
    pub fn from_fd(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Peer> {
        use std::os::fd::AsRawFd;
        // SAFETY: xucred is plain old data; all-zero is a valid value.
        let mut cred: libc::xucred = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xucred>() as libc::socklen_t;
        // SAFETY: the buffer is a valid, writable xucred of `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_LOCAL,
                libc::LOCAL_PEERCRED,
                (&mut cred as *mut libc::xucred).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if cred.cr_version != libc::XUCRED_VERSION {
            return Err(std::io::Error::other("unknown xucred version"));
        }
        // Only the first cr_ngroups entries are groups; the rest of the array is zero
        // (gid 0 is wheel: reading past the count would grant admin rights).
        let count = usize::try_from(cred.cr_ngroups)
            .unwrap_or(0)
            .min(cred.cr_groups.len());
        let groups = &cred.cr_groups[..count];
        let Some((&gid, supplementary)) = groups.split_first() else {
            return Err(std::io::Error::other("peer credentials carry no group"));
        };
        let mut pid: libc::c_int = 0;
        let mut pid_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the buffer is a valid, writable c_int of `pid_len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_LOCAL,
                libc::LOCAL_PEERPID,
                (&mut pid as *mut libc::c_int).cast(),
                &mut pid_len,
            )
        };
        Ok(Peer {
            uid: cred.cr_uid,
            gid,
            pid: if rc == 0 {
                u32::try_from(pid).unwrap_or(0)
            } else {
                0
            },
            groups: supplementary.to_vec(),
        })
    }
}

/// `SO_PEERGROUPS`: supplementary groups of the peer at connect time.
#[cfg(target_os = "linux")]
fn peer_groups(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    use std::os::fd::AsRawFd;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the buffer is valid for `len` bytes and the kernel writes at most `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        // ERANGE: the kernel wrote the size it needs into `len`.
        if err.raw_os_error() == Some(libc::ERANGE) && count > groups.len() && count <= 65_536 {
            groups.resize(count, 0);
            continue;
        }
        return Err(err);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn peer_of_socketpair_is_ourselves() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let peer = Peer::from_fd(a.as_fd()).unwrap();
        assert_eq!(peer.uid, rustix::process::getuid().as_raw());
        assert_eq!(peer.pid, std::process::id());
    }
}
