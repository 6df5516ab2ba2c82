//! macOS collector from captured tool output: parsers (CASES B20, B21, B22 and
//! the netstat layouts of recent and older releases), the whole collector
//! (fixture runner → `Sample`), the aggregator (`Sample` → `Snapshot`), the
//! real runner against scripts and missing tools, and the launchd plist.

// clippy.toml allows unwrap inside #[test] fns; the fixture helpers here are test code too.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::{CollectorMode, Proto, Severity, TcpState};
use sstopd::aggregate::Aggregator;
use sstopd::collect::macos::addr::Scope;
use sstopd::collect::macos::assemble::ScopeResolver;
use sstopd::collect::macos::collector::{
    LSOF_ARGS, NETSTAT_IFACES, NETSTAT_TCP, NETSTAT_UDP, ROUTE_DEFAULT,
};
use sstopd::collect::macos::netstat::{Family, ParseOptions, parse_sockets};
use sstopd::collect::macos::{
    CommandRunner, MacosCollector, ProcFacts, ProcessSource, RunError, RunOutput, SystemRunner,
    Tools, ifaces, lsof,
};
use sstopd::collect::{Collector, IfaceSample, ProcKey, Sample, SocketSample};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/macos")
        .join(name)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

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

fn iface(name: &str, is_up: bool, rx: u64, tx: u64) -> IfaceSample {
    IfaceSample {
        name: name.into(),
        is_up,
        rx_bytes: rx,
        tx_bytes: tx,
    }
}

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

// ---------------------------------------------------------------- the collector

type Served = HashMap<String, VecDeque<RunOutput>>;

/// Captured outputs per command line, served in order (the last one repeats).
#[derive(Clone, Default)]
struct FixtureRunner {
    outputs: Arc<Mutex<Served>>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl FixtureRunner {
    fn key(program: &str, args: &[&str]) -> String {
        format!("{} {}", program.rsplit('/').next().unwrap(), args.join(" "))
    }
    fn serve(self, program: &str, args: &[&str], files: &[&str]) -> Self {
        let outs = files
            .iter()
            .map(|f| RunOutput {
                status: Some(0),
                stdout: fixture(f),
                stderr: String::new(),
            })
            .collect();
        self.outputs
            .lock()
            .unwrap()
            .insert(Self::key(program, args), outs);
        self
    }
    fn fail(self, program: &str, args: &[&str], status: i32, stderr: &str) -> Self {
        let out = RunOutput {
            status: Some(status),
            stdout: String::new(),
            stderr: stderr.into(),
        };
        self.outputs
            .lock()
            .unwrap()
            .insert(Self::key(program, args), VecDeque::from([out]));
        self
    }
    fn calls(&self, program: &str, args: &[&str]) -> usize {
        self.calls
            .lock()
            .unwrap()
            .get(&Self::key(program, args))
            .copied()
            .unwrap_or(0)
    }
}

impl CommandRunner for FixtureRunner {
    fn run(&self, program: &str, args: &[&str], _timeout: Duration) -> Result<RunOutput, RunError> {
        let key = Self::key(program, args);
        *self.calls.lock().unwrap().entry(key.clone()).or_default() += 1;
        let mut outputs = self.outputs.lock().unwrap();
        let Some(queue) = outputs.get_mut(&key) else {
            return Err(RunError::NotFound(program.into()));
        };
        let next = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        };
        Ok(next.unwrap())
    }
}

/// Process facts as `proc_pidinfo` would give them on the captured host.
struct FixtureProcs(HashMap<u32, ProcFacts>);

impl ProcessSource for FixtureProcs {
    fn lookup(&mut self, pid: u32) -> Option<ProcFacts> {
        self.0.get(&pid).cloned()
    }
}

fn facts(pid: u32, ppid: u32, uid: u32, comm: &str, name: &str, cmdline: &str) -> (u32, ProcFacts) {
    (
        pid,
        ProcFacts {
            start_time: 1_700_000_000_000_000 + u64::from(pid) * 1_000,
            ppid,
            uid,
            comm: comm.as_bytes().to_vec(),
            name: name.into(),
            cmdline: cmdline.into(),
        },
    )
}

fn sequoia_procs() -> FixtureProcs {
    FixtureProcs(HashMap::from([
        facts(180, 1, 0, "cupsd", "cupsd", "/usr/sbin/cupsd -l"),
        facts(
            301,
            1,
            65,
            "mDNSResponder",
            "mDNSResponder",
            "/usr/sbin/mDNSResponder",
        ),
        facts(
            412,
            400,
            501,
            "Google Chrome He",
            "Google Chrome Helper",
            "/Applications/Google Chrome.app/Contents/Frameworks/Google Chrome Framework.framework/Helpers/Google Chrome Helper.app/Contents/MacOS/Google Chrome Helper --type=utility",
        ),
        facts(
            2001,
            1,
            0,
            "nginx",
            "nginx",
            "nginx: master process /opt/homebrew/bin/nginx",
        ),
        facts(2002, 2001, 70, "nginx", "nginx", "nginx: worker process"),
        facts(
            5100,
            1,
            501,
            "quicd",
            "quicd",
            "/usr/local/bin/quicd --listen [::]:443",
        ),
        facts(
            99871,
            1,
            501,
            "my app (x)",
            "my app (x)",
            "/Users/me/bin/my app (x) --serve",
        ),
        // 3001 (curl) has exited: only its TIME_WAIT socket is left.
    ]))
}

fn resolver() -> Box<ScopeResolver> {
    Box::new(|n: &str| match n {
        "lo0" => Some(1),
        "en0" => Some(4),
        _ => None,
    })
}

fn sequoia_runner() -> FixtureRunner {
    FixtureRunner::default()
        .serve(
            "netstat",
            NETSTAT_TCP,
            &["netstat_tcp_sequoia_1.txt", "netstat_tcp_sequoia_2.txt"],
        )
        .serve(
            "netstat",
            NETSTAT_UDP,
            &["netstat_udp_sequoia_1.txt", "netstat_udp_sequoia_2.txt"],
        )
        .serve("netstat", NETSTAT_IFACES, &["netstat_ibn_b21.txt"])
        .serve("lsof", LSOF_ARGS, &["lsof_sequoia.txt"])
        .serve("route", ROUTE_DEFAULT, &["route_default.txt"])
}

fn key(pid: u32) -> ProcKey {
    ProcKey {
        pid,
        start_time: 1_700_000_000_000_000 + u64::from(pid) * 1_000,
    }
}

#[allow(clippy::too_many_arguments)]
fn sock(
    id: u64,
    proto: Proto,
    local: &str,
    remote: Option<&str>,
    state: Option<TcpState>,
    uid: u32,
    owners: Vec<ProcKey>,
    sent: u64,
    received: u64,
) -> SocketSample {
    SocketSample {
        id,
        proto,
        local: sa(local),
        remote: remote.map(sa),
        state,
        uid,
        inode: 0,
        owners,
        sent: Some(sent),
        received: Some(received),
    }
}

#[test]
fn sequoia_capture_becomes_the_same_sample_as_linux() {
    let runner = sequoia_runner();
    let mut c = MacosCollector::new(
        runner.clone(),
        sequoia_procs(),
        Tools::default(),
        resolver(),
    );
    assert_eq!(c.mode(), CollectorMode::Macos);
    let s: Sample = c.collect().unwrap();
    assert!(s.notes.is_empty(), "{:?}", s.notes);

    use Proto::{Tcp, Udp};
    use TcpState::{Established, Listen, TimeWait};
    let curl = ProcKey {
        pid: 3001,
        start_time: 0,
    };
    let expected = vec![
        sock(
            0x1a2b3,
            Tcp,
            "192.0.2.10:52044",
            Some("198.51.100.7:443"),
            Some(Established),
            501,
            vec![key(412)],
            104_857,
            5_242_880,
        ),
        sock(
            0x1a2b4,
            Tcp,
            "[2001:db8::a]:8080",
            Some("[2001:db8::7]:9090"),
            Some(Established),
            501,
            vec![key(412)],
            3_400,
            1_200,
        ),
        sock(
            0x1a2c0,
            Tcp,
            "127.0.0.1:49152",
            Some("127.0.0.1:8080"),
            Some(Established),
            501,
            vec![key(99871)],
            20_480,
            640,
        ),
        sock(
            0x1a2c1,
            Tcp,
            "127.0.0.1:8080",
            Some("127.0.0.1:49152"),
            Some(Established),
            70,
            vec![key(2002)],
            640,
            20_480,
        ),
        // Shared listeners: master and worker hold the same socket.
        sock(
            0xa001,
            Tcp,
            "[::]:8809",
            None,
            Some(Listen),
            0,
            vec![key(2001), key(2002)],
            0,
            0,
        ),
        sock(
            0xa002,
            Tcp,
            "127.0.0.1:8080",
            None,
            Some(Listen),
            0,
            vec![key(2001), key(2002)],
            0,
            0,
        ),
        sock(
            0xa003,
            Tcp,
            "[fe80::1%1]:631",
            None,
            Some(Listen),
            0,
            vec![key(180)],
            0,
            0,
        ),
        // No lsof record (TIME_WAIT): the owner comes from netstat's process:pid.
        sock(
            0x1a2b9,
            Tcp,
            "192.0.2.10:52100",
            Some("203.0.113.5:22"),
            Some(TimeWait),
            0,
            vec![curl],
            2_048,
            4_096,
        ),
        sock(
            0xb001,
            Udp,
            "0.0.0.0:5353",
            None,
            None,
            65,
            vec![key(301)],
            1_200,
            8_840,
        ),
        sock(
            0xb002,
            Udp,
            "[::]:443",
            None,
            None,
            501,
            vec![key(5100)],
            12_000_000,
            14_400_000,
        ),
        sock(
            0xb003,
            Udp,
            "[fe80::1%1]:5353",
            None,
            None,
            501,
            vec![key(412)],
            0,
            0,
        ),
        // (the unbound `*.*` row is not a socket anyone can see traffic on)
        sock(
            0xb005,
            Udp,
            "192.0.2.10:51000",
            Some("198.51.100.53:53"),
            None,
            65,
            vec![key(301)],
            120,
            300,
        ),
    ];
    assert_eq!(s.sockets.len(), expected.len());
    for (got, want) in s.sockets.iter().zip(&expected) {
        assert_eq!(got, want);
    }

    let pids: Vec<u32> = s.processes.iter().map(|p| p.key.pid).collect();
    assert_eq!(pids, [180, 301, 412, 2001, 2002, 3001, 5100, 99871]);
    let chrome = s.processes.iter().find(|p| p.key.pid == 412).unwrap();
    assert_eq!(chrome.key, key(412));
    assert_eq!((chrome.ppid, chrome.uid), (400, 501));
    assert_eq!(chrome.comm, b"Google Chrome He");
    assert_eq!(chrome.name, "Google Chrome Helper");
    assert!(
        chrome
            .cmdline
            .ends_with("Google Chrome Helper --type=utility")
    );
    let app = s.processes.iter().find(|p| p.key.pid == 99871).unwrap();
    assert_eq!(app.name, "my app (x)");
    let gone = s.processes.iter().find(|p| p.key.pid == 3001).unwrap();
    assert_eq!(
        (
            gone.key.start_time,
            gone.name.as_str(),
            gone.cmdline.as_str()
        ),
        (0, "curl", "")
    );
    // Seen by neither lsof nor the kernel lookup: it has exited.
    assert!(!gone.alive && app.alive);

    assert_eq!(s.interfaces.len(), 4);
    assert_eq!(
        s.interfaces[2],
        iface("en0", true, 13_309_516_362, 11_363_839_527)
    );
    assert_eq!(s.default_interface.as_deref(), Some("en0"));
    assert!(s.closed.is_empty() && s.unexplained.is_empty());
    assert_eq!(runner.calls("lsof", LSOF_ARGS), 1);
}

#[test]
fn two_captures_through_the_aggregator_into_a_snapshot() {
    let runner = sequoia_runner();
    let mut c = MacosCollector::new(
        runner.clone(),
        sequoia_procs(),
        Tools::default(),
        resolver(),
    );
    let mut agg = Aggregator::new(c.mode());
    agg.ingest(
        c.collect().unwrap(),
        Duration::from_secs(10),
        1_700_000_000_000,
    );
    let second = c.collect().unwrap();
    // A socket netstat had not shown before makes lsof run again.
    assert_eq!(runner.calls("lsof", LSOF_ARGS), 2);
    let new = second.sockets.iter().find(|s| s.id == 0x1a2c7).unwrap();
    assert_eq!(new.owners, vec![key(99871)]);
    agg.ingest(second, Duration::from_secs(11), 1_700_000_001_000);

    let snap = agg.snapshot();
    assert_eq!(snap.collector.mode, CollectorMode::Macos);
    assert_eq!(snap.time_ms, 1_700_000_001_000);
    let traffic = |pid: u32| {
        let p = snap.processes.iter().find(|p| p.pid == pid).unwrap();
        (p.traffic.up_bytes, p.traffic.down_bytes)
    };
    assert_eq!(traffic(412), (50_000, 1_000_000));
    assert_eq!(traffic(99871), (409_600, 100));
    assert_eq!(traffic(2002), (100, 409_600));
    assert_eq!(traffic(5100), (2_400_000, 1_200_000));
    assert_eq!(traffic(180), (0, 0));
    assert_eq!(snap.totals.traffic.up_bytes, 2_859_700);
    assert_eq!(snap.totals.traffic.down_bytes, 2_609_700);
    let p = snap.processes.iter().find(|p| p.pid == 412).unwrap();
    assert_eq!(
        (p.name.as_str(), p.start_time, p.uid),
        ("Google Chrome Helper", key(412).start_time, 501)
    );
    assert!(p.traffic.up_bps > 0.0 && p.traffic.down_bps > 0.0);

    let en0 = snap.interfaces.iter().find(|i| i.name == "en0").unwrap();
    assert!(en0.is_default && en0.is_up);
    assert_eq!(en0.rx_bytes, 13_309_516_362);
    let gif0 = snap.interfaces.iter().find(|i| i.name == "gif0").unwrap();
    assert!(!gif0.is_up);

    let detail = agg.detail(99871).unwrap();
    assert_eq!(detail.connections.len(), 2);

    // Nothing new since: lsof is not run again (TIME_WAIT has no lsof record and must not force it).
    c.collect().unwrap();
    assert_eq!(runner.calls("lsof", LSOF_ARGS), 2);
}

#[test]
fn lsof_reruns_every_n_samples() {
    let runner = sequoia_runner();
    let tools = Tools {
        lsof_every: 3,
        ..Tools::default()
    };
    let mut c = MacosCollector::new(runner.clone(), sequoia_procs(), tools, resolver());
    for _ in 0..2 {
        c.collect().unwrap(); // 1st run; 2nd: new socket → run
    }
    assert_eq!(runner.calls("lsof", LSOF_ARGS), 2);
    c.collect().unwrap();
    c.collect().unwrap();
    assert_eq!(runner.calls("lsof", LSOF_ARGS), 2);
    c.collect().unwrap(); // third sample since the last run
    assert_eq!(runner.calls("lsof", LSOF_ARGS), 3);
}

#[test]
fn failing_lsof_falls_back_to_netstat_owners() {
    let runner = sequoia_runner().fail("lsof", LSOF_ARGS, 1, "lsof: no permission");
    let mut c = MacosCollector::new(runner, sequoia_procs(), Tools::default(), resolver());
    let s = c.collect().unwrap();
    assert_eq!(s.notes.len(), 1);
    assert_eq!(s.notes[0].severity, Severity::Warning);
    assert!(
        s.notes[0].message.contains("lsof: no permission"),
        "{:?}",
        s.notes
    );
    // process:pid still names the last user of each socket.
    let listener = s.sockets.iter().find(|x| x.id == 0xa001).unwrap();
    assert_eq!(listener.owners, vec![key(2001)]);
    assert_eq!(s.sockets.len(), 12);
}

#[test]
fn missing_netstat_lists_sockets_from_lsof_without_bytes() {
    let runner = FixtureRunner::default()
        .serve("lsof", LSOF_ARGS, &["lsof_sequoia.txt"])
        .fail("route", ROUTE_DEFAULT, 1, "");
    let mut c = MacosCollector::new(runner, sequoia_procs(), Tools::default(), resolver());
    let s = c.collect().unwrap();
    let messages: Vec<&str> = s.notes.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(messages.len(), 4, "{messages:?}"); // tcp, udp, interfaces, lsof-only
    assert!(
        messages
            .iter()
            .any(|m| m.contains("-p tcp") && m.contains("not found"))
    );
    assert!(messages.iter().any(|m| m.contains("lsof only")));
    // lsof lists the nginx listeners under both pids: one socket each, two owners.
    let l = s
        .sockets
        .iter()
        .find(|x| x.local == sa("[::]:8809"))
        .unwrap();
    assert_eq!(l.owners, vec![key(2001), key(2002)]);
    assert_eq!((l.sent, l.received), (None, None));
    // 14 usable lsof records; the two listeners both nginx pids hold count
    // once each. pid 412's fe80::1 port 5353 on en0 (KAME scope 4) and on lo0
    // are two sockets.
    assert_eq!(s.sockets.len(), 12);
    let scoped: Vec<SocketAddr> = s
        .sockets
        .iter()
        .filter(|x| x.local.port() == 5353 && x.local.is_ipv6())
        .map(|x| x.local)
        .collect();
    assert_eq!(scoped, [sa("[fe80::1%4]:5353"), sa("[fe80::1%1]:5353")]);
    assert!(s.interfaces.is_empty());
    assert_eq!(s.default_interface, None);
}

#[test]
fn missing_everything_is_notes_not_a_crash() {
    let mut c = MacosCollector::new(
        FixtureRunner::default(),
        FixtureProcs(HashMap::new()),
        Tools::default(),
        resolver(),
    );
    let s = c.collect().unwrap();
    assert!(s.sockets.is_empty() && s.processes.is_empty() && s.interfaces.is_empty());
    assert_eq!(s.notes.len(), 4, "{:?}", s.notes); // netstat tcp, udp, lsof, interfaces
    assert!(s.notes.iter().all(|n| n.severity == Severity::Warning));
}

// ---------------------------------------------------------------- the real runner

/// A stand-in tool: a shell script in a temp dir. The real runner spawns it.
fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn real_runner_with_scripts_missing_and_hanging_tools() {
    let dir = tempfile::tempdir().unwrap();
    let fx = |f: &str| fixture_path(f).to_string_lossy().into_owned();
    // netstat: prints the capture matching its arguments, as the real one would.
    let netstat = script(
        &dir,
        "netstat",
        &format!(
            "case \"$*\" in\n  '{}') cat '{}';;\n  '{}') cat '{}';;\n  '{}') cat '{}';;\n  *) echo \"netstat: bad args $*\" >&2; exit 64;;\nesac",
            NETSTAT_TCP.join(" "),
            fx("netstat_tcp_sequoia_1.txt"),
            NETSTAT_UDP.join(" "),
            fx("netstat_udp_sequoia_1.txt"),
            NETSTAT_IFACES.join(" "),
            fx("netstat_ibn_b21.txt"),
        ),
    );
    // lsof hangs: the collector must stop it and go on.
    let lsof = script(&dir, "lsof", "sleep 30");
    let tools = Tools {
        netstat,
        lsof,
        route: dir
            .path()
            .join("no-such-route")
            .to_string_lossy()
            .into_owned(),
        timeout: Duration::from_millis(300),
        lsof_every: 5,
    };
    let mut c = MacosCollector::new(SystemRunner::default(), sequoia_procs(), tools, resolver());
    let started = std::time::Instant::now();
    let s = c.collect().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
    assert!(
        s.notes[0].message.contains("did not finish"),
        "{:?}",
        s.notes
    );
    assert_eq!(s.sockets.len(), 12);
    let chrome = s.sockets.iter().find(|x| x.id == 0x1a2b3).unwrap();
    assert_eq!(
        (chrome.sent, chrome.received),
        (Some(104_857), Some(5_242_880))
    );
    assert_eq!(chrome.owners, vec![key(412)]);
    assert_eq!(s.interfaces.len(), 4);
    assert_eq!(s.default_interface, None);
}

// ---------------------------------------------------------------- launchd

#[test]
fn launchd_plist_is_well_formed_and_complete() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../launchd/com.sstop.sstopd.plist");
    let value = plist::Value::from_file(&path).unwrap();
    let d = value.as_dictionary().unwrap();
    let s = |k: &str| {
        d.get(k)
            .and_then(|v| v.as_string())
            .unwrap_or_else(|| panic!("{k}"))
    };
    let b = |k: &str| {
        d.get(k)
            .and_then(|v| v.as_boolean())
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(s("Label"), "com.sstop.sstopd");
    assert_eq!(s("UserName"), "root");
    assert!(b("RunAtLoad"));
    assert!(b("KeepAlive"));
    assert_eq!(s("StandardOutPath"), "/var/log/sstopd.log");
    assert_eq!(s("StandardErrorPath"), "/var/log/sstopd.log");
    let args: Vec<&str> = d
        .get("ProgramArguments")
        .and_then(|v| v.as_array())
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert!(args[0].ends_with("/sstopd"), "{args:?}");
    let after = |flag: &str| {
        let i = args
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("{flag}"));
        args[i + 1]
    };
    assert_eq!(after("--socket"), "/var/run/sstopd.sock");
    assert_eq!(after("--socket-group"), "sstop");
    // The daemon parses this as octal text; a launchd-managed socket would need decimal 432.
    assert_eq!(after("--socket-mode"), "0660");
    assert_eq!(u32::from_str_radix(after("--socket-mode"), 8).unwrap(), 432);
    assert!(
        d.get("Sockets").is_none(),
        "the daemon creates its own socket"
    );
}
