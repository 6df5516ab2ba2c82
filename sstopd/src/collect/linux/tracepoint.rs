//! `sock:inet_sock_set_state` via perf_event_open: who connected, named at connect time.
//!
//! No BPF toolchain: a tracepoint event per CPU with an mmap ring. The sample's tid is the
//! task running when the state changed — for connect() (CLOSE → SYN_SENT) the connecting
//! process. Its name is taken from the same rings (COMM records at exec/prctl, FORK
//! records to inherit, EXIT to forget), so a process that connects, sends and exits
//! within milliseconds is still named; `/proc/<pid>/comm` only fills gaps for tasks that
//! started before the tracer.

mod format;
mod records;
mod ring;
#[cfg(test)]
mod tests;
mod tracefs;

use std::collections::HashMap;
use std::net::SocketAddr;

use proto::{Proto, TcpState};
use thiserror::Error;

use format::{Layout, StateChange, parse_format};
use records::Record;
use ring::Ring;
use tracefs::{event_dir, online_cpus};

/// Data pages per CPU ring, largest first (512 KiB with 4 KiB pages holds ~5,000 filtered
/// events per CPU per drain); smaller rings when the locked-memory limit
/// (`kernel.perf_event_mlock_kb` without CAP_IPC_LOCK/CAP_PERFMON) refuses it.
const RING_PAGES: [usize; 3] = [128, 32, 8];
/// Only the changes that name a process: connect() (→ SYN_SENT), the change that completes
/// it with its local port (SYN_SENT →), and closes made by a process (→ FIN_WAIT1,
/// → LAST_ACK). The rest (about half of all changes, all in softirq) would only add
/// volume and bring the per-tick sample limit (`kernel.perf_event_max_sample_rate`) closer.
pub const FILTER: &std::ffi::CStr =
    c"protocol == 6 && (newstate == 2 || oldstate == 2 || newstate == 4 || newstate == 9)";
/// Drains a connect event waits for its local port before it is returned without one.
pub const DEFER_DRAINS: u32 = 2;
/// Connecting processes remembered per socket address; cleared past this.
const MAX_CONNECTORS: usize = 65_536;
/// Names remembered for tasks not yet seen exiting; cleared past this (then /proc refills).
const MAX_COMMS: usize = 65_536;

#[derive(Debug, Error)]
pub enum TraceError {
    #[error("tracefs is not available ({0})")]
    NoTracefs(String),
    #[error("tracepoint sock:inet_sock_set_state: {0}")]
    Format(String),
    #[error(
        "perf_event_open on cpu {cpu}: {source} (needs CAP_PERFMON/CAP_SYS_ADMIN or a lower kernel.perf_event_paranoid)"
    )]
    Perf {
        cpu: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// One TCP state change. Only the changes in [`FILTER`] are delivered: connect
/// (CLOSE → SYN_SENT), its completion (SYN_SENT → ESTABLISHED or CLOSE), and closes
/// made by a process (→ FIN_WAIT1, → LAST_ACK).
///
/// `pid`/`comm`: for a socket whose connect() was seen, the connecting process on every
/// event of that socket (later changes run in softirq, where the current task is
/// arbitrary); otherwise the task running when it happened, which is meaningful only in
/// process context (close, shutdown).
///
/// The kernel moves a socket to SYN_SENT before it picks the ephemeral port, so a
/// connect event is held back until the socket's next event supplies its local port
/// (at most [`DEFER_DRAINS`] drains; after that it is returned with port 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectEvent {
    /// Thread group id (the process).
    pub pid: u32,
    pub tid: u32,
    /// The process's comm at that moment (up to 15 bytes, not necessarily UTF-8); empty if unknown.
    pub comm: Vec<u8>,
    pub proto: Proto,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub old_state: TcpState,
    pub new_state: TcpState,
    /// perf clock (local_clock, ns since boot).
    pub time_ns: u64,
    /// Kernel address of the socket: ties the events of one connection together.
    pub skaddr: u64,
}

impl ConnectEvent {
    /// An outgoing connect() by `pid`.
    pub fn is_connect(&self) -> bool {
        self.old_state == TcpState::Close && self.new_state == TcpState::SynSent
    }
}

/// perf rings on every CPU for `sock:inet_sock_set_state`, plus comm/fork/exit records.
pub struct ConnectTracer {
    rings: Vec<Ring>,
    layout: Layout,
    /// tid → comm, as last announced in the rings.
    comms: HashMap<u32, Vec<u8>>,
    /// skaddr → the process that called connect() on it, until the socket closes.
    connectors: HashMap<u64, Connector>,
    /// Connect events waiting for their local port, with the drain they arrived in.
    deferred: HashMap<u64, (ConnectEvent, u32)>,
    drains: u32,
    lost: u64,
    throttled: u64,
}

#[derive(Clone)]
struct Connector {
    pid: u32,
    tid: u32,
    comm: Vec<u8>,
}

/// Ring contents gathered from all CPUs before being put in time order.
enum Pending {
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

impl ConnectTracer {
    /// Mounts tracefs at /sys/kernel/tracing if needed; a clear error without perf rights.
    pub fn open() -> Result<Self, TraceError> {
        let event = event_dir()?;
        let read = |name: &str| {
            std::fs::read_to_string(event.join(name)).map_err(|source| TraceError::Io {
                what: format!("reading {}", event.join(name).display()),
                source,
            })
        };
        let id: u64 = read("id")?
            .trim()
            .parse()
            .map_err(|e| TraceError::Format(format!("event id: {e}")))?;
        let layout = parse_format(&read("format")?)?;
        let mut rings = Vec::new();
        for cpu in online_cpus() {
            match open_ring(id, cpu) {
                Ok(ring) => rings.push(ring),
                // A CPU that went offline since the list was read: nothing runs there.
                Err(TraceError::Perf { source, .. })
                    if source.raw_os_error() == Some(libc::ENODEV) => {}
                Err(e) => return Err(e),
            }
        }
        if rings.is_empty() {
            return Err(TraceError::Perf {
                cpu: 0,
                source: std::io::Error::from_raw_os_error(libc::ENODEV),
            });
        }
        Ok(Self {
            rings,
            layout,
            comms: HashMap::new(),
            connectors: HashMap::new(),
            deferred: HashMap::new(),
            drains: 0,
            lost: 0,
            throttled: 0,
        })
    }

    /// Non-blocking: events since the last call, oldest first.
    pub fn drain(&mut self) -> Vec<ConnectEvent> {
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
        self.drains = self.drains.wrapping_add(1);
        let drains = self.drains;
        let stale: Vec<u64> = self
            .deferred
            .iter()
            .filter(|(_, (_, at))| drains.wrapping_sub(*at) >= DEFER_DRAINS)
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

    fn apply(&mut self, time: u64, item: Pending, events: &mut Vec<ConnectEvent>) {
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
            self.deferred.insert(skaddr, (event, self.drains));
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

    /// PERF_RECORD_LOST total: events dropped because a ring was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Times the kernel paused the event for exceeding its per-tick sample budget
    /// (`kernel.perf_event_max_sample_rate` / HZ per CPU); events in those ticks are gone.
    pub fn throttled(&self) -> u64 {
        self.throttled
    }
}

/// The largest ring the locked-memory limit allows.
fn open_ring(id: u64, cpu: u32) -> Result<Ring, TraceError> {
    let mut last = None;
    for pages in RING_PAGES {
        match Ring::open(id, cpu, pages, FILTER) {
            Ok(ring) => return Ok(ring),
            Err(TraceError::Io { what, source })
                if matches!(source.raw_os_error(), Some(libc::EPERM | libc::ENOMEM)) =>
            {
                last = Some(TraceError::Io { what, source });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| TraceError::Format("no ring size to try".into())))
}
