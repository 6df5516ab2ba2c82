//! Samples + time → snapshots. Pure apart from the user-name file: the caller passes the
//! clock in.
//!
//! One tick: processes reported → socket deltas (closed sockets included) → credits split
//! among owners or the unattributed rows → roll-ups (hosts, listen ports, counts) → rates
//! and histories → the snapshot, built once and cloned for every caller.

pub mod census;
pub mod ema;
pub mod history;
pub mod procs;
pub mod rollup;
pub mod sockets;
pub mod users;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use proto::{
    CollectorInfo, CollectorMode, Connection, Detail, Interface, RatePoint, Snapshot, Totals,
    Traffic,
};

use self::history::History;
use self::procs::ProcTable;
use self::rollup::{Rollup, listen_ports};
use self::sockets::{SocketTable, record_traffic, split_even};
use self::users::UserNames;
use crate::collect::Sample;

pub use self::sockets::counter_delta;

#[derive(Debug, Clone)]
struct IfaceState {
    last_rx: u64,
    last_tx: u64,
    row: Interface,
}

pub struct Aggregator {
    mode: CollectorMode,
    seq: u64,
    last_time: Option<Duration>,
    sockets: SocketTable,
    procs: ProcTable,
    rollup: Rollup,
    ifaces: HashMap<String, IfaceState>,
    totals: Traffic,
    totals_history: History,
    users: UserNames,
    current: Snapshot,
}

impl Aggregator {
    pub fn new(mode: CollectorMode) -> Self {
        Self::with_passwd(mode, "/etc/passwd")
    }

    /// Like [`Aggregator::new`] with user names read from `passwd` (tests pass a fixture).
    pub fn with_passwd(mode: CollectorMode, passwd: impl Into<PathBuf>) -> Self {
        Aggregator {
            mode,
            seq: 0,
            last_time: None,
            sockets: SocketTable::default(),
            procs: ProcTable::default(),
            rollup: Rollup::default(),
            ifaces: HashMap::new(),
            totals: Traffic::default(),
            totals_history: History::default(),
            users: UserNames::new(passwd),
            current: Snapshot::empty(mode),
        }
    }

    /// Fold one sample taken at monotonic time `now` (any fixed origin) and wall clock `wall_ms`.
    pub fn ingest(&mut self, sample: Sample, now: Duration, wall_ms: u64) {
        let dt = self
            .last_time
            .map(|t| now.saturating_sub(t))
            .unwrap_or_default();
        self.last_time = Some(now);
        self.seq += 1;

        self.procs.report(sample.processes, now, &mut self.users);
        let credits = self.sockets.ingest(
            sample.sockets,
            (sample.tcp_partial, sample.tcp_gone),
            sample.closed,
            now,
            dt,
        );
        let mut tick = (0u64, 0u64);
        for c in credits {
            tick.0 = tick.0.saturating_add(c.up);
            tick.1 = tick.1.saturating_add(c.down);
            if let Some(remote) = c.remote {
                self.rollup.credit_host(remote.ip(), c.up, c.down, now);
            }
            if c.owners.is_empty() {
                self.rollup.credit_unattributed(c.proto, c.up, c.down, now);
                continue;
            }
            let n = c.owners.len();
            if let Some(remote) = c.remote {
                for owner in &c.owners {
                    let name = self.procs.name(owner).map(str::to_string);
                    let name = name.unwrap_or_else(|| format!("pid {}", owner.pid));
                    self.rollup.host_process(remote.ip(), &name, now);
                }
            }
            for ((owner, up), down) in c
                .owners
                .iter()
                .zip(split_even(c.up, n))
                .zip(split_even(c.down, n))
            {
                self.procs.credit(*owner, up, down, now, &mut self.users);
            }
        }
        // The packet step's flows no socket explains (already deltas).
        for f in sample.unexplained {
            tick.0 = tick.0.saturating_add(f.sent);
            tick.1 = tick.1.saturating_add(f.received);
            if let Some(ip) = f.remote {
                self.rollup.credit_host(ip, f.sent, f.received, now);
            }
            self.rollup
                .credit_unattributed(f.proto, f.sent, f.received, now);
        }
        // Peers of unconnected sockets: bytes already credited above, here only to hosts.
        for f in sample.peer_flows {
            let ip = f.remote.ip();
            self.rollup.credit_host(ip, f.sent, f.received, now);
            self.rollup.host_port(ip, f.remote.port(), now);
            let owners = self.sockets.get(f.socket).map(|s| &s.sample.owners);
            for owner in owners.into_iter().flatten() {
                if let Some(name) = self.procs.name(owner) {
                    self.rollup.host_process(ip, name, now);
                }
            }
        }

        self.procs.set_counts(&self.sockets.census().owners, now);
        self.procs.finish_tick(now, dt);
        self.rollup
            .finish_tick(self.sockets.census(), &self.procs, now, dt);
        record_traffic(&mut self.totals, tick.0, tick.1, dt);
        self.totals_history.push(RatePoint {
            up: self.totals.up_bps as f32,
            down: self.totals.down_bps as f32,
        });
        self.fold_interfaces(sample.interfaces, sample.default_interface, dt);

        self.current = Snapshot {
            seq: self.seq,
            time_ms: wall_ms,
            interval_ms: if dt.is_zero() {
                self.current.interval_ms
            } else {
                dt.as_millis().min(u128::from(u32::MAX)) as u32
            },
            collector: CollectorInfo {
                mode: self.mode,
                notes: sample.notes,
                capture_drops: sample.capture_drops,
            },
            interfaces: {
                let mut rows: Vec<Interface> =
                    self.ifaces.values().map(|i| i.row.clone()).collect();
                rows.sort_by(|a, b| a.name.cmp(&b.name));
                rows
            },
            totals: Totals {
                traffic: self.totals,
                history: self.totals_history.to_vec(),
            },
            processes: self.procs.rows(),
            unattributed: self.rollup.unattributed(),
            remote_hosts: self.rollup.hosts(),
            listen_ports: listen_ports(&self.sockets, &self.procs),
        };
    }

    fn fold_interfaces(
        &mut self,
        samples: Vec<crate::collect::IfaceSample>,
        default: Option<String>,
        dt: Duration,
    ) {
        // Rebuilt each tick: interfaces that vanished are gone, new ones start at zero rate.
        let mut next = HashMap::with_capacity(samples.len());
        for i in samples {
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
            next.insert(i.name, st);
        }
        self.ifaces = next;
    }

    /// The latest snapshot (built once per ingest).
    pub fn snapshot(&self) -> Snapshot {
        self.current.clone()
    }

    /// Connections of one process, for the viewer that asked. Each row carries this
    /// owner's share of a shared socket.
    pub fn detail(&self, pid: u32) -> Option<Detail> {
        let key = self.procs.key_for_pid(pid)?;
        let now = self.last_time.unwrap_or_default();
        let connections = self
            .sockets
            .iter()
            .filter_map(|st| {
                let s = &st.sample;
                let idx = s.owners.iter().position(|o| *o == key)?;
                let n = s.owners.len();
                Some(Connection {
                    proto: s.proto,
                    local: s.local,
                    remote: s.remote,
                    state: s.state,
                    age_ms: now.saturating_sub(st.first_seen).as_millis() as u64,
                    traffic: share(&st.traffic_at(now), idx, n),
                    owners: n.min(usize::from(u16::MAX)) as u16,
                })
            })
            .collect();
        Some(Detail {
            pid,
            start_time: key.start_time,
            connections,
        })
    }
}

/// Owner `idx` of `n`'s part of a socket's traffic (remainder of bytes to the first).
fn share(t: &Traffic, idx: usize, n: usize) -> Traffic {
    let nth = |v: u64| split_even(v, n).nth(idx).unwrap_or(0);
    Traffic {
        up_bps: t.up_bps / n as f64,
        down_bps: t.down_bps / n as f64,
        up_bytes: nth(t.up_bytes),
        down_bytes: nth(t.down_bytes),
    }
}

#[cfg(test)]
mod tests;
