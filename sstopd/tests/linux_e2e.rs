//! End to end on the real kernel (root, as CI runs): real processes with distinctive
//! names move known byte counts; `LinuxCollector` + `Aggregator`, ticked here, must
//! credit them within ±3 % per direction, once per end, nothing double-counted.
//!
//! Traffic stays on loopback or inside a network namespace + veth pair each test makes
//! (named with this process's pid, deleted by a guard). Other tests on the host move
//! traffic too, so assertions look at our processes by pid, and at sums, never at
//! host-wide totals.

#![cfg(target_os = "linux")]
// Helpers shared by the tests panic on setup failure by design, like the tests themselves.
#![allow(clippy::unwrap_used)]

#[path = "linux_e2e/support.rs"]
mod support;

#[path = "linux_e2e/names.rs"]
mod names;

use std::process::Command;
use std::time::Duration;

use support::*;
// ---- the tests ------------------------------------------------------------------------

/// One client in the host namespace against a server inside our namespace.
fn transfer_over_veth(v6: bool, up: u64, down: u64, tag: &str) {
    let _slot = shared_slot();
    let ns = Netns::new();
    let bin = Bin::new();
    let (host, server_addr) = if v6 {
        (&ns.v6.0, &ns.v6.1)
    } else {
        (&ns.v4.0, &ns.v4.1)
    };
    let _ = host;
    let mut server = spawn(
        Some(&ns.name),
        &bin.python(&name("srv")),
        "server.py",
        std::slice::from_ref(server_addr),
    );
    let port = server.line();
    let mut m = Monitor::new();
    let cname = name(tag);
    let mut client = spawn(
        None,
        &bin.python(&cname),
        "client.py",
        &[server_addr.clone(), port, up.to_string(), down.to_string()],
    );
    let done = m.during(|| client.line());
    assert_eq!(done, format!("done {down}"));
    let pid = client.pid();
    m.tick();
    let row = m
        .last
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .expect("client row while it runs");
    assert_eq!(row.name, cname);
    assert!(row.alive);
    // The remote host row names our client.
    let remote: std::net::IpAddr = server_addr.parse().unwrap();
    let h = m
        .last
        .remote_hosts
        .iter()
        .find(|h| h.addr == remote)
        .expect("remote host row");
    assert!(h.processes.contains(&cname), "{:?}", h.processes);
    // Close: the last bytes arrive with the destroy event, credited through the cookie
    // cache to the process that has exited by then.
    client.release();
    let _ = client.child.wait();
    let want = (up + 8, down);
    let ok = m.until(Duration::from_secs(5), |s| {
        s.processes.iter().any(|p| {
            p.pid == pid
                && within(p.traffic.up_bytes, want.0, 3.0)
                && within(p.traffic.down_bytes, want.1, 3.0)
        })
    });
    let (got_up, got_down) = m.bytes(pid);
    assert!(
        ok,
        "client {cname}: up {got_up} down {got_down}, want {want:?}"
    );
    // Still listed under its own name after exiting, marked gone.
    let row = m.last.processes.iter().find(|p| p.pid == pid).unwrap();
    assert_eq!((row.name.as_str(), row.alive), (cname.as_str(), false));
    assert_sums(&m.last);
    drop(server);
}

#[test]
fn tcp_v4_upload_over_veth() {
    transfer_over_veth(false, 3_000_000, 0, "u4");
}

#[test]
fn tcp_v4_download_over_veth() {
    transfer_over_veth(false, 0, 4_000_000, "d4");
}

#[test]
fn tcp_v4_both_directions_over_veth() {
    transfer_over_veth(false, 2_500_000, 1_500_000, "b4");
}

#[test]
fn tcp_v6_both_directions_over_veth() {
    transfer_over_veth(true, 2_000_000, 3_000_000, "b6");
}

#[test]
fn loopback_counts_once_per_end() {
    let _slot = shared_slot();
    let bin = Bin::new();
    let sname = name("lsv");
    let mut server = spawn(
        None,
        &bin.python(&sname),
        "server.py",
        &["127.0.0.1".into()],
    );
    let port = server.line();
    let mut m = Monitor::new();
    let (up, down) = (1_000_000u64, 2_000_000u64);
    let cname = name("lcl");
    let mut client = spawn(
        None,
        &bin.python(&cname),
        "client.py",
        &["127.0.0.1".into(), port, up.to_string(), down.to_string()],
    );
    m.during(|| client.line());
    let (cp, sp) = (client.pid(), server.pid());
    client.release();
    let ok = m.until(Duration::from_secs(5), |s| {
        let b = |pid| {
            s.processes
                .iter()
                .filter(|p| p.pid == pid)
                .fold((0, 0), |a, p| {
                    (a.0 + p.traffic.up_bytes, a.1 + p.traffic.down_bytes)
                })
        };
        let (c, sv) = (b(cp), b(sp));
        within(c.0, up + 8, 3.0)
            && within(c.1, down, 3.0)
            && within(sv.0, down, 3.0)
            && within(sv.1, up + 8, 3.0)
    });
    assert!(ok, "client {:?} server {:?}", m.bytes(cp), m.bytes(sp));
    // Each end counted once: the two ends together moved exactly what was sent.
    let (c, s) = (m.bytes(cp), m.bytes(sp));
    assert_within("both ends up", c.0 + s.0, up + 8 + down);
    assert_within("both ends down", c.1 + s.1, up + 8 + down);
    let lp = m
        .last
        .listen_ports
        .iter()
        .find(|l| l.pid == sp)
        .expect("listen port row");
    assert_eq!(lp.name, sname);
    assert_sums(&m.last);
}

#[test]
fn socket_shared_by_parent_and_child_is_split_exactly() {
    let _slot = shared_slot();
    let bin = Bin::new();
    let mut server = spawn(
        None,
        &bin.python(&name("ssv")),
        "server.py",
        &["127.0.0.1".into()],
    );
    let port = server.line();
    let mut m = Monitor::new();
    let go = tempfile::tempdir().unwrap();
    let go_file = go.path().join("go");
    let (up, down) = (2_000_000u64, 1_000_000u64);
    let mut parent = spawn(
        None,
        &bin.python(&name("shp")),
        "shared.py",
        &[
            "127.0.0.1".into(),
            port,
            up.to_string(),
            down.to_string(),
            go_file.display().to_string(),
        ],
    );
    let child_line = parent.line();
    let cpid: u32 = child_line.strip_prefix("child ").unwrap().parse().unwrap();
    let ppid = parent.pid();
    // Wait until both are seen holding the socket, then let the child send.
    let shared = m.until(Duration::from_secs(5), |s| {
        s.processes
            .iter()
            .filter(|p| (p.pid == ppid || p.pid == cpid) && p.shared >= 1)
            .count()
            == 2
    });
    assert!(shared, "parent and child not both marked shared");
    std::fs::write(&go_file, b"go").unwrap();
    m.during(|| parent.line());
    parent.release();
    let want = (up + 8, down);
    let ok = m.until(Duration::from_secs(5), |s| {
        let sum = s
            .processes
            .iter()
            .filter(|p| p.pid == ppid || p.pid == cpid)
            .fold((0, 0), |a, p| {
                (a.0 + p.traffic.up_bytes, a.1 + p.traffic.down_bytes)
            });
        within(sum.0, want.0, 3.0) && within(sum.1, want.1, 3.0)
    });
    let (p, c) = (m.bytes(ppid), m.bytes(cpid));
    assert!(ok, "parent {p:?} child {c:?} want {want:?}");
    // Split evenly: each holds half of what moved while both held it.
    assert_within("parent half up", p.0, want.0 / 2);
    assert_within("child half up", c.0, want.0 / 2);
    assert_within("parent half down", p.1, want.1 / 2);
    assert!(
        p.0.abs_diff(c.0) <= want.0 / 100 + 16,
        "uneven split {p:?} {c:?}"
    );
    assert_sums(&m.last);
}

#[test]
fn short_connections_are_attributed_to_their_process() {
    let _slot = shared_slot();
    let ns = Netns::new();
    let bin = Bin::new();
    let mut server = spawn(
        Some(&ns.name),
        &bin.python(&name("csv")),
        "server.py",
        std::slice::from_ref(&ns.v4.1),
    );
    let port = server.line();
    let mut m = Monitor::new();
    let size = 4096u64;
    let mut churn = spawn(
        None,
        &bin.python(&name("chu")),
        "churn.py",
        &[
            ns.v4.1.clone(),
            port,
            "60".into(),
            "3".into(),
            size.to_string(),
        ],
    );
    let line = m.during(|| churn.line());
    let n: u64 = line.strip_prefix("done ").unwrap().parse().unwrap();
    assert!(n >= 150, "only {n} connections in 3 s");
    let pid = churn.pid();
    let want = (n * (size + 8), n * size);
    m.until(Duration::from_secs(3), |s| {
        s.processes.iter().any(|p| {
            p.pid == pid
                && p.traffic.up_bytes >= want.0 * 98 / 100
                && p.traffic.down_bytes >= want.1 * 98 / 100
        })
    });
    let got = m.bytes(pid);
    assert!(
        got.0 >= want.0 * 98 / 100 && got.1 >= want.1 * 98 / 100 && got.0 <= want.0 * 103 / 100,
        "churn process credited {got:?} of {want:?} (notes: {:?}; unattributed: {:?}; others: {:?})",
        m.notes,
        m.last.unattributed,
        m.last
            .processes
            .iter()
            .filter(|p| p.traffic.up_bytes > 10_000)
            .map(|p| (
                p.pid,
                p.name.as_str(),
                p.traffic.up_bytes,
                p.traffic.down_bytes
            ))
            .collect::<Vec<_>>()
    );
    assert_sums(&m.last);
}

#[test]
fn five_thousand_idle_connections_beside_one_busy_one() {
    let _alone = LOAD.write().unwrap_or_else(|e| e.into_inner());
    let bin = Bin::new();
    let mut server = spawn(
        None,
        &bin.python(&name("isv")),
        "server.py",
        &["127.0.0.1".into()],
    );
    let port = server.line();
    let mut idle = spawn(
        None,
        &bin.python(&name("idl")),
        "idle.py",
        &["127.0.0.1".into(), port.clone(), "5000".into()],
    );
    assert_eq!(idle.line(), "ready 5000");
    let mut m = Monitor::new();
    let ipid = idle.pid();
    assert!(
        m.until(Duration::from_secs(5), |s| s
            .processes
            .iter()
            .any(|p| p.pid == ipid && p.connections >= 5000)),
        "idle process connections not counted"
    );
    let (up, down) = (3_000_000u64, 3_000_000u64);
    let mut busy = spawn(
        None,
        &bin.python(&name("bsy")),
        "client.py",
        &["127.0.0.1".into(), port, up.to_string(), down.to_string()],
    );
    m.during(|| busy.line());
    let bpid = busy.pid();
    busy.release();
    let ok = m.until(Duration::from_secs(5), |s| {
        s.processes.iter().any(|p| {
            p.pid == bpid
                && within(p.traffic.up_bytes, up + 8, 3.0)
                && within(p.traffic.down_bytes, down, 3.0)
        })
    });
    assert!(ok, "busy {:?}", m.bytes(bpid));
    assert_eq!(m.bytes(ipid), (0, 0));
    assert_sums(&m.last);
    eprintln!("slowest collect with ~10k loopback sockets: {:?}", m.worst);
    idle.release();
}

// ---- degraded /proc scans, in a re-executed copy of this test binary -------------------

/// Run `probe` (an ignored test below) in a fresh process of this binary, optionally as
/// another user, and return its stdout lines.
fn run_probe(as_nobody: bool, env: &[(&str, String)]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args([
        "--exact",
        "probe",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest prints "test probe ... " before the first line of output: split on the tag.
    text.split("PROBE ")
        .skip(1)
        .filter_map(|l| l.lines().next())
        .map(str::to_string)
        .collect()
}

/// Inode of a socket fd of this process.
fn inode_of(fd: &impl std::os::fd::AsRawFd) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    let s = link.to_string_lossy();
    s.trim_start_matches("socket:[")
        .trim_end_matches(']')
        .parse()
        .unwrap()
}

/// Scans /proc once and prints what it found (run through `run_probe`).
#[test]
#[ignore = "helper: run by the tests below in a separate process"]
fn probe() {
    use sstopd::collect::linux::procmap::{ProcMap, Wanted};
    let mine = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    if std::env::var("PROBE_NOFILE").is_ok() {
        // No descriptor left at all: the scan cannot even list /proc.
        let lowest_free = std::os::fd::AsRawFd::as_raw_fd(&std::fs::File::open("/").unwrap());
        let n = lowest_free as u64;
        let lim = libc::rlimit {
            rlim_cur: n,
            rlim_max: n,
        };
        // SAFETY: setrlimit reads one struct we own; this process is the probe alone.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
    let mut map = ProcMap::new("/proc");
    map.refresh(&Wanted::default(), Duration::ZERO);
    println!("PROBE mine {}", map.owners(inode_of(&mine)).len());
    if let Ok(other) = std::env::var("PROBE_OTHER_INODE") {
        println!("PROBE other {}", map.owners(other.parse().unwrap()).len());
    }
    for n in map.notes() {
        println!("PROBE note {}", n.message);
    }
}

#[test]
fn without_ptrace_rights_other_users_sockets_are_unattributed_and_said_once() {
    // A root-owned socket the unprivileged scan cannot attribute.
    let root_sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lines = run_probe(
        true,
        &[("PROBE_OTHER_INODE", inode_of(&root_sock).to_string())],
    );
    assert!(lines.contains(&"mine 1".to_string()), "{lines:?}");
    assert!(lines.contains(&"other 0".to_string()), "{lines:?}");
    let notes: Vec<&String> = lines.iter().filter(|l| l.starts_with("note ")).collect();
    assert_eq!(
        notes,
        vec!["note missing CAP_SYS_PTRACE/CAP_DAC_READ_SEARCH: other users' sockets unattributed"]
    );
}

#[test]
fn b27b_out_of_descriptors_is_one_note_and_a_partial_scan() {
    let lines = run_probe(false, &[("PROBE_NOFILE", "1".to_string())]);
    let notes: Vec<&String> = lines.iter().filter(|l| l.starts_with("note ")).collect();
    assert_eq!(notes.len(), 1, "{lines:?}");
    assert!(notes[0].contains("EMFILE"), "{lines:?}");
    // Degraded, not crashed: nothing attributed this time.
    assert!(lines.contains(&"mine 0".to_string()), "{lines:?}");
}
