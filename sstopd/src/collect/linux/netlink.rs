//! sock_diag dumps of TCP/UDP v4/v6 with tcp_info byte counters.
//!
//! Blocking by design: [`SockDiag`] is used from the collector thread, never the reactor.
//! Requests are built with netlink-packet-sock-diag; responses are walked in `wire`
//! (see `wire.rs` for why).

mod dump;
mod payload;
mod tcpinfo;
mod walk;
pub(crate) mod wire;

#[cfg(test)]
mod closing_tests;
#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};
use proto::{Proto, TcpState};
use thiserror::Error;

pub use dump::{DumpOutcome, DumpReader, Progress, infer_roles};
pub use tcpinfo::{TcpCounters, parse_tcp_info};
pub use walk::{Slice, TcpWalk};

/// Lookups sent in one datagram; their answers (≈ 300 B each) fit the receive buffer.
const LOOKUP_BATCH: usize = 128;
/// `TCPF_LISTEN`: the state mask of a listeners-only dump.
const LISTEN_ONLY: u32 = 1 << 10;

/// How often an interrupted (`NLM_F_DUMP_INTR`) dump is retried before giving up.
const MAX_DUMP_ATTEMPTS: u32 = 4;
/// Large enough for any single netlink datagram the kernel builds for a dump.
const RECV_BUF_LEN: usize = 256 * 1024;
/// A dump that stalls this long is an error, never a stuck collector.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn af(self) -> u8 {
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        }
    }
}

/// One socket from a dump or a destroy event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagSocket {
    /// sock_diag cookie: the socket's identity for its life.
    pub cookie: u64,
    /// Tcp or Udp.
    pub proto: Proto,
    pub local: SocketAddr,
    /// `None` when unconnected (`0.0.0.0:0` / `[::]:0` remote).
    pub remote: Option<SocketAddr>,
    /// `None` for UDP.
    pub state: Option<TcpState>,
    pub uid: u32,
    pub inode: u64,
    /// The device the socket is bound to (0: none): what a lookup of it must name.
    pub ifindex: u32,
    /// Raw kernel values as read (`None` = not present in this tcp_info).
    pub counters: TcpCounters,
    /// TCP role: `Some(true)` accepted from a listener, `Some(false)` connected out,
    /// `None` unknown (destroy events: the caller may fill it from its listener table).
    pub passive: Option<bool>,
}

impl DiagSocket {
    /// Payload bytes sent: `bytes_acked` without our SYN and FIN, so an exact N-byte
    /// transfer reads N. `None` if unavailable (UDP, TIME-WAIT, old tcp_info).
    pub fn payload_sent(&self) -> Option<u64> {
        payload::sent(self)
    }

    /// Payload bytes received: `bytes_received` without the peer's FIN.
    pub fn payload_received(&self) -> Option<u64> {
        payload::received(self)
    }
}

#[derive(Debug, Error)]
pub enum NetlinkError {
    /// The kernel has no sock_diag handler for this family/protocol (CASES B12).
    #[error(
        "no sock_diag handler for {proto} over {family:?} (errno {errno}): the kernel lacks the diag module"
    )]
    NoDiagHandler {
        family: Family,
        proto: Proto,
        errno: i32,
    },
    /// `NLM_F_DUMP_INTR` on every attempt.
    #[error(
        "sock_diag dump interrupted {MAX_DUMP_ATTEMPTS} times in a row (sockets changing too fast)"
    )]
    Interrupted,
    /// `NLMSG_ERROR` (or `NLMSG_DONE` with an error) other than a missing handler.
    #[error("sock_diag dump failed: {}", std::io::Error::from_raw_os_error(*errno))]
    Kernel { errno: i32 },
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed sock_diag message: {0}")]
    Parse(String),
}

/// IP protocol number of a [`Proto`].
pub fn ip_proto(proto: Proto) -> u8 {
    match proto {
        Proto::Tcp => libc::IPPROTO_TCP as u8,
        Proto::Udp => libc::IPPROTO_UDP as u8,
        Proto::Icmp => libc::IPPROTO_ICMP as u8,
        Proto::Icmpv6 => libc::IPPROTO_ICMPV6 as u8,
        Proto::Sctp => libc::IPPROTO_SCTP as u8,
        Proto::Ip(n) => n,
    }
}

/// A TCP socket to look up: its addresses, and the interface a segment for it arrived
/// on (a socket bound to a device, such as an IPv6 link-local one, matches only lookups
/// that name that device; any other socket matches whatever is named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub ifindex: u32,
}

/// Owns the `NETLINK_SOCK_DIAG` socket.
pub struct SockDiag {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl SockDiag {
    pub fn open() -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&NlAddr::new(0, 0))?;
        // Dumps are flow-controlled by the kernel, so a modest buffer suffices.
        socket.set_rx_buf_sz(1 << 20)?;
        rustix::net::sockopt::set_socket_timeout(
            &socket,
            rustix::net::sockopt::Timeout::Recv,
            Some(RECV_TIMEOUT),
        )
        .map_err(std::io::Error::from)?;
        Ok(Self {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUF_LEN],
        })
    }

    /// All sockets of that family/protocol in every state but TIME-WAIT and NEW_SYN_RECV,
    /// with INET_DIAG_INFO for TCP.
    /// Other protocols are asked too (the kernel answers [`NetlinkError::NoDiagHandler`]
    /// when it has no handler); their entries come back as `proto` with no counters.
    pub fn dump(&mut self, family: Family, proto: Proto) -> Result<Vec<DiagSocket>, NetlinkError> {
        for _ in 0..MAX_DUMP_ATTEMPTS {
            match self.dump_once(family, proto)? {
                DumpOutcome::Complete(sockets) => return Ok(sockets),
                DumpOutcome::Interrupted => {
                    tracing::debug!(?family, %proto, "sock_diag dump interrupted, retrying")
                }
            }
        }
        Err(NetlinkError::Interrupted)
    }

    /// TCP sockets of both families in one walk of the kernel's socket tables (the
    /// `TCPDIAG_GETSOCK` request, which dumps with `AF_UNSPEC`), same states and
    /// INET_DIAG_INFO as [`SockDiag::dump`]. The walk over every hash bucket costs about
    /// as much as filling 10k sockets (262k buckets here), so one walk instead of two
    /// saves that much per cycle. An error means the kernel lacks the request: use
    /// [`SockDiag::dump`] per family.
    pub fn dump_tcp_both(&mut self) -> Result<Vec<DiagSocket>, NetlinkError> {
        self.dump_tcp_both_states(!SKIPPED_STATES)
    }

    /// Listening TCP sockets of both families. A listeners-only dump walks only the small
    /// listening hash, not the established one (`inet_diag_dump_icsk` skips it when no
    /// other state is asked for), so it stays cheap however many connections exist.
    pub fn dump_tcp_listeners(&mut self) -> Result<Vec<DiagSocket>, NetlinkError> {
        self.dump_tcp_both_states(LISTEN_ONLY)
    }

    /// Listening TCP sockets of one family (kernels without the both-families request).
    pub fn dump_listeners(&mut self, family: Family) -> Result<Vec<DiagSocket>, NetlinkError> {
        for _ in 0..MAX_DUMP_ATTEMPTS {
            let request = |seq| states_request(seq, family, Proto::Tcp, LISTEN_ONLY);
            match self.dump_with(family, Proto::Tcp, request)? {
                DumpOutcome::Complete(sockets) => return Ok(sockets),
                DumpOutcome::Interrupted => tracing::debug!("listener dump interrupted, retrying"),
            }
        }
        Err(NetlinkError::Interrupted)
    }

    fn dump_tcp_both_states(&mut self, states: u32) -> Result<Vec<DiagSocket>, NetlinkError> {
        for _ in 0..MAX_DUMP_ATTEMPTS {
            let request = |seq| tcp_both_states_request(seq, states);
            match self.dump_with(Family::V4, Proto::Tcp, request)? {
                DumpOutcome::Complete(sockets) => return Ok(sockets),
                DumpOutcome::Interrupted => tracing::debug!("TCP dump interrupted, retrying"),
            }
        }
        Err(NetlinkError::Interrupted)
    }

    /// The TCP sockets with exactly these addresses, each looked up by hash (a request
    /// without `NLM_F_DUMP`), many per datagram. Tuples with no socket are skipped (a
    /// dual-stack socket is found by its IPv4 tuple: the kernel hashes it that way). A
    /// lookup of a tuple nobody holds may return the listener of its local port: callers
    /// dedupe by cookie.
    pub fn lookup_tcp(&mut self, tuples: &[Tuple]) -> Result<Vec<DiagSocket>, NetlinkError> {
        let mut found = Vec::new();
        for chunk in tuples.chunks(LOOKUP_BATCH) {
            self.lookup_batch(chunk, &mut found)?;
        }
        Ok(found)
    }

    /// One datagram of lookups.
    fn lookup_batch(
        &mut self,
        tuples: &[Tuple],
        found: &mut Vec<DiagSocket>,
    ) -> Result<(), NetlinkError> {
        let first = self.seq.wrapping_add(1);
        let mut request = Vec::with_capacity(tuples.len() * 72);
        for (i, t) in tuples.iter().enumerate() {
            request.extend(lookup_request(first.wrapping_add(i as u32), t));
        }
        self.seq = first.wrapping_add(tuples.len() as u32);
        self.socket.send(&request, 0)?;
        let mut answered = vec![false; tuples.len()];
        let mut left = tuples.len();
        while left > 0 {
            let len = self.recv()?;
            for message in wire::messages(&self.buf[..len]) {
                let (header, item) = message?;
                let i = header.seq.wrapping_sub(first) as usize;
                if i >= tuples.len() || answered[i] {
                    // An earlier request's late answer, or a trailing ack.
                    continue;
                }
                match item {
                    wire::Item::Socket(payload) => {
                        found.push(wire::parse_diag_msg(payload, Proto::Tcp)?);
                    }
                    // Nobody holds it (another namespace's flow, a closed socket).
                    wire::Item::Error { errno } if errno == -libc::ENOENT => {}
                    wire::Item::Error { errno } | wire::Item::Done { errno } if errno != 0 => {
                        return Err(NetlinkError::Kernel {
                            errno: errno.saturating_neg(),
                        });
                    }
                    _ => {}
                }
                answered[i] = true;
                left -= 1;
            }
        }
        Ok(())
    }

    fn dump_once(&mut self, family: Family, proto: Proto) -> Result<DumpOutcome, NetlinkError> {
        self.dump_with(family, proto, |seq| dump_request(seq, family, proto))
    }

    fn dump_with(
        &mut self,
        family: Family,
        proto: Proto,
        request: impl Fn(u32) -> Vec<u8>,
    ) -> Result<DumpOutcome, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let request = request(self.seq);
        self.socket.send(&request, 0)?;
        let mut reader = DumpReader::new(self.seq, family, proto);
        loop {
            let len = self.recv()?;
            let datagram = &self.buf[..len];
            if reader.feed(datagram)? == Progress::Done {
                return Ok(reader.finish());
            }
        }
    }

    /// One datagram into `self.buf`; its length. A datagram larger than the buffer is an
    /// error rather than a silently cut dump.
    fn recv(&mut self) -> Result<usize, NetlinkError> {
        loop {
            let mut slice = &mut self.buf[..];
            match self.socket.recv(&mut slice, libc::MSG_TRUNC) {
                Ok(len) if len > RECV_BUF_LEN => {
                    return Err(NetlinkError::Parse(format!(
                        "datagram of {len} bytes exceeds the {RECV_BUF_LEN}-byte buffer"
                    )));
                }
                Ok(len) => return Ok(len),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Kernel TCP state numbers left out of dumps: TIME-WAIT (6) and NEW_SYN_RECV (12)
/// minisockets have no owner, no inode and no counters (the full socket's final bytes came
/// with its destroy event), and a busy host holds tens of thousands of them. Asking the
/// kernel not to send them saves building, copying and parsing each one. (A minisocket
/// showing substate FIN-WAIT-2 passes the mask; the parser tells it apart by its timer.)
const SKIPPED_STATES: u32 = (1 << 6) | (1 << 12);

/// Serialized `TCPDIAG_GETSOCK` dump request (`struct inet_diag_req`, the request of the
/// original inet_diag interface, still served by `inet_diag_rcv_msg_compat`): TCP of every
/// family, states and extensions as in [`dump_request`]. Answers come as `TCPDIAG_GETSOCK`
/// messages holding the same `inet_diag_msg`.
pub fn tcp_both_request(seq: u32) -> Vec<u8> {
    tcp_both_states_request(seq, !SKIPPED_STATES)
}

/// [`tcp_both_request`] for the TCP states in the `states` bit mask.
pub fn tcp_both_states_request(seq: u32, states: u32) -> Vec<u8> {
    /// nlmsghdr + inet_diag_req (family, src_len, dst_len, ext, 48-byte id, states, dbs).
    const LEN: usize = 16 + 60;
    let mut buf = Vec::with_capacity(LEN);
    buf.extend_from_slice(&(LEN as u32).to_ne_bytes());
    buf.extend_from_slice(&wire::TCPDIAG_GETSOCK.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // The kernel dumps this request as AF_UNSPEC whatever the family byte says.
    buf.extend_from_slice(&[libc::AF_INET as u8, 0, 0, ExtensionFlags::INFO.bits()]);
    // inet_diag_sockid: no port/address filter; the cookie is unused by dumps.
    buf.extend_from_slice(&[0; 40]);
    buf.extend_from_slice(&[0xff; 8]);
    buf.extend_from_slice(&states.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf
}

/// Serialized `SOCK_DIAG_BY_FAMILY` dump request: every state but TIME-WAIT and
/// NEW_SYN_RECV, with INET_DIAG_INFO.
pub fn dump_request(seq: u32, family: Family, proto: Proto) -> Vec<u8> {
    states_request(seq, family, proto, !SKIPPED_STATES)
}

/// [`dump_request`] for the TCP states in the `states` bit mask.
fn states_request(seq: u32, family: Family, proto: Proto, states: u32) -> Vec<u8> {
    let request = InetRequest {
        family: family.af(),
        protocol: ip_proto(proto),
        extensions: ExtensionFlags::INFO,
        // By raw bit: the crate has no name for NEW_SYN_RECV.
        states: StateFlags::from_bits_retain(states),
        socket_id: match family {
            Family::V4 => SocketId::new_v4(),
            Family::V6 => SocketId::new_v6(),
        },
    };
    serialize(request, NLM_F_REQUEST | NLM_F_DUMP, seq)
}

/// Serialized lookup of the one TCP socket with this exact 4-tuple, with
/// INET_DIAG_INFO. The family follows the local address.
pub fn lookup_request(seq: u32, tuple: &Tuple) -> Vec<u8> {
    let Tuple {
        local,
        remote,
        ifindex,
    } = *tuple;
    let family = if local.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    };
    let request = InetRequest {
        family: family.af(),
        protocol: ip_proto(Proto::Tcp),
        extensions: ExtensionFlags::INFO,
        states: StateFlags::from_bits_retain(!SKIPPED_STATES),
        socket_id: SocketId {
            source_port: local.port(),
            destination_port: remote.port(),
            source_address: local.ip(),
            destination_address: remote.ip(),
            interface_id: ifindex,
            // INET_DIAG_NOCOOKIE: any socket with this tuple.
            cookie: [0xff; 8],
        },
    };
    serialize(request, NLM_F_REQUEST, seq)
}

fn serialize(request: InetRequest, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(SockDiagMessage::InetRequest(request)),
    );
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    buf
}
