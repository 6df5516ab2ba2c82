//! Parsers on captured output: CASES B20 (lsof), B21 (netstat -ibn), B22
//! (netstat -an drift), the netstat layouts of recent and older releases.

use proto::{Proto, TcpState};
use sstopd::collect::macos::addr::Scope;
use sstopd::collect::macos::netstat::{Family, ParseOptions, parse_sockets};
use sstopd::collect::macos::{ifaces, lsof};

use super::support::*;

// ---------------------------------------------------------------- B20: lsof

#[test]
fn b20_lsof_odd_lines() {
    let out = lsof::parse(&fixture("lsof_b20.txt"));
    assert_eq!(out.processes.len(), 2);
    assert_eq!(out.processes[0].pid, 412);
    assert_eq!(out.processes[0].command, "Google Chrome He");
    assert_eq!(out.processes[1].pid, 99871);
    assert_eq!(out.processes[1].command, "my app (x)");

    // 5 usable sockets, 1 unbound, 1 skipped line.
    assert_eq!(out.sockets.len(), 5, "{:#?}", out.sockets);
    assert_eq!(out.unbound.len(), 1);
    assert_eq!(out.unbound[0].fd, "42");
    assert_eq!(out.unbound[0].local.port, None);
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.skipped[0].line, 28, "the `nlocalhost:ipp` line");

    let s = &out.sockets;
    let resolve = |n: &str| (n == "lo0").then_some(1);
    let addr = |i: usize| {
        (
            s[i].local.to_socket_addr(s[i].v6, &resolve),
            s[i].remote
                .as_ref()
                .map(|r| r.to_socket_addr(s[i].v6, &resolve)),
        )
    };
    assert_eq!(
        (s[0].pid, s[0].proto, s[0].state),
        (412, Proto::Tcp, Some(TcpState::Established))
    );
    assert_eq!(
        addr(0),
        (sa("192.0.2.10:52044"), Some(sa("198.51.100.7:443")))
    );
    assert_eq!((s[1].pid, s[1].proto), (412, Proto::Tcp));
    assert_eq!(
        addr(1),
        (sa("[2001:db8::a]:8080"), Some(sa("[2001:db8::7]:9090")))
    );
    // KAME-embedded scope: fe80:4::1 is fe80::1 on interface 4.
    assert_eq!((s[2].pid, s[2].proto), (412, Proto::Udp));
    assert_eq!(s[2].local.addr, Some("fe80::1".parse().unwrap()));
    assert_eq!(s[2].local.scope, Some(Scope::Index(4)));
    assert_eq!(addr(2), (sa("[fe80::1%4]:5353"), None));
    // Named scope kept as a name, resolved by the collector.
    assert_eq!(s[3].local.scope, Some(Scope::Name("lo0".into())));
    assert_eq!(addr(3), (sa("[fe80::1%1]:5353"), None));
    // pid above 65535, name with spaces and parentheses.
    assert_eq!((s[4].pid, s[4].proto), (99871, Proto::Tcp));
    assert_eq!(addr(4), (sa("127.0.0.1:49152"), Some(sa("127.0.0.1:8080"))));
}

// ---------------------------------------------------------------- B21: netstat -ibn

#[test]
fn b21_one_record_per_interface_from_its_link_row() {
    let got = ifaces::parse_ibn(&fixture("netstat_ibn_b21.txt"));
    assert_eq!(
        got,
        vec![
            iface("lo0", true, 3_540_480, 3_540_480),
            iface("gif0", false, 0, 0),
            iface("en0", true, 13_309_516_362, 11_363_839_527),
            iface("utun3", true, 61_440, 70_210),
        ]
    );
}

#[test]
fn b21_extra_drop_columns_are_tolerated() {
    let got = ifaces::parse_ibn(&fixture("netstat_ibdn_drop.txt"));
    assert_eq!(
        got,
        vec![
            iface("lo0", true, 3_540_480, 3_540_480),
            iface("en0", true, 13_309_516_362, 11_363_839_527),
            iface("bridge100", false, 0, 0),
        ]
    );
    let got = ifaces::parse_ibn(&fixture("netstat_ibn_idrop.txt"));
    assert_eq!(
        got,
        vec![
            iface("lo0", true, 505_148, 505_148),
            iface("em0", true, 5_000_000_000, 4_400_000_000),
        ]
    );
}

#[test]
fn default_interface_from_route() {
    assert_eq!(
        ifaces::parse_route_default(&fixture("route_default.txt")).as_deref(),
        Some("en0")
    );
    assert_eq!(
        ifaces::parse_route_default(&fixture("route_no_default.txt")),
        None
    );
}

// ---------------------------------------------------------------- B22: netstat -an family drift

#[test]
fn b22_layout_drift() {
    let out = parse_sockets(&fixture("netstat_b22.txt"), ParseOptions::default());
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    let r = &out.rows;
    assert_eq!(r.len(), 6);

    assert_eq!((r[0].proto, r[0].family), (Proto::Tcp, Family::V4));
    assert_eq!(r[0].local.addr, Some("192.0.2.10".parse().unwrap()));
    assert_eq!(r[0].local.port, Some(52044));
    assert_eq!(
        (r[0].rx_bytes, r[0].tx_bytes),
        (Some(5_242_880), Some(104_857))
    );

    assert_eq!(r[1].local.addr, Some("2001:db8::a".parse().unwrap()));
    assert_eq!(r[1].remote.port, Some(51514));
    assert_eq!((r[1].rx_bytes, r[1].tx_bytes), (Some(1200), Some(3400)));

    // tcp46 *.8809: one dual-stack listener.
    assert_eq!(
        (r[2].family, r[2].state),
        (Family::Dual, Some(TcpState::Listen))
    );
    assert_eq!((r[2].local.addr, r[2].local.port), (None, Some(8809)));
    assert!(r[2].remote.is_unbound());

    assert_eq!(r[3].local.addr, Some("fe80::1".parse().unwrap()));
    assert_eq!(r[3].local.scope, Some(Scope::Name("lo0".into())));
    assert_eq!(r[3].local.port, Some(631));

    // UDP rows have no state; the byte columns still parse.
    assert_eq!(
        (r[4].proto, r[4].family, r[4].state),
        (Proto::Udp, Family::V4, None)
    );
    assert_eq!((r[4].local.addr, r[4].local.port), (None, Some(5353)));
    assert_eq!((r[4].rx_bytes, r[4].tx_bytes), (Some(8_840), Some(1_200)));
    assert_eq!((r[5].family, r[5].local.port), (Family::Dual, Some(443)));
    assert_eq!(
        (r[5].rx_bytes, r[5].tx_bytes),
        (Some(14_400_000), Some(12_000_000))
    );
}

// ---------------------------------------------------------------- layouts by release

#[test]
fn sequoia_layout_process_pid_with_spaces() {
    let out = parse_sockets(
        &fixture("netstat_tcp_sequoia_1.txt"),
        ParseOptions::default(),
    );
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    assert_eq!(out.rows.len(), 8);
    let chrome = &out.rows[0];
    assert_eq!(chrome.pid, Some(412));
    assert_eq!(chrome.process_name.as_deref(), Some("Google Chrome He"));
    assert_eq!(chrome.socket_id, Some(0x1a2b3));
    assert_eq!(
        (chrome.rx_bytes, chrome.tx_bytes),
        (Some(5_242_880), Some(104_857))
    );
    let app = &out.rows[2];
    assert_eq!(app.pid, Some(99871));
    assert_eq!(app.process_name.as_deref(), Some("my app (x)"));
    assert_eq!((app.rx_bytes, app.tx_bytes), (Some(640), Some(20_480)));
    assert_eq!(out.rows[7].state, Some(TcpState::TimeWait));

    let udp = parse_sockets(
        &fixture("netstat_udp_sequoia_1.txt"),
        ParseOptions::default(),
    );
    assert!(udp.skipped.is_empty(), "{:?}", udp.skipped);
    assert_eq!(udp.rows.len(), 5);
    assert_eq!(udp.rows[0].process_name.as_deref(), Some("mDNSResponder"));
    assert_eq!(
        (udp.rows[0].rx_bytes, udp.rows[0].tx_bytes),
        (Some(8_840), Some(1_200))
    );
    assert_eq!(udp.rows[0].state, None);
    assert!(udp.rows[3].local.is_unbound());
    assert_eq!(udp.rows[4].remote.port, Some(53));
}

#[test]
fn monterey_layout_numeric_pid_and_gencnt() {
    let out = parse_sockets(
        &fixture("netstat_tcp_monterey.txt"),
        ParseOptions::default(),
    );
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    assert_eq!(
        out.rows.len(),
        4,
        "the trailing 'Some tcp sockets...' line is not a row"
    );
    assert_eq!(out.rows[0].pid, Some(412));
    assert_eq!(out.rows[0].process_name, None);
    assert_eq!(out.rows[0].socket_id, Some(0x2f11));
    assert_eq!(out.rows[2].pid, Some(99871));
    assert_eq!(
        (out.rows[2].rx_bytes, out.rows[2].tx_bytes),
        (Some(640), Some(20_480))
    );
    let udp = parse_sockets(
        &fixture("netstat_udp_monterey.txt"),
        ParseOptions::default(),
    );
    assert_eq!(udp.rows[1].pid, Some(5100));
    assert_eq!(
        (udp.rows[1].rx_bytes, udp.rows[1].tx_bytes),
        (Some(14_400_000), Some(12_000_000))
    );
}

#[test]
fn high_sierra_layout_without_gencnt() {
    let out = parse_sockets(
        &fixture("netstat_tcp_highsierra.txt"),
        ParseOptions::default(),
    );
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    assert_eq!(out.rows.len(), 4);
    assert!(out.rows.iter().all(|r| r.socket_id.is_none()));
    assert_eq!(out.rows[1].state, Some(TcpState::TimeWait));
    assert_eq!(out.rows[1].pid, Some(413));
    assert_eq!(out.rows[2].state, Some(TcpState::CloseWait));
    assert_eq!(
        (out.rows[2].rx_bytes, out.rows[2].tx_bytes),
        (Some(1200), Some(3400))
    );
    assert_eq!(out.rows[3].pid, Some(1));
}

// ---------------------------------------------------------------- no input breaks a parser

proptest::proptest! {
    #[test]
    fn parsers_never_panic_on_any_text(text in "\\PC*") {
        let _ = lsof::parse(&text);
        let _ = parse_sockets(&text, ParseOptions { wide: false });
        let _ = ifaces::parse_ibn(&text);
        let _ = ifaces::parse_route_default(&text);
    }

    /// Real captures with lines cut at random places (a tool killed mid-write).
    #[test]
    fn parsers_survive_cut_lines(cut in 0usize..200, every in 1usize..7) {
        for name in ["lsof_sequoia.txt", "netstat_tcp_sequoia_1.txt", "netstat_udp_sequoia_1.txt", "netstat_ibn_b21.txt", "netstat_tcp_highsierra.txt"] {
            let damaged: String = fixture(name)
                .lines()
                .enumerate()
                .map(|(i, l)| if i % every == 0 { l.get(..cut.min(l.len())).unwrap_or(l) } else { l })
                .collect::<Vec<_>>()
                .join("\n");
            let _ = lsof::parse(&damaged);
            let _ = parse_sockets(&damaged, ParseOptions::default());
            let _ = ifaces::parse_ibn(&damaged);
        }
    }
}
