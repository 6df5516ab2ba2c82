use crate::collect::ProcKey;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use proto::{Proto, TcpState};

use super::*;
use crate::collect::{ClosedSocket, IfaceSample, ProcessInfo, SocketSample, UnexplainedFlow};

fn key(pid: u32, start: u64) -> ProcKey {
    ProcKey {
        pid,
        start_time: start,
    }
}

fn proc_info(k: ProcKey, name: &str) -> ProcessInfo {
    ProcessInfo {
        key: k,
        ppid: 1,
        uid: 0,
        comm: name.as_bytes().to_vec(),
        name: name.into(),
        cmdline: name.into(),
        alive: true,
    }
}

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port)
}

fn tcp(id: u64, owners: &[ProcKey], sent: u64, received: u64) -> SocketSample {
    SocketSample {
        id,
        proto: Proto::Tcp,
        local: addr(1, 40000 + id as u16),
        remote: Some(addr(7, 443)),
        state: Some(TcpState::Established),
        uid: 0,
        inode: id,
        owners: owners.to_vec(),
        sent: Some(sent),
        received: Some(received),
    }
}

fn sample(procs: &[(ProcKey, &str)], sockets: Vec<SocketSample>) -> Sample {
    Sample {
        sockets,
        processes: procs.iter().map(|(k, n)| proc_info(*k, n)).collect(),
        ..Sample::default()
    }
}

fn agg() -> Aggregator {
    Aggregator::with_passwd(CollectorMode::Netlink, "/nonexistent/passwd")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn row(snap: &Snapshot, k: ProcKey) -> &proto::Process {
    snap.processes
        .iter()
        .find(|p| p.pid == k.pid && p.start_time == k.start_time)
        .unwrap()
}

/// Totals must equal processes + unattributed, byte for byte.
fn assert_sums(snap: &Snapshot) {
    let up: u64 = snap
        .processes
        .iter()
        .map(|p| p.traffic.up_bytes)
        .sum::<u64>()
        + snap
            .unattributed
            .iter()
            .map(|u| u.traffic.up_bytes)
            .sum::<u64>();
    let down: u64 = snap
        .processes
        .iter()
        .map(|p| p.traffic.down_bytes)
        .sum::<u64>()
        + snap
            .unattributed
            .iter()
            .map(|u| u.traffic.down_bytes)
            .sum::<u64>();
    assert_eq!(
        (up, down),
        (snap.totals.traffic.up_bytes, snap.totals.traffic.down_bytes)
    );
}

#[test]
fn first_sample_is_a_baseline_then_deltas() {
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 5000, 7000)]),
        secs(0),
        0,
    );
    assert_eq!(row(&g.snapshot(), a).traffic.up_bytes, 0);
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 6000, 9000)]),
        secs(1),
        1000,
    );
    let s = g.snapshot();
    assert_eq!(
        (row(&s, a).traffic.up_bytes, row(&s, a).traffic.down_bytes),
        (1000, 2000)
    );
    // One 1 s sample at α 0.3 from zero.
    assert!((row(&s, a).traffic.up_bps - 300.0).abs() < 1e-6);
    assert_sums(&s);
}

#[test]
fn counter_going_backwards_is_a_zero_delta_not_a_huge_one() {
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 5000, 5000)]),
        secs(0),
        0,
    );
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 100, 100)]),
        secs(1),
        0,
    );
    let s = g.snapshot();
    assert_eq!(row(&s, a).traffic.up_bytes, 0);
    // Counting resumes from the new value.
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 600, 100)]),
        secs(2),
        0,
    );
    assert_eq!(row(&g.snapshot(), a).traffic.up_bytes, 500);
    assert_eq!(counter_delta(u64::MAX, 3), 0);
}

#[test]
fn b25_cumulative_bytes_pass_4_gib_without_wrapping() {
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(sample(&[(a, "a")], vec![tcp(1, &[a], 0, 0)]), secs(0), 0);
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 5_368_709_120, 0)]),
        secs(1),
        0,
    );
    assert_eq!(row(&g.snapshot(), a).traffic.up_bytes, 5_368_709_120);
}

#[test]
fn a_socket_born_between_samples_counts_all_its_bytes() {
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(sample(&[(a, "a")], vec![]), secs(0), 0);
    g.ingest(
        sample(&[(a, "a")], vec![tcp(2, &[a], 4096, 512)]),
        secs(1),
        0,
    );
    let s = g.snapshot();
    assert_eq!(
        (row(&s, a).traffic.up_bytes, row(&s, a).traffic.down_bytes),
        (4096, 512)
    );
}

#[test]
fn two_owners_split_exactly_with_the_remainder_to_the_first() {
    let (p, c) = (key(10, 1), key(11, 2));
    let mut g = agg();
    g.ingest(
        sample(&[(p, "parent"), (c, "child")], vec![tcp(1, &[p, c], 0, 0)]),
        secs(0),
        0,
    );
    g.ingest(
        sample(
            &[(p, "parent"), (c, "child")],
            vec![tcp(1, &[p, c], 1001, 7)],
        ),
        secs(1),
        0,
    );
    let s = g.snapshot();
    assert_eq!(row(&s, p).traffic.up_bytes, 501);
    assert_eq!(row(&s, c).traffic.up_bytes, 500);
    assert_eq!(
        row(&s, p).traffic.down_bytes + row(&s, c).traffic.down_bytes,
        7
    );
    assert_eq!((row(&s, p).shared, row(&s, c).shared), (1, 1));
    assert_eq!(s.totals.traffic.up_bytes, 1001);
    assert_sums(&s);
    let d = g.detail(11).unwrap();
    assert_eq!(d.connections.len(), 1);
    assert_eq!(d.connections[0].owners, 2);
    assert_eq!(d.connections[0].traffic.up_bytes, 500);
}

#[test]
fn a_socket_moving_between_owners_credits_each_for_its_time() {
    let (a, b) = (key(10, 1), key(20, 2));
    let procs = [(a, "a"), (b, "b")];
    let mut g = agg();
    g.ingest(sample(&procs, vec![tcp(1, &[a], 0, 0)]), secs(0), 0);
    g.ingest(sample(&procs, vec![tcp(1, &[a], 300, 0)]), secs(1), 0);
    g.ingest(sample(&procs, vec![tcp(1, &[b], 1000, 0)]), secs(2), 0);
    let s = g.snapshot();
    assert_eq!(row(&s, a).traffic.up_bytes, 300);
    assert_eq!(row(&s, b).traffic.up_bytes, 700);
    assert_eq!((row(&s, a).connections, row(&s, b).connections), (0, 1));
    assert_sums(&s);
}

#[test]
fn a_reused_pid_with_a_new_start_time_is_a_new_process() {
    let (old, new) = (key(10, 1), key(10, 99));
    let mut g = agg();
    g.ingest(
        sample(&[(old, "old")], vec![tcp(1, &[old], 0, 0)]),
        secs(0),
        0,
    );
    g.ingest(
        sample(&[(old, "old")], vec![tcp(1, &[old], 100, 0)]),
        secs(1),
        0,
    );
    g.ingest(
        sample(&[(new, "new")], vec![tcp(2, &[new], 40, 0)]),
        secs(2),
        0,
    );
    let s = g.snapshot();
    let (o, n) = (row(&s, old), row(&s, new));
    assert_eq!(
        (o.name.as_str(), o.traffic.up_bytes, o.alive),
        ("old", 100, false)
    );
    assert_eq!(
        (n.name.as_str(), n.traffic.up_bytes, n.alive),
        ("new", 40, true)
    );
    assert_eq!(g.detail(10).unwrap().start_time, 99);
}

#[test]
fn closed_sockets_are_credited_final_deltas_or_all_bytes_when_never_seen() {
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 100, 100)]),
        secs(0),
        0,
    );
    let mut s = sample(&[(a, "a")], vec![]);
    s.closed = vec![
        // Seen before: owners taken from the earlier dump, only the bytes since.
        ClosedSocket {
            id: 1,
            proto: Proto::Tcp,
            local: addr(1, 40001),
            remote: Some(addr(7, 443)),
            sent: 250,
            received: 100,
            owners: vec![],
        },
        // Opened and closed between samples, owner named by the collector.
        ClosedSocket {
            id: 2,
            proto: Proto::Tcp,
            local: addr(1, 40002),
            remote: Some(addr(7, 443)),
            sent: 3000,
            received: 40,
            owners: vec![a],
        },
        // Nobody known: the unattributed TCP row, never dropped.
        ClosedSocket {
            id: 3,
            proto: Proto::Tcp,
            local: addr(1, 40003),
            remote: Some(addr(8, 80)),
            sent: 9,
            received: 1,
            owners: vec![],
        },
    ];
    g.ingest(s, secs(1), 0);
    let snap = g.snapshot();
    assert_eq!(row(&snap, a).traffic.up_bytes, 150 + 3000);
    assert_eq!(row(&snap, a).traffic.down_bytes, 40);
    let tcp_row = snap
        .unattributed
        .iter()
        .find(|u| u.proto == Proto::Tcp)
        .unwrap();
    assert_eq!(
        (tcp_row.traffic.up_bytes, tcp_row.traffic.down_bytes),
        (9, 1)
    );
    assert_sums(&snap);
    let host = snap
        .remote_hosts
        .iter()
        .find(|h| h.addr == addr(7, 0).ip())
        .unwrap();
    assert_eq!(host.traffic.up_bytes, 3150);
    // Named by its closed connections even with none open.
    assert_eq!(host.connections, 0);
    assert_eq!(host.processes, vec!["a".to_string()]);
}

#[test]
fn a_socket_in_the_dump_and_closed_right_after_is_not_counted_twice() {
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(sample(&[(a, "a")], vec![]), secs(0), 0);
    let mut s = sample(&[(a, "a")], vec![tcp(5, &[a], 1000, 0)]);
    s.closed = vec![ClosedSocket {
        id: 5,
        proto: Proto::Tcp,
        local: addr(1, 40005),
        remote: Some(addr(7, 443)),
        sent: 1200,
        received: 0,
        owners: vec![a],
    }];
    g.ingest(s, secs(1), 0);
    assert_eq!(row(&g.snapshot(), a).traffic.up_bytes, 1200);
    // A TIME-WAIT leftover with the same cookie and no counters adds nothing.
    let mut tw = tcp(5, &[], 0, 0);
    tw.state = Some(TcpState::TimeWait);
    tw.sent = None;
    tw.received = None;
    g.ingest(sample(&[(a, "a")], vec![tw]), secs(2), 0);
    let snap = g.snapshot();
    assert_eq!(snap.totals.traffic.up_bytes, 1200);
    assert!(snap.unattributed.iter().all(|u| u.connections == 0));
}

#[test]
fn gone_processes_stay_visible_for_a_while_then_drop() {
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(sample(&[(a, "a")], vec![tcp(1, &[a], 0, 0)]), secs(0), 0);
    g.ingest(sample(&[(a, "a")], vec![tcp(1, &[a], 10, 0)]), secs(1), 0);
    let mut gone = proc_info(a, "a");
    gone.alive = false;
    let mut s = Sample::default();
    s.processes.push(gone);
    g.ingest(s, secs(2), 0);
    let r = row(&g.snapshot(), a).clone();
    assert!(!r.alive);
    assert_eq!(r.traffic.up_bytes, 10);
    g.ingest(Sample::default(), secs(30), 0);
    assert!(g.snapshot().processes.iter().any(|p| p.pid == 10));
    g.ingest(Sample::default(), secs(63), 0);
    assert!(g.snapshot().processes.is_empty());
    // Totals keep the history of bytes.
    assert_eq!(g.snapshot().totals.traffic.up_bytes, 10);
}

#[test]
fn idle_processes_have_an_empty_sparkline_busy_ones_a_full_history() {
    let (busy, idle) = (key(10, 1), key(11, 1));
    let procs = [(busy, "busy"), (idle, "idle")];
    let mut g = agg();
    for t in 0..70u64 {
        g.ingest(
            sample(
                &procs,
                vec![tcp(1, &[busy], t * 1000, 0), tcp(2, &[idle], 5, 5)],
            ),
            secs(t),
            0,
        );
    }
    let s = g.snapshot();
    assert_eq!(row(&s, busy).history.len(), proto::HISTORY_LEN);
    assert!(row(&s, idle).history.is_empty());
    assert_eq!(s.totals.history.len(), proto::HISTORY_LEN);
}

#[test]
fn ema_over_irregular_intervals_matches_the_normalized_alpha() {
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 0, 0)]),
        Duration::ZERO,
        0,
    );
    // 2 s at 1000 B/s then 0.5 s at 1000 B/s.
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 2000, 0)]),
        Duration::from_millis(2000),
        0,
    );
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 2500, 0)]),
        Duration::from_millis(2500),
        0,
    );
    let r1 = 1000.0 * (1.0 - 0.7f64.powf(2.0));
    let r2 = r1 + (1.0 - 0.7f64.powf(0.5)) * (1000.0 - r1);
    let got = row(&g.snapshot(), a).traffic.up_bps;
    assert!((got - r2).abs() < 1e-6, "{got} vs {r2}");
    assert_eq!(g.snapshot().interval_ms, 500);
}

#[test]
fn hosts_listen_ports_counts_and_unexplained_flows() {
    let (web, cli) = (key(10, 1), key(20, 1));
    let procs = [(web, "web"), (cli, "client")];
    let mut listen = tcp(1, &[web], 0, 0);
    listen.state = Some(TcpState::Listen);
    listen.remote = None;
    listen.local = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
    let mut udp = tcp(2, &[], 0, 0);
    udp.proto = Proto::Udp;
    udp.state = None;
    udp.remote = None;
    udp.local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5353);
    udp.sent = None;
    udp.received = None;
    let mut c2 = tcp(4, &[cli], 0, 0);
    c2.remote = Some(addr(7, 8443));
    let mut g = agg();
    g.ingest(
        sample(
            &procs,
            vec![
                listen.clone(),
                udp.clone(),
                tcp(3, &[cli], 0, 0),
                c2.clone(),
            ],
        ),
        secs(0),
        0,
    );
    let mut s = sample(&procs, vec![listen, udp, tcp(3, &[cli], 100, 200), c2]);
    s.unexplained.push(UnexplainedFlow {
        proto: Proto::Icmp,
        remote: Some(addr(9, 0).ip()),
        sent: 64,
        received: 64,
    });
    s.interfaces.push(IfaceSample {
        name: "eth0".into(),
        is_up: true,
        rx_bytes: 1,
        tx_bytes: 2,
    });
    s.default_interface = Some("eth0".into());
    g.ingest(s, secs(1), 0);
    let snap = g.snapshot();
    assert_eq!(row(&snap, web).listening, 1);
    assert_eq!(row(&snap, cli).connections, 2);
    let ports: Vec<(Proto, u16, u32, &str)> = snap
        .listen_ports
        .iter()
        .map(|l| (l.proto, l.port, l.pid, l.name.as_str()))
        .collect();
    assert_eq!(
        ports,
        vec![(Proto::Udp, 5353, 0, ""), (Proto::Tcp, 8080, 10, "web")]
    );
    let host = snap
        .remote_hosts
        .iter()
        .find(|h| h.addr == addr(7, 0).ip())
        .unwrap();
    assert_eq!((host.connections, host.ports.clone()), (2, vec![443, 8443]));
    assert_eq!(host.processes, vec!["client".to_string()]);
    assert_eq!((host.traffic.up_bytes, host.traffic.down_bytes), (100, 200));
    let icmp = snap
        .unattributed
        .iter()
        .find(|u| u.proto == Proto::Icmp)
        .unwrap();
    assert_eq!(icmp.traffic.up_bytes, 64);
    assert_eq!(snap.totals.traffic.up_bytes, 164);
    assert_sums(&snap);
    assert!(snap.interfaces[0].is_default);
    // The interface vanished: its row goes too.
    g.ingest(Sample::default(), secs(2), 0);
    assert!(g.snapshot().interfaces.is_empty());
}

#[test]
fn bytes_for_an_undescribed_owner_still_add_up() {
    let ghost = key(77, 3);
    let mut g = agg();
    g.ingest(
        Sample {
            sockets: vec![tcp(1, &[ghost], 0, 0)],
            ..Sample::default()
        },
        secs(0),
        0,
    );
    g.ingest(
        Sample {
            sockets: vec![tcp(1, &[ghost], 10, 0)],
            ..Sample::default()
        },
        secs(1),
        0,
    );
    let s = g.snapshot();
    assert_eq!(row(&s, ghost).name, "pid 77");
    assert_sums(&s);
}

#[test]
fn user_names_come_from_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "root:x:0:0::/:\n").unwrap();
    let mut g = Aggregator::with_passwd(CollectorMode::Netlink, &passwd);
    let a = key(10, 1);
    let mut info = proc_info(a, "a");
    info.uid = 0;
    let mut other = proc_info(key(11, 1), "b");
    other.uid = 4242;
    g.ingest(
        Sample {
            processes: vec![info, other],
            ..Sample::default()
        },
        secs(0),
        0,
    );
    let s = g.snapshot();
    assert_eq!(s.processes[0].user, "root");
    assert_eq!(s.processes[1].user, "4242");
}

#[test]
fn a_socket_unhashed_before_its_destroy_event_is_not_counted_twice() {
    // Seen with 1000 B, then gone from the dumps (reset, or TIME-WAIT taken over by a
    // minisocket) while its fd stays open; destroyed much later with 1500 B.
    let a = key(10, 1);
    let mut g = agg();
    g.ingest(sample(&[(a, "a")], vec![]), secs(0), 0);
    g.ingest(
        sample(&[(a, "a")], vec![tcp(1, &[a], 1000, 10)]),
        secs(1),
        0,
    );
    g.ingest(sample(&[(a, "a")], vec![]), secs(2), 0);
    g.ingest(sample(&[(a, "a")], vec![]), secs(30), 0);
    let mut s = sample(&[(a, "a")], vec![]);
    s.closed = vec![ClosedSocket {
        id: 1,
        proto: Proto::Tcp,
        local: addr(1, 40001),
        remote: Some(addr(7, 443)),
        sent: 1500,
        received: 10,
        owners: vec![a],
    }];
    g.ingest(s, secs(31), 0);
    let snap = g.snapshot();
    assert_eq!(row(&snap, a).traffic.up_bytes, 1500);
    assert_eq!(row(&snap, a).traffic.down_bytes, 10);
    assert_sums(&snap);
}

#[test]
fn peers_of_an_unconnected_socket_reach_the_hosts_view_b13() {
    let srv = key(30, 1);
    let mut udp = tcp(5, &[srv], 0, 0);
    udp.proto = Proto::Udp;
    udp.state = None;
    udp.remote = None;
    let mut g = agg();
    g.ingest(sample(&[(srv, "quic")], vec![udp.clone()]), secs(0), 0);
    udp.received = Some(3_000);
    let mut s = sample(&[(srv, "quic")], vec![udp]);
    for (port, n) in [(50000, 2_000), (50001, 1_000)] {
        s.peer_flows.push(crate::collect::PeerFlow {
            socket: 5,
            remote: addr(9, port),
            sent: 0,
            received: n,
        });
    }
    g.ingest(s, secs(1), 0);
    let snap = g.snapshot();
    // The socket's bytes count once (process and totals), and the host learns its peers.
    assert_eq!(row(&snap, srv).traffic.down_bytes, 3_000);
    assert_eq!(snap.totals.traffic.down_bytes, 3_000);
    let host = snap
        .remote_hosts
        .iter()
        .find(|h| h.addr == addr(9, 0).ip())
        .expect("a host row for the peers");
    assert_eq!(host.ports, vec![50000, 50001]);
    assert_eq!(host.processes, vec!["quic".to_string()]);
    assert_eq!((host.traffic.up_bytes, host.traffic.down_bytes), (0, 3_000));
}

#[test]
fn a_host_lists_at_most_max_host_ports_ports() {
    let k = key(10, 1);
    let many = |n: u64| {
        (0..n)
            .map(|i| {
                let mut s = tcp(i + 1, &[k], 0, 0);
                s.remote = Some(addr(7, 1000 + i as u16));
                s
            })
            .collect::<Vec<_>>()
    };
    let mut a = agg();
    a.ingest(sample(&[(k, "churny")], many(500)), secs(0), 0);
    a.ingest(sample(&[(k, "churny")], many(500)), secs(1), 1000);
    let snap = a.snapshot();
    let host = snap
        .remote_hosts
        .iter()
        .find(|h| h.addr == addr(7, 0).ip())
        .unwrap();
    assert_eq!(host.connections, 500);
    assert_eq!(host.ports.len(), super::rollup::MAX_HOST_PORTS);
    assert_eq!(host.ports[0], 1000, "the lowest ports are kept");
}

fn udp(id: u64, owners: &[ProcKey], sent: u64) -> SocketSample {
    SocketSample {
        id,
        proto: Proto::Udp,
        local: addr(1, 5353),
        remote: None,
        state: None,
        uid: 0,
        inode: id,
        owners: owners.to_vec(),
        sent: Some(sent),
        received: Some(0),
    }
}

fn partial(procs: &[(ProcKey, &str)], sockets: Vec<SocketSample>) -> Sample {
    Sample {
        tcp_partial: true,
        ..sample(procs, sockets)
    }
}

/// The census kept up to date tick by tick equals one counted from scratch.
fn assert_census(g: &Aggregator) {
    let mut fresh = census::Census::default();
    for st in g.sockets.iter() {
        fresh.add(&st.sample);
    }
    assert_eq!(*g.sockets.census(), fresh);
}

#[test]
fn partial_listing_keeps_unlisted_tcp_and_counts_only_what_moved() {
    let (a, b) = (key(10, 1), key(11, 1));
    let procs = [(a, "a"), (b, "b")];
    let mut g = agg();
    g.ingest(
        sample(
            &procs,
            vec![
                tcp(1, &[a], 100, 100),
                tcp(2, &[b], 100, 100),
                udp(3, &[b], 0),
            ],
        ),
        secs(0),
        0,
    );
    // Socket 2 idle (unlisted), socket 1 moved, the UDP socket is gone.
    g.ingest(
        partial(&procs[..1], vec![tcp(1, &[a], 600, 100)]),
        secs(1),
        1000,
    );
    let s = g.snapshot();
    assert_eq!(row(&s, a).traffic.up_bytes, 500);
    // b was not described this tick but still holds a connection: listed, counted.
    assert_eq!(row(&s, b).connections, 1);
    assert_eq!(row(&s, b).traffic.up_bytes, 0);
    assert_eq!(g.sockets.len(), 2, "UDP swept, unlisted TCP kept");
    assert_census(&g);
    // Socket 2 moves while unlisted for several ticks: its delta counts in full once listed.
    g.ingest(partial(&procs, vec![]), secs(2), 2000);
    g.ingest(
        partial(&procs, vec![tcp(2, &[b], 1100, 100)]),
        secs(3),
        3000,
    );
    let s = g.snapshot();
    assert_eq!(row(&s, b).traffic.up_bytes, 1000);
    assert_sums(&s);
    // It closes (destroy event) during a partial tick: final bytes counted, socket gone.
    g.ingest(
        Sample {
            closed: vec![ClosedSocket {
                id: 2,
                proto: Proto::Tcp,
                local: addr(1, 40002),
                remote: Some(addr(7, 443)),
                sent: 1500,
                received: 100,
                owners: vec![],
            }],
            ..partial(&procs, vec![])
        },
        secs(4),
        4000,
    );
    let s = g.snapshot();
    assert_eq!(row(&s, b).traffic.up_bytes, 1400);
    assert_eq!(row(&s, b).connections, 0);
    assert_sums(&s);
    assert_census(&g);
    // A complete listing again sweeps TCP sockets it does not list.
    g.ingest(sample(&procs, vec![]), secs(5), 5000);
    assert_eq!(g.sockets.len(), 0);
    assert_census(&g);
    assert_eq!(row(&g.snapshot(), a).connections, 0);
}

#[test]
fn census_follows_sockets_through_owner_state_and_listing_changes() {
    let (a, b) = (key(10, 1), key(11, 1));
    let procs = [(a, "a"), (b, "b")];
    let listener = |id: u64, owners: &[ProcKey]| SocketSample {
        state: Some(TcpState::Listen),
        remote: None,
        local: addr(1, 8080),
        ..tcp(id, owners, 0, 0)
    };
    let mut g = agg();
    let steps: Vec<Sample> = vec![
        sample(&procs, vec![tcp(1, &[a], 0, 0), listener(2, &[a])]),
        // Shared after a fork, a new connection with no owner yet.
        partial(&procs, vec![tcp(1, &[a, b], 10, 0), tcp(3, &[], 5, 5)]),
        // The owner is found; socket 1 reaches CLOSE-WAIT.
        partial(
            &procs,
            vec![
                SocketSample {
                    state: Some(TcpState::CloseWait),
                    ..tcp(1, &[b], 10, 0)
                },
                tcp(3, &[b], 5, 5),
            ],
        ),
        // Complete: the listener is gone, socket 3 too.
        sample(&procs, vec![tcp(1, &[b], 10, 0)]),
    ];
    for (i, s) in steps.into_iter().enumerate() {
        g.ingest(s, secs(i as u64), i as u64 * 1000);
        assert_census(&g);
    }
    let s = g.snapshot();
    assert_eq!(row(&s, b).connections, 1);
    assert_eq!(row(&s, a).listening, 0);
    assert!(s.listen_ports.is_empty());
    let host = s.remote_hosts.iter().find(|h| h.addr == addr(7, 0).ip());
    assert_eq!(
        host.map(|h| (h.connections, h.ports.clone())),
        Some((1, vec![443]))
    );
}

#[test]
fn an_unlisted_sockets_rate_decays_as_if_stepped() {
    let a = key(10, 1);
    let procs = [(a, "a")];
    let mut g = agg();
    g.ingest(sample(&procs, vec![tcp(1, &[a], 0, 0)]), secs(0), 0);
    g.ingest(sample(&procs, vec![tcp(1, &[a], 10_000, 0)]), secs(1), 1000);
    // Unlisted (idle) for three ticks.
    for t in 2..5 {
        g.ingest(partial(&procs, vec![]), secs(t), t * 1000);
    }
    let detail = g.detail(a.pid).unwrap();
    let mut stepped = ema::update(0.0, 10_000, secs(1));
    for _ in 2..5 {
        stepped = ema::update(stepped, 0, secs(1));
    }
    let rate = detail.connections[0].traffic.up_bps;
    assert!((rate - stepped).abs() < 1e-6, "{rate} vs {stepped}");
    // Listed again with new bytes: decayed first, then the new step.
    g.ingest(
        partial(&procs, vec![tcp(1, &[a], 12_000, 0)]),
        secs(5),
        5000,
    );
    let rate = g.detail(a.pid).unwrap().connections[0].traffic.up_bps;
    let expected = ema::update(stepped, 2000, secs(1));
    assert!((rate - expected).abs() < 1e-6, "{rate} vs {expected}");
}

#[test]
fn a_tcp_socket_named_gone_leaves_and_its_late_destroy_counts_from_its_last_bytes() {
    let a = key(10, 1);
    let procs = [(a, "a")];
    let mut g = agg();
    g.ingest(
        sample(&procs, vec![tcp(1, &[a], 100, 0), tcp(2, &[a], 100, 0)]),
        secs(0),
        0,
    );
    g.ingest(partial(&procs, vec![tcp(2, &[a], 400, 0)]), secs(1), 1000);
    // Socket 2 unhashed by a reset (fd still open): no longer listed, no destroy yet.
    g.ingest(
        Sample {
            tcp_gone: vec![2],
            ..partial(&procs, vec![])
        },
        secs(2),
        2000,
    );
    assert_eq!(g.sockets.len(), 1);
    assert_census(&g);
    assert_eq!(row(&g.snapshot(), a).connections, 1);
    // The fd closes: the destroy event's final counters count from 400, not from zero.
    g.ingest(
        Sample {
            closed: vec![ClosedSocket {
                id: 2,
                proto: Proto::Tcp,
                local: addr(1, 40002),
                remote: Some(addr(7, 443)),
                sent: 450,
                received: 0,
                owners: vec![a],
            }],
            ..partial(&procs, vec![])
        },
        secs(3),
        3000,
    );
    let s = g.snapshot();
    assert_eq!(row(&s, a).traffic.up_bytes, 350);
    assert_sums(&s);
}
