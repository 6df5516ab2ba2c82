//! Samples + time → snapshots. Pure: the caller passes the clock in.
//!
//! FIRST CUT (scaffolding for the service core): per-socket deltas, EMA rates,
//! per-process cumulative bytes, totals history, interfaces. The Linux
//! collector issue completes it (hosts, listen ports, shared split, closed
//! sockets, gone processes, per-process history, trend).

pub mod ema;

use std::collections::HashMap;
use std::time::Duration;

use proto::{
    CollectorInfo, CollectorMode, Connection, Detail, HISTORY_LEN, Interface, Process, RatePoint,
    Snapshot, Totals, Traffic, Trend,
};

use crate::collect::{ProcKey, ProcessInfo, Sample, SocketId, SocketSample};

#[derive(Debug, Clone)]
struct SocketState {
    last_sent: u64,
    last_received: u64,
    first_seen: Duration,
    traffic: Traffic,
    sample: SocketSample,
}

#[derive(Debug, Clone)]
struct ProcState {
    info: ProcessInfo,
    traffic: Traffic,
    history: Vec<RatePoint>,
}

#[derive(Debug, Clone)]
struct IfaceState {
    last_rx: u64,
    last_tx: u64,
    row: Interface,
}

/// Counter delta that treats a counter going backwards (reset, reuse) as zero.
pub fn counter_delta(prev: u64, now: u64) -> u64 {
    now.saturating_sub(prev)
}

pub struct Aggregator {
    mode: CollectorMode,
    seq: u64,
    last_time: Option<Duration>,
    wall_ms: u64,
    interval: Duration,
    sockets: HashMap<SocketId, SocketState>,
    procs: HashMap<ProcKey, ProcState>,
    ifaces: HashMap<String, IfaceState>,
    totals: Totals,
    notes: Vec<proto::Note>,
    capture_drops: u64,
}

impl Aggregator {
    pub fn new(mode: CollectorMode) -> Self {
        Aggregator {
            mode,
            seq: 0,
            last_time: None,
            wall_ms: 0,
            interval: Duration::from_secs(1),
            sockets: HashMap::new(),
            procs: HashMap::new(),
            ifaces: HashMap::new(),
            totals: Totals::default(),
            notes: Vec::new(),
            capture_drops: 0,
        }
    }

    /// Fold one sample taken at monotonic time `now` (any fixed origin) and wall clock `wall_ms`.
    pub fn ingest(&mut self, sample: Sample, now: Duration, wall_ms: u64) {
        let dt = self
            .last_time
            .map(|t| now.saturating_sub(t))
            .unwrap_or_default();
        self.last_time = Some(now);
        if !dt.is_zero() {
            self.interval = dt;
        }
        self.seq += 1;
        self.wall_ms = wall_ms;
        self.notes = sample.notes.clone();
        self.capture_drops = sample.capture_drops;

        for info in &sample.processes {
            self.procs
                .entry(info.key)
                .and_modify(|p| p.info = info.clone())
                .or_insert_with(|| ProcState {
                    info: info.clone(),
                    traffic: Traffic::default(),
                    history: Vec::new(),
                });
        }

        let mut proc_delta: HashMap<ProcKey, (u64, u64)> = HashMap::new();
        let mut total = (0u64, 0u64);
        let mut seen = HashMap::with_capacity(sample.sockets.len());
        for sock in sample.sockets {
            let sent = sock.sent.unwrap_or(0);
            let received = sock.received.unwrap_or(0);
            let state = self.sockets.remove(&sock.id);
            let (d_up, d_down, mut st) = match state {
                Some(st) => (
                    counter_delta(st.last_sent, sent),
                    counter_delta(st.last_received, received),
                    st,
                ),
                // First sight: its past bytes predate us; count from here.
                None => (
                    0,
                    0,
                    SocketState {
                        last_sent: sent,
                        last_received: received,
                        first_seen: now,
                        traffic: Traffic::default(),
                        sample: sock.clone(),
                    },
                ),
            };
            st.last_sent = sent;
            st.last_received = received;
            st.traffic.up_bytes += d_up;
            st.traffic.down_bytes += d_down;
            st.traffic.up_bps = ema::update(st.traffic.up_bps, d_up, dt);
            st.traffic.down_bps = ema::update(st.traffic.down_bps, d_down, dt);
            total.0 += d_up;
            total.1 += d_down;
            if let Some(owner) = sock.owners.first() {
                let e = proc_delta.entry(*owner).or_default();
                e.0 += d_up;
                e.1 += d_down;
            }
            st.sample = sock;
            seen.insert(st.sample.id, st);
        }
        self.sockets = seen;

        for (key, p) in self.procs.iter_mut() {
            let (up, down) = proc_delta.get(key).copied().unwrap_or_default();
            p.traffic.up_bytes += up;
            p.traffic.down_bytes += down;
            p.traffic.up_bps = ema::update(p.traffic.up_bps, up, dt);
            p.traffic.down_bps = ema::update(p.traffic.down_bps, down, dt);
            push_history(
                &mut p.history,
                RatePoint {
                    up: p.traffic.up_bps as f32,
                    down: p.traffic.down_bps as f32,
                },
            );
        }

        let t = &mut self.totals.traffic;
        t.up_bytes += total.0;
        t.down_bytes += total.1;
        t.up_bps = ema::update(t.up_bps, total.0, dt);
        t.down_bps = ema::update(t.down_bps, total.1, dt);
        let point = RatePoint {
            up: t.up_bps as f32,
            down: t.down_bps as f32,
        };
        push_history(&mut self.totals.history, point);

        let default = sample.default_interface.clone();
        let mut ifaces = HashMap::new();
        for i in sample.interfaces {
            let mut st = self.ifaces.remove(&i.name).unwrap_or(IfaceState {
                last_rx: i.rx_bytes,
                last_tx: i.tx_bytes,
                row: Interface {
                    name: i.name.clone(),
                    is_up: i.is_up,
                    is_default: false,
                    rx_bps: 0.0,
                    tx_bps: 0.0,
                    rx_bytes: 0,
                    tx_bytes: 0,
                },
            });
            let d_rx = counter_delta(st.last_rx, i.rx_bytes);
            let d_tx = counter_delta(st.last_tx, i.tx_bytes);
            st.last_rx = i.rx_bytes;
            st.last_tx = i.tx_bytes;
            st.row.is_up = i.is_up;
            st.row.is_default = default.as_deref() == Some(i.name.as_str());
            st.row.rx_bytes = i.rx_bytes;
            st.row.tx_bytes = i.tx_bytes;
            st.row.rx_bps = ema::update(st.row.rx_bps, d_rx, dt);
            st.row.tx_bps = ema::update(st.row.tx_bps, d_tx, dt);
            ifaces.insert(i.name, st);
        }
        self.ifaces = ifaces;
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut processes: Vec<Process> = self
            .procs
            .values()
            .map(|p| Process {
                pid: p.info.key.pid,
                ppid: p.info.ppid,
                start_time: p.info.key.start_time,
                uid: p.info.uid,
                user: String::new(),
                name: p.info.name.clone(),
                cmdline: p.info.cmdline.clone(),
                traffic: p.traffic,
                connections: 0,
                listening: 0,
                shared: 0,
                alive: p.info.alive,
                trend: Trend::Steady,
                history: if p.history.iter().all(|r| r.up == 0.0 && r.down == 0.0) {
                    Vec::new()
                } else {
                    p.history.clone()
                },
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        let mut interfaces: Vec<Interface> = self.ifaces.values().map(|i| i.row.clone()).collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            seq: self.seq,
            time_ms: self.wall_ms,
            interval_ms: self.interval.as_millis().min(u128::from(u32::MAX)) as u32,
            collector: CollectorInfo {
                mode: self.mode,
                notes: self.notes.clone(),
                capture_drops: self.capture_drops,
            },
            interfaces,
            totals: self.totals.clone(),
            processes,
            unattributed: Vec::new(),
            remote_hosts: Vec::new(),
            listen_ports: Vec::new(),
        }
    }

    /// Connections of one process, for the viewer that asked.
    pub fn detail(&self, pid: u32) -> Option<Detail> {
        let key = self.procs.keys().find(|k| k.pid == pid)?;
        let connections = self
            .sockets
            .values()
            .filter(|s| s.sample.owners.contains(key))
            .map(|s| Connection {
                proto: s.sample.proto,
                local: s.sample.local,
                remote: s.sample.remote,
                state: s.sample.state,
                age_ms: self
                    .last_time
                    .unwrap_or_default()
                    .saturating_sub(s.first_seen)
                    .as_millis() as u64,
                traffic: s.traffic,
                owners: s.sample.owners.len().min(usize::from(u16::MAX)) as u16,
            })
            .collect();
        Some(Detail {
            pid,
            start_time: key.start_time,
            connections,
        })
    }
}

fn push_history(history: &mut Vec<RatePoint>, point: RatePoint) {
    if history.len() == HISTORY_LEN {
        history.remove(0);
    }
    history.push(point);
}
