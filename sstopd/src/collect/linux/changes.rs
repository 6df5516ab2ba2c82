//! Which listed TCP sockets changed since they were last passed on.
//!
//! Most sockets of a busy host are idle most of the time. A full dump lists all of them;
//! passing every one down the pipeline (owners, attribution, aggregation) cost several
//! random lookups per socket in tables of tens of thousands. Here one compact lookup per
//! socket decides: only sockets that are new, whose counters or state differ, or whose
//! `/proc` owners changed (as the owner map reports) go on, plus every listener (they name the passive side's owners each tick),
//! and a complete listing says which known sockets vanished.

use proto::{Proto, TcpState};

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::collect::{SocketId, SocketSample};
use crate::fasthash::FastMap;

/// One entry per TCP socket on the host (tens of thousands): kept compact.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Counters as [`counter`] packs them.
    sent: u64,
    received: u64,
    state: Option<TcpState>,
    /// The owner map's change counter when the socket was last passed on.
    owners_seen: u64,
    /// The re-sync that last listed it.
    generation: u32,
    inode: u64,
    /// (local, remote) when connected: what a lookup of it names.
    addrs: Option<Endpoints>,
}

/// Socket `id`'s inode went `from` → `to` (0: none) in the inode → socket index.
fn reindex(by_inode: &mut FastMap<u64, SocketId>, id: SocketId, from: u64, to: u64) {
    if from == to {
        return;
    }
    if from != 0 && by_inode.get(&from) == Some(&id) {
        by_inode.remove(&from);
    }
    if to != 0 {
        by_inode.insert(to, id);
    }
}

/// A counter that may be missing, in 8 bytes: `u64::MAX` bytes is never reached.
fn counter(value: Option<u64>) -> u64 {
    value.unwrap_or(u64::MAX)
}

/// A connection's (local, remote), packed into 38 bytes instead of 64.
#[derive(Debug, Clone, Copy)]
struct Endpoints {
    ips: [[u8; 16]; 2],
    ports: [u16; 2],
    v4: [bool; 2],
}

impl Endpoints {
    fn new(local: SocketAddr, remote: SocketAddr) -> Self {
        let ip = |a: SocketAddr| match a.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        Endpoints {
            ips: [ip(local), ip(remote)],
            ports: [local.port(), remote.port()],
            v4: [local.is_ipv4(), remote.is_ipv4()],
        }
    }

    fn get(&self) -> (SocketAddr, SocketAddr) {
        let addr = |i: usize| {
            let v6 = Ipv6Addr::from(self.ips[i]);
            let ip = match v6.to_ipv4_mapped() {
                Some(v4) if self.v4[i] => IpAddr::V4(v4),
                _ => IpAddr::V6(v6),
            };
            SocketAddr::new(ip, self.ports[i])
        };
        (addr(0), addr(1))
    }
}

#[derive(Debug, Default)]
pub struct Changes {
    known: FastMap<SocketId, Seen>,
    /// inode → socket, for the known sockets with an inode.
    by_inode: FastMap<u64, SocketId>,
    /// (local, remote) of known sockets whose byte counters moved, in the last filter.
    moved: Vec<(SocketAddr, Option<SocketAddr>)>,
    generation: u32,
    /// The re-sync under way is a walk: a socket it misses is gone only if the one
    /// before missed it too.
    walk: bool,
    primed: bool,
}

impl Changes {
    /// True once a complete listing went through: from then on, TCP listings passed on
    /// are partial (unchanged sockets left out).
    pub fn primed(&self) -> bool {
        self.primed
    }

    /// A listing of every TCP socket begins, one dump or a `walk` over several ticks:
    /// what is listed from now on counts as present at its end. A walk resumes each tick
    /// at an index within a hash chain, so an entry leaving that chain meanwhile can make
    /// it skip a live socket: what one walk misses is only gone when the re-sync before
    /// missed it too.
    pub fn begin(&mut self, walk: bool) {
        self.generation = self.generation.wrapping_add(1);
        self.walk = walk;
    }

    /// These known sockets were listed (without usable counters).
    pub fn seen(&mut self, ids: &[SocketId]) {
        for id in ids {
            if let Some(seen) = self.known.get_mut(id) {
                seen.generation = self.generation;
            }
        }
    }

    /// Keep in `sockets` the TCP sockets that are new or changed (and every listener);
    /// other protocols are left alone. `last_change(inode)`: when the socket's owners last
    /// changed (a counter value, 0 = not lately); `seq`: that counter now. With `complete`
    /// (every TCP socket was listed since [`Changes::begin`]), known sockets not listed
    /// since (nor, after a walk, in the re-sync before) are forgotten and returned.
    pub fn filter(
        &mut self,
        sockets: &mut Vec<SocketSample>,
        complete: bool,
        last_change: impl Fn(u64) -> u64,
        seq: u64,
    ) -> Vec<SocketId> {
        self.moved.clear();
        let generation = self.generation;
        sockets.retain(|s| {
            if s.proto != Proto::Tcp {
                return true;
            }
            let now = Seen {
                sent: counter(s.sent),
                received: counter(s.received),
                state: s.state,
                owners_seen: seq,
                generation,
                inode: s.inode,
                addrs: s.remote.map(|r| Endpoints::new(s.local, r)),
            };
            let changed = match self.known.get_mut(&s.id) {
                Some(seen) => {
                    if seen.sent != now.sent || seen.received != now.received {
                        self.moved.push((s.local, s.remote));
                    }
                    // An inode comes with accept() and goes with close() (orphan: 0).
                    reindex(&mut self.by_inode, s.id, seen.inode, now.inode);
                    // A new inode is a new holder (accept) or none (close): owners to pass on.
                    let same = seen.sent == now.sent
                        && seen.received == now.received
                        && seen.state == now.state
                        && seen.inode == now.inode
                        && last_change(s.inode) <= seen.owners_seen;
                    *seen = Seen {
                        owners_seen: if same { seen.owners_seen } else { seq },
                        ..now
                    };
                    !same
                }
                None => {
                    self.known.insert(s.id, now);
                    reindex(&mut self.by_inode, s.id, 0, s.inode);
                    true
                }
            };
            changed || s.is_listening()
        });
        if !complete {
            return Vec::new();
        }
        self.primed = true;
        let misses = if self.walk { 2 } else { 1 };
        let gone: Vec<SocketId> = self
            .known
            .iter()
            .filter(|(_, seen)| generation.wrapping_sub(seen.generation) >= misses)
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.forget(*id);
        }
        gone
    }

    /// The sockets passed on this tick have their owners as of `seq` (the owner map was
    /// refreshed after [`Changes::filter`]): that refresh is not a change to report again.
    pub fn owners_settled(&mut self, ids: impl Iterator<Item = SocketId>, seq: u64) {
        for id in ids {
            if let Some(seen) = self.known.get_mut(&id) {
                seen.owners_seen = seq;
            }
        }
    }

    /// (local, remote) of the known sockets whose byte counters moved in the last
    /// [`Changes::filter`] (new sockets not included).
    pub fn moved(&self) -> &[(SocketAddr, Option<SocketAddr>)] {
        &self.moved
    }

    /// The socket was listed and has not left since.
    pub fn is_known(&self, id: SocketId) -> bool {
        self.known.contains_key(&id)
    }

    /// A socket was destroyed: never listed again.
    pub fn closed(&mut self, id: SocketId) {
        self.forget(id);
    }

    fn forget(&mut self, id: SocketId) {
        if let Some(seen) = self.known.remove(&id) {
            reindex(&mut self.by_inode, id, seen.inode, 0);
        }
    }

    /// (local, remote) of the known connected sockets among `inodes` whose owners changed
    /// since they were last passed on (`last_change` as for [`Changes::filter`]): an idle
    /// socket changing hands (a fork, an exit, a descriptor passed) is read again at once,
    /// not at the next re-sync.
    pub fn owner_moves(
        &self,
        inodes: &[u64],
        last_change: impl Fn(u64) -> u64,
    ) -> Vec<(SocketAddr, SocketAddr)> {
        inodes
            .iter()
            .filter_map(|inode| self.known.get(self.by_inode.get(inode)?))
            .filter(|seen| last_change(seen.inode) > seen.owners_seen)
            .filter_map(|seen| Some(seen.addrs?.get()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(id: u64, sent: u64, state: TcpState) -> SocketSample {
        SocketSample {
            id,
            proto: Proto::Tcp,
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: Some("10.0.0.2:443".parse().unwrap()),
            state: Some(state),
            uid: 0,
            inode: id + 1000,
            owners: Vec::new(),
            sent: Some(sent),
            received: Some(0),
        }
    }

    fn ids(v: &[SocketSample]) -> Vec<u64> {
        v.iter().map(|s| s.id).collect()
    }

    #[test]
    fn only_new_changed_and_listening_sockets_pass_and_vanished_ones_are_named() {
        use TcpState::*;
        let mut c = Changes::default();
        let listener = SocketSample {
            remote: None,
            ..tcp(9, 0, Listen)
        };
        let udp = SocketSample {
            proto: Proto::Udp,
            ..tcp(8, 0, Established)
        };
        let no_owner = |_| 0;
        let mut first = vec![
            tcp(1, 10, Established),
            tcp(2, 10, Established),
            listener.clone(),
            udp.clone(),
        ];
        c.begin(false);
        assert!(c.filter(&mut first, true, no_owner, 1).is_empty());
        assert_eq!(ids(&first), [1, 2, 9, 8]);
        assert!(c.primed());

        // Complete again: 1 unchanged, 2 moved, 3 new, the listener and UDP always pass.
        let mut next = vec![
            tcp(1, 10, Established),
            tcp(2, 11, Established),
            tcp(3, 0, SynSent),
            listener.clone(),
            udp.clone(),
        ];
        c.begin(false);
        assert!(c.filter(&mut next, true, no_owner, 1).is_empty());
        assert_eq!(ids(&next), [2, 3, 9, 8]);
        assert_eq!(c.moved().len(), 1, "socket 2's bytes moved; 3 is new");

        // Partial: socket 1's state moved; nothing is declared gone.
        let mut partial = vec![tcp(1, 10, FinWait1)];
        assert!(c.filter(&mut partial, false, no_owner, 1).is_empty());
        assert_eq!(ids(&partial), [1]);

        // Socket 2 changes hands (a new owner in /proc): passed on though its bytes did not move.
        let mut handed = vec![
            tcp(1, 10, FinWait1),
            tcp(2, 11, Established),
            tcp(3, 0, SynSent),
            listener,
        ];
        let owners = |inode: u64| if inode == 1002 { 5 } else { 0 };
        // Complete, without socket 3 (destroyed).
        c.closed(3);
        handed.retain(|s| s.id != 3);
        c.begin(false);
        assert!(
            c.filter(&mut handed, true, owners, 5).is_empty(),
            "3 was closed, not gone"
        );
        assert_eq!(ids(&handed), [2, 9]);
        let mut last = vec![tcp(2, 11, Established)];
        c.begin(false);
        let mut gone = c.filter(&mut last, true, owners, 5);
        gone.sort_unstable();
        assert_eq!(gone, [1, 9]);
        assert!(last.is_empty(), "2 unchanged since the last listing");
    }

    #[test]
    fn idle_sockets_whose_owners_changed_are_named_for_a_lookup() {
        use TcpState::Established;
        let mut c = Changes::default();
        c.begin(false);
        let mut all: Vec<SocketSample> = (1..=3).map(|id| tcp(id, 10, Established)).collect();
        all.push(SocketSample {
            remote: None,
            ..tcp(4, 0, TcpState::Close)
        });
        c.filter(&mut all, true, |_| 0, 5);
        // Owners of 1 (inode 1001) changed after it was passed on (change 7 > 5); 2's
        // change (3) is older than what was passed on; 4 has no remote to look up by;
        // 99 is unknown.
        let last_change = |inode: u64| match inode {
            1001 => 7,
            1002 => 3,
            1004 => 9,
            _ => 0,
        };
        let moves = c.owner_moves(&[1001, 1002, 1004, 99], last_change);
        assert_eq!(moves, [(all_local(), all_remote())]);
        // Once passed on again with its new owners, no more.
        c.owners_settled([1].into_iter(), 7);
        assert!(c.owner_moves(&[1001], last_change).is_empty());
        // Closed: forgotten, inode and all.
        c.closed(1);
        assert!(c.owner_moves(&[1001], |_| 100).is_empty());
    }

    #[test]
    fn packed_endpoints_give_back_the_addresses_they_were_made_from() {
        for (local, remote) in [
            ("10.0.0.1:40000", "10.0.0.2:443"),
            ("[fe80::1]:5353", "[2001:db8::2]:53"),
            // A v6 socket talking to a v4 peer: mapped addresses stay v6.
            ("[::ffff:127.0.0.1]:1", "[::ffff:10.0.0.2]:65535"),
            ("0.0.0.0:0", "[::]:0"),
        ] {
            let (local, remote) = (local.parse().unwrap(), remote.parse().unwrap());
            assert_eq!(Endpoints::new(local, remote).get(), (local, remote));
        }
        // Why it is packed: one entry per TCP socket on the host.
        assert!(std::mem::size_of::<Seen>() <= 80);
    }

    /// A connection the process closes while it lingers (FIN-WAIT, LAST-ACK) is orphaned:
    /// sock_diag then reports inode 0. Once destroyed, nothing of it may stay behind.
    #[test]
    fn an_orphaned_socket_leaves_no_inode_entry_behind() {
        use TcpState::{Established, FinWait2};
        let mut c = Changes::default();
        c.begin(false);
        for id in 1..=1000u64 {
            let mut open = vec![tcp(id, 10, Established)];
            c.filter(&mut open, false, |_| 0, 1);
            // close(): FIN sent and acked, the socket lingers orphaned (inode 0).
            let mut orphan = vec![SocketSample {
                inode: 0,
                ..tcp(id, 10, FinWait2)
            }];
            c.filter(&mut orphan, false, |_| 0, 1);
            // Its destroy event.
            c.closed(id);
        }
        assert!(c.known.is_empty());
        assert_eq!(
            c.by_inode.len(),
            0,
            "by_inode leaks one entry per closed connection"
        );
    }

    /// A connection first listed in its listener's accept queue has no inode (no file yet);
    /// accept() gives it one. A later owner change must still be looked up.
    #[test]
    fn a_socket_listed_before_accept_is_passed_on_and_found_by_its_inode_after() {
        use TcpState::Established;
        let mut c = Changes::default();
        c.begin(false);
        let mut queued = vec![SocketSample {
            inode: 0,
            ..tcp(1, 10, Established)
        }];
        c.filter(&mut queued, true, |_| 0, 1);
        // accept(): same counters, same state, an inode now: passed on for its owners.
        let mut accepted = vec![tcp(1, 10, Established)];
        c.filter(&mut accepted, false, |_| 0, 1);
        assert_eq!(accepted.len(), 1, "an inode gained is a change");
        // Its owner forks / exits later (change 7 > 1).
        let moves = c.owner_moves(&[1001], |_| 7);
        assert_eq!(
            moves,
            [(all_local(), all_remote())],
            "owner move not looked up"
        );
    }

    fn all_local() -> SocketAddr {
        "10.0.0.1:40000".parse().unwrap()
    }

    fn all_remote() -> SocketAddr {
        "10.0.0.2:443".parse().unwrap()
    }

    #[test]
    fn a_listing_spread_over_ticks_names_only_the_sockets_none_of_its_parts_listed() {
        use TcpState::{Established, SynSent};
        let mut c = Changes::default();
        let no_owner = |_| 0;
        c.begin(false);
        let mut all: Vec<SocketSample> = (1..=5).map(|id| tcp(id, 10, Established)).collect();
        assert!(c.filter(&mut all, true, no_owner, 1).is_empty());

        // A re-sync walk over three ticks: 1 in the first slice, 2 only as a stale entry
        // (present, counters unknown), 3 by a lookup (it moved), 6 is born and looked up
        // mid-walk; 4 and 5 are never listed (closed without a destroy event, or skipped).
        c.begin(true);
        let mut t1 = vec![tcp(1, 10, Established)];
        assert!(c.filter(&mut t1, false, no_owner, 1).is_empty());
        assert!(t1.is_empty(), "unchanged");
        c.seen(&[2]);
        let mut t2 = vec![tcp(3, 12, Established), tcp(6, 0, SynSent)];
        assert!(c.filter(&mut t2, false, no_owner, 1).is_empty());
        assert_eq!(ids(&t2), [3, 6]);
        let mut t3 = vec![];
        assert!(
            c.filter(&mut t3, true, no_owner, 1).is_empty(),
            "one walk's miss may be a skip"
        );
        // The next walk finds 5 (it was skipped) but not 4: gone.
        c.begin(true);
        let mut t4 = vec![tcp(5, 10, Established)];
        assert!(c.filter(&mut t4, false, no_owner, 1).is_empty());
        c.seen(&[1, 2, 3, 6]);
        let gone = c.filter(&mut Vec::new(), true, no_owner, 1);
        assert_eq!(gone, [4]);
        assert!(c.is_known(2) && c.is_known(5) && c.is_known(6) && !c.is_known(4));
        // A one-shot dump is exact: what it misses is gone at once.
        c.begin(false);
        let mut all: Vec<SocketSample> = [1, 2, 3, 6]
            .into_iter()
            .map(|id| tcp(id, 10, Established))
            .collect();
        assert_eq!(c.filter(&mut all, true, no_owner, 1), [5]);
    }
}
