//! AF_PACKET counting end to end, as root: real sockets, real traffic of known size, the
//! collectors and the `Aggregator` driven through the library (ticks taken here).
//!
//! Each scenario runs in its own pair of network namespaces (see `lab.rs`): the collector
//! lives in namespace L on a thread that entered it, the peer in P, so concurrent tests of
//! other crates cannot add bytes to ours. Truth is what the helper programs report.
#![cfg(target_os = "linux")]

#[path = "packet_e2e/lab.rs"]
mod lab;
#[path = "packet_e2e/scripts.rs"]
mod scripts;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lab::{Lab, Proc};
use proto::{Proto, Snapshot};
use scripts::*;
use sstopd::aggregate::Aggregator;
use sstopd::collect::Collector;
use sstopd::collect::linux::LinuxCollector;
use sstopd::collect::linux::fallback::PacketCollector;

/// Scenarios run one at a time: they pace traffic and compete for 2 cores otherwise.
static SERIAL: Mutex<()> = Mutex::new(());

const MAIN_TOL: f64 = 0.03;
const FALLBACK_TOL: f64 = 0.05;

#[derive(Clone, Copy)]
enum Mode {
    Main,
    Fallback,
}

struct Watch {
    collector: Box<dyn Collector>,
    agg: Aggregator,
    t0: Instant,
}

impl Watch {
    /// Open the collector (inside the calling thread's namespace) and take a first sample.
    fn open(mode: Mode) -> Watch {
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

    fn tick(&mut self) -> Snapshot {
        let sample = self.collector.collect().unwrap();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        self.agg.ingest(sample, self.t0.elapsed(), wall);
        self.agg.snapshot()
    }

    /// Sample every 200 ms while the helpers run; their outputs in order.
    fn run(&mut self, procs: &mut [&mut Proc]) -> Vec<String> {
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
    fn settle(&mut self, want: &[(u32, u64, u64)], tol: f64) -> Snapshot {
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

fn bytes(snap: &Snapshot, pid: u32) -> (u64, u64) {
    snap.processes
        .iter()
        .filter(|p| p.pid == pid)
        .map(|p| (p.traffic.up_bytes, p.traffic.down_bytes))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

fn close(got: u64, truth: u64, tol: f64) -> bool {
    (got as f64 - truth as f64).abs() <= truth as f64 * tol + 64.0
}

fn check(snap: &Snapshot, what: &str, pid: u32, up: u64, down: u64, tol: f64) {
    let (u, d) = bytes(snap, pid);
    assert!(
        close(u, up, tol) && close(d, down, tol),
        "{what} (pid {pid}): counted up {u} down {d}, truth up {up} down {down} (±{}%)\nprocesses: {:?}\nunattributed: {:?}\nnotes: {:?}",
        tol * 100.0,
        snap.processes.iter().map(|p| (p.pid, &p.name, p.traffic.up_bytes, p.traffic.down_bytes)).collect::<Vec<_>>(),
        snap.unattributed,
        snap.collector.notes,
    );
}

fn num(s: &str) -> u64 {
    s.trim().parse().unwrap()
}

fn pair(s: &str) -> (u64, u64) {
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// UDP sender at a known rate (2,000 × 1,000 B/s for 2 s) through the veth.
fn udp_through_veth(mode: Mode, tol: f64) {
    let _g = serial();
    let lab = Lab::new();
    let (peer, l) = (lab.peer_v4.clone(), &lab);
    let _sink = lab.spawn_peer(UDP_SINK, &["0.0.0.0", "9000"]);
    let mut tx = l.spawn_local(UDP_TX, &[&peer, "9000", "4000", "1000", "2000"]);
    let pid = tx.pid();
    let snap = lab.in_local(move || {
        let mut w = Watch::open(mode);
        let out = w.run(&mut [&mut tx]);
        let sent = num(&out[0]);
        assert_eq!(sent, 4_000_000);
        let snap = w.settle(&[(pid, sent, 0)], tol);
        (snap, sent)
    });
    check(&snap.0, "UDP sender", pid, snap.1, 0, tol);
}

#[test]
fn main_udp_sender_at_known_rate_through_veth() {
    udp_through_veth(Mode::Main, MAIN_TOL);
}

#[test]
fn fallback_udp_sender_at_known_rate_through_veth() {
    udp_through_veth(Mode::Fallback, FALLBACK_TOL);
}
