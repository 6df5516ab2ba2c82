//! Captured flows → sockets. A frame whose source is a local socket is "sent" for it,
//! one whose destination is a local socket is "received"; on loopback one frame is both.
//! Lookup order: the connected socket with that exact 5-tuple; then a socket bound to
//! the local address and port (unconnected UDP: a QUIC server serves many peers from
//! one socket); then a wildcard-bound one (`0.0.0.0`, `::` — dual-stack); for ICMP,
//! raw and other protocols finally a socket of that protocol on any port (raw sockets
//! receive every packet of their protocol). Nothing matched → unexplained, by protocol
//! and remote address: counted, never dropped.
//!
//! Counting happens at the packet tap, before the socket layer: a datagram the receiving
//! socket then drops (full receive buffer, see `drops` in `/proc/net/udp`) still counts as
//! received, so "down" may exceed what the application read (B13). Forwarded (routed or
//! bridged) frames match no local socket and land in the unexplained bucket, once per
//! interface they cross.
//!
//! The [`Ledger`] keeps per-socket cumulative bytes counted since the socket was first
//! seen (all of them happened while we watched: the aggregator counts a socket born after
//! its first sample in full). A socket that vanished is still matched for one more tick
//! (its last frames arrive after the dump that no longer lists it) and is reported in
//! `closed`; sockets the destroy listener reports closed without ever being dumped (born
//! and gone between two dumps) are matched last and get their bytes in `closed` too.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::Proto;

use super::flows::{Dir, FlowKey};
use crate::collect::{ClosedSocket, PeerFlow, SocketId, SocketSample, UnexplainedFlow};

#[derive(Debug)]
struct Entry {
    sent: u64,
    received: u64,
    last: SocketSample,
}

/// Per-socket byte totals across ticks.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: HashMap<SocketId, Entry>,
    /// The last `account` call's bytes of unconnected sockets, per peer.
    peers: HashMap<(SocketId, SocketAddr), (u64, u64)>,
}

/// Where a flow's local end may belong, keyed for the lookup order above.
#[derive(Default)]
struct Index {
    exact: HashMap<(Proto, SocketAddr, SocketAddr), SocketId>,
    bound: HashMap<(Proto, IpAddr, u16), SocketId>,
    /// Sockets without a remote end: their peers are worth naming.
    unconnected: HashSet<SocketId>,
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Protocols whose sockets may be matched on any port (raw sockets have none).
fn portless(p: Proto) -> bool {
    !matches!(p, Proto::Tcp | Proto::Udp | Proto::Sctp)
}

impl Index {
    /// Earlier insertions win: current sockets are added before vanished ones.
    fn add(&mut self, s: &SocketSample) {
        let local = canonical(s.local);
        match s.remote {
            Some(r) => {
                self.exact
                    .entry((s.proto, local, canonical(r)))
                    .or_insert(s.id);
            }
            None => {
                self.bound
                    .entry((s.proto, local.ip(), local.port()))
                    .or_insert(s.id);
                self.unconnected.insert(s.id);
            }
        }
    }

    fn lookup(&self, proto: Proto, local: SocketAddr, peer: SocketAddr) -> Option<SocketId> {
        let (local, peer) = (canonical(local), canonical(peer));
        if let Some(id) = self.exact.get(&(proto, local, peer)) {
            return Some(*id);
        }
        let v6_any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let v4_any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let ips = [local.ip(), v6_any, v4_any];
        let ips = if local.is_ipv4() { &ips[..] } else { &ips[..2] };
        let mut ports = vec![local.port()];
        if portless(proto) && local.port() != 0 {
            ports.push(0);
        }
        ports
            .iter()
            .flat_map(|port| ips.iter().map(move |ip| (*ip, *port)))
            .find_map(|(ip, port)| self.bound.get(&(proto, ip, port)).copied())
    }
}

impl Ledger {
    /// Credit `flows` to `sockets` (only those `eligible`: in main mode TCP keeps its
    /// kernel counters), write cumulative `sent`/`received` into them, report sockets that
    /// vanished in `closed`, and return what no socket explains.
    pub fn account(
        &mut self,
        sockets: &mut [SocketSample],
        closed: &mut Vec<ClosedSocket>,
        flows: impl IntoIterator<Item = (FlowKey, u64)>,
        eligible: impl Fn(&SocketSample) -> bool,
    ) -> Vec<UnexplainedFlow> {
        let mut index = Index::default();
        let mut current = HashSet::with_capacity(sockets.len());
        for s in sockets.iter().filter(|s| eligible(s)) {
            current.insert(s.id);
            index.add(s);
            self.entries
                .entry(s.id)
                .and_modify(|e| e.last = s.clone())
                .or_insert_with(|| Entry {
                    sent: 0,
                    received: 0,
                    last: s.clone(),
                });
        }
        for (id, e) in &self.entries {
            if !current.contains(id) {
                index.add(&e.last);
            }
        }
        // Closed before any dump listed them: credited straight into `closed`.
        let mut late: HashMap<SocketId, (u64, u64)> = HashMap::new();
        for c in closed.iter() {
            let s = closed_as_sample(c);
            if eligible(&s) && !self.entries.contains_key(&c.id) && !current.contains(&c.id) {
                index.add(&s);
                late.insert(c.id, (0, 0));
            }
        }

        self.peers.clear();
        let mut unexplained: HashMap<(Proto, Option<IpAddr>), (u64, u64)> = HashMap::new();
        for (key, bytes) in flows {
            if bytes == 0 {
                continue;
            }
            if matches!(key.dir, Dir::Out | Dir::Loop) {
                match index.lookup(key.proto, key.src, key.dst) {
                    Some(id) => {
                        self.credit(&mut late, id, bytes, 0);
                        if index.unconnected.contains(&id) {
                            self.peers.entry((id, canonical(key.dst))).or_default().0 += bytes;
                        }
                    }
                    None => {
                        unexplained
                            .entry((key.proto, remote(key.dst)))
                            .or_default()
                            .0 += bytes
                    }
                }
            }
            if matches!(key.dir, Dir::In | Dir::Loop) {
                match index.lookup(key.proto, key.dst, key.src) {
                    Some(id) => {
                        self.credit(&mut late, id, 0, bytes);
                        if index.unconnected.contains(&id) {
                            self.peers.entry((id, canonical(key.src))).or_default().1 += bytes;
                        }
                    }
                    None => {
                        unexplained
                            .entry((key.proto, remote(key.src)))
                            .or_default()
                            .1 += bytes
                    }
                }
            }
        }

        for s in sockets.iter_mut().filter(|s| current.contains(&s.id)) {
            if let Some(e) = self.entries.get(&s.id) {
                s.sent = Some(e.sent);
                s.received = Some(e.received);
            }
        }
        for c in closed.iter_mut() {
            if let Some((sent, received)) = late.get(&c.id) {
                c.sent = c.sent.max(*sent);
                c.received = c.received.max(*received);
            }
        }
        let gone: Vec<SocketId> = self
            .entries
            .keys()
            .filter(|id| !current.contains(id))
            .copied()
            .collect();
        for id in gone {
            let Some(e) = self.entries.remove(&id) else {
                continue;
            };
            match closed.iter_mut().find(|c| c.id == id) {
                // Already reported by the destroy listener (no UDP counters there): add ours.
                Some(c) => {
                    c.sent = c.sent.max(e.sent);
                    c.received = c.received.max(e.received);
                }
                None => closed.push(ClosedSocket {
                    id,
                    proto: e.last.proto,
                    local: e.last.local,
                    remote: e.last.remote,
                    sent: e.sent,
                    received: e.received,
                    owners: e.last.owners,
                }),
            }
        }

        let mut out: Vec<UnexplainedFlow> = unexplained
            .into_iter()
            .map(|((proto, remote), (sent, received))| UnexplainedFlow {
                proto,
                remote,
                sent,
                received,
            })
            .collect();
        out.sort_by_key(|u| (u.proto, u.remote));
        out
    }

    fn credit(
        &mut self,
        late: &mut HashMap<SocketId, (u64, u64)>,
        id: SocketId,
        sent: u64,
        received: u64,
    ) {
        let slot = match self.entries.get_mut(&id) {
            Some(e) => Some((&mut e.sent, &mut e.received)),
            None => late.get_mut(&id).map(|(s, r)| (s, r)),
        };
        if let Some((s, r)) = slot {
            *s += sent;
            *r += received;
        }
    }

    /// Per-peer bytes of unconnected sockets from the last [`Ledger::account`] call.
    pub fn take_peers(&mut self) -> Vec<PeerFlow> {
        let mut out: Vec<PeerFlow> = self
            .peers
            .drain()
            .map(|((socket, remote), (sent, received))| PeerFlow {
                socket,
                remote,
                sent,
                received,
            })
            .collect();
        out.sort_by_key(|p| (p.socket, p.remote));
        out
    }

    /// Sockets currently tracked (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn closed_as_sample(c: &ClosedSocket) -> SocketSample {
    SocketSample {
        id: c.id,
        proto: c.proto,
        local: c.local,
        remote: c.remote,
        state: None,
        uid: 0,
        inode: 0,
        owners: Vec::new(),
        sent: None,
        received: None,
    }
}

fn remote(a: SocketAddr) -> Option<IpAddr> {
    let ip = a.ip().to_canonical();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
#[path = "attribute_tests.rs"]
mod tests;
