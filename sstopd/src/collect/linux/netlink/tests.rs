//! Literal-byte tests of dump reading (B12, DUMP_INTR, multi-part) and payload accounting.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::{Proto, TcpState};

use super::wire::{NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, SOCK_DIAG_BY_FAMILY};
use super::*;

const NLM_F_MULTI: u16 = 2;

/// A netlink message: header + payload, padded to 4 bytes.
fn nlmsg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&4242u32.to_ne_bytes());
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

struct Msg {
    family: u8,
    state: u8,
    timer: u8,
    local: SocketAddr,
    remote: SocketAddr,
    cookie: u64,
    uid: u32,
    inode: u32,
    info: Option<Vec<u8>>,
}

fn ip16(addr: SocketAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        SocketAddr::V4(a) => out[..4].copy_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => out = a.ip().octets(),
    }
    out
}

/// An `inet_diag_msg` as the kernel lays it out, plus an optional INET_DIAG_INFO attribute.
fn diag_msg(m: &Msg) -> Vec<u8> {
    let mut p = vec![m.family, m.state, m.timer, 0];
    p.extend_from_slice(&m.local.port().to_be_bytes());
    p.extend_from_slice(&m.remote.port().to_be_bytes());
    p.extend_from_slice(&ip16(m.local));
    p.extend_from_slice(&ip16(m.remote));
    p.extend_from_slice(&0u32.to_ne_bytes()); // if
    p.extend_from_slice(&(m.cookie as u32).to_ne_bytes());
    p.extend_from_slice(&((m.cookie >> 32) as u32).to_ne_bytes());
    for v in [0u32, 0, 0, m.uid, m.inode] {
        p.extend_from_slice(&v.to_ne_bytes());
    }
    assert_eq!(p.len(), 72);
    if let Some(info) = &m.info {
        p.extend_from_slice(&((4 + info.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&2u16.to_ne_bytes());
        p.extend_from_slice(info);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    }
    p
}

fn tcp_info(len: usize, acked: u64, received: u64) -> Vec<u8> {
    let mut b = vec![0u8; len];
    if len >= 128 {
        b[120..128].copy_from_slice(&acked.to_ne_bytes());
    }
    if len >= 136 {
        b[128..136].copy_from_slice(&received.to_ne_bytes());
    }
    b
}

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(a), port))
}

fn tcp_msg(state: u8, local: SocketAddr, remote: SocketAddr, cookie: u64) -> Vec<u8> {
    diag_msg(&Msg {
        family: 2,
        state,
        timer: 0,
        local,
        remote,
        cookie,
        uid: 1000,
        inode: 77,
        info: Some(tcp_info(280, 1001, 3001)),
    })
}

#[test]
fn b12_done_with_negative_errno_is_no_handler() {
    let bytes = [
        0x14, 0x00, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xfe, 0xff, 0xff, 0xff,
    ];
    let mut reader = DumpReader::new(1, Family::V4, Proto::Sctp);
    match reader.feed(&bytes) {
        Err(NetlinkError::NoDiagHandler {
            family: Family::V4,
            proto: Proto::Sctp,
            errno: 2,
        }) => {}
        other => panic!("expected NoDiagHandler, got {other:?}"),
    }
}

#[test]
fn nlmsg_error_inside_a_dump_is_an_error() {
    let mut reader = DumpReader::new(9, Family::V6, Proto::Tcp);
    let mut payload = (-libc::EPERM).to_ne_bytes().to_vec();
    payload.extend_from_slice(&[0u8; 16]);
    match reader.feed(&nlmsg(NLMSG_ERROR, 0, 9, &payload)) {
        Err(NetlinkError::Kernel { errno }) => assert_eq!(errno, libc::EPERM),
        other => panic!("expected Kernel error, got {other:?}"),
    }
}

#[test]
fn done_with_zero_is_an_empty_dump() {
    let mut reader = DumpReader::new(3, Family::V4, Proto::Udp);
    let done = nlmsg(NLMSG_DONE, NLM_F_MULTI, 3, &0i32.to_ne_bytes());
    assert_eq!(reader.feed(&done).unwrap(), Progress::Done);
    assert!(matches!(reader.finish(), DumpOutcome::Complete(v) if v.is_empty()));
}

#[test]
fn dump_intr_flag_makes_the_dump_interrupted() {
    let mut reader = DumpReader::new(5, Family::V4, Proto::Tcp);
    let mut dgram = nlmsg(
        SOCK_DIAG_BY_FAMILY,
        NLM_F_MULTI | NLM_F_DUMP_INTR,
        5,
        &tcp_msg(1, v4([127, 0, 0, 1], 40000), v4([127, 0, 0, 1], 80), 1),
    );
    dgram.extend(nlmsg(NLMSG_DONE, NLM_F_MULTI, 5, &0i32.to_ne_bytes()));
    assert_eq!(reader.feed(&dgram).unwrap(), Progress::Done);
    assert!(matches!(reader.finish(), DumpOutcome::Interrupted));
}

#[test]
fn multi_part_dump_collects_every_datagram_and_ignores_stale_ones() {
    let mut reader = DumpReader::new(7, Family::V4, Proto::Tcp);
    let server = v4([10, 0, 0, 1], 8080);
    let listen = diag_msg(&Msg {
        family: 2,
        state: 10,
        timer: 0,
        local: v4([0, 0, 0, 0], 8080),
        remote: v4([0, 0, 0, 0], 0),
        cookie: 0x1_0000_0001,
        uid: 0,
        inode: 5,
        info: Some(tcp_info(280, 0, 0)),
    });
    let mut first = nlmsg(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, 7, &listen);
    first.extend(nlmsg(
        SOCK_DIAG_BY_FAMILY,
        NLM_F_MULTI,
        7,
        &tcp_msg(1, server, v4([10, 0, 0, 2], 50000), 2),
    ));
    // Left over from an abandoned dump with another sequence number.
    let stale = nlmsg(
        SOCK_DIAG_BY_FAMILY,
        NLM_F_MULTI,
        6,
        &tcp_msg(1, server, v4([10, 0, 0, 9], 1), 99),
    );
    let second = nlmsg(
        SOCK_DIAG_BY_FAMILY,
        NLM_F_MULTI,
        7,
        &tcp_msg(1, v4([10, 0, 0, 1], 50001), v4([10, 0, 0, 3], 443), 3),
    );
    let done = nlmsg(NLMSG_DONE, NLM_F_MULTI, 7, &0i32.to_ne_bytes());
    assert_eq!(reader.feed(&stale).unwrap(), Progress::More);
    assert_eq!(reader.feed(&first).unwrap(), Progress::More);
    assert_eq!(reader.feed(&second).unwrap(), Progress::More);
    assert_eq!(reader.feed(&done).unwrap(), Progress::Done);
    let DumpOutcome::Complete(sockets) = reader.finish() else {
        panic!("not complete")
    };
    let cookies: Vec<u64> = sockets.iter().map(|s| s.cookie).collect();
    assert_eq!(cookies, [0x1_0000_0001, 2, 3]);
    let listener = &sockets[0];
    assert_eq!(listener.state, Some(TcpState::Listen));
    assert_eq!(listener.remote, None);
    let accepted = &sockets[1];
    assert_eq!(accepted.local, server);
    assert_eq!(accepted.remote, Some(v4([10, 0, 0, 2], 50000)));
    assert_eq!((accepted.uid, accepted.inode), (1000, 77));
    assert_eq!(accepted.passive, Some(true));
    assert_eq!(sockets[2].passive, Some(false));
    assert_eq!(accepted.counters.bytes_acked, Some(1001));
    assert_eq!(accepted.counters.bytes_received, Some(3001));
}

#[test]
fn short_tcp_info_keeps_the_socket() {
    // B11 at the message level: a 104-byte tcp_info must not make the entry vanish.
    for len in [104usize, 130, 144, 280, 320] {
        let mut reader = DumpReader::new(1, Family::V4, Proto::Tcp);
        let msg = diag_msg(&Msg {
            family: 2,
            state: 1,
            timer: 0,
            local: v4([127, 0, 0, 1], 1),
            remote: v4([127, 0, 0, 1], 2),
            cookie: 1,
            uid: 0,
            inode: 1,
            info: Some(tcp_info(len, 4096, 8192)),
        });
        let mut dgram = nlmsg(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, 1, &msg);
        dgram.extend(nlmsg(NLMSG_DONE, NLM_F_MULTI, 1, &0i32.to_ne_bytes()));
        reader.feed(&dgram).unwrap();
        let DumpOutcome::Complete(sockets) = reader.finish() else {
            panic!("not complete")
        };
        assert_eq!(sockets.len(), 1, "tcp_info of {len} bytes");
        let c = sockets[0].counters;
        assert_eq!(c.bytes_acked.is_some(), len >= 128, "len {len}");
        assert_eq!(c.bytes_received.is_some(), len >= 136, "len {len}");
    }
}

/// What `ss -tanoe` shows after a process closes a connection its peer keeps open:
/// `FIN-WAIT-2 ... timer:(timewait,59sec,0) ino:0` — a minisocket that replaced the
/// orphan, reporting its substate. Counted as a connection, it piled up as thousands of
/// ownerless "connections" until a re-sync missed them (no destroy event comes).
#[test]
fn a_timewait_minisocket_in_fin_wait_2_is_read_as_time_wait() {
    let msg = |timer| {
        diag_msg(&Msg {
            family: 2,
            state: 5, // FIN-WAIT-2
            timer,
            local: v4([127, 0, 0, 1], 60528),
            remote: v4([127, 0, 0, 1], 44427),
            cookie: 0xd4869,
            uid: 0,
            inode: 0,
            info: None,
        })
    };
    let tw = wire::parse_diag_msg(&msg(3), Proto::Tcp).unwrap();
    assert_eq!(tw.state, Some(TcpState::TimeWait));
    // A full socket in FIN-WAIT-2 (its owner shut down writing) keeps its state, whatever
    // timer runs: none, retransmit, keepalive, zero-window probe.
    for timer in [0, 1, 2, 4] {
        let full = wire::parse_diag_msg(&msg(timer), Proto::Tcp).unwrap();
        assert_eq!(full.state, Some(TcpState::FinWait2), "timer {timer}");
    }
}

#[test]
fn v6_udp_unconnected_has_no_remote_and_no_state() {
    let local = SocketAddr::from((Ipv6Addr::LOCALHOST, 5353));
    let msg = diag_msg(&Msg {
        family: 10,
        state: 7,
        timer: 0,
        local,
        remote: SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        cookie: 11,
        uid: 0,
        inode: 12,
        info: None,
    });
    let s = wire::parse_diag_msg(&msg, Proto::Udp).unwrap();
    assert_eq!(s.local, local);
    assert_eq!(s.remote, None);
    assert_eq!(s.state, None);
    assert_eq!(s.payload_sent(), None);
}

#[test]
fn garbage_is_a_parse_error_not_a_panic() {
    let mut reader = DumpReader::new(1, Family::V4, Proto::Tcp);
    assert!(matches!(
        reader.feed(&[1, 2, 3]),
        Err(NetlinkError::Parse(_))
    ));
    let mut reader = DumpReader::new(1, Family::V4, Proto::Tcp);
    let huge_len = [0xff, 0xff, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        reader.feed(&huge_len),
        Err(NetlinkError::Parse(_))
    ));
    let mut reader = DumpReader::new(1, Family::V4, Proto::Tcp);
    let short_diag = nlmsg(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, 1, &[2u8; 40]);
    assert!(matches!(
        reader.feed(&short_diag),
        Err(NetlinkError::Parse(_))
    ));
}

#[test]
fn request_asks_every_state_but_minisockets_and_tcp_info() {
    let req = dump_request(77, Family::V6, Proto::Tcp);
    assert_eq!(req.len(), 16 + 56);
    assert_eq!(u16::from_ne_bytes([req[4], req[5]]), SOCK_DIAG_BY_FAMILY);
    assert_eq!(u16::from_ne_bytes([req[6], req[7]]), 0x301); // REQUEST | DUMP
    assert_eq!(u32::from_ne_bytes([req[8], req[9], req[10], req[11]]), 77);
    assert_eq!(&req[16..19], &[10, 6, 2]); // AF_INET6, TCP, 1 << (INET_DIAG_INFO - 1)
    let states = u32::from_ne_bytes([req[20], req[21], req[22], req[23]]);
    // TIME-WAIT (6) and NEW_SYN_RECV (12) are left to the kernel; LISTEN (10),
    // ESTABLISHED (1), SYN-SENT (2), CLOSE-WAIT (8) ... are asked for.
    assert_eq!(states & (1 << 6 | 1 << 12), 0);
    assert_eq!(states | (1 << 6 | 1 << 12), u32::MAX);
}

#[test]
fn one_walk_request_is_an_inet_diag_req_for_tcp() {
    let req = tcp_both_request(9);
    assert_eq!(req.len(), 16 + 60);
    assert_eq!(u32::from_ne_bytes([req[0], req[1], req[2], req[3]]), 76);
    assert_eq!(u16::from_ne_bytes([req[4], req[5]]), 18); // TCPDIAG_GETSOCK
    assert_eq!(u16::from_ne_bytes([req[6], req[7]]), 0x301);
    assert_eq!(u32::from_ne_bytes([req[8], req[9], req[10], req[11]]), 9);
    assert_eq!(req[19], 2); // INET_DIAG_INFO
    let states = u32::from_ne_bytes([req[68], req[69], req[70], req[71]]);
    assert_eq!(states, !(1 << 6 | 1 << 12));
}

fn sock(state: TcpState, passive: Option<bool>, counters: TcpCounters) -> DiagSocket {
    DiagSocket {
        cookie: 1,
        proto: Proto::Tcp,
        local: v4([127, 0, 0, 1], 1),
        remote: Some(v4([127, 0, 0, 1], 2)),
        state: Some(state),
        uid: 0,
        inode: 0,
        ifindex: 0,
        counters,
        passive,
    }
}

fn counters(acked: u64, received: u64, sent: Option<u64>) -> TcpCounters {
    TcpCounters {
        bytes_acked: Some(acked),
        bytes_received: Some(received),
        bytes_sent: sent,
        bytes_retrans: sent.map(|_| 0),
    }
}

/// Values as `ss -tin` showed them on Linux 6.18 after client→server 1000 B, server→client
/// 3000 B, then the client's shutdown(SHUT_WR).
#[test]
fn syn_and_fin_removed_per_state_and_role() {
    use TcpState::*;
    let cases = [
        // (state, passive, acked, received, sent, expect sent, expect received)
        (Established, Some(false), 1001, 3000, Some(1000), 1000, 3000),
        (Established, Some(true), 3000, 1000, Some(3000), 3000, 1000),
        (FinWait2, Some(false), 1002, 3000, Some(1000), 1000, 3000),
        (CloseWait, Some(true), 3000, 1001, Some(3000), 3000, 1000),
        (LastAck, Some(true), 3000, 1001, Some(3000), 3000, 1000),
        // Old kernels without bytes_sent: rely on state and role alone.
        (Established, Some(false), 1001, 3000, None, 1000, 3000),
        (Established, Some(true), 3000, 1000, None, 3000, 1000),
        (FinWait2, Some(false), 1002, 3000, None, 1000, 3000),
        (Close, Some(false), 1002, 3001, None, 1000, 3000),
        // Destroy events: role unknown, bytes_sent bounds the guess.
        (Close, None, 1002, 3001, Some(1000), 1000, 3000),
        (Close, None, 3001, 1001, Some(3000), 3000, 1000),
        // In flight: the unique-sent bound is above, the role decides.
        (Established, Some(false), 501, 0, Some(1000), 500, 0),
        (SynSent, Some(false), 0, 0, Some(0), 0, 0),
    ];
    for (state, passive, acked, received, sent, want_sent, want_received) in cases {
        let s = sock(state, passive, counters(acked, received, sent));
        assert_eq!(
            s.payload_sent(),
            Some(want_sent),
            "sent {state:?} {passive:?} {sent:?}"
        );
        assert_eq!(
            s.payload_received(),
            Some(want_received),
            "received {state:?} {passive:?}"
        );
    }
}

#[test]
fn missing_counters_stay_unavailable() {
    let s = sock(TcpState::Established, Some(false), TcpCounters::default());
    assert_eq!((s.payload_sent(), s.payload_received()), (None, None));
    let reset = sock(TcpState::Close, None, counters(1, 0, Some(0)));
    assert_eq!(
        (reset.payload_sent(), reset.payload_received()),
        (Some(0), Some(0))
    );
}
