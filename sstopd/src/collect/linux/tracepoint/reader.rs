//! Ring records → named state changes: time order across CPUs, comm tracking from
//! COMM/FORK/EXIT records, connects completed with their local port.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proto::TcpState;

use super::ConnectEvent;
use super::format::{Layout, StateChange};
use super::records::{self, Record};
use super::ring::Ring;

/// How long a connect event waits for its local port before it is returned without one.
pub const DEFER_TIMEOUT: Duration = Duration::from_secs(1);
/// Connecting processes remembered per socket address; cleared past this.
const MAX_CONNECTORS: usize = 65_536;
/// Names remembered for tasks not yet seen exiting; cleared past this (then /proc refills).
const MAX_COMMS: usize = 65_536;

/// Owns the rings and the bookkeeping that turns records into named events.
pub struct Reader {
    pub(super) rings: Vec<Ring>,
    layout: Layout,
    /// tid → comm, as last announced in the rings.
    pub(super) comms: HashMap<u32, Vec<u8>>,
    /// skaddr → the process that called connect() on it, until the socket closes.
    pub(super) connectors: HashMap<u64, Connector>,
    /// Connect events waiting for their local port, with when they arrived.
    deferred: HashMap<u64, (ConnectEvent, Instant)>,
    /// Held back from `apply` until `pump` knows the time.
    now: Option<Instant>,
    pub(super) lost: u64,
    pub(super) throttled: u64,
}

#[derive(Clone)]
pub(super) struct Connector {
    pid: u32,
    tid: u32,
    comm: Vec<u8>,
}

/// Ring contents gathered from all CPUs before being put in time order.
pub(super) enum Pending {
    Change {
        pid: u32,
        tid: u32,
        change: StateChange,
    },
    Comm {
        tid: u32,
        comm: Vec<u8>,
    },
    Fork {
        tid: u32,
        ptid: u32,
        ppid: u32,
    },
    Exit {
        tid: u32,
    },
}

impl Reader {
    pub fn new(rings: Vec<Ring>, layout: Layout) -> Self {
        Self {
            rings,
            layout,
            comms: HashMap::new(),
            connectors: HashMap::new(),
            deferred: HashMap::new(),
            now: None,
            lost: 0,
            throttled: 0,
        }
    }

    /// Everything the rings hold now, as named events in time order; connects still
    /// waiting for their port are released after [`DEFER_TIMEOUT`].
    pub fn pump(&mut self, now: Instant) -> Vec<ConnectEvent> {
        self.now = Some(now);
        let mut pending: Vec<(u64, Pending)> = Vec::new();
        let mut lost = 0;
        let mut throttled = 0;
        let layout = &self.layout;
        for ring in &mut self.rings {
            ring.read(|bytes| match records::parse(bytes) {
                Some(Record::Sample {
                    pid,
                    tid,
                    time,
                    raw,
                }) => {
                    if let Some(change) = layout.decode(raw) {
                        pending.push((time, Pending::Change { pid, tid, change }));
                    }
                }
                Some(Record::Comm {
                    tid, time, comm, ..
                }) => {
                    let comm = comm.to_vec();
                    pending.push((time, Pending::Comm { tid, comm }));
                }
                Some(Record::Fork {
                    tid,
                    ptid,
                    ppid,
                    time,
                }) => pending.push((time, Pending::Fork { tid, ptid, ppid })),
                Some(Record::Exit { tid, time, .. }) => pending.push((time, Pending::Exit { tid })),
                Some(Record::Lost { lost: n }) => lost += n,
                Some(Record::Throttle) => throttled += 1,
                Some(Record::Other) | None => {}
            });
        }
        self.lost += lost;
        self.throttled += throttled;
        // Each ring is in order; across CPUs the timestamps decide.
        pending.sort_by_key(|(time, _)| *time);
        let mut events = Vec::new();
        for (time, item) in pending {
            self.apply(time, item, &mut events);
        }
        let stale: Vec<u64> = self
            .deferred
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) >= DEFER_TIMEOUT)
            .map(|(skaddr, _)| *skaddr)
            .collect();
        for skaddr in stale {
            if let Some((event, _)) = self.deferred.remove(&skaddr) {
                events.push(event);
            }
        }
        events.sort_by_key(|e| e.time_ns);
        events
    }

    pub(super) fn apply(&mut self, time: u64, item: Pending, events: &mut Vec<ConnectEvent>) {
        match item {
            Pending::Comm { tid, comm } => {
                if self.comms.len() >= MAX_COMMS {
                    self.comms.clear();
                }
                self.comms.insert(tid, comm);
            }
            Pending::Fork { tid, ptid, ppid } => {
                // The child starts with its parent's comm; a recycled tid must not keep an old one.
                match self
                    .comms
                    .get(&ptid)
                    .or_else(|| self.comms.get(&ppid))
                    .cloned()
                {
                    Some(comm) => self.comms.insert(tid, comm),
                    None => self.comms.remove(&tid),
                };
            }
            Pending::Exit { tid } => {
                // Keyed by tid: a thread's exit forgets only that thread. Samples of the
                // exiting task sort before its exit, so they were named already.
                self.comms.remove(&tid);
            }
            Pending::Change { pid, tid, change } => self.on_change(time, pid, tid, change, events),
        }
    }

    fn on_change(
        &mut self,
        time: u64,
        pid: u32,
        tid: u32,
        change: StateChange,
        events: &mut Vec<ConnectEvent>,
    ) {
        let skaddr = change.skaddr;
        let connect = change.old_state == TcpState::Close && change.new_state == TcpState::SynSent;
        let who = if connect {
            let who = Connector {
                pid,
                tid,
                comm: self.comm_of(pid, tid),
            };
            if self.connectors.len() >= MAX_CONNECTORS {
                self.connectors.clear();
            }
            self.connectors.insert(skaddr, who.clone());
            who
        } else {
            match self.connectors.get(&skaddr) {
                Some(who) => who.clone(),
                None => Connector {
                    pid,
                    tid,
                    comm: self.comm_of(pid, tid),
                },
            }
        };
        let event = ConnectEvent {
            pid: who.pid,
            tid: who.tid,
            comm: who.comm,
            proto: change.proto,
            local: change.local,
            remote: change.remote,
            old_state: change.old_state,
            new_state: change.new_state,
            time_ns: time,
            skaddr,
        };
        if let Some((mut held, _)) = self.deferred.remove(&skaddr) {
            if event.local.port() != 0 {
                held.local = event.local;
            }
            events.push(held);
        }
        if change.new_state == TcpState::Close {
            self.connectors.remove(&skaddr);
        }
        if connect && event.local.port() == 0 {
            let at = self.now.unwrap_or_else(Instant::now);
            self.deferred.insert(skaddr, (event, at));
        } else {
            events.push(event);
        }
    }

    /// The process name: from the rings, else /proc (a task older than the tracer).
    fn comm_of(&mut self, pid: u32, tid: u32) -> Vec<u8> {
        if pid == 0 {
            return Vec::new(); // softirq on an idle CPU
        }
        if let Some(comm) = self.comms.get(&pid).or_else(|| self.comms.get(&tid)) {
            return comm.clone();
        }
        match std::fs::read(format!("/proc/{pid}/comm")) {
            Ok(mut comm) => {
                if comm.last() == Some(&b'\n') {
                    comm.pop();
                }
                self.comms.insert(pid, comm.clone());
                comm
            }
            Err(_) => Vec::new(),
        }
    }
}
