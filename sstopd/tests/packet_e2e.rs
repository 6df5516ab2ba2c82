//! AF_PACKET counting end to end, as root: real sockets, real traffic of known size, the
//! collectors and the `Aggregator` driven through the library (ticks taken here).
//!
//! Each scenario runs in its own pair of network namespaces (see `lab.rs`): the collector
//! lives in namespace L on a thread that entered it, the peer in P, so concurrent tests of
//! other crates cannot add bytes to ours. Truth is what the helper programs report.
#![cfg(target_os = "linux")]
// Helpers outside #[test] fns (lab, harness) unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "packet_e2e/harness.rs"]
mod harness;
#[path = "packet_e2e/lab.rs"]
mod lab;
#[path = "packet_e2e/scripts.rs"]
mod scripts;

use std::time::{Duration, Instant};

use harness::*;
use lab::Lab;
use proto::{Proto, Snapshot};
use scripts::*;
use sstopd::aggregate::Aggregator;
use sstopd::collect::Collector;
use sstopd::collect::linux::LinuxCollector;

/// UDP sender at a known rate (4,000 × 1,000 B/s for 1 s) through the veth.
fn udp_through_veth(mode: Mode, tol: f64) {
    let lab = Lab::new();
    let (sp, peer) = (lab.spawner(), lab.peer_v4.clone());
    let _sink = lab.spawn_peer(UDP_SINK, &["0.0.0.0", "9000"]);
    let (snap, pid, sent) = lab.in_local(move || {
        let mut w = Watch::open(mode);
        let mut tx = sp.local(UDP_TX, &[&peer, "9000", "4000", "1000", "4000"]);
        let pid = tx.pid();
        let sent = num(&w.run(&mut [&mut tx])[0]);
        (w.settle(&[(pid, sent, 0)], tol), pid, sent)
    });
    assert_eq!(sent, 4_000_000);
    check(&snap, "UDP sender", pid, sent, 0, tol);
}

#[test]
fn main_udp_sender_at_known_rate_through_veth() {
    udp_through_veth(Mode::Main, MAIN_TOL);
}

#[test]
fn fallback_udp_sender_at_known_rate_through_veth() {
    udp_through_veth(Mode::Fallback, FALLBACK_TOL);
}

/// B13 over IPv6 loopback: an unconnected server on [::1]:443, two connected senders of
/// 12,000,000 B and 2,400,000 B; the server answers 200 B per 20 datagrams.
fn quic_like_ipv6(mode: Mode, tol: f64) {
    let lab = Lab::new();
    let sp = lab.spawner();
    let (snap, pids, outs) = lab.in_local(move || {
        let mut w = Watch::open(mode);
        let mut server = sp.local(QUIC_SERVER, &["::1", "443"]);
        wait_bound(443);
        let mut a = sp.local(QUIC_CLIENT, &["::1", "443", "50000", "10000"]);
        let mut b = sp.local(QUIC_CLIENT, &["::1", "443", "50001", "2000"]);
        let pids = [server.pid(), a.pid(), b.pid()];
        let outs = w.run(&mut [&mut server, &mut a, &mut b]);
        let outs: Vec<(u64, u64)> = outs.iter().map(|o| pair(o)).collect();
        let want = [
            (pids[0], outs[0].1, outs[0].0),
            (pids[1], outs[1].0, outs[1].1),
            (pids[2], outs[2].0, outs[2].1),
        ];
        (w.settle(&want, tol), pids, outs)
    });
    assert_eq!(outs[1].0, 12_000_000);
    assert_eq!(outs[2].0, 2_400_000);
    assert_eq!(outs[0].0, 14_400_000, "the receiver got every datagram");
    check(&snap, "server", pids[0], outs[0].1, outs[0].0, tol);
    check(&snap, "sender A", pids[1], outs[1].0, outs[1].1, tol);
    check(&snap, "sender B", pids[2], outs[2].0, outs[2].1, tol);
    let unknown_udp: u64 = snap
        .unattributed
        .iter()
        .filter(|u| u.proto == Proto::Udp)
        .map(|u| u.traffic.up_bytes + u.traffic.down_bytes)
        .sum();
    assert_eq!(
        unknown_udp, 0,
        "nothing under unknown UDP: {:?}",
        snap.unattributed
    );
}

#[test]
fn main_quic_like_bidirectional_ipv6_443_b13() {
    quic_like_ipv6(Mode::Main, MAIN_TOL);
}

/// The same over `/proc/net/udp6` sockets (B02 word order decoded live).
#[test]
fn fallback_quic_like_bidirectional_ipv6_443_b13() {
    quic_like_ipv6(Mode::Fallback, FALLBACK_TOL);
}

/// A DNS-like flood: 20,000 datagrams of 64 bytes through the veth.
#[test]
fn main_dns_like_flood_of_64_byte_datagrams() {
    let lab = Lab::new();
    let (sp, peer) = (lab.spawner(), lab.peer_v4.clone());
    let _sink = lab.spawn_peer(UDP_SINK, &["0.0.0.0", "53"]);
    let (snap, pid, sent) = lab.in_local(move || {
        let mut w = Watch::open(Mode::Main);
        let mut tx = sp.local(UDP_TX, &[&peer, "53", "20000", "64", "20000"]);
        let pid = tx.pid();
        let sent = num(&w.run(&mut [&mut tx])[0]);
        (w.settle(&[(pid, sent, 0)], MAIN_TOL), pid, sent)
    });
    assert_eq!(sent, 1_280_000);
    check(&snap, "DNS-like sender", pid, sent, 0, MAIN_TOL);
    assert_eq!(
        snap.collector.capture_drops, 0,
        "{:?}",
        snap.collector.notes
    );
}

/// Two helpers in L, a receiver and a sender; `(snapshot, [rx pid, tx pid], [rx, tx] bytes)`.
fn pair_in_local(
    lab: &Lab,
    mode: Mode,
    tol: f64,
    port: u16,
    rx: (&'static str, Vec<&'static str>),
    tx: (&'static str, Vec<&'static str>),
) -> (Snapshot, [u32; 2], Vec<u64>) {
    let sp = lab.spawner();
    lab.in_local(move || {
        let mut w = Watch::open(mode);
        let mut r = sp.local(rx.0, &rx.1);
        wait_bound(port);
        let mut t = sp.local(tx.0, &tx.1);
        let pids = [r.pid(), t.pid()];
        let outs: Vec<u64> = w
            .run(&mut [&mut r, &mut t])
            .iter()
            .map(|o| num(o))
            .collect();
        let want = [(pids[0], 0, outs[0]), (pids[1], outs[1], 0)];
        (w.settle(&want, tol), pids, outs)
    })
}

/// sendmmsg / recvmmsg batches of 32 datagrams over loopback.
#[test]
fn main_sendmmsg_recvmmsg_batches() {
    let lab = Lab::new();
    let (snap, pids, outs) = pair_in_local(
        &lab,
        Mode::Main,
        MAIN_TOL,
        7000,
        (MMSG, vec!["recv", "127.0.0.1", "7000", "512"]),
        (MMSG, vec!["send", "127.0.0.1", "7000", "512", "400"]),
    );
    assert_eq!(outs[1], 400 * 32 * 512);
    check(&snap, "recvmmsg", pids[0], 0, outs[0], MAIN_TOL);
    check(&snap, "sendmmsg", pids[1], outs[1], 0, MAIN_TOL);
}

/// UDP over loopback is seen twice by the tap (outgoing + host): counted once per end.
fn udp_loopback(mode: Mode, tol: f64) {
    let lab = Lab::new();
    let (snap, pids, outs) = pair_in_local(
        &lab,
        mode,
        tol,
        6000,
        (UDP_RX, vec!["127.0.0.1", "6000", "1.2"]),
        (UDP_TX, vec!["127.0.0.1", "6000", "5000", "1000", "5000"]),
    );
    assert_eq!(outs[1], 5_000_000);
    check(&snap, "loopback receiver", pids[0], 0, outs[0], tol);
    check(&snap, "loopback sender", pids[1], outs[1], 0, tol);
}

#[test]
fn main_udp_over_loopback_counted_once_per_end() {
    udp_loopback(Mode::Main, MAIN_TOL);
}

#[test]
fn fallback_udp_over_loopback_counted_once_per_end() {
    udp_loopback(Mode::Fallback, FALLBACK_TOL);
}

/// TCP over loopback in the fallback (B16: GSO super-frames up to 64 KiB on lo).
#[test]
fn fallback_tcp_over_loopback_b16() {
    let lab = Lab::new();
    let (snap, pids, outs) = pair_in_local(
        &lab,
        Mode::Fallback,
        FALLBACK_TOL,
        8081,
        (TCP_SINK, vec!["127.0.0.1", "8081"]),
        (TCP_TX, vec!["127.0.0.1", "8081", "4194304"]),
    );
    assert_eq!(outs, vec![4_194_304, 4_194_304]);
    check(
        &snap,
        "TCP loopback receiver",
        pids[0],
        0,
        outs[0],
        FALLBACK_TOL,
    );
    check(
        &snap,
        "TCP loopback sender",
        pids[1],
        outs[1],
        0,
        FALLBACK_TOL,
    );
}

/// An ICMP echo flood with 1,000-byte payloads from a raw socket; IP payload counted
/// (ICMP header + data = 1,008 B per echo).
#[test]
fn main_icmp_echo_flood_from_raw_socket() {
    let lab = Lab::new();
    let (sp, peer) = (lab.spawner(), lab.peer_v4.clone());
    let (snap, pid, (tx, rx)) = lab.in_local(move || {
        let mut w = Watch::open(Mode::Main);
        let mut ping = sp.local(PING, &[&peer, "2000"]);
        let pid = ping.pid();
        let (tx, rx) = pair(&w.run(&mut [&mut ping])[0]);
        (w.settle(&[(pid, tx, rx)], MAIN_TOL), pid, (tx, rx))
    });
    assert_eq!(tx, 2000 * 1008);
    assert!(rx > 1900 * 1008, "peer answered {rx} B");
    check(&snap, "raw ICMP pinger", pid, tx, rx, MAIN_TOL);
}

/// One sender in L after the collector opened; `(snapshot, pid, bytes it reported)`.
fn sender_in_local(
    lab: &Lab,
    mode: Mode,
    tol: f64,
    script: &'static str,
    args: Vec<String>,
) -> (Snapshot, u32, u64) {
    let sp = lab.spawner();
    lab.in_local(move || {
        let mut w = Watch::open(mode);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut tx = sp.local(script, &args);
        let pid = tx.pid();
        let sent = num(&w.run(&mut [&mut tx])[0]);
        (w.settle(&[(pid, sent, 0)], tol), pid, sent)
    })
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A raw socket of protocol 253 (a custom protocol): IP payload counted.
#[test]
fn main_raw_socket_protocol_253() {
    let lab = Lab::new();
    let _sink = lab.spawn_peer(RAW_SINK, &["253"]);
    let args = strings(&[&lab.peer_v4, "253", "1000", "500"]);
    let (snap, pid, sent) = sender_in_local(&lab, Mode::Main, MAIN_TOL, RAW_TX, args);
    assert_eq!(sent, 500_000);
    check(&snap, "raw 253 sender", pid, sent, 0, MAIN_TOL);
}

/// B14: a tun device (no link header, ARPHRD_NONE): "hello over tun" datagrams routed into
/// it count 14 B of UDP payload each for the sender.
#[test]
fn main_tun_device_without_link_header_b14() {
    let lab = Lab::new();
    let _tun = lab.spawn_local(TUN, &[]);
    let start = Instant::now();
    while !std::process::Command::new("ip")
        .args(["-n", &lab.local, "link", "show", "tun0"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "tun0 never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for args in [
        &["addr", "add", "198.51.100.1/24", "dev", "tun0"][..],
        &["link", "set", "tun0", "up"][..],
    ] {
        let st = std::process::Command::new("ip")
            .args(["-n", &lab.local])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let args = strings(&["198.51.100.7", "5353", "3000", "14", "3000"]);
    let (snap, pid, sent) = sender_in_local(&lab, Mode::Main, MAIN_TOL, UDP_TX, args);
    assert_eq!(sent, 3000 * 14);
    check(&snap, "sender over tun", pid, sent, 0, MAIN_TOL);
}

/// TCP through the veth in the fallback: bytes from the capture (payload = IP − headers).
fn tcp_through_veth(v6: bool) {
    let lab = Lab::new();
    let (any, peer) = if v6 {
        ("::", &lab.peer_v6)
    } else {
        ("0.0.0.0", &lab.peer_v4)
    };
    let mut sink = lab.spawn_peer(TCP_SINK, &[any, "8080"]);
    std::thread::sleep(Duration::from_millis(300));
    let args = strings(&[peer, "8080", "8388608"]);
    let (snap, pid, sent) = sender_in_local(&lab, Mode::Fallback, FALLBACK_TOL, TCP_TX, args);
    assert_eq!(num(&sink.output(Duration::from_secs(5))), 8_388_608);
    check(&snap, "TCP sender", pid, sent, 0, FALLBACK_TOL);
}

#[test]
fn fallback_tcp_through_veth() {
    tcp_through_veth(false);
}

/// Over IPv6: sockets from `/proc/net/tcp6`.
#[test]
fn fallback_tcp_over_ipv6_through_veth() {
    tcp_through_veth(true);
}

/// The capture is bound to every interface (ifindex 0): an interface that disappears and
/// comes back (new ifindex) keeps being counted.
#[test]
fn main_interface_that_disappears_and_comes_back() {
    let lab = std::sync::Arc::new(Lab::new());
    let peer = lab.peer_v4.clone();
    let _sink = lab.spawn_peer(UDP_SINK, &["0.0.0.0", "9001"]);
    let l = lab.clone();
    let (snap, truth) = lab.in_local(move || {
        let mut w = Watch::open(Mode::Main);
        let mut first = l.spawn_local(UDP_TX, &[&peer, "9001", "1000", "1000", "4000"]);
        let a = (first.pid(), num(&w.run(&mut [&mut first])[0]));
        l.recreate_link();
        let mut second = l.spawn_local(UDP_TX, &[&peer, "9001", "1000", "1000", "4000"]);
        let b = (second.pid(), num(&w.run(&mut [&mut second])[0]));
        let snap = w.settle(&[(a.0, a.1, 0), (b.0, b.1, 0)], MAIN_TOL);
        (snap, [a, b])
    });
    for (pid, sent) in truth {
        assert_eq!(sent, 1_000_000);
        check(
            &snap,
            "sender around a link re-creation",
            pid,
            sent,
            0,
            MAIN_TOL,
        );
    }
}

/// Drop CAP_NET_RAW from the calling thread (capabilities are per thread).
fn drop_cap_net_raw() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const CAP_NET_RAW: u32 = 13;
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as the ABI requires.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_NET_RAW);
        data[0].permitted &= !(1 << CAP_NET_RAW);
        assert_eq!(libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()), 0);
    }
}

/// Without CAP_NET_RAW: a note says UDP/ICMP bytes are unavailable, TCP keeps working.
#[test]
fn main_without_cap_net_raw_notes_it_and_tcp_still_counts() {
    let lab = Lab::new();
    let sp = lab.spawner();
    let (snap, caps, pid, outs) = lab.in_local(move || {
        drop_cap_net_raw();
        let collector = LinuxCollector::open().unwrap();
        let caps = collector.caps();
        let mut w = Watch {
            agg: Aggregator::new(collector.mode()),
            collector: Box::new(collector),
            t0: Instant::now(),
        };
        w.tick();
        let mut sink = sp.local(TCP_SINK, &["127.0.0.1", "8082"]);
        wait_bound(8082);
        let mut tx = sp.local(TCP_TX, &["127.0.0.1", "8082", "2097152"]);
        let pid = tx.pid();
        let outs: Vec<u64> = w
            .run(&mut [&mut sink, &mut tx])
            .iter()
            .map(|o| num(o))
            .collect();
        (w.settle(&[(pid, outs[1], 0)], MAIN_TOL), caps, pid, outs)
    });
    assert_eq!(outs, vec![2_097_152, 2_097_152]);
    assert!(!caps.packet_bytes);
    assert!(
        snap.collector
            .notes
            .iter()
            .any(|n| n.message == sstopd::collect::linux::packet::NO_CAP_NOTE),
        "{:?}",
        snap.collector.notes
    );
    check(
        &snap,
        "TCP sender without CAP_NET_RAW",
        pid,
        outs[1],
        0,
        MAIN_TOL,
    );
}

/// `--collector packet` opens the fallback: mode Packet, bytes from the capture.
#[test]
fn collector_packet_choice_opens_the_fallback() {
    let lab = Lab::new();
    let (mode, caps) = lab.in_local(|| {
        let c = sstopd::collect::open(sstopd::collect::CollectorChoice::Packet).unwrap();
        (c.mode(), c.caps())
    });
    assert_eq!(mode, proto::CollectorMode::Packet);
    assert!(caps.packet_bytes);
}

/// A frame crossing a bridge is seen on the port and on the bridge: counted once (the
/// bridge's copy), both directions.
#[test]
fn main_bridge_port_frames_counted_once() {
    let lab = Lab::new();
    lab.bridge_local();
    let (sp, peer, local) = (lab.spawner(), lab.peer_v4.clone(), lab.local_v4.clone());
    let _sink = lab.spawn_peer(UDP_SINK, &["0.0.0.0", "9002"]);
    let peer_tx = lab.spawner_peer();
    let (snap, pids, outs) = lab.in_local(move || {
        let mut w = Watch::open(Mode::Main);
        let mut rx = sp.local(UDP_RX, &[&local, "9003", "1.2"]);
        wait_bound(9003);
        let mut tx = sp.local(UDP_TX, &[&peer, "9002", "2000", "1000", "4000"]);
        let mut remote = peer_tx.local(UDP_TX, &[&local, "9003", "1500", "1000", "4000"]);
        let pids = [rx.pid(), tx.pid()];
        let outs = w.run(&mut [&mut rx, &mut tx, &mut remote]);
        let outs: Vec<u64> = outs.iter().map(|o| num(o)).collect();
        let want = [(pids[0], 0, outs[0]), (pids[1], outs[1], 0)];
        (w.settle(&want, MAIN_TOL), pids, outs)
    });
    assert_eq!(outs[1], 2_000_000);
    assert!(outs[0] > 1_400_000, "receiver got {}", outs[0]);
    check(
        &snap,
        "receiver behind a bridge",
        pids[0],
        0,
        outs[0],
        MAIN_TOL,
    );
    check(
        &snap,
        "sender behind a bridge",
        pids[1],
        outs[1],
        0,
        MAIN_TOL,
    );
}
