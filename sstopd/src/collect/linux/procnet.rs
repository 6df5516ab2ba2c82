//! `/proc/net/{tcp,tcp6,udp,udp6,raw,raw6,icmp,icmp6}` and `/proc/net/sctp/eps` parsers
//! (pure functions over `&str`) and their conversion into [`SocketSample`]s.
//!
//! Addresses: IPv4 is one native-endian u32 in hex; IPv6 is four native-endian u32
//! words, so on little-endian hosts each group of 8 digits is byte-reversed (B02).
//! Ports are plain hex numbers. IPv4-mapped IPv6 addresses are folded to IPv4.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use proto::{Proto, TcpState};

use crate::collect::{SocketId, SocketSample};

/// Which table a line came from: decides what port, state and remote mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Tcp,
    Udp,
    /// Raw sockets: the "port" is the IP protocol number.
    Raw,
    /// Ping sockets (`SOCK_DGRAM`, `IPPROTO_ICMP{,V6}`): the "port" is the echo identifier.
    Icmp,
}

/// One line of a `/proc/net/{tcp,udp,raw,icmp}{,6}` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    /// `tr`: which timer runs (see [`super::tcp_state`]).
    pub timer: u8,
    pub uid: u32,
    pub inode: u64,
    /// Datagrams the socket dropped (udp/raw/icmp tables only).
    pub drops: Option<u64>,
}

/// Parse a whole table; lines that do not parse (the header, garbage) are skipped.
pub fn parse_table(text: &str) -> Vec<Entry> {
    text.lines().filter_map(parse_line).collect()
}

/// `  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 12345 ...`
pub fn parse_line(line: &str) -> Option<Entry> {
    let mut f = line.split_whitespace();
    let sl = f.next()?;
    if !sl.ends_with(':') {
        return None;
    }
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    let _queues = f.next()?;
    let timer = f
        .next()?
        .split(':')
        .next()
        .and_then(|tr| u8::from_str_radix(tr, 16).ok())?;
    let _retransmits = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let _timeout = f.next()?;
    let inode = f.next()?.parse().ok()?;
    // udp/raw/icmp end with "ref pointer drops"; tcp has other fields there.
    let rest: Vec<&str> = f.collect();
    let drops = match rest.as_slice() {
        [_ref, ptr, drops] if ptr.len() >= 8 => drops.parse().ok(),
        _ => None,
    };
    Some(Entry {
        local,
        remote,
        state,
        timer,
        uid,
        inode,
        drops,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:` port (IPv6).
pub fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            Ipv6Addr::from(bytes).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One 32-bit word the kernel printed from a native-endian integer → its memory bytes.
fn word(hex: &str) -> Option<[u8; 4]> {
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

/// An SCTP endpoint from `/proc/net/sctp/eps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctpEndpoint {
    pub port: u16,
    pub uid: u32,
    pub inode: u64,
    pub addrs: Vec<IpAddr>,
}

/// ` ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS`
pub fn parse_sctp_eps(text: &str) -> Vec<SctpEndpoint> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = f.get(5)?.parse().ok()?;
            Some(SctpEndpoint {
                port,
                uid: f.get(6)?.parse().ok()?,
                inode: f.get(7)?.parse().ok()?,
                addrs: f
                    .get(8..)?
                    .iter()
                    .filter_map(|a| a.trim_start_matches('*').parse::<IpAddr>().ok())
                    .map(|a| a.to_canonical())
                    .collect(),
            })
        })
        .collect()
}

/// Socket ids for sockets known from procfs: inode-based, with the top bit set so they
/// never collide with sock_diag cookies in the same sample.
pub fn inode_id(inode: u64) -> SocketId {
    (1 << 63) | inode
}

/// Sockets without an inode (TIME-WAIT) get an id from their tuple.
fn tuple_id(table: Table, local: SocketAddr, remote: SocketAddr) -> SocketId {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (table as u8, local, remote).hash(&mut h);
    (1 << 62) | (h.finish() >> 2)
}

/// The socket a table line describes, owners not yet known.
pub fn to_sample(table: Table, v6: bool, e: &Entry) -> SocketSample {
    let unset = e.remote.port() == 0 && e.remote.ip().is_unspecified();
    let (proto, local, remote, state) = match table {
        Table::Tcp => {
            let st = super::tcp_state(e.state, e.timer);
            let remote = (!unset && st != TcpState::Listen).then_some(e.remote);
            (Proto::Tcp, e.local, remote, Some(st))
        }
        Table::Udp => (
            Proto::Udp,
            e.local,
            (e.remote.port() != 0).then_some(e.remote),
            None,
        ),
        Table::Raw => {
            let n = e.local.port() as u8;
            let proto = match (n, v6) {
                (1, false) => Proto::Icmp,
                (58, true) => Proto::Icmpv6,
                _ => Proto::Ip(n),
            };
            (proto, SocketAddr::new(e.local.ip(), 0), None, None)
        }
        Table::Icmp => {
            let proto = if v6 { Proto::Icmpv6 } else { Proto::Icmp };
            (proto, e.local, None, None)
        }
    };
    let id = if e.inode != 0 {
        inode_id(e.inode)
    } else {
        tuple_id(table, e.local, e.remote)
    };
    SocketSample {
        id,
        proto,
        local,
        remote,
        state,
        uid: e.uid,
        inode: e.inode,
        owners: Vec::new(),
        sent: None,
        received: None,
    }
}

/// SCTP endpoints as sockets matched by local port (any of their addresses).
pub fn sctp_samples(eps: &[SctpEndpoint]) -> Vec<SocketSample> {
    eps.iter()
        .map(|ep| {
            let ip = match ep.addrs.as_slice() {
                [one] => *one,
                _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            SocketSample {
                id: inode_id(ep.inode),
                proto: Proto::Sctp,
                local: SocketAddr::new(ip, ep.port),
                remote: None,
                state: None,
                uid: ep.uid,
                inode: ep.inode,
                owners: Vec::new(),
                sent: None,
                received: None,
            }
        })
        .collect()
}

/// Read the tables for `tables` under `net_dir` (e.g. `/proc/thread-self/net`).
/// A missing file (protocol not built, IPv6 disabled) contributes nothing.
pub fn read_sockets(net_dir: &Path, tables: &[Table]) -> io::Result<Vec<SocketSample>> {
    let mut out = Vec::new();
    for &table in tables {
        let base = match table {
            Table::Tcp => "tcp",
            Table::Udp => "udp",
            Table::Raw => "raw",
            Table::Icmp => "icmp",
        };
        for (name, v6) in [(base.to_string(), false), (format!("{base}6"), true)] {
            match fs::read_to_string(net_dir.join(&name)) {
                Ok(text) => out.extend(parse_table(&text).iter().map(|e| to_sample(table, v6, e))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// SCTP endpoints under `net_dir/sctp/eps`, empty when SCTP is not loaded.
pub fn read_sctp(net_dir: &Path) -> Vec<SocketSample> {
    fs::read_to_string(net_dir.join("sctp/eps"))
        .map(|t| sctp_samples(&parse_sctp_eps(&t)))
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "procnet_tests.rs"]
mod tests;
