//! Roll-ups across sockets: remote hosts, listen ports, the unattributed rows by protocol.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use proto::{ListenPort, Proto, RemoteHost, TcpState, Traffic, Unattributed};

use super::census::Census;
use super::procs::ProcTable;
use super::sockets::{SocketTable, record_traffic};
use crate::collect::ProcKey;
use crate::fasthash::{FastMap, FastSet};

/// Remote ports listed per host: under churn one host (127.0.0.1) collects thousands of
/// ephemeral ports, which would bloat every frame; the lowest are the telling ones.
pub const MAX_HOST_PORTS: usize = 64;

/// An idle host or protocol row with no open connection is dropped after this long.
pub const IDLE_RETENTION: Duration = Duration::from_secs(60);

/// Sockets that count as open connections (not listeners, not TIME-WAIT leftovers).
pub fn is_open_connection(sample: &crate::collect::SocketSample) -> bool {
    !sample.is_listening() && sample.state != Some(TcpState::TimeWait)
}

#[derive(Debug, Default)]
struct HostState {
    traffic: Traffic,
    pending: (u64, u64),
    connections: u32,
    ports: BTreeSet<u16>,
    /// Ports of peers seen by unconnected sockets (no socket names them) → when.
    peer_ports: HashMap<u16, Duration>,
    /// Processes that talked to the host recently (open or closed connections) → when.
    processes: HashMap<String, Duration>,
    /// Owners of this tick's open connections to the host, named once per tick (a name
    /// lookup per socket was a string hash per socket).
    owners: FastSet<ProcKey>,
    last_active: Duration,
}

#[derive(Debug, Default)]
struct BucketState {
    traffic: Traffic,
    pending: (u64, u64),
    connections: u32,
    last_active: Duration,
}

#[derive(Default)]
pub struct Rollup {
    hosts: FastMap<IpAddr, HostState>,
    unattributed: HashMap<Proto, BucketState>,
}

impl Rollup {
    pub fn credit_host(&mut self, addr: IpAddr, up: u64, down: u64, now: Duration) {
        if addr.is_unspecified() {
            return;
        }
        let h = self.hosts.entry(addr).or_default();
        h.pending.0 = h.pending.0.saturating_add(up);
        h.pending.1 = h.pending.1.saturating_add(down);
        h.last_active = now;
    }

    /// An unconnected socket exchanged datagrams with `addr`:`port` (credit the bytes first).
    pub fn host_port(&mut self, addr: IpAddr, port: u16, now: Duration) {
        if let Some(h) = self.hosts.get_mut(&addr) {
            h.peer_ports.insert(port, now);
        }
    }

    /// `name` moved bytes with `addr` (a closed connection's owner, say).
    pub fn host_process(&mut self, addr: IpAddr, name: &str, now: Duration) {
        if let Some(h) = self.hosts.get_mut(&addr) {
            match h.processes.get_mut(name) {
                Some(seen) => *seen = now,
                None => {
                    h.processes.insert(name.to_string(), now);
                }
            }
        }
    }

    pub fn credit_unattributed(&mut self, proto: Proto, up: u64, down: u64, now: Duration) {
        let b = self.unattributed.entry(proto).or_default();
        b.pending.0 = b.pending.0.saturating_add(up);
        b.pending.1 = b.pending.1.saturating_add(down);
        b.last_active = now;
    }

    /// Recount connections, ports and process names from the open sockets, fold this
    /// tick's bytes into rates, forget rows idle for long.
    pub fn finish_tick(&mut self, census: &Census, procs: &ProcTable, now: Duration, dt: Duration) {
        for h in self.hosts.values_mut() {
            h.connections = 0;
            h.ports.clear();
            h.processes
                .retain(|_, seen| now.saturating_sub(*seen) < IDLE_RETENTION);
            h.peer_ports
                .retain(|_, seen| now.saturating_sub(*seen) < IDLE_RETENTION);
            h.ports.extend(h.peer_ports.keys());
        }
        for b in self.unattributed.values_mut() {
            b.connections = 0;
        }
        for (proto, n) in &census.unattributed {
            let b = self.unattributed.entry(*proto).or_default();
            b.connections = *n;
            b.last_active = b.last_active.max(now);
        }
        for (ip, c) in &census.hosts {
            let h = self.hosts.entry(*ip).or_default();
            h.connections = c.connections;
            h.ports.extend(c.ports.keys().take(MAX_HOST_PORTS));
            h.last_active = now;
            h.owners.extend(c.owners.keys());
        }
        for h in self.hosts.values_mut() {
            for owner in h.owners.drain() {
                if let Some(name) = procs.name(&owner) {
                    match h.processes.get_mut(name) {
                        Some(seen) => *seen = now,
                        None => {
                            h.processes.insert(name.to_string(), now);
                        }
                    }
                }
            }
        }
        self.hosts.retain(|_, h| {
            let (up, down) = std::mem::take(&mut h.pending);
            record_traffic(&mut h.traffic, up, down, dt);
            h.connections > 0 || now.saturating_sub(h.last_active) < IDLE_RETENTION
        });
        self.unattributed.retain(|_, b| {
            let (up, down) = std::mem::take(&mut b.pending);
            record_traffic(&mut b.traffic, up, down, dt);
            b.connections > 0 || now.saturating_sub(b.last_active) < IDLE_RETENTION
        });
    }

    pub fn hosts(&self) -> Vec<RemoteHost> {
        let mut rows: Vec<RemoteHost> = self
            .hosts
            .iter()
            .map(|(addr, h)| RemoteHost {
                addr: *addr,
                traffic: h.traffic,
                connections: h.connections,
                ports: h.ports.iter().copied().take(MAX_HOST_PORTS).collect(),
                processes: {
                    let mut names: Vec<String> = h.processes.keys().cloned().collect();
                    names.sort();
                    names
                },
            })
            .collect();
        rows.sort_by_key(|h| h.addr);
        rows
    }

    pub fn unattributed(&self) -> Vec<Unattributed> {
        let mut rows: Vec<Unattributed> = self
            .unattributed
            .iter()
            .map(|(proto, b)| Unattributed {
                proto: *proto,
                traffic: b.traffic,
                connections: b.connections,
            })
            .collect();
        rows.sort_by_key(|u| u.proto);
        rows
    }
}

/// Listening sockets (TCP LISTEN, bound unconnected UDP) with their owners. Pre-fork
/// workers sharing one listener collapse into one row per name (the lowest pid).
pub fn listen_ports(sockets: &SocketTable, procs: &ProcTable) -> Vec<ListenPort> {
    let mut rows: HashMap<(Proto, IpAddr, u16, String), u32> = HashMap::new();
    for id in &sockets.census().listeners {
        let Some(st) = sockets.get(*id) else { continue };
        let s = &st.sample;
        let addr = (s.proto, s.local.ip(), s.local.port());
        if s.owners.is_empty() {
            rows.entry((addr.0, addr.1, addr.2, String::new()))
                .or_insert(0);
        }
        for owner in &s.owners {
            let name = procs.name(owner).unwrap_or_default().to_string();
            let pid = rows
                .entry((addr.0, addr.1, addr.2, name))
                .or_insert(owner.pid);
            *pid = (*pid).min(owner.pid);
        }
    }
    let mut out: Vec<ListenPort> = rows
        .into_iter()
        .map(|((proto, addr, port, name), pid)| ListenPort {
            proto,
            addr,
            port,
            pid,
            name,
        })
        .collect();
    out.sort_by_key(|l| (l.port, l.proto, l.addr, l.pid));
    out
}
