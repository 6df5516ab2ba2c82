//! Per-process rows: cumulative bytes, rates, sparkline, and how long a gone process stays.

use std::time::Duration;

use proto::{Process, RatePoint, Traffic};

use super::history::History;
use super::sockets::record_traffic;
use super::users::UserNames;
use crate::collect::{ProcKey, ProcessInfo};
use crate::fasthash::FastMap;

/// How long a process stays listed after it was last reported (exited, or holds no sockets).
pub const GONE_RETENTION: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub connections: u32,
    pub listening: u32,
    pub shared: u32,
}

#[derive(Debug)]
struct ProcState {
    info: ProcessInfo,
    user: String,
    traffic: Traffic,
    history: History,
    last_reported: Duration,
    /// Bytes credited this tick, folded into rates at the end of it.
    pending: (u64, u64),
    counts: Counts,
}

#[derive(Default)]
pub struct ProcTable {
    procs: FastMap<ProcKey, ProcState>,
}

impl ProcTable {
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Processes the collector reported this tick (alive or remembered).
    pub fn report(&mut self, infos: Vec<ProcessInfo>, now: Duration, users: &mut UserNames) {
        let mut fresh_pids = Vec::new();
        for info in infos {
            match self.procs.get_mut(&info.key) {
                Some(p) => {
                    if p.info.uid != info.uid {
                        p.user = users.name(info.uid);
                    }
                    p.last_reported = now;
                    p.info = info;
                }
                None => {
                    if info.alive {
                        fresh_pids.push(info.key);
                    }
                    self.procs
                        .insert(info.key, ProcState::new(info, now, users));
                }
            }
        }
        // A pid reused by a new process: the old holder of that pid has exited.
        for key in fresh_pids {
            for (k, p) in self.procs.iter_mut() {
                if k.pid == key.pid && *k != key {
                    p.info.alive = false;
                }
            }
        }
    }

    /// Credit bytes to `key`; an owner the collector did not describe gets a placeholder
    /// row so the bytes still add up.
    pub fn credit(
        &mut self,
        key: ProcKey,
        up: u64,
        down: u64,
        now: Duration,
        users: &mut UserNames,
    ) {
        let p = self.procs.entry(key).or_insert_with(|| {
            let info = ProcessInfo {
                key,
                ppid: 0,
                uid: u32::MAX,
                comm: Vec::new(),
                name: format!("pid {}", key.pid),
                cmdline: String::new(),
                alive: true,
            };
            ProcState::new(info, now, users)
        });
        p.pending.0 = p.pending.0.saturating_add(up);
        p.pending.1 = p.pending.1.saturating_add(down);
    }

    /// This tick's socket counts. A process holding a socket stays reported even when the
    /// collector did not describe it this tick (its sockets were idle and not re-read).
    pub fn set_counts(&mut self, counts: &FastMap<ProcKey, Counts>, now: Duration) {
        for (key, p) in self.procs.iter_mut() {
            p.counts = counts.get(key).cloned().unwrap_or_default();
            if p.counts.connections > 0 || p.counts.listening > 0 {
                p.last_reported = now;
            }
        }
    }

    /// Close the tick: fold pending bytes into rates and histories, drop long-gone rows.
    pub fn finish_tick(&mut self, now: Duration, dt: Duration) {
        self.procs.retain(|_, p| {
            let (up, down) = std::mem::take(&mut p.pending);
            record_traffic(&mut p.traffic, up, down, dt);
            p.history.push(RatePoint {
                up: p.traffic.up_bps as f32,
                down: p.traffic.down_bps as f32,
            });
            now.saturating_sub(p.last_reported) < GONE_RETENTION || up > 0 || down > 0
        });
    }

    pub fn name(&self, key: &ProcKey) -> Option<&str> {
        self.procs.get(key).map(|p| p.info.name.as_str())
    }

    /// The row for `pid`: the live one if a pid was reused, else the newest.
    pub fn key_for_pid(&self, pid: u32) -> Option<ProcKey> {
        self.procs
            .iter()
            .filter(|(k, _)| k.pid == pid)
            .max_by_key(|(k, p)| (p.info.alive, k.start_time))
            .map(|(k, _)| *k)
    }

    pub fn rows(&self) -> Vec<Process> {
        let mut rows: Vec<Process> = self
            .procs
            .values()
            .map(|p| Process {
                pid: p.info.key.pid,
                ppid: p.info.ppid,
                start_time: p.info.key.start_time,
                uid: p.info.uid,
                user: p.user.clone(),
                name: p.info.name.clone(),
                cmdline: p.info.cmdline.clone(),
                traffic: p.traffic,
                connections: p.counts.connections,
                listening: p.counts.listening,
                shared: p.counts.shared,
                alive: p.info.alive,
                trend: p.history.trend(),
                history: p.history.to_vec_if_active(),
            })
            .collect();
        rows.sort_by_key(|p| (p.pid, p.start_time));
        rows
    }
}

impl ProcState {
    fn new(info: ProcessInfo, now: Duration, users: &mut UserNames) -> Self {
        ProcState {
            user: if info.uid == u32::MAX {
                String::new()
            } else {
                users.name(info.uid)
            },
            info,
            traffic: Traffic::default(),
            history: History::default(),
            last_reported: now,
            pending: (0, 0),
            counts: Counts::default(),
        }
    }
}
