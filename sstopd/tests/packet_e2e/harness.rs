//! Drives a collector + `Aggregator` through the library, sampling every 200 ms, and
//! compares per-process bytes with the truth the helpers report.

use std::time::{Duration, Instant};

use proto::Snapshot;
use sstopd::aggregate::Aggregator;
use sstopd::collect::Collector;
use sstopd::collect::linux::LinuxCollector;
use sstopd::collect::linux::fallback::PacketCollector;

use super::lab::Proc;

pub const MAIN_TOL: f64 = 0.03;
pub const FALLBACK_TOL: f64 = 0.05;

#[derive(Clone, Copy)]
pub enum Mode {
    Main,
    Fallback,
}

pub struct Watch {
    pub collector: Box<dyn Collector>,
    pub agg: Aggregator,
    pub t0: Instant,
}

impl Watch {
    /// Open the collector (inside the calling thread's namespace) and take a first sample.
    pub fn open(mode: Mode) -> Watch {
        let collector: Box<dyn Collector> = match mode {
            Mode::Main => Box::new(LinuxCollector::open().unwrap()),
            Mode::Fallback => Box::new(PacketCollector::open()),
        };
        assert!(collector.caps().packet_bytes, "capture must run as root");
        let agg = Aggregator::new(collector.mode());
        let mut w = Watch {
            collector,
            agg,
            t0: Instant::now(),
        };
        w.tick();
        w
    }

    pub fn tick(&mut self) -> Snapshot {
        let sample = self.collector.collect().unwrap();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        self.agg.ingest(sample, self.t0.elapsed(), wall);
        self.agg.snapshot()
    }

    /// Sample every 200 ms while the helpers run; their outputs in order.
    pub fn run(&mut self, procs: &mut [&mut Proc]) -> Vec<String> {
        let start = Instant::now();
        while !procs.iter_mut().all(|p| p.exited()) {
            assert!(start.elapsed() < Duration::from_secs(60), "helpers hung");
            self.tick();
            std::thread::sleep(Duration::from_millis(200));
        }
        procs
            .iter_mut()
            .map(|p| p.output(Duration::from_secs(1)))
            .collect()
    }

    /// Sample until every `(pid, up, down)` is reached within `tol` (or 3 s pass); the
    /// last snapshot.
    pub fn settle(&mut self, want: &[(u32, u64, u64)], tol: f64) -> Snapshot {
        let start = Instant::now();
        loop {
            let snap = self.tick();
            let done = want.iter().all(|&(pid, up, down)| {
                let (u, d) = bytes(&snap, pid);
                close(u, up, tol) && close(d, down, tol)
            });
            if done || start.elapsed() > Duration::from_secs(3) {
                return snap;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

pub fn bytes(snap: &Snapshot, pid: u32) -> (u64, u64) {
    snap.processes
        .iter()
        .filter(|p| p.pid == pid)
        .map(|p| (p.traffic.up_bytes, p.traffic.down_bytes))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

pub fn close(got: u64, truth: u64, tol: f64) -> bool {
    (got as f64 - truth as f64).abs() <= truth as f64 * tol + 64.0
}

pub fn check(snap: &Snapshot, what: &str, pid: u32, up: u64, down: u64, tol: f64) {
    let (u, d) = bytes(snap, pid);
    assert!(
        close(u, up, tol) && close(d, down, tol),
        "{what} (pid {pid}): counted up {u} down {d}, truth up {up} down {down} (±{}%)\nprocesses: {:?}\nunattributed: {:?}\nnotes: {:?}",
        tol * 100.0,
        snap.processes
            .iter()
            .map(|p| (p.pid, &p.name, p.traffic.up_bytes, p.traffic.down_bytes))
            .collect::<Vec<_>>(),
        snap.unattributed,
        snap.collector.notes,
    );
}

pub fn num(s: &str) -> u64 {
    s.trim().parse().unwrap()
}

/// Wait until something in this thread's namespace is bound to local `port` (any table).
pub fn wait_bound(port: u16) {
    let needle = format!(":{port:04X} ");
    let start = Instant::now();
    loop {
        let bound = ["udp", "udp6", "tcp", "tcp6"].iter().any(|t| {
            std::fs::read_to_string(format!("/proc/thread-self/net/{t}"))
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .is_some_and(|a| format!("{a} ").ends_with(&needle))
                })
        });
        if bound {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing bound to port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn pair(s: &str) -> (u64, u64) {
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}
