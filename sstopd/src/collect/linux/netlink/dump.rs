//! One dump's worth of datagrams → sockets: a pure state machine, so multi-part dumps,
//! `NLM_F_DUMP_INTR` and errors inside `NLMSG_DONE` are tested on literal bytes.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proto::{Proto, TcpState};

use super::wire::{Item, NLM_F_DUMP_INTR, messages, parse_diag_msg};
use super::{DiagSocket, Family, NetlinkError};

/// Where a dump stands after a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    More,
    Done,
}

/// A finished dump.
#[derive(Debug)]
pub enum DumpOutcome {
    Complete(Vec<DiagSocket>),
    /// The kernel flagged the dump as inconsistent (sockets changed under it): retry.
    Interrupted,
}

pub struct DumpReader {
    seq: u32,
    family: Family,
    proto: Proto,
    sockets: Vec<DiagSocket>,
    interrupted: bool,
}

impl DumpReader {
    pub fn new(seq: u32, family: Family, proto: Proto) -> Self {
        Self {
            seq,
            family,
            proto,
            sockets: Vec::new(),
            interrupted: false,
        }
    }

    /// Take one received datagram (which may hold many messages).
    pub fn feed(&mut self, datagram: &[u8]) -> Result<Progress, NetlinkError> {
        for message in messages(datagram) {
            let (header, item) = message?;
            if header.seq != self.seq {
                // Left over from an earlier dump that ended in an error: not ours.
                continue;
            }
            if header.flags & NLM_F_DUMP_INTR != 0 {
                self.interrupted = true;
            }
            match item {
                Item::Socket(payload) => self.sockets.push(parse_diag_msg(payload, self.proto)?),
                Item::Done { errno: 0 } => return Ok(Progress::Done),
                Item::Done { errno } => return Err(self.errno_error(errno)),
                Item::Error { errno: 0 } | Item::Other => {}
                Item::Error { errno } => return Err(self.errno_error(errno)),
            }
        }
        Ok(Progress::More)
    }

    pub fn finish(mut self) -> DumpOutcome {
        if self.interrupted {
            return DumpOutcome::Interrupted;
        }
        if self.proto == Proto::Tcp {
            infer_roles(&mut self.sockets);
        }
        DumpOutcome::Complete(self.sockets)
    }

    fn errno_error(&self, errno: i32) -> NetlinkError {
        let errno = errno.saturating_neg();
        match errno {
            libc::ENOENT | libc::EOPNOTSUPP | libc::EPROTONOSUPPORT => {
                NetlinkError::NoDiagHandler {
                    family: self.family,
                    proto: self.proto,
                    errno,
                }
            }
            _ => NetlinkError::Kernel { errno },
        }
    }
}

/// Mark connected TCP sockets as passive (accepted) when a listener in the same dump owns
/// their local port, else active. The SYN is counted in `bytes_acked` only on the active side.
pub fn infer_roles(sockets: &mut [DiagSocket]) {
    let listeners: HashSet<(IpAddr, u16)> = sockets
        .iter()
        .filter(|s| s.state == Some(TcpState::Listen))
        .map(|s| (s.local.ip(), s.local.port()))
        .collect();
    if listeners.is_empty() {
        for s in sockets.iter_mut().filter(|s| s.remote.is_some()) {
            s.passive = Some(false);
        }
        return;
    }
    for s in sockets.iter_mut() {
        if s.state == Some(TcpState::Listen) || s.remote.is_none() {
            continue;
        }
        let port = s.local.port();
        let any = match s.local.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let passive = listeners.contains(&(s.local.ip(), port)) || listeners.contains(&(any, port));
        s.passive = Some(passive && s.state != Some(TcpState::SynSent));
    }
}
