use super::*;
use crate::collect::ProcKey;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn sock(id: u64, proto: Proto, local: &str, remote: Option<&str>) -> SocketSample {
    SocketSample {
        id,
        proto,
        local: sa(local),
        remote: remote.map(sa),
        state: None,
        uid: 0,
        inode: id,
        owners: vec![ProcKey {
            pid: id as u32,
            start_time: 1,
        }],
        sent: None,
        received: None,
    }
}

fn flow(proto: Proto, src: &str, dst: &str, dir: Dir, bytes: u64) -> (FlowKey, u64) {
    (
        FlowKey {
            proto,
            src: sa(src),
            dst: sa(dst),
            dir,
        },
        bytes,
    )
}

fn counters(s: &[SocketSample]) -> Vec<(u64, Option<u64>, Option<u64>)> {
    s.iter().map(|s| (s.id, s.sent, s.received)).collect()
}

#[test]
fn quic_like_server_and_two_senders_on_loopback_b13() {
    let mut ledger = Ledger::default();
    let mut socks = vec![
        sock(1, Proto::Udp, "127.0.0.1:4433", None),
        sock(2, Proto::Udp, "127.0.0.1:50000", Some("127.0.0.1:4433")),
        sock(3, Proto::Udp, "127.0.0.1:50001", Some("127.0.0.1:4433")),
    ];
    let mut closed = Vec::new();
    let tick1 = [
        flow(
            Proto::Udp,
            "127.0.0.1:50000",
            "127.0.0.1:4433",
            Dir::Loop,
            6_000_000,
        ),
        flow(
            Proto::Udp,
            "127.0.0.1:50001",
            "127.0.0.1:4433",
            Dir::Loop,
            1_200_000,
        ),
    ];
    let un = ledger.account(&mut socks, &mut closed, tick1, |_| true);
    assert!(un.is_empty(), "{un:?}");
    assert_eq!(
        counters(&socks),
        vec![
            (1, Some(0), Some(7_200_000)),
            (2, Some(6_000_000), Some(0)),
            (3, Some(1_200_000), Some(0))
        ]
    );
    // The server's socket is unconnected: whom it heard from is reported per peer, this
    // tick's bytes only (the connected senders name their peer themselves).
    let peer = |remote: &str, received| PeerFlow {
        socket: 1,
        remote: sa(remote),
        sent: 0,
        received,
    };
    assert_eq!(
        ledger.take_peers(),
        vec![
            peer("127.0.0.1:50000", 6_000_000),
            peer("127.0.0.1:50001", 1_200_000)
        ]
    );
    let tick2 = [
        flow(
            Proto::Udp,
            "127.0.0.1:50000",
            "127.0.0.1:4433",
            Dir::Loop,
            6_000_000,
        ),
        flow(
            Proto::Udp,
            "127.0.0.1:50001",
            "127.0.0.1:4433",
            Dir::Loop,
            1_200_000,
        ),
    ];
    let un = ledger.account(&mut socks, &mut closed, tick2, |_| true);
    assert!(un.is_empty());
    assert_eq!(
        counters(&socks),
        vec![
            (1, Some(0), Some(14_400_000)),
            (2, Some(12_000_000), Some(0)),
            (3, Some(2_400_000), Some(0))
        ]
    );
    assert!(closed.is_empty());
}

#[test]
fn wildcard_and_dual_stack_binds_match_any_local_address() {
    let mut ledger = Ledger::default();
    let mut socks = vec![
        sock(1, Proto::Udp, "[::]:443", None),
        sock(2, Proto::Udp, "0.0.0.0:53", None),
        // v4-mapped as a v6 socket reports it
        sock(
            3,
            Proto::Udp,
            "[::ffff:10.0.0.1]:5000",
            Some("[::ffff:10.0.0.2]:6000"),
        ),
    ];
    let flows = [
        flow(
            Proto::Udp,
            "[2001:db8::7]:40000",
            "[2001:db8::1]:443",
            Dir::In,
            100,
        ),
        flow(Proto::Udp, "192.0.2.9:40000", "10.0.0.1:443", Dir::In, 10),
        flow(Proto::Udp, "10.0.0.1:53", "10.0.0.9:3333", Dir::Out, 20),
        flow(Proto::Udp, "10.0.0.1:5000", "10.0.0.2:6000", Dir::Out, 30),
    ];
    let mut closed = Vec::new();
    ledger.account(&mut socks, &mut closed, [], |_| true);
    let un = ledger.account(&mut socks, &mut closed, flows, |_| true);
    assert!(un.is_empty(), "{un:?}");
    assert_eq!(
        counters(&socks),
        vec![
            (1, Some(0), Some(110)),
            (2, Some(20), Some(0)),
            (3, Some(30), Some(0))
        ]
    );
}

#[test]
fn raw_ping_and_unexplained() {
    let mut ledger = Ledger::default();
    let mut socks = vec![
        sock(1, Proto::Ip(253), "0.0.0.0:0", None),
        sock(2, Proto::Icmp, "0.0.0.0:4660", None), // ping socket, identifier 0x1234
        sock(3, Proto::Icmp, "0.0.0.0:0", None),    // raw ICMP socket
        sock(4, Proto::Tcp, "10.0.0.1:22", None),   // not eligible (main mode)
    ];
    let mut closed = Vec::new();
    let main_mode = |s: &SocketSample| s.proto != Proto::Tcp;
    ledger.account(&mut socks, &mut closed, [], main_mode);
    let flows = [
        flow(Proto::Ip(253), "10.0.0.1:0", "10.0.0.2:0", Dir::Out, 500),
        flow(Proto::Ip(253), "10.0.0.2:0", "10.0.0.1:0", Dir::In, 400),
        flow(Proto::Icmp, "10.0.0.1:4660", "10.0.0.2:4660", Dir::Out, 64),
        flow(Proto::Icmp, "10.0.0.1:7", "10.0.0.2:7", Dir::Out, 1008),
        flow(Proto::Udp, "10.0.0.1:9999", "10.0.0.2:53", Dir::Out, 77),
        flow(Proto::Udp, "10.0.0.2:53", "10.0.0.1:9999", Dir::In, 99),
        flow(Proto::Ip(47), "10.0.0.2:0", "10.0.0.1:0", Dir::In, 5),
    ];
    let un = ledger.account(&mut socks, &mut closed, flows, main_mode);
    assert_eq!(
        counters(&socks),
        vec![
            (1, Some(500), Some(400)),
            (2, Some(64), Some(0)),
            (3, Some(1008), Some(0)),
            (4, None, None)
        ]
    );
    let ip2: IpAddr = "10.0.0.2".parse().unwrap();
    assert_eq!(
        un,
        vec![
            UnexplainedFlow {
                proto: Proto::Udp,
                remote: Some(ip2),
                sent: 77,
                received: 99
            },
            UnexplainedFlow {
                proto: Proto::Ip(47),
                remote: Some(ip2),
                sent: 0,
                received: 5
            },
        ]
    );
}

#[test]
fn vanished_socket_gets_its_last_frames_and_is_reported_closed() {
    let mut ledger = Ledger::default();
    let mut closed = Vec::new();
    let mut socks = vec![sock(9, Proto::Udp, "10.0.0.1:5353", Some("10.0.0.2:53"))];
    // Seen once, with its first query.
    let q = flow(Proto::Udp, "10.0.0.1:5353", "10.0.0.2:53", Dir::Out, 40);
    ledger.account(&mut socks, &mut closed, [q], |_| true);
    assert_eq!(socks[0].sent, Some(40));
    // Next dump no longer lists it; its answer arrives in the same tick.
    let a = flow(Proto::Udp, "10.0.0.2:53", "10.0.0.1:5353", Dir::In, 120);
    let un = ledger.account(&mut [], &mut closed, [a], |_| true);
    assert!(un.is_empty());
    assert_eq!(closed.len(), 1);
    assert_eq!(
        (closed[0].id, closed[0].sent, closed[0].received),
        (9, 40, 120)
    );
    assert_eq!(closed[0].owners[0].pid, 9);
    assert!(ledger.is_empty());

    // A destroy-listener entry for the same socket (no UDP counters) gets ours.
    let mut socks = vec![sock(10, Proto::Udp, "10.0.0.1:5354", None)];
    let f = flow(Proto::Udp, "10.0.0.1:5354", "10.0.0.2:53", Dir::Out, 33);
    ledger.account(&mut socks, &mut closed, [f], |_| true);
    let mut closed = vec![ClosedSocket {
        id: 10,
        proto: Proto::Udp,
        local: sa("10.0.0.1:5354"),
        remote: None,
        sent: 0,
        received: 0,
        owners: vec![],
    }];
    ledger.account(&mut [], &mut closed, [], |_| true);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].sent, 33);
}

#[test]
fn socket_born_and_closed_between_dumps_gets_its_bytes_in_closed() {
    let mut ledger = Ledger::default();
    // The destroy listener reported it (no UDP counters); no dump ever listed it.
    let mut closed = vec![ClosedSocket {
        id: 77,
        proto: Proto::Udp,
        local: sa("10.0.0.1:40000"),
        remote: Some(sa("10.0.0.2:53")),
        sent: 0,
        received: 0,
        owners: vec![],
    }];
    let flows = [
        flow(Proto::Udp, "10.0.0.1:40000", "10.0.0.2:53", Dir::Out, 30),
        flow(Proto::Udp, "10.0.0.2:53", "10.0.0.1:40000", Dir::In, 300),
    ];
    let un = ledger.account(&mut [], &mut closed, flows, |_| true);
    assert!(un.is_empty(), "{un:?}");
    assert_eq!((closed[0].sent, closed[0].received), (30, 300));
    assert!(ledger.is_empty());
}
