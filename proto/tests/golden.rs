//! Golden bytes: every message encoded to a fixed frame. Any change to the wire
//! format fails here loudly; when a change is deliberate, bump
//! `PROTOCOL_VERSION` and regenerate (the failure message prints the new bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::*;

/// Encode `msg`, compare with `expected`, and decode it back.
fn golden<T>(name: &str, msg: &T, expected: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let frame = encode_frame(msg).expect("encode");
    assert!(
        frame == expected,
        "{name}: wire bytes changed; if deliberate, bump PROTOCOL_VERSION and use\n{}",
        render(&frame)
    );
    let back: T = decode_payload(&frame[4..]).expect("golden bytes decode");
    assert_eq!(
        &back, msg,
        "{name}: golden bytes decode to a different message"
    );
}

fn render(bytes: &[u8]) -> String {
    let body: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    let lines: Vec<String> = body
        .chunks(16)
        .map(|c| format!("    {},", c.join(", ")))
        .collect();
    format!("&[\n{}\n]", lines.join("\n"))
}

fn traffic() -> Traffic {
    Traffic {
        up_bps: 1536.5,
        down_bps: 0.25,
        up_bytes: 5_368_709_120,
        down_bytes: 300,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        seq: 7,
        time_ms: 1_700_000_000_123,
        interval_ms: 250,
        collector: CollectorInfo {
            mode: CollectorMode::Netlink,
            notes: vec![Note::warning("no AF_PACKET: UDP bytes not counted")],
            capture_drops: 3,
        },
        interfaces: vec![Interface {
            name: "eth0".into(),
            is_up: true,
            is_default: true,
            rx_bps: 10.0,
            tx_bps: 2.0,
            rx_bytes: 4_294_967_296,
            tx_bytes: 1,
        }],
        totals: Totals {
            traffic: traffic(),
            history: vec![RatePoint { up: 1.0, down: 2.5 }],
        },
        processes: vec![Process {
            pid: 99_871,
            ppid: 1,
            start_time: 85_960,
            uid: 1000,
            user: "alice".into(),
            name: "we ird) (x".into(),
            cmdline: "./we ird) (x 30".into(),
            traffic: traffic(),
            connections: 2,
            listening: 1,
            shared: 0,
            alive: true,
            trend: Trend::Rising,
            history: vec![RatePoint { up: 0.5, down: 0.0 }],
        }],
        unattributed: vec![Unattributed {
            proto: Proto::Udp,
            traffic: Traffic::default(),
            connections: 0,
        }],
        remote_hosts: vec![RemoteHost {
            addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
            traffic: traffic(),
            connections: 1,
            ports: vec![443, 8080],
            processes: vec!["curl".into()],
        }],
        listen_ports: vec![ListenPort {
            proto: Proto::Tcp,
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            pid: 0,
            name: String::new(),
        }],
    }
}

#[test]
fn client_hello() {
    let msg = ClientMsg::Hello {
        protocol: 1,
        client: "sstop 0.1.0".into(),
    };
    golden(
        "Hello",
        &msg,
        &[
            0x00, 0x00, 0x00, 0x0e, 0x00, 0x01, 0x0b, 0x73, 0x73, 0x74, 0x6f, 0x70, 0x20, 0x30,
            0x2e, 0x31, 0x2e, 0x30,
        ],
    );
}

#[test]
fn client_subscribe() {
    let msg = ClientMsg::Subscribe {
        interval_ms: 200,
        detail_pid: Some(4242),
    };
    golden(
        "Subscribe",
        &msg,
        &[0x00, 0x00, 0x00, 0x06, 0x01, 0xc8, 0x01, 0xfb, 0x92, 0x10],
    );
    let msg = ClientMsg::Subscribe {
        interval_ms: 1000,
        detail_pid: None,
    };
    golden(
        "Subscribe/none",
        &msg,
        &[0x00, 0x00, 0x00, 0x05, 0x01, 0xfb, 0xe8, 0x03, 0x00],
    );
}

#[test]
fn client_kill() {
    let msg = ClientMsg::Kill {
        pid: 4242,
        start_time: 85_960,
        signal: Signal::Term,
    };
    golden(
        "Kill",
        &msg,
        &[
            0x00, 0x00, 0x00, 0x0a, 0x02, 0xfb, 0x92, 0x10, 0xfc, 0xc8, 0x4f, 0x01, 0x00, 0x00,
        ],
    );
    let msg = ClientMsg::Kill {
        pid: 1,
        start_time: 0,
        signal: Signal::Other(-9),
    };
    golden(
        "Kill/other",
        &msg,
        &[0x00, 0x00, 0x00, 0x05, 0x02, 0x01, 0x00, 0x09, 0x11],
    );
}

#[test]
fn client_ping() {
    golden("Ping", &ClientMsg::Ping, &[0x00, 0x00, 0x00, 0x01, 0x03]);
}

#[test]
fn server_error() {
    let msg = ServerMsg::Error {
        code: ErrorCode::VersionMismatch,
        message: "viewer speaks protocol 2, this daemon speaks 1".into(),
    };
    golden(
        "Error",
        &msg,
        &[
            0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x2e, 0x76, 0x69, 0x65, 0x77, 0x65, 0x72, 0x20,
            0x73, 0x70, 0x65, 0x61, 0x6b, 0x73, 0x20, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x63, 0x6f,
            0x6c, 0x20, 0x32, 0x2c, 0x20, 0x74, 0x68, 0x69, 0x73, 0x20, 0x64, 0x61, 0x65, 0x6d,
            0x6f, 0x6e, 0x20, 0x73, 0x70, 0x65, 0x61, 0x6b, 0x73, 0x20, 0x31,
        ],
    );
}

#[test]
fn server_welcome() {
    let msg = ServerMsg::Welcome(Welcome {
        protocol: 1,
        daemon: "0.1.0".into(),
        host: "box".into(),
        os: "linux".into(),
        collector: CollectorMode::Packet,
        caps: Caps {
            kill: true,
            packet_bytes: true,
            closed_connections: false,
            all_users: true,
        },
        viewer_uid: 1000,
    });
    golden(
        "Welcome",
        &msg,
        &[
            0x00, 0x00, 0x00, 0x1a, 0x01, 0x01, 0x05, 0x30, 0x2e, 0x31, 0x2e, 0x30, 0x03, 0x62,
            0x6f, 0x78, 0x05, 0x6c, 0x69, 0x6e, 0x75, 0x78, 0x01, 0x01, 0x01, 0x00, 0x01, 0xfb,
            0xe8, 0x03,
        ],
    );
}

#[test]
fn server_snapshot() {
    golden(
        "Snapshot",
        &ServerMsg::Snapshot(Box::new(snapshot())),
        &[
            0x00, 0x00, 0x01, 0x32, 0x02, 0x07, 0xfd, 0x7b, 0x68, 0xe5, 0xcf, 0x8b, 0x01, 0x00,
            0x00, 0xfa, 0x00, 0x01, 0x01, 0x23, 0x6e, 0x6f, 0x20, 0x41, 0x46, 0x5f, 0x50, 0x41,
            0x43, 0x4b, 0x45, 0x54, 0x3a, 0x20, 0x55, 0x44, 0x50, 0x20, 0x62, 0x79, 0x74, 0x65,
            0x73, 0x20, 0x6e, 0x6f, 0x74, 0x20, 0x63, 0x6f, 0x75, 0x6e, 0x74, 0x65, 0x64, 0x03,
            0x01, 0x04, 0x65, 0x74, 0x68, 0x30, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x24, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0xfd, 0x00, 0x00, 0x00,
            0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x98, 0x40,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f, 0xfd, 0x00, 0x00, 0x00, 0x40, 0x01,
            0x00, 0x00, 0x00, 0xfb, 0x2c, 0x01, 0x01, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20,
            0x40, 0x01, 0xfc, 0x1f, 0x86, 0x01, 0x00, 0x01, 0xfc, 0xc8, 0x4f, 0x01, 0x00, 0xfb,
            0xe8, 0x03, 0x05, 0x61, 0x6c, 0x69, 0x63, 0x65, 0x0a, 0x77, 0x65, 0x20, 0x69, 0x72,
            0x64, 0x29, 0x20, 0x28, 0x78, 0x0f, 0x2e, 0x2f, 0x77, 0x65, 0x20, 0x69, 0x72, 0x64,
            0x29, 0x20, 0x28, 0x78, 0x20, 0x33, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x98,
            0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f, 0xfd, 0x00, 0x00, 0x00, 0x40,
            0x01, 0x00, 0x00, 0x00, 0xfb, 0x2c, 0x01, 0x02, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00,
            0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x98, 0x40, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f, 0xfd, 0x00, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00,
            0x00, 0xfb, 0x2c, 0x01, 0x01, 0x02, 0xfb, 0xbb, 0x01, 0xfb, 0x90, 0x1f, 0x01, 0x04,
            0x63, 0x75, 0x72, 0x6c, 0x01, 0x00, 0x00, 0x7f, 0x00, 0x00, 0x01, 0xfb, 0x90, 0x1f,
            0x00, 0x00,
        ],
    );
}

#[test]
fn server_empty_snapshot() {
    let msg = ServerMsg::Snapshot(Box::new(Snapshot::empty(CollectorMode::Synthetic)));
    golden(
        "Snapshot/empty",
        &msg,
        &[
            0x00, 0x00, 0x00, 0x21, 0x02, 0x00, 0x00, 0xfb, 0xe8, 0x03, 0x03, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ],
    );
}

#[test]
fn server_detail() {
    let msg = ServerMsg::Detail(Detail {
        pid: 4242,
        start_time: 85_960,
        connections: vec![
            Connection {
                proto: Proto::Tcp,
                local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 51000),
                remote: Some(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
                    443,
                )),
                state: Some(TcpState::Established),
                age_ms: 12_345,
                traffic: traffic(),
                owners: 2,
            },
            Connection {
                proto: Proto::Ip(255),
                local: SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
                remote: None,
                state: None,
                age_ms: 0,
                traffic: Traffic::default(),
                owners: 1,
            },
        ],
    });
    golden(
        "Detail",
        &msg,
        &[
            0x00, 0x00, 0x00, 0x68, 0x03, 0xfb, 0x92, 0x10, 0xfc, 0xc8, 0x4f, 0x01, 0x00, 0x02,
            0x00, 0x00, 0xc0, 0x00, 0x02, 0x0a, 0xfb, 0x38, 0xc7, 0x01, 0x00, 0xc6, 0x33, 0x64,
            0x07, 0xfb, 0xbb, 0x01, 0x01, 0x00, 0xfb, 0x39, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, 0x98, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f, 0xfd, 0x00, 0x00,
            0x00, 0x40, 0x01, 0x00, 0x00, 0x00, 0xfb, 0x2c, 0x01, 0x02, 0x05, 0xff, 0x01, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        ],
    );
}

#[test]
fn server_kill_result() {
    let msg = ServerMsg::KillResult(KillResult {
        pid: 4242,
        signal: Signal::Kill,
        outcome: KillOutcome::Denied,
        message: "process 4242 belongs to uid 0".into(),
    });
    golden(
        "KillResult",
        &msg,
        &[
            0x00, 0x00, 0x00, 0x24, 0x04, 0xfb, 0x92, 0x10, 0x01, 0x01, 0x1d, 0x70, 0x72, 0x6f,
            0x63, 0x65, 0x73, 0x73, 0x20, 0x34, 0x32, 0x34, 0x32, 0x20, 0x62, 0x65, 0x6c, 0x6f,
            0x6e, 0x67, 0x73, 0x20, 0x74, 0x6f, 0x20, 0x75, 0x69, 0x64, 0x20, 0x30,
        ],
    );
}

#[test]
fn server_pong() {
    golden("Pong", &ServerMsg::Pong, &[0x00, 0x00, 0x00, 0x01, 0x05]);
}

/// Unit-like enums travel as their variant index (one varint byte).
#[test]
fn enum_variant_indices() {
    fn index<T: serde::Serialize>(v: &T) -> Vec<u8> {
        encode_frame(v).unwrap()[4..].to_vec()
    }
    let codes = [
        ErrorCode::VersionMismatch,
        ErrorCode::BadRequest,
        ErrorCode::TooManyViewers,
        ErrorCode::FrameTooLarge,
        ErrorCode::Internal,
    ];
    for (i, c) in codes.iter().enumerate() {
        assert_eq!(index(c), vec![i as u8], "{c:?}");
    }
    for (i, s) in Signal::LISTED.iter().enumerate() {
        assert_eq!(index(s), vec![i as u8], "{s:?}");
    }
    let outcomes = [
        KillOutcome::Sent,
        KillOutcome::Denied,
        KillOutcome::Stale,
        KillOutcome::Gone,
        KillOutcome::RateLimited,
        KillOutcome::Failed,
    ];
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(index(o), vec![i as u8], "{o:?}");
    }
    let modes = [
        CollectorMode::Netlink,
        CollectorMode::Packet,
        CollectorMode::Macos,
        CollectorMode::Synthetic,
    ];
    for (i, m) in modes.iter().enumerate() {
        assert_eq!(index(m), vec![i as u8], "{m:?}");
    }
    let protos = [
        Proto::Tcp,
        Proto::Udp,
        Proto::Icmp,
        Proto::Icmpv6,
        Proto::Sctp,
    ];
    for (i, p) in protos.iter().enumerate() {
        assert_eq!(index(p), vec![i as u8], "{p:?}");
    }
    assert_eq!(index(&Proto::Ip(132)), vec![5, 132]);
    for n in 1..=12u8 {
        assert_eq!(
            index(&TcpState::from_kernel(n)),
            vec![n - 1],
            "tcp state {n}"
        );
    }
    assert_eq!(index(&TcpState::from_kernel(200)), vec![12, 200]);
    assert_eq!(index(&Trend::Rising), vec![0]);
    assert_eq!(index(&Trend::Falling), vec![1]);
    assert_eq!(index(&Trend::Steady), vec![2]);
    assert_eq!(index(&Severity::Info), vec![0]);
    assert_eq!(index(&Severity::Warning), vec![1]);
}

/// `Hello` and `Error` are variant 0 and must keep their shape forever so two
/// versions can always tell each other that they differ.
#[test]
fn handshake_shapes_are_frozen() {
    let hello = encode_frame(&ClientMsg::Hello {
        protocol: 99,
        client: "x".into(),
    })
    .unwrap();
    assert_eq!(hello, [0, 0, 0, 4, 0, 99, 1, b'x']);
    let err = encode_frame(&ServerMsg::Error {
        code: ErrorCode::VersionMismatch,
        message: "m".into(),
    })
    .unwrap();
    assert_eq!(err, [0, 0, 0, 4, 0, 0, 1, b'm']);
}

#[test]
fn protocol_version_is_pinned() {
    // Changing the wire format means changing this number and the bytes above together.
    assert_eq!(PROTOCOL_VERSION, 1);
}
