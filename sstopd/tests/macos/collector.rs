//! The collector on captured output (fixture runner → Sample → Snapshot) and
//! with the real runner against stand-in scripts, missing and hanging tools.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use proto::{CollectorMode, Proto, Severity, TcpState};
use sstopd::aggregate::Aggregator;
use sstopd::collect::macos::collector::{
    LSOF_ARGS, NETSTAT_IFACES, NETSTAT_TCP, NETSTAT_UDP, ROUTE_DEFAULT,
};
use sstopd::collect::macos::{MacosCollector, SystemRunner, Tools};
use sstopd::collect::{Collector, ProcKey, Sample};

use super::support::*;

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
fn failing_lsof_is_retried_only_every_n_samples_and_stays_noted() {
    let runner = sequoia_runner().fail("lsof", LSOF_ARGS, 1, "lsof: no permission");
    let tools = Tools {
        lsof_every: 3,
        ..Tools::default()
    };
    let mut c = MacosCollector::new(runner.clone(), sequoia_procs(), tools, resolver());
    for i in 1..=4 {
        let s = c.collect().unwrap();
        assert_eq!(s.notes.len(), 1, "sample {i}: {:?}", s.notes);
        assert!(s.notes[0].message.contains("no permission"));
    }
    // Ran on sample 1, skipped 2 and 3, ran again on 4.
    assert_eq!(runner.calls("lsof", LSOF_ARGS), 2);
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
