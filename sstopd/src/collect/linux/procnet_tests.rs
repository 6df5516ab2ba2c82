use super::*;

fn tcp6_line(local: &str) -> String {
    format!(
        "   0: {local} 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0"
    )
}

#[cfg(target_endian = "little")]
#[test]
fn tcp6_words_are_native_endian_b02() {
    let cases = [
        ("00000000000000000000000001000000:1F90", "[::1]:8080"),
        ("B80D0120000000000000000007000000:01BB", "[2001:db8::7]:443"),
        (
            "B80D012078563412F0DEBC9A44332211:0016",
            "[2001:db8:1234:5678:9abc:def0:1122:3344]:22",
        ),
    ];
    let wrong = [
        "::100:0",
        "b80d:120::700:0",
        "1122:3344:9abc:def0:1234:5678:2001:db8",
    ];
    for (local, expected) in cases {
        let e = parse_line(&tcp6_line(local)).unwrap();
        assert_eq!(e.local, expected.parse::<SocketAddr>().unwrap());
        assert_eq!(e.local.to_string(), expected);
        for w in wrong {
            assert_ne!(e.local.ip(), w.parse::<IpAddr>().unwrap());
        }
        let s = to_sample(Table::Tcp, true, &e);
        assert_eq!(s.state, Some(TcpState::Listen));
        assert_eq!(s.remote, None);
        assert_eq!(s.inode, 4242);
        assert!(s.is_listening());
    }
}

#[cfg(target_endian = "little")]
#[test]
fn ipv4_mapped_addresses_fold_to_ipv4() {
    // ::ffff:127.0.0.1 as the kernel prints it on little-endian.
    let e = parse_endpoint("0000000000000000FFFF00000100007F:0050").unwrap();
    assert_eq!(e, "127.0.0.1:80".parse().unwrap());
}

#[cfg(target_endian = "little")]
#[test]
fn tcp_line_established() {
    let line = "   1: 020200C0:E74E 507100CB:01BB 01 00000000:00000000 00:00000000 00000000  1000        0 24060 1 000000000be50e80 20 4 1 86 146";
    let e = parse_line(line).unwrap();
    assert_eq!(e.local, "192.0.2.2:59214".parse().unwrap());
    assert_eq!(e.remote, "203.0.113.80:443".parse().unwrap());
    assert_eq!(e.uid, 1000);
    assert_eq!(e.inode, 24060);
    assert_eq!(e.drops, None);
    let s = to_sample(Table::Tcp, false, &e);
    assert_eq!(s.state, Some(TcpState::Established));
    assert_eq!(s.remote, Some(e.remote));
    assert_eq!(s.id, inode_id(24060));
}

#[cfg(target_endian = "little")]
#[test]
fn udp_line_with_drops() {
    let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:1151 00000000:0000 07 00000000:00000000 00:00000000 00000000   997        0 31337 2 00000000a1b2c3d4 1742
  124: 0100007F:C350 0100007F:1151 01 00000000:00000000 00:00000000 00000000     0        0 31338 2 00000000a1b2c3d5 0
garbage line
";
    let t = parse_table(text);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].local, "127.0.0.1:4433".parse().unwrap());
    assert_eq!(t[0].drops, Some(1742));
    assert_eq!(t[0].uid, 997);
    let listener = to_sample(Table::Udp, false, &t[0]);
    assert_eq!(listener.remote, None);
    assert!(
        listener.is_listening(),
        "an unconnected bound UDP socket is a listen port"
    );
    let connected = to_sample(Table::Udp, false, &t[1]);
    assert_eq!(connected.remote, Some("127.0.0.1:4433".parse().unwrap()));
    assert!(!connected.is_listening());
}

#[test]
fn raw_and_ping_sockets() {
    // raw socket of protocol 253 (port field = protocol), ping socket with identifier 0x1234.
    let raw = parse_line("  253: 00000000:00FD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0").unwrap();
    let s = to_sample(Table::Raw, false, &raw);
    assert_eq!(s.proto, Proto::Ip(253));
    assert_eq!(s.local.port(), 0);
    let raw_icmp = parse_line("    1: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 778 2 0000000000000000 0").unwrap();
    assert_eq!(to_sample(Table::Raw, false, &raw_icmp).proto, Proto::Icmp);
    let ping = parse_line("   52: 00000000:1234 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 779 2 0000000000000000 0").unwrap();
    let s = to_sample(Table::Icmp, false, &ping);
    assert_eq!(s.proto, Proto::Icmp);
    assert_eq!(s.local.port(), 0x1234);
}

#[test]
fn time_wait_without_inode_gets_a_stable_tuple_id() {
    let line = "   3: 0100007F:1F90 0100007F:C001 06 00000000:00000000 03:00000F9C 00000000     0        0 0 3 0000000000000000";
    let e = parse_line(line).unwrap();
    let a = to_sample(Table::Tcp, false, &e);
    let b = to_sample(Table::Tcp, false, &e);
    assert_eq!(a.id, b.id);
    assert_ne!(a.id, inode_id(0));
    assert_eq!(a.state, Some(TcpState::TimeWait));
}

/// Lines read from this kernel: a process closed a connection its peer keeps open (a
/// TIME-WAIT minisocket showing substate 05, timer 03, no inode), and another process only
/// shut down writing (a full socket in FIN-WAIT-2, its inode, no timer).
#[test]
fn a_fin_wait_2_minisocket_is_time_wait_and_a_half_closed_socket_is_not() {
    let tw = "   3: 0100007F:A902 0100007F:C6A3 05 00000000:00000000 03:0000175C 00000000     0        0 0 3 000000007239e30f                                      ";
    let e = parse_line(tw).unwrap();
    assert_eq!((e.state, e.timer, e.inode), (5, 3, 0));
    assert_eq!(
        to_sample(Table::Tcp, false, &e).state,
        Some(TcpState::TimeWait)
    );
    let half = "   5: 0100007F:A906 0100007F:C6A3 05 00000000:00000000 00:00000000 00000000     0        0 1834878 2 00000000cba92504 20 0 0 11 -1                   ";
    let e = parse_line(half).unwrap();
    assert_eq!((e.timer, e.inode), (0, 1834878));
    assert_eq!(
        to_sample(Table::Tcp, false, &e).state,
        Some(TcpState::FinWait2)
    );
}

#[test]
fn sctp_endpoints() {
    let text = " ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS
0000000000000000 0000000000000000 2   10  29   5000      0 41234 127.0.0.1 ::1
0000000000000000 0000000000000000 1   10  30   5001   1000 41235 10.0.0.1
";
    let eps = parse_sctp_eps(text);
    assert_eq!(eps.len(), 2);
    assert_eq!(eps[0].port, 5000);
    assert_eq!(eps[0].inode, 41234);
    assert_eq!(eps[0].addrs.len(), 2);
    let s = sctp_samples(&eps);
    assert_eq!(
        s[0].local,
        "0.0.0.0:5000".parse().unwrap(),
        "several addresses → any"
    );
    assert_eq!(s[1].local, "10.0.0.1:5001".parse().unwrap());
    assert_eq!(s[1].proto, Proto::Sctp);
}

#[test]
fn garbage_lines_are_skipped() {
    for line in [
        "",
        "  sl  local_address",
        "0: zz:zz 00:00 0A",
        "   0: 0100007F:1F90 00000000:0000 0A",
        "   0: 0100007F 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
        "   0: 0100007F00:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
    ] {
        assert_eq!(parse_line(line), None, "{line:?}");
    }
}

#[test]
fn reads_this_hosts_tables() {
    // Every line of the live tables parses (no silent loss on this kernel's format).
    for name in ["tcp", "tcp6", "udp", "udp6", "raw", "raw6", "icmp", "icmp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/net/{name}")) else {
            continue;
        };
        let lines = text
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count();
        assert_eq!(parse_table(&text).len(), lines, "{name}");
    }
}
