//! Real sockets, real kernel (root, as CI runs): dumps, destroy events and the connect
//! tracer against loopback transfers of known size. Everything is filtered by our own
//! ports: other tests on this host make sockets of their own.

use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::{Proto, TcpState};

use super::*;
use crate::collect::linux::destroy::DestroyWatcher;
use crate::collect::linux::tracepoint::{ConnectEvent, ConnectTracer};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Poll `f` until it yields, or fail with `what`.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn inode_of(fd: &impl AsRawFd) -> u64 {
    std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .unwrap()
        .ino()
}

fn family_of(ip: IpAddr) -> Family {
    if ip.is_ipv4() { Family::V4 } else { Family::V6 }
}

fn find(sockets: &[DiagSocket], local: SocketAddr, remote: SocketAddr) -> Option<&DiagSocket> {
    sockets
        .iter()
        .find(|s| s.local == local && s.remote == Some(remote))
}

/// A connected pair; returns (client, server).
fn pair(ip: IpAddr) -> (TcpListener, TcpStream, TcpStream) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (listener, client, server)
}

fn transfer(from: &mut TcpStream, to: &mut TcpStream, n: usize) {
    let data = vec![0x5a; n];
    let writer = {
        let mut from = from.try_clone().unwrap();
        std::thread::spawn(move || from.write_all(&data).unwrap())
    };
    let mut got = vec![0; n];
    to.read_exact(&mut got).unwrap();
    writer.join().unwrap();
}

/// Wait until the dump shows `(state, sent, received)` for the socket local → remote.
fn expect(
    diag: &mut SockDiag,
    local: SocketAddr,
    remote: SocketAddr,
    want: (TcpState, u64, u64),
) -> DiagSocket {
    let family = family_of(local.ip());
    let mut last = None;
    let start = Instant::now();
    loop {
        let sockets = diag.dump(family, Proto::Tcp).unwrap();
        if let Some(s) = find(&sockets, local, remote) {
            let seen = (
                s.state.unwrap(),
                s.payload_sent().unwrap(),
                s.payload_received().unwrap(),
            );
            if seen == want {
                return s.clone();
            }
            last = Some((seen, s.counters));
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "{local} → {remote}: want {want:?}, last seen {last:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn exact_counts_through_the_connection_life(ip: IpAddr) {
    let mut diag = SockDiag::open().unwrap();
    let (listener, mut client, mut server) = pair(ip);
    let (c, s) = (client.local_addr().unwrap(), server.local_addr().unwrap());
    transfer(&mut client, &mut server, 100_000);
    transfer(&mut server, &mut client, 250_000);

    let cs = expect(&mut diag, c, s, (TcpState::Established, 100_000, 250_000));
    let ss = expect(&mut diag, s, c, (TcpState::Established, 250_000, 100_000));
    assert_eq!((cs.passive, ss.passive), (Some(false), Some(true)));
    assert_eq!(cs.inode, inode_of(&client));
    assert_eq!(ss.inode, inode_of(&server));
    assert_eq!(cs.uid, rustix::process::getuid().as_raw());
    assert_ne!(cs.cookie, ss.cookie);
    let sockets = diag.dump(family_of(ip), Proto::Tcp).unwrap();
    let l = sockets
        .iter()
        .find(|x| x.local == listener.local_addr().unwrap())
        .expect("listener in dump");
    assert_eq!((l.state, l.remote), (Some(TcpState::Listen), None));

    // Client half-closes: its FIN is acked (FIN-WAIT-2), the server got it (CLOSE-WAIT).
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.read(&mut [0u8; 16]).unwrap(), 0);
    expect(&mut diag, c, s, (TcpState::FinWait2, 100_000, 250_000));
    expect(&mut diag, s, c, (TcpState::CloseWait, 250_000, 100_000));
    // Data still flows the other way in those states.
    transfer(&mut server, &mut client, 5_000);
    let after = expect(&mut diag, c, s, (TcpState::FinWait2, 100_000, 255_000));
    expect(&mut diag, s, c, (TcpState::CloseWait, 255_000, 100_000));
    assert_eq!(
        after.cookie, cs.cookie,
        "cookie is stable for the socket's life"
    );
}

#[test]
fn netlink_dump_exact_payload_v4() {
    exact_counts_through_the_connection_life(IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn netlink_dump_exact_payload_v6() {
    exact_counts_through_the_connection_life(IpAddr::V6(Ipv6Addr::LOCALHOST));
}

#[test]
fn netlink_dump_udp_sockets_v4_v6() {
    let mut diag = SockDiag::open().unwrap();
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        let server = UdpSocket::bind((ip, 0)).unwrap();
        let client = UdpSocket::bind((ip, 0)).unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        client.send(b"hello").unwrap();
        let sockets = diag.dump(family_of(ip), Proto::Udp).unwrap();
        let srv = sockets
            .iter()
            .find(|s| s.local == server.local_addr().unwrap())
            .expect("unconnected UDP socket in dump");
        assert_eq!((srv.proto, srv.remote, srv.state), (Proto::Udp, None, None));
        assert_eq!(srv.inode, inode_of(&server));
        let cli = sockets
            .iter()
            .find(|s| s.local == client.local_addr().unwrap())
            .expect("connected UDP socket in dump");
        assert_eq!(cli.remote, Some(server.local_addr().unwrap()));
        assert_eq!(cli.counters, TcpCounters::default(), "UDP has no tcp_info");
    }
}

#[test]
fn netlink_dump_without_diag_handler_is_an_error() {
    let mut diag = SockDiag::open().unwrap();
    for proto in [Proto::Sctp, Proto::Ip(libc::IPPROTO_RAW as u8)] {
        match diag.dump(Family::V4, proto) {
            Err(NetlinkError::NoDiagHandler { errno, .. }) => assert_eq!(errno, libc::ENOENT),
            other => panic!("{proto}: expected NoDiagHandler, got {other:?}"),
        }
    }
    // The socket stays usable after an error.
    diag.dump(Family::V4, Proto::Tcp).unwrap();
}

/// Drain `watcher` until each `(local, remote)` in `want` has a destroy event. Ports are
/// reused across destinations, so the local address alone is not an identity.
fn closed(watcher: &mut DestroyWatcher, want: &[(SocketAddr, SocketAddr)]) -> Vec<DiagSocket> {
    let is =
        |s: &DiagSocket, (l, r): &(SocketAddr, SocketAddr)| s.local == *l && s.remote == Some(*r);
    let mut seen: Vec<DiagSocket> = Vec::new();
    poll("destroy events", || {
        let batch = watcher.drain();
        assert!(!batch.overrun, "destroy events overran");
        seen.extend(
            batch
                .closed
                .into_iter()
                .filter(|s| want.iter().any(|w| is(s, w))),
        );
        want.iter()
            .all(|w| seen.iter().any(|s| is(s, w)))
            .then(|| seen.clone())
    })
}

#[test]
fn netlink_destroy_reports_exact_final_counters() {
    let mut watcher = DestroyWatcher::with_buffer(64 << 20).unwrap();
    let mut diag = SockDiag::open().unwrap();
    let (_listener, mut client, mut server) = pair(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (c, s) = (client.local_addr().unwrap(), server.local_addr().unwrap());
    transfer(&mut client, &mut server, 70_000);
    transfer(&mut server, &mut client, 30_000);
    let live = expect(&mut diag, c, s, (TcpState::Established, 70_000, 30_000));
    // Orderly close: client first (it ends in TIME-WAIT), then the server (LAST-ACK).
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.read(&mut [0u8; 16]).unwrap(), 0);
    drop(server);
    assert_eq!(client.read(&mut [0u8; 16]).unwrap(), 0);
    drop(client);

    let events = closed(&mut watcher, &[(c, s), (s, c)]);
    let cc = events.iter().find(|e| e.local == c).unwrap();
    let sc = events.iter().find(|e| e.local == s).unwrap();
    assert_eq!(
        cc.cookie, live.cookie,
        "destroy event carries the dump's cookie"
    );
    assert_eq!(cc.state, Some(TcpState::Close));
    assert_eq!(cc.remote, Some(s));
    assert_eq!(
        (cc.payload_sent(), cc.payload_received()),
        (Some(70_000), Some(30_000))
    );
    assert_eq!(
        (sc.payload_sent(), sc.payload_received()),
        (Some(30_000), Some(70_000))
    );
}

#[test]
fn netlink_one_walk_tcp_dump_matches_per_family_dumps() {
    let mut diag = SockDiag::open().unwrap();
    let (_l4, mut c4, mut s4) = pair(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (_l6, mut c6, mut s6) = pair(IpAddr::V6(Ipv6Addr::LOCALHOST));
    transfer(&mut c4, &mut s4, 12_345);
    transfer(&mut s6, &mut c6, 54_321);
    let (a4, b4) = (c4.local_addr().unwrap(), s4.local_addr().unwrap());
    let (a6, b6) = (c6.local_addr().unwrap(), s6.local_addr().unwrap());
    // Settled (acked) before comparing, through the per-family path.
    let one4 = expect(&mut diag, a4, b4, (TcpState::Established, 12_345, 0));
    let one6 = expect(&mut diag, b6, a6, (TcpState::Established, 54_321, 0));
    let both = diag.dump_tcp_both().unwrap();
    for (want, local, remote) in [(&one4, a4, b4), (&one6, b6, a6)] {
        let got = find(&both, local, remote).expect("socket in the one-walk dump");
        assert_eq!(got.cookie, want.cookie);
        assert_eq!(got.inode, want.inode);
        assert_eq!(got.passive, want.passive);
        assert_eq!(
            (got.payload_sent(), got.payload_received()),
            (want.payload_sent(), want.payload_received())
        );
    }
    // The accepted ends and both listeners, of both families.
    assert!(find(&both, b4, a4).is_some_and(|s| s.passive == Some(true)));
    assert!(find(&both, a6, b6).is_some_and(|s| s.passive == Some(false)));
    for l in [&_l4, &_l6] {
        let addr = l.local_addr().unwrap();
        assert!(
            both.iter()
                .any(|s| s.local == addr && s.state == Some(TcpState::Listen))
        );
    }
}

#[test]
fn netlink_dump_leaves_time_wait_to_the_kernel() {
    let mut diag = SockDiag::open().unwrap();
    let (_listener, mut client, mut server) = pair(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (c, s) = (client.local_addr().unwrap(), server.local_addr().unwrap());
    transfer(&mut client, &mut server, 1_000);
    // Client closes first: its side ends in TIME-WAIT.
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.read(&mut [0u8; 16]).unwrap(), 0);
    drop(server);
    assert_eq!(client.read(&mut [0u8; 16]).unwrap(), 0);
    drop(client);
    // The kernel holds it (/proc/net/tcp lists every state) ...
    let net = std::path::Path::new("/proc/thread-self/net");
    poll("the client's TIME-WAIT socket in /proc/net/tcp", || {
        crate::collect::linux::procnet::read_sockets(
            net,
            &[crate::collect::linux::procnet::Table::Tcp],
        )
        .unwrap()
        .into_iter()
        .find(|x| x.local == c && x.remote == Some(s) && x.state == Some(TcpState::TimeWait))
    });
    // ... but the dump, asked for live states only, never carries it.
    let dumped = diag.dump(Family::V4, Proto::Tcp).unwrap();
    assert!(find(&dumped, c, s).is_none(), "TIME-WAIT socket dumped");
    assert!(
        dumped
            .iter()
            .all(|d| !matches!(d.state, Some(TcpState::TimeWait | TcpState::NewSynRecv)))
    );
}

/// A child process we started; killed and reaped even if the test fails.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real interpreter binary (`python3` may be a wrapper script, e.g. a pyenv shim).
fn python() -> std::path::PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os,sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().into()
}

/// A process named `nlshort` connects, sends 3000 bytes and exits within milliseconds:
/// the destroy watcher must see its exact bytes and the tracer its pid and name.
fn short_lived_connection(ip: IpAddr) {
    let mut watcher = DestroyWatcher::with_buffer(64 << 20).unwrap();
    let mut tracer = ConnectTracer::open().unwrap();
    let host = ip.to_string();
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).unwrap();
        (peer, buf.len())
    });

    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("nlshort");
    std::os::unix::fs::symlink(python(), &exe).unwrap();
    let script = "import socket,sys\n\
        c=socket.create_connection((sys.argv[1],int(sys.argv[2])))\n\
        c.sendall(b's'*3000)\n\
        c.close()\n";
    let child = Command::new(&exe)
        .args(["-c", script, &host, &port.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let pid = child.0.id();
    assert!(child.0.wait().unwrap().success());
    let (peer, received) = server.join().unwrap();
    assert_eq!(received, 3000);

    let server_addr = SocketAddr::new(ip, port);
    let events = closed(&mut watcher, &[(peer, server_addr)]);
    let gone = events
        .iter()
        .find(|e| e.local == peer && e.remote == Some(server_addr))
        .unwrap();
    assert_eq!(gone.payload_sent(), Some(3000));
    assert_eq!(gone.payload_received(), Some(0));

    let mut traced: Vec<ConnectEvent> = Vec::new();
    let start = Instant::now();
    let connect = loop {
        traced.extend(
            tracer
                .drain()
                .into_iter()
                .filter(|e| e.remote.port() == port),
        );
        if let Some(e) = traced.iter().find(|e| e.is_connect() && e.local == peer) {
            break e.clone();
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "no connect event from {peer}; lost {}; events to port {port}: {traced:#?}",
            tracer.lost()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(connect.pid, pid);
    assert_eq!(connect.comm, b"nlshort");
    assert_eq!(connect.proto, Proto::Tcp);
    assert_eq!(tracer.lost(), 0);
    // The in-kernel filter keeps softirq-only changes (FIN_WAIT1 → FIN_WAIT2) out.
    std::thread::sleep(Duration::from_millis(50));
    traced.extend(
        tracer
            .drain()
            .into_iter()
            .filter(|e| e.remote.port() == port),
    );
    assert!(
        !traced.iter().any(|e| e.new_state == TcpState::FinWait2),
        "filter not applied: {traced:#?}"
    );
    assert!(
        traced
            .iter()
            .any(|e| e.old_state == TcpState::SynSent && e.pid == pid),
        "the SYN_SENT → ESTABLISHED change is credited to the connecting process"
    );
}

#[test]
fn netlink_short_lived_connection_seen_by_destroy_and_tracer_v4() {
    short_lived_connection(IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn netlink_short_lived_connection_seen_by_destroy_and_tracer_v6() {
    short_lived_connection(IpAddr::V6(Ipv6Addr::LOCALHOST));
}

/// A watcher whose buffer overflows reports `overrun` (the caller re-syncs) and keeps working.
#[test]
fn netlink_destroy_overrun_is_reported_not_fatal() {
    let mut watcher = DestroyWatcher::with_buffer(4096).unwrap();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    for _ in 0..200 {
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        // RST on close: destroyed at once, no TIME-WAIT left behind.
        for s in [&client, &server] {
            socket2::SockRef::from(s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
    }
    let batch = poll("an overrun", || {
        let batch = watcher.drain();
        batch.overrun.then_some(batch)
    });
    assert!(
        batch.closed.len() < 400,
        "a 4 KiB buffer cannot hold 400 events"
    );
    // Still usable afterwards: a later close is delivered. Other tests' closes share the
    // tiny buffer, so one event may be dropped again: a few tries are allowed.
    let _ = watcher.drain();
    let delivered = (0..20).any(|_| {
        let (_l, client, server) = pair(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let c = client.local_addr().unwrap();
        let addr2 = server.local_addr().unwrap();
        drop((client, server));
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            if watcher
                .drain()
                .closed
                .iter()
                .any(|s| s.local == c && s.remote == Some(addr2))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    });
    assert!(delivered, "no destroy event delivered after an overrun");
}

/// 100 short connections in a burst from one named process (each 2000 bytes): every close
/// reaches the destroy watcher with exact bytes and every connect the tracer, named.
#[test]
fn netlink_burst_of_short_connections_is_fully_seen() {
    const N: usize = 100;
    let mut watcher = DestroyWatcher::with_buffer(64 << 20).unwrap();
    let mut tracer = ConnectTracer::open().unwrap();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        (0..N)
            .map(|_| {
                let (mut conn, peer) = listener.accept().unwrap();
                let mut buf = Vec::new();
                conn.read_to_end(&mut buf).unwrap();
                assert_eq!(buf.len(), 2000);
                peer
            })
            .collect::<Vec<_>>()
    });
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("nlchurn");
    std::os::unix::fs::symlink(python(), &exe).unwrap();
    let script = "import socket,sys\n\
        for _ in range(int(sys.argv[2])):\n\
        \x20   c=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\n\
        \x20   c.sendall(b'c'*2000)\n\
        \x20   c.close()\n";
    let child = Command::new(&exe)
        .args(["-c", script, &port.to_string(), &N.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let pid = child.0.id();
    assert!(child.0.wait().unwrap().success());
    let peers = server.join().unwrap();

    let server_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let want: Vec<_> = peers.iter().map(|p| (*p, server_addr)).collect();
    let events = closed(&mut watcher, &want);
    for peer in &peers {
        let e = events
            .iter()
            .find(|e| e.local == *peer && e.remote == Some(server_addr))
            .unwrap();
        assert_eq!(
            (e.payload_sent(), e.payload_received()),
            (Some(2000), Some(0)),
            "{peer}"
        );
    }
    let mut connects: Vec<ConnectEvent> = Vec::new();
    poll("every connect", || {
        connects.extend(
            tracer
                .drain()
                .into_iter()
                .filter(|e| e.is_connect() && e.remote.port() == port),
        );
        (connects.len() >= N).then_some(())
    });
    assert_eq!(connects.len(), N);
    for peer in &peers {
        let c = connects.iter().find(|c| c.local == *peer);
        let c = c.unwrap_or_else(|| panic!("no connect from {peer}"));
        assert_eq!((c.pid, c.comm.as_slice()), (pid, &b"nlchurn"[..]));
    }
}

#[test]
fn netlink_lookup_finds_exactly_the_asked_sockets_with_their_counters() {
    let mut diag = SockDiag::open().unwrap();
    let (l4, mut c4, mut s4) = pair(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (_l6, mut c6, mut s6) = pair(IpAddr::V6(Ipv6Addr::LOCALHOST));
    transfer(&mut c4, &mut s4, 70_001);
    transfer(&mut s6, &mut c6, 3_333);
    let (a4, b4) = (c4.local_addr().unwrap(), s4.local_addr().unwrap());
    let (a6, b6) = (c6.local_addr().unwrap(), s6.local_addr().unwrap());
    let want4 = expect(&mut diag, a4, b4, (TcpState::Established, 70_001, 0));
    let want6 = expect(&mut diag, b6, a6, (TcpState::Established, 3_333, 0));

    // A dual-stack server: its accepted socket talks IPv4 but is an AF_INET6 socket with
    // IPv4-mapped addresses; segments on the wire are plain IPv4.
    let dual = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
    let mut dc =
        TcpStream::connect((Ipv4Addr::LOCALHOST, dual.local_addr().unwrap().port())).unwrap();
    let (mut ds, _) = dual.accept().unwrap();
    transfer(&mut dc, &mut ds, 4_321);
    let (dc_addr, ds_v4) = (
        dc.local_addr().unwrap(),
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            dual.local_addr().unwrap().port(),
        ),
    );

    // A client bound to the loopback device: found only by a lookup naming it (ifindex 1).
    let bound = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    bound.bind_device(Some(b"lo")).unwrap();
    bound.connect(&l4.local_addr().unwrap().into()).unwrap();
    let mut bound: TcpStream = bound.into();
    let (mut bound_peer, _) = l4.accept().unwrap();
    transfer(&mut bound, &mut bound_peer, 999);
    let bound_addr = bound.local_addr().unwrap();
    let l4_addr = l4.local_addr().unwrap();

    let t = |local, remote, ifindex| Tuple {
        local,
        remote,
        ifindex,
    };
    // Nobody holds this tuple (port 9 on loopback is closed): skipped, no error.
    let nobody = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut tuples = vec![
        t(a4, b4, 0),
        t(b6, a6, 1),
        t(ds_v4, dc_addr, 1),
        t(nobody, nobody, 1),
        t(bound_addr, l4_addr, 1),
    ];
    // More than one datagram of lookups: the same tuple again and again.
    tuples.extend(std::iter::repeat_n(t(a4, b4, 1), LOOKUP_BATCH + 5));
    let found = poll("the server side of the dual-stack pair to be acked", || {
        let found = diag.lookup_tcp(&tuples).unwrap();
        let mapped = found
            .iter()
            .find(|s| s.remote.map(|r| r.port()) == Some(dc_addr.port()))?;
        (mapped.payload_received() == Some(4_321)).then_some(found.clone())
    });
    let got4 = find(&found, a4, b4).expect("v4 socket looked up");
    assert_eq!(got4.cookie, want4.cookie);
    assert_eq!(
        (got4.payload_sent(), got4.payload_received(), got4.inode),
        (Some(70_001), Some(0), inode_of(&c4))
    );
    let got_bound = find(&found, bound_addr, l4_addr).expect("device-bound socket looked up");
    assert_eq!(got_bound.payload_sent(), Some(999));
    let unnamed_device = diag.lookup_tcp(&[t(bound_addr, l4_addr, 0)]).unwrap();
    assert!(
        unnamed_device.iter().all(|s| s.local != bound_addr),
        "a device-bound socket is not matched by a lookup naming no device"
    );
    let got6 = find(&found, b6, a6).expect("v6 socket looked up");
    assert_eq!(got6.cookie, want6.cookie);
    assert_eq!(got6.payload_sent(), Some(3_333));
    let mapped = found
        .iter()
        .find(|s| s.remote.map(|r| r.port()) == Some(dc_addr.port()))
        .expect("dual-stack socket found through its IPv4 tuple");
    assert_eq!(mapped.inode, inode_of(&ds));
    // Only what was asked (the repeated tuple answers each time; nobody's tuple never).
    assert!(found.iter().all(|s| {
        [want4.cookie, want6.cookie, mapped.cookie, got_bound.cookie].contains(&s.cookie)
    }));
    assert_eq!(
        found.iter().filter(|s| s.cookie == want4.cookie).count(),
        LOOKUP_BATCH + 6
    );

    // Listeners-only dump: every listener of ours, no connection.
    let listeners = diag.dump_tcp_listeners().unwrap();
    assert!(listeners.iter().all(|s| s.state == Some(TcpState::Listen)));
    for l in [&l4, &_l6, &dual] {
        let addr = l.local_addr().unwrap();
        assert!(listeners.iter().any(|s| s.local == addr), "{addr} listed");
    }
    let v4_only = diag.dump_listeners(Family::V4).unwrap();
    assert!(v4_only.iter().any(|s| s.local == l4.local_addr().unwrap()));
    assert!(v4_only.iter().all(|s| s.state == Some(TcpState::Listen)));
}

#[test]
fn netlink_walk_lists_every_connection_once_across_slices_and_no_listener() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to = listener.local_addr().unwrap();
    let listener6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    let to6 = listener6.local_addr().unwrap();
    let mut ours = std::collections::HashSet::new();
    let mut held = Vec::new();
    for i in 0..200 {
        let (l, dst) = if i % 2 == 0 {
            (&listener, to)
        } else {
            (&listener6, to6)
        };
        let client = TcpStream::connect(dst).unwrap();
        let (server, _) = l.accept().unwrap();
        let (c, s) = (client.local_addr().unwrap(), server.local_addr().unwrap());
        ours.insert((c, s));
        ours.insert((s, c));
        held.push((client, server));
    }
    let mut walk = TcpWalk::open().unwrap();
    walk.begin().unwrap();
    assert!(walk.running());
    let mut slices = Vec::new();
    // Between the first two slices each pair moves 1,000 bytes: a server end listed
    // fresh in the second slice shows them, one listed stale (read before) does not.
    let ports = [to.port(), to6.port()];
    let received_by_servers = |sockets: &[DiagSocket]| -> Vec<u64> {
        sockets
            .iter()
            .filter(|s| ports.contains(&s.local.port()))
            .filter(|s| s.remote.is_some_and(|r| ours.contains(&(s.local, r))))
            .map(|s| s.payload_received().unwrap())
            .collect()
    };
    loop {
        if slices.len() == 1 {
            for (client, server) in &mut held {
                transfer(client, server, 1000);
            }
        }
        let slice = walk.step(60).unwrap();
        if slices.len() == 1 {
            let (stale, fresh) = (
                received_by_servers(&slice.stale),
                received_by_servers(&slice.fresh),
            );
            assert!(
                !stale.is_empty() && stale.iter().all(|&n| n == 0),
                "stale: read before the transfer: {stale:?}"
            );
            assert!(fresh.iter().all(|&n| n == 1000), "fresh: {fresh:?}");
        }
        let done = slice.done;
        slices.push(slice);
        if done {
            break;
        }
        assert!(slices.len() < 1000, "the walk never ends");
    }
    assert!(!walk.running());
    assert!(
        slices.len() >= 3,
        "{} slices for 400+ sockets",
        slices.len()
    );
    assert!(slices[0].stale.is_empty(), "the first slice is read fresh");
    // (The last may hold only the end-of-dump message.)
    assert!(
        slices[1..slices.len() - 1]
            .iter()
            .all(|s| !s.stale.is_empty()),
        "each later slice starts with the datagram built at the end of the one before"
    );
    let mut listed = std::collections::HashMap::new();
    for s in slices.iter().flat_map(|s| s.fresh.iter().chain(&s.stale)) {
        assert_ne!(s.state, Some(TcpState::Listen), "listeners are not walked");
        if let Some(remote) = s.remote.filter(|r| ours.contains(&(s.local, *r))) {
            *listed.entry((s.local, remote)).or_insert(0) += 1;
        }
    }
    assert_eq!(
        listed.len(),
        ours.len(),
        "every end of our 200 pairs, v4 and v6"
    );
    assert!(listed.values().all(|&n| n == 1), "each once");

    // A walk abandoned half-way leaves the kernel mid-dump: the next one still works.
    walk.begin().unwrap();
    walk.step(60).unwrap();
    walk.abandon();
    walk.begin().unwrap();
    let mut total = 0;
    loop {
        let slice = walk.step(1 << 20).unwrap();
        total += slice.fresh.len() + slice.stale.len();
        if slice.done {
            break;
        }
    }
    assert!(total >= ours.len());
}
