//! Fixture snapshots: a small host with awkward names and huge rates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::*;
use sstop_client::app::App;
use sstop_client::event::Event;

pub fn traffic(up: f64, down: f64) -> Traffic {
    Traffic {
        up_bps: up,
        down_bps: down,
        up_bytes: (up * 60.0) as u64,
        down_bytes: (down * 60.0) as u64,
    }
}

pub fn process(pid: u32, name: &str, up: f64, down: f64) -> Process {
    Process {
        pid,
        ppid: 1,
        start_time: u64::from(pid) * 10,
        uid: 1000,
        user: "alice".into(),
        name: name.into(),
        cmdline: format!("/usr/bin/{name} --serve"),
        traffic: traffic(up, down),
        connections: pid % 5,
        listening: u32::from(pid.is_multiple_of(3)),
        shared: 0,
        alive: true,
        trend: Trend::Steady,
        history: (0..60)
            .map(|i| RatePoint {
                up: (i * pid) as f32 % 997.0,
                down: 10.0,
            })
            .collect(),
    }
}

pub fn snapshot(seq: u64) -> Snapshot {
    let mut s = Snapshot::empty(CollectorMode::Netlink);
    s.seq = seq;
    s.time_ms = 1_700_000_000_000 + seq * 1000;
    s.collector
        .notes
        .push(Note::warning("UDP bytes unavailable: no CAP_NET_RAW"));
    s.interfaces = vec![
        Interface {
            name: "lo".into(),
            is_up: true,
            is_default: false,
            rx_bps: 2048.0,
            tx_bps: 2048.0,
            rx_bytes: 1,
            tx_bytes: 1,
        },
        Interface {
            name: "eth0".into(),
            is_up: true,
            is_default: true,
            rx_bps: 30_000_000.0,
            tx_bps: 400_000.0,
            rx_bytes: 5_368_709_120,
            tx_bytes: 9,
        },
    ];
    s.totals.traffic = traffic(5_000_000.0, 30_000_000.0);
    s.totals.history = (0..60)
        .map(|i| RatePoint {
            up: i as f32 * 1000.0,
            down: 500.0,
        })
        .collect();
    let mut gone = process(4242, "gone-daemon", 0.0, 0.0);
    gone.alive = false;
    let mut nameless = process(9000, "kworker", 0.0, 0.0);
    nameless.cmdline.clear();
    s.processes = vec![
        process(1001, "nginx", 1_500_000.0, 200_000.0),
        {
            let mut p = process(1002, "curl", 10_000.0, 25_000_000.0);
            p.trend = Trend::Rising;
            p
        },
        process(1003, "浏览器进程测试", 3_000.0, 4_000.0),
        process(1004, "🦀crab-server", 2_000.0, 1_000.0),
        process(1005, "ab\u{fffd}\u{fffd}cd", 900.0, 800.0),
        process(1006, "huge", 5e9, 1.2e12),
        process(1007, "esc\u{1b}[2Jape", 10.0, 10.0),
        gone,
        nameless,
    ];
    s.unattributed = vec![Unattributed {
        proto: Proto::Udp,
        traffic: traffic(700.0, 64_000.0),
        connections: 3,
    }];
    s.remote_hosts = vec![
        RemoteHost {
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            traffic: traffic(1_000_000.0, 20_000_000.0),
            connections: 4,
            ports: vec![443, 8443],
            processes: vec!["curl".into(), "nginx".into()],
        },
        RemoteHost {
            addr: IpAddr::V6("2001:db8::7".parse::<Ipv6Addr>().unwrap()),
            traffic: traffic(100.0, 50.0),
            connections: 1,
            ports: vec![22],
            processes: vec!["ssh".into()],
        },
    ];
    s.listen_ports = vec![
        ListenPort {
            proto: Proto::Tcp,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            pid: 1001,
            name: "nginx".into(),
        },
        ListenPort {
            proto: Proto::Udp,
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5353,
            pid: 0,
            name: String::new(),
        },
    ];
    s
}

pub fn detail_for(pid: u32) -> Detail {
    let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    Detail {
        pid,
        start_time: u64::from(pid) * 10,
        connections: vec![
            Connection {
                proto: Proto::Tcp,
                local,
                remote: Some("192.0.2.10:51000".parse().unwrap()),
                state: Some(TcpState::Established),
                age_ms: 723_000,
                traffic: traffic(1_400_000.0, 100_000.0),
                owners: 1,
            },
            Connection {
                proto: Proto::Udp,
                local: "0.0.0.0:5353".parse().unwrap(),
                remote: None,
                state: None,
                age_ms: 5_000,
                traffic: traffic(0.0, 0.0),
                owners: 2,
            },
        ],
    }
}

/// An app that has received `snapshot(1)`, sized `w`×`h`.
pub fn app_with(w: u16, h: u16) -> App {
    let mut app = App::new(1000);
    app.update(Event::Resize {
        width: w,
        height: h,
    });
    app.update(Event::Connected(Box::new(Welcome {
        protocol: PROTOCOL_VERSION,
        daemon: "0.1.0".into(),
        host: "testhost".into(),
        os: "linux".into(),
        collector: CollectorMode::Netlink,
        caps: Caps::default(),
        viewer_uid: 1000,
    })));
    app.update(Event::Tick(1_700_000_000_000));
    app.update(Event::Snapshot(Box::new(snapshot(1))));
    app
}
