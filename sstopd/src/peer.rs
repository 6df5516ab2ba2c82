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
