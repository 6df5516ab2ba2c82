//! sock_diag destroy multicast: final counters of sockets that closed between dumps.
//!
//! The kernel broadcasts an `inet_diag_msg` with INET_DIAG_INFO when a full socket is
//! freed (`sock_diag_broadcast_destroy`), in state CLOSE. Events carry no uid or inode
//! (the socket has left its file), so owners come from the caller's cookie cache,
//! listener table or connect-time tracing.

use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};
use proto::Proto;

use super::netlink::wire::{Item, SOCK_DIAG_BY_FAMILY, messages, parse_diag_msg};
use super::netlink::{DiagSocket, NetlinkError};

/// Multicast groups of `enum sknetlink_groups` (include/uapi/linux/sock_diag.h).
pub const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
pub const SKNLGRP_INET_UDP_DESTROY: u32 = 2;
pub const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;
pub const SKNLGRP_INET6_UDP_DESTROY: u32 = 4;

/// Events wait here between drains: each costs about 1.2 KiB of kernel memory, so this
/// holds a burst of ~25,000 closes per interval. Memory is only charged while queued.
pub const RCVBUF: usize = 32 << 20;
const RECV_BUF_LEN: usize = 64 * 1024;

/// Sockets destroyed since the previous drain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DestroyBatch {
    pub closed: Vec<DiagSocket>,
    /// The kernel dropped events (ENOBUFS): the caller must re-sync and note it.
    pub overrun: bool,
    /// Messages that could not be parsed (each skipped, never fatal).
    pub malformed: u32,
}

/// Subscribed to the TCP v4 and v6 destroy groups.
pub struct DestroyWatcher {
    socket: Socket,
    buf: Vec<u8>,
}

impl DestroyWatcher {
    pub fn open() -> Result<Self, NetlinkError> {
        Self::with_buffer(RCVBUF)
    }

    /// Like [`open`](Self::open) with a chosen kernel receive buffer (bytes).
    pub fn with_buffer(rcvbuf: usize) -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        set_rcvbuf(&socket, rcvbuf)?;
        socket.add_membership(SKNLGRP_INET_TCP_DESTROY)?;
        socket.add_membership(SKNLGRP_INET6_TCP_DESTROY)?;
        socket.set_non_blocking(true)?;
        Ok(Self {
            socket,
            buf: vec![0; RECV_BUF_LEN],
        })
    }

    /// Non-blocking: every socket destroyed since the last call, with its final counters.
    pub fn drain(&mut self) -> DestroyBatch {
        let mut batch = DestroyBatch::default();
        loop {
            let mut slice = &mut self.buf[..];
            match self.socket.recv(&mut slice, 0) {
                Ok(len) => {
                    let len = len.min(self.buf.len());
                    parse_events(&self.buf[..len], &mut batch);
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::ENOBUFS) => batch.overrun = true,
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => break,
                    _ => {
                        tracing::warn!("destroy watcher: {e}");
                        break;
                    }
                },
            }
        }
        batch
    }
}

/// Parse one datagram of destroy events into `batch`.
pub fn parse_events(datagram: &[u8], batch: &mut DestroyBatch) {
    for message in messages(datagram) {
        match message {
            Ok((header, Item::Socket(payload))) if header.kind == SOCK_DIAG_BY_FAMILY => {
                match event_proto(payload).map(|proto| parse_diag_msg(payload, proto)) {
                    Some(Ok(socket)) => batch.closed.push(socket),
                    Some(Err(e)) => {
                        tracing::debug!("destroy event skipped: {e}");
                        batch.malformed += 1;
                    }
                    None => batch.malformed += 1,
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("destroy datagram cut short: {e}");
                batch.malformed += 1;
            }
        }
    }
}

/// Destroy events carry the protocol in an INET_DIAG_PROTOCOL attribute; the groups we
/// join are TCP-only, but read it so a UDP event is never mistaken for TCP.
fn event_proto(payload: &[u8]) -> Option<Proto> {
    const INET_DIAG_PROTOCOL: u16 = 8;
    let attrs = payload.get(72..)?;
    let proto = super::netlink::wire::attributes(attrs)
        .find(|(kind, _)| *kind == INET_DIAG_PROTOCOL)
        .and_then(|(_, v)| v.first().copied());
    Some(match proto {
        Some(p) if p == libc::IPPROTO_UDP as u8 => Proto::Udp,
        Some(p) if p == libc::IPPROTO_TCP as u8 => Proto::Tcp,
        Some(p) => Proto::Ip(p),
        // Older kernels omit the attribute; our groups only deliver TCP.
        None => Proto::Tcp,
    })
}

/// SO_RCVBUFFORCE (root) lifts rmem_max; fall back to the capped SO_RCVBUF.
fn set_rcvbuf(socket: &Socket, bytes: usize) -> Result<(), NetlinkError> {
    use std::os::fd::AsRawFd;
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: valid fd owned by `socket`; the option value is a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        socket.set_rx_buf_sz(size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destroy event as the kernel broadcasts it: header, inet_diag_msg, attributes.
    fn event(protocol: Option<u8>, with_info: bool) -> Vec<u8> {
        let mut p = vec![2u8, 7, 0, 0];
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&443u16.to_be_bytes());
        p.extend_from_slice(&[192, 0, 2, 10]);
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&[198, 51, 100, 7]);
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&[0; 4]); // if
        p.extend_from_slice(&7u32.to_ne_bytes());
        p.extend_from_slice(&1u32.to_ne_bytes());
        p.extend_from_slice(&[0; 20]); // expires, queues, uid, inode
        if let Some(proto) = protocol {
            p.extend_from_slice(&5u16.to_ne_bytes());
            p.extend_from_slice(&8u16.to_ne_bytes());
            p.extend_from_slice(&[proto, 0, 0, 0]);
        }
        if with_info {
            let mut info = vec![0u8; 280];
            info[120..128].copy_from_slice(&3002u64.to_ne_bytes());
            info[128..136].copy_from_slice(&1u64.to_ne_bytes());
            info[200..208].copy_from_slice(&3000u64.to_ne_bytes());
            p.extend_from_slice(&284u16.to_ne_bytes());
            p.extend_from_slice(&2u16.to_ne_bytes());
            p.extend_from_slice(&info);
        }
        let mut m = ((16 + p.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&[0; 10]); // flags, seq, pid
        m.extend_from_slice(&p);
        m
    }

    #[test]
    fn events_parse_with_final_counters_and_protocol() {
        let mut dgram = event(Some(6), true);
        dgram.extend(event(Some(17), false));
        dgram.extend(event(None, true));
        let mut batch = DestroyBatch::default();
        parse_events(&dgram, &mut batch);
        assert_eq!(batch.malformed, 0);
        assert_eq!(batch.closed.len(), 3);
        let tcp = &batch.closed[0];
        assert_eq!(tcp.cookie, 1 << 32 | 7);
        assert_eq!(tcp.local, "192.0.2.10:40000".parse().unwrap());
        assert_eq!(tcp.remote, Some("198.51.100.7:443".parse().unwrap()));
        assert_eq!(tcp.state, Some(proto::TcpState::Close));
        assert_eq!(
            (tcp.payload_sent(), tcp.payload_received()),
            (Some(3000), Some(0))
        );
        assert_eq!(batch.closed[1].proto, Proto::Udp);
        assert_eq!(batch.closed[1].payload_sent(), None);
        // No INET_DIAG_PROTOCOL (older kernels): our groups are TCP-only.
        assert_eq!(batch.closed[2].proto, Proto::Tcp);
    }

    #[test]
    fn cut_events_are_counted_not_fatal() {
        let whole = event(Some(6), true);
        let mut batch = DestroyBatch::default();
        parse_events(&whole[..60], &mut batch);
        let mut short = event(Some(6), false);
        short.truncate(16 + 40);
        short[..4].copy_from_slice(&56u32.to_ne_bytes());
        parse_events(&short, &mut batch);
        parse_events(&[], &mut batch);
        assert!(batch.closed.is_empty());
        assert_eq!(batch.malformed, 2);
    }
}
