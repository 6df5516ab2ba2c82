//! Guards, helper processes and the hand-ticked monitor shared by the e2e tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use proto::{CollectorMode, Snapshot};
use sstopd::aggregate::Aggregator;
use sstopd::collect::Collector;
use sstopd::collect::linux::LinuxCollector;

pub const TICK: Duration = Duration::from_millis(250);

// ---- guards -------------------------------------------------------------------------

/// A child process killed and reaped on drop, whatever happened.
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub out: BufReader<std::process::ChildStdout>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).unwrap();
        assert!(!s.is_empty(), "child {} ended early", self.pid());
        s.trim().to_string()
    }

    /// Close stdin: the scripts exit when it closes.
    pub fn release(&mut self) {
        self.stdin.take();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A network namespace with a veth pair: host side `.1`, namespace side `.2`.
pub struct Netns {
    pub name: String,
    pub host_if: String,
    pub v4: (String, String),
    pub v6: (String, String),
}

pub static SEQ: AtomicU32 = AtomicU32::new(0);

/// The 5,000-connection test floods every collector's connect tracer (tens of thousands of
/// state changes in a second: its perf rings overflow and say so in the notes). It runs
/// alone; the others share.
pub static LOAD: RwLock<()> = RwLock::new(());

pub fn shared_slot() -> RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(|e| e.into_inner())
}

pub fn run(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(st.success(), "{args:?} failed");
}

impl Netns {
    pub fn new() -> Netns {
        let pid = std::process::id();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("sstl{pid}n{n}");
        let host_if = format!("sl{pid}{n}a");
        let peer_if = format!("sl{pid}{n}b");
        // A /24 and a /64 of our own, derived from pid and sequence.
        let id = (pid % 200) * 16 + n % 16;
        let (a, b) = (100 + id / 250, id % 250);
        let ns = Netns {
            v4: (format!("10.{a}.{b}.1"), format!("10.{a}.{b}.2")),
            v6: (
                format!("fd5e:{a:x}:{b:x}::1"),
                format!("fd5e:{a:x}:{b:x}::2"),
            ),
            name,
            host_if,
        };
        run(&["ip", "netns", "add", &ns.name]);
        run(&[
            "ip",
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer_if,
            "netns",
            &ns.name,
        ]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", ns.v4.0),
            "dev",
            &ns.host_if,
        ]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/64", ns.v6.0),
            "dev",
            &ns.host_if,
            "nodad",
        ]);
        run(&["ip", "link", "set", &ns.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut full = vec!["ip", "-n", &ns.name];
            full.extend_from_slice(args);
            run(&full);
        };
        inside(&["addr", "add", &format!("{}/24", ns.v4.1), "dev", &peer_if]);
        inside(&[
            "addr",
            "add",
            &format!("{}/64", ns.v6.1),
            "dev",
            &peer_if,
            "nodad",
        ]);
        inside(&["link", "set", &peer_if, "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

// ---- processes with distinctive names ------------------------------------------------

pub struct Bin {
    pub dir: tempfile::TempDir,
}

impl Bin {
    pub fn new() -> Bin {
        Bin {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A copy of python3 named `name` (≤ 15 bytes: that is the comm we look for).
    pub fn python(&self, name: &str) -> PathBuf {
        assert!(name.len() <= 15);
        let path = self.dir.path().join(name);
        if !path.exists() {
            std::fs::copy("/usr/bin/python3", &path).unwrap();
        }
        path
    }
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/linux_e2e")
        .join(name)
}

/// Spawn `cmd`, retrying briefly on ETXTBSY: a binary copied a moment ago may still be
/// open in a child another test thread is forking, until that child execs.
pub fn spawn_retrying(cmd: &mut Command) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

pub fn spawn(netns: Option<&str>, exe: &Path, script_name: &str, args: &[String]) -> Proc {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.arg(script(script_name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = spawn_retrying(&mut cmd);
    let stdin = child.stdin.take();
    let out = BufReader::new(child.stdout.take().unwrap());
    Proc { child, stdin, out }
}

/// Unique short process names per test process.
pub fn name(tag: &str) -> String {
    format!("s{}{}", tag, std::process::id() % 100_000)
}

// ---- the monitor, ticked by hand ------------------------------------------------------

pub struct Monitor {
    pub collector: LinuxCollector,
    pub agg: Aggregator,
    pub t0: Instant,
    pub last: Snapshot,
    /// Slowest collect() seen.
    pub worst: Duration,
    /// Every distinct note seen (a note lasts one tick; failures should show them all).
    pub notes: Vec<String>,
}

impl Monitor {
    pub fn new() -> Monitor {
        let mut m = Monitor {
            collector: LinuxCollector::open().expect("netlink collector (root, inet_diag)"),
            agg: Aggregator::new(CollectorMode::Netlink),
            t0: Instant::now(),
            last: Snapshot::empty(CollectorMode::Netlink),
            worst: Duration::ZERO,
            notes: Vec::new(),
        };
        m.tick();
        m
    }

    pub fn tick(&mut self) -> &Snapshot {
        let started = Instant::now();
        let sample = self.collector.collect().unwrap();
        self.worst = self.worst.max(started.elapsed());
        for n in &sample.notes {
            if !self.notes.contains(&n.message) {
                self.notes.push(n.message.clone());
            }
        }
        self.agg.ingest(sample, self.t0.elapsed(), 0);
        self.last = self.agg.snapshot();
        &self.last
    }

    /// Tick every [`TICK`] until `done` holds or `timeout` passes; returns whether it held.
    pub fn until(&mut self, timeout: Duration, mut done: impl FnMut(&Snapshot) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if done(self.tick()) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(TICK);
        }
    }

    /// Tick while running `f` in between (e.g. waiting for a child's line).
    pub fn during<T: Send>(&mut self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            let h = s.spawn(f);
            while !h.is_finished() {
                self.tick();
                std::thread::sleep(TICK);
            }
            h.join().unwrap()
        })
    }

    pub fn bytes(&self, pid: u32) -> (u64, u64) {
        self.last
            .processes
            .iter()
            .filter(|p| p.pid == pid)
            .fold((0, 0), |acc, p| {
                (acc.0 + p.traffic.up_bytes, acc.1 + p.traffic.down_bytes)
            })
    }
}

pub fn within(got: u64, want: u64, pct: f64) -> bool {
    (got as f64 - want as f64).abs() <= want as f64 * pct / 100.0
}

pub fn assert_within(what: &str, got: u64, want: u64) {
    assert!(
        within(got, want, 3.0),
        "{what}: got {got}, want {want} ±3 %"
    );
}

/// Per-process figures plus the unattributed rows add up to the totals, byte for byte.
pub fn assert_sums(s: &Snapshot) {
    let up: u64 = s.processes.iter().map(|p| p.traffic.up_bytes).sum::<u64>()
        + s.unattributed
            .iter()
            .map(|u| u.traffic.up_bytes)
            .sum::<u64>();
    let down: u64 = s
        .processes
        .iter()
        .map(|p| p.traffic.down_bytes)
        .sum::<u64>()
        + s.unattributed
            .iter()
            .map(|u| u.traffic.down_bytes)
            .sum::<u64>();
    // Processes dropped after retention take their bytes out of the sum; none here
    // within one test's lifetime (< 60 s).
    assert_eq!(
        (up, down),
        (s.totals.traffic.up_bytes, s.totals.traffic.down_bytes)
    );
}
