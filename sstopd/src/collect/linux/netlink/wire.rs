//! Walking sock_diag responses byte by byte.
//!
//! The crate's typed parsing would hide what matters here: a short `tcp_info` fails the
//! whole entry (B11), an errno inside `NLMSG_DONE` reads as "zero sockets" (B12), and the
//! `NLM_F_DUMP_INTR` flag is easy to lose. So requests are built with the crate, but
//! responses are read here: netlink header, `inet_diag_msg`, attributes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::Proto;

use super::{DiagSocket, Family, NetlinkError, parse_tcp_info};
use crate::collect::linux::tcp_state;

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The original inet_diag request type; its answers carry the same `inet_diag_msg`.
pub const TCPDIAG_GETSOCK: u16 = 18;
pub const NLM_F_DUMP_INTR: u16 = 0x10;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG_LEN: usize = 72;
const INET_DIAG_INFO: u16 = 2;
/// Attribute type bits that are flags, not part of the type.
const NLA_TYPE_MASK: u16 = !(1 << 15 | 1 << 14);

/// One netlink message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
}

/// What one message means for a dump.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A `SOCK_DIAG_BY_FAMILY` (or `TCPDIAG_GETSOCK`) payload: `inet_diag_msg` and its
    /// attributes.
    Socket(&'a [u8]),
    /// End of a dump; `errno` < 0 means the dump failed (B12), 0 means success.
    Done { errno: i32 },
    /// `NLMSG_ERROR`; `errno` 0 is a plain ack.
    Error { errno: i32 },
    /// NOOP, OVERRUN or a type we do not know: skipped.
    Other,
}

/// Iterate over the netlink messages in one datagram.
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<(Header, Item<'a>), NetlinkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = split_one(self.rest);
        match result {
            Ok((header, payload, rest)) => {
                self.rest = rest;
                Some(Ok((header, classify(header.kind, payload))))
            }
            Err(e) => {
                // A broken length makes everything after it unreadable.
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn split_one(buf: &[u8]) -> Result<(Header, &[u8], &[u8]), NetlinkError> {
    if buf.len() < NLMSG_HDRLEN {
        return Err(NetlinkError::Parse(format!(
            "{} trailing bytes, shorter than a netlink header",
            buf.len()
        )));
    }
    let len = u32_at(buf, 0) as usize;
    if len < NLMSG_HDRLEN || len > buf.len() {
        return Err(NetlinkError::Parse(format!(
            "netlink message length {len} outside 16..={}",
            buf.len()
        )));
    }
    let header = Header {
        kind: u16_at(buf, 4),
        flags: u16_at(buf, 6),
        seq: u32_at(buf, 8),
    };
    let aligned = align4(len).min(buf.len());
    Ok((header, &buf[NLMSG_HDRLEN..len], &buf[aligned..]))
}

fn classify(kind: u16, payload: &[u8]) -> Item<'_> {
    let errno = || {
        payload
            .get(..4)
            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    match kind {
        SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => Item::Socket(payload),
        NLMSG_DONE => Item::Done { errno: errno() },
        NLMSG_ERROR => Item::Error { errno: errno() },
        _ => Item::Other,
    }
}

/// Parse one `inet_diag_msg` with its attributes. `passive` is left `None`.
pub fn parse_diag_msg(payload: &[u8], proto: Proto) -> Result<DiagSocket, NetlinkError> {
    if payload.len() < INET_DIAG_MSG_LEN {
        return Err(NetlinkError::Parse(format!(
            "inet_diag_msg of {} bytes, need {INET_DIAG_MSG_LEN}",
            payload.len()
        )));
    }
    let family = match payload[0] {
        AF_INET => Family::V4,
        AF_INET6 => Family::V6,
        other => return Err(NetlinkError::Parse(format!("address family {other}"))),
    };
    // inet_diag_sockid: ports and addresses in network order, cookie as two host-order u32.
    let sport = u16::from_be_bytes([payload[4], payload[5]]);
    let dport = u16::from_be_bytes([payload[6], payload[7]]);
    let src = addr(family, &payload[8..24]);
    let dst = addr(family, &payload[24..40]);
    let ifindex = u32_at(payload, 40);
    let cookie = u64::from(u32_at(payload, 44)) | u64::from(u32_at(payload, 48)) << 32;
    let uid = u32_at(payload, 64);
    let inode = u64::from(u32_at(payload, 68));

    let remote = (!(dst.is_unspecified() && dport == 0)).then(|| SocketAddr::new(dst, dport));
    let state = (proto == Proto::Tcp).then(|| tcp_state(payload[1], payload[2]));
    let counters = attributes(&payload[INET_DIAG_MSG_LEN..])
        .find(|(kind, _)| *kind == INET_DIAG_INFO)
        .filter(|_| proto == Proto::Tcp)
        .map(|(_, info)| parse_tcp_info(info))
        .unwrap_or_default();
    Ok(DiagSocket {
        cookie,
        proto,
        local: SocketAddr::new(src, sport),
        remote,
        state,
        uid,
        inode,
        ifindex,
        counters,
        passive: None,
    })
}

fn addr(family: Family, bytes: &[u8]) -> IpAddr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[..16]);
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3])),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(octets)),
    }
}

/// `(type, payload)` of each netlink attribute; stops at the first malformed one.
pub fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16_at(buf, 0));
        if len < 4 || len > buf.len() {
            return None;
        }
        let kind = u16_at(buf, 2) & NLA_TYPE_MASK;
        let value = &buf[4..len];
        buf = &buf[align4(len).min(buf.len())..];
        Some((kind, value))
    })
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
