//! Second sources of owners for sockets /proc cannot name: the cookie → owner cache of
//! earlier dumps, the owner of the listening socket on a local port (passive side), and
//! connect-time tracing by 4-tuple (active side).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use proto::Proto;

use crate::collect::{ProcKey, SocketSample};
use crate::fasthash::FastMap;

/// How long a connect-time record waits for its socket to be seen or closed.
pub const CONNECT_TTL: Duration = Duration::from_secs(30);
/// How long owners of a socket that left the dumps are kept waiting for its destroy event.
pub const COOKIE_TTL: Duration = Duration::from_secs(600);
/// How often the cookie cache is swept for entries past [`COOKIE_TTL`].
const COOKIE_SWEEP: Duration = Duration::from_secs(30);

/// A process named at connect time (it may be gone by the time its bytes arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectSeen {
    pub key: ProcKey,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Monotonic time the record was taken (collector clock).
    pub at: Duration,
}

#[derive(Default)]
pub struct Attribution {
    /// cookie → (owners, last listed). Kept after a socket leaves the dumps: a TCP socket
    /// that reached CLOSE while its fd is still open is unhashed (invisible to dumps)
    /// until the fd closes and the destroy event arrives, possibly much later.
    cookies: FastMap<u64, (Vec<ProcKey>, Duration)>,
    /// (proto, local port) → owners of a listener, current and previous dump.
    listeners: HashMap<(Proto, u16), Vec<ProcKey>>,
    prev_listeners: HashMap<(Proto, u16), Vec<ProcKey>>,
    /// When `cookies` was last swept for entries past [`COOKIE_TTL`].
    cookies_swept: Duration,
    /// Exact 4-tuple → connector.
    connects: HashMap<(SocketAddr, SocketAddr), ConnectSeen>,
    /// Connects seen before the local port was chosen (the tracepoint fires at SYN-SENT,
    /// before `inet_hash_connect`): remote → latest connector.
    by_remote: HashMap<SocketAddr, ConnectSeen>,
    /// Connect records oldest first, so expiry touches only the expired ones (a busy host
    /// keeps thousands of records alive; a walk over all of them each tick was most of
    /// an idle tick's cost).
    expiry: VecDeque<(Duration, Recorded)>,
    /// Processes named by connect records, with how many records name each.
    connect_keys: FastMap<ProcKey, u32>,
}

/// Where a connect record is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Tuple(SocketAddr, SocketAddr),
    Remote(SocketAddr),
}

impl Attribution {
    /// Remember owners of this dump's sockets (call after /proc owners were filled in).
    pub fn learn_dump(&mut self, sockets: &[SocketSample], now: Duration) {
        self.prev_listeners = std::mem::take(&mut self.listeners);
        for s in sockets {
            if s.owners.is_empty() {
                continue;
            }
            match self.cookies.get_mut(&s.id) {
                Some((owners, seen)) => {
                    *seen = now;
                    if *owners != s.owners {
                        owners.clone_from(&s.owners);
                    }
                }
                None => {
                    self.cookies.insert(s.id, (s.owners.clone(), now));
                }
            }
            if s.is_listening() {
                self.listeners
                    .insert((s.proto, s.local.port()), s.owners.clone());
            }
        }
    }

    /// Owners found for one socket after [`Attribution::learn_dump`] (by a fallback).
    pub fn learn_owners(&mut self, cookie: u64, owners: &[ProcKey], now: Duration) {
        if !owners.is_empty() {
            self.cookies.insert(cookie, (owners.to_vec(), now));
        }
    }

    /// A destroyed socket: its cookie is never seen again.
    pub fn forget(&mut self, cookie: u64) {
        self.cookies.remove(&cookie);
    }

    pub fn learn_connect(&mut self, seen: ConnectSeen) {
        let (at, key) = (seen.at, seen.key);
        let (recorded, replaced) = if seen.local.port() == 0 {
            (
                Recorded::Remote(seen.remote),
                self.by_remote.insert(seen.remote, seen),
            )
        } else {
            (
                Recorded::Tuple(seen.local, seen.remote),
                self.connects.insert((seen.local, seen.remote), seen),
            )
        };
        *self.connect_keys.entry(key).or_default() += 1;
        if let Some(old) = replaced {
            self.release(old.key);
        }
        self.expiry.push_back((at, recorded));
    }

    /// One record naming `key` is gone.
    fn release(&mut self, key: ProcKey) {
        if let Some(n) = self.connect_keys.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.connect_keys.remove(&key);
            }
        }
    }

    /// Drop connect records older than [`CONNECT_TTL`].
    pub fn expire(&mut self, now: Duration) {
        while let Some(&(at, recorded)) = self.expiry.front() {
            if now.saturating_sub(at) < CONNECT_TTL {
                break;
            }
            self.expiry.pop_front();
            // A newer record of the same tuple has its own place in the queue.
            let gone = match recorded {
                Recorded::Tuple(l, r) => match self.connects.get(&(l, r)) {
                    Some(c) if c.at == at => self.connects.remove(&(l, r)),
                    _ => None,
                },
                Recorded::Remote(r) => match self.by_remote.get(&r) {
                    Some(c) if c.at == at => self.by_remote.remove(&r),
                    _ => None,
                },
            };
            if let Some(c) = gone {
                self.release(c.key);
            }
        }
    }

    /// Drop cookies unlisted for [`COOKIE_TTL`] (their destroy event was lost), unless
    /// `alive` says the socket still exists (an idle socket is not listed again until it
    /// moves). One entry per socket: swept now and then, not every tick.
    pub fn expire_cookies(&mut self, now: Duration, alive: impl Fn(u64) -> bool) {
        if now.saturating_sub(self.cookies_swept) < COOKIE_SWEEP {
            return;
        }
        self.cookies_swept = now;
        self.cookies
            .retain(|cookie, (_, seen)| now.saturating_sub(*seen) < COOKIE_TTL || alive(*cookie));
    }

    /// Owners from an earlier dump.
    pub fn by_cookie(&self, cookie: u64) -> Option<&[ProcKey]> {
        self.cookies.get(&cookie).map(|(o, _)| o.as_slice())
    }

    /// Owners for a socket /proc could not name: listener on its local port (passive),
    /// else the connector of its 4-tuple (active), else the latest connector to its
    /// remote whose local port was not known yet.
    pub fn fallback(
        &self,
        proto: Proto,
        local: SocketAddr,
        remote: Option<SocketAddr>,
    ) -> Vec<ProcKey> {
        let key = (proto, local.port());
        if let Some(owners) = self
            .listeners
            .get(&key)
            .or_else(|| self.prev_listeners.get(&key))
        {
            return owners.clone();
        }
        let Some(remote) = remote else {
            return Vec::new();
        };
        if proto != Proto::Tcp {
            return Vec::new();
        }
        if let Some(c) = self.connects.get(&(local, remote)) {
            return vec![c.key];
        }
        // A v4-mapped local address in one source and plain v4 in the other.
        let canon = |a: SocketAddr| SocketAddr::new(canonical(a.ip()), a.port());
        if let Some(c) = self.connects.get(&(canon(local), canon(remote))) {
            return vec![c.key];
        }
        match self
            .by_remote
            .get(&remote)
            .or_else(|| self.by_remote.get(&canon(remote)))
        {
            Some(c) => vec![c.key],
            None => Vec::new(),
        }
    }

    /// Keys still referenced by connect records (their process info must be kept).
    pub fn connect_keys(&self) -> impl Iterator<Item = ProcKey> + '_ {
        self.connect_keys.keys().copied()
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::TcpState;

    fn key(pid: u32) -> ProcKey {
        ProcKey { pid, start_time: 1 }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn sock(
        id: u64,
        local: &str,
        remote: Option<&str>,
        state: TcpState,
        owners: &[ProcKey],
    ) -> SocketSample {
        SocketSample {
            id,
            proto: Proto::Tcp,
            local: sa(local),
            remote: remote.map(sa),
            state: Some(state),
            uid: 0,
            inode: id,
            owners: owners.to_vec(),
            sent: Some(0),
            received: Some(0),
        }
    }

    #[test]
    fn cookies_outlive_the_dumps_until_destroyed_or_expired() {
        let mut a = Attribution::default();
        let s = [sock(
            7,
            "127.0.0.1:5000",
            Some("127.0.0.1:80"),
            TcpState::Established,
            &[key(1)],
        )];
        a.learn_dump(&s, Duration::ZERO);
        a.learn_dump(&s, Duration::from_secs(5));
        assert_eq!(a.by_cookie(7), Some(&[key(1)][..]));
        // Unhashed (CLOSE with the fd still open): not in later dumps, still known.
        a.learn_dump(&[], Duration::from_secs(6));
        a.expire_cookies(Duration::from_secs(300), |_| false);
        assert_eq!(a.by_cookie(7), Some(&[key(1)][..]));
        a.forget(7);
        assert_eq!(a.by_cookie(7), None);
        a.learn_dump(&s, Duration::ZERO);
        // Idle but alive (not listed since): kept however long.
        a.expire_cookies(COOKIE_TTL * 3, |c| c == 7);
        assert_eq!(a.by_cookie(7), Some(&[key(1)][..]));
        // Gone without a destroy event: dropped after the TTL.
        a.expire_cookies(COOKIE_TTL * 4, |_| false);
        assert_eq!(a.by_cookie(7), None);
    }

    #[test]
    fn passive_side_belongs_to_the_listener_owner() {
        let mut a = Attribution::default();
        a.learn_dump(
            &[sock(1, "0.0.0.0:8080", None, TcpState::Listen, &[key(10)])],
            Duration::ZERO,
        );
        let owners = a.fallback(Proto::Tcp, sa("10.0.0.1:8080"), Some(sa("10.0.0.2:51000")));
        assert_eq!(owners, vec![key(10)]);
    }

    #[test]
    fn active_side_belongs_to_the_connector_by_tuple_or_remote() {
        let mut a = Attribution::default();
        a.learn_connect(ConnectSeen {
            key: key(20),
            local: sa("10.0.0.1:40000"),
            remote: sa("10.0.0.2:80"),
            at: Duration::ZERO,
        });
        a.learn_connect(ConnectSeen {
            key: key(21),
            local: sa("0.0.0.0:0"),
            remote: sa("10.0.0.3:443"),
            at: Duration::ZERO,
        });
        assert_eq!(
            a.fallback(Proto::Tcp, sa("10.0.0.1:40000"), Some(sa("10.0.0.2:80"))),
            vec![key(20)]
        );
        assert_eq!(
            a.fallback(
                Proto::Tcp,
                sa("[::ffff:10.0.0.1]:40000"),
                Some(sa("[::ffff:10.0.0.2]:80"))
            ),
            vec![key(20)]
        );
        assert_eq!(
            a.fallback(Proto::Tcp, sa("10.0.0.1:40001"), Some(sa("10.0.0.3:443"))),
            vec![key(21)]
        );
        assert!(
            a.fallback(Proto::Tcp, sa("10.0.0.1:40002"), Some(sa("10.0.0.9:443")))
                .is_empty()
        );
        a.expire(CONNECT_TTL);
        assert!(
            a.fallback(Proto::Tcp, sa("10.0.0.1:40000"), Some(sa("10.0.0.2:80")))
                .is_empty()
        );
    }
}
