//! What the open sockets add up to — connections, listeners and shared sockets per owner,
//! connections, ports and owners per remote host, unattributed connections, the listening
//! sockets — kept up to date as sockets come, change and go. A tick then costs what
//! changed, not a walk over every socket (most of which are idle).

use std::collections::BTreeMap;
use std::net::IpAddr;

use proto::Proto;

use super::procs::Counts;
use super::rollup::is_open_connection;
use crate::collect::{ProcKey, SocketId, SocketSample};
use crate::fasthash::{FastMap, FastSet};

/// Open connections to one remote host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostCensus {
    pub connections: u32,
    /// Remote port → connections using it; ordered, so the lowest few (all a frame
    /// lists) are read without visiting thousands of ephemeral ports.
    pub ports: BTreeMap<u16, u32>,
    /// Owner → its connections to the host.
    pub owners: FastMap<ProcKey, u32>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Census {
    pub owners: FastMap<ProcKey, Counts>,
    pub hosts: FastMap<IpAddr, HostCensus>,
    /// Open connections no process could be named for, per protocol.
    pub unattributed: FastMap<Proto, u32>,
    pub listeners: FastSet<SocketId>,
}

/// Whether two samples of one socket count the same in a [`Census`].
pub fn same_census(a: &SocketSample, b: &SocketSample) -> bool {
    a.state == b.state
        && a.remote == b.remote
        && a.local == b.local
        && a.proto == b.proto
        && a.owners == b.owners
}

impl Census {
    pub fn add(&mut self, s: &SocketSample) {
        self.apply(s, true);
    }

    pub fn remove(&mut self, s: &SocketSample) {
        self.apply(s, false);
    }

    /// Count `s` in (`add`) or out. Every removal is of a sample added before, so counts
    /// never go below zero; entries that reach zero are dropped.
    fn apply(&mut self, s: &SocketSample, add: bool) {
        let step = |v: &mut u32| {
            *v = if add {
                v.saturating_add(1)
            } else {
                v.saturating_sub(1)
            }
        };
        let listening = s.is_listening();
        let open = is_open_connection(s);
        for owner in &s.owners {
            let c = self.owners.entry(*owner).or_default();
            if listening {
                step(&mut c.listening);
            } else if open {
                step(&mut c.connections);
            }
            if s.owners.len() > 1 {
                step(&mut c.shared);
            }
            if c.listening == 0 && c.connections == 0 && c.shared == 0 {
                self.owners.remove(owner);
            }
        }
        if listening {
            if add {
                self.listeners.insert(s.id);
            } else {
                self.listeners.remove(&s.id);
            }
        }
        if !open {
            return;
        }
        if s.owners.is_empty() {
            let n = self.unattributed.entry(s.proto).or_default();
            step(n);
            if *n == 0 {
                self.unattributed.remove(&s.proto);
            }
        }
        let Some(remote) = s.remote else { return };
        if remote.ip().is_unspecified() {
            return;
        }
        let h = self.hosts.entry(remote.ip()).or_default();
        step(&mut h.connections);
        let port = h.ports.entry(remote.port()).or_default();
        step(port);
        if *port == 0 {
            h.ports.remove(&remote.port());
        }
        for owner in &s.owners {
            let n = h.owners.entry(*owner).or_default();
            step(n);
            if *n == 0 {
                h.owners.remove(owner);
            }
        }
        if h.connections == 0 {
            self.hosts.remove(&remote.ip());
        }
    }
}
