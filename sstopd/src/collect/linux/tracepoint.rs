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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use proto::{Proto, TcpState};
use thiserror::Error;

use format::{Layout, StateChange, parse_format};
use records::Record;
use ring::Ring;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";
const EVENT_DIR: &str = "events/sock/inet_sock_set_state";
/// Data pages per CPU ring (512 KiB with 4 KiB pages): a second of heavy churn fits.
const RING_PAGES: usize = 128;
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

/// One TCP state change.
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
        pid: u32,
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
            match Ring::open(id, cpu, RING_PAGES) {
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
        })
    }

    /// Non-blocking: events since the last call, oldest first.
    pub fn drain(&mut self) -> Vec<ConnectEvent> {
        let mut pending: Vec<(u64, Pending)> = Vec::new();
        let mut lost = 0;
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
                Some(Record::Exit { pid, tid, time }) => {
                    pending.push((time, Pending::Exit { pid, tid }))
                }
                Some(Record::Lost { lost: n }) => lost += n,
                Some(Record::Other) | None => {}
            });
        }
        self.lost += lost;
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
            Pending::Exit { pid, tid } => {
                // Only the thread group leader's exit ends the process name.
                if pid == tid {
                    self.comms.remove(&tid);
                }
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

    /// PERF_RECORD_LOST total.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

/// The tracepoint's directory, mounting tracefs if nothing provides it yet.
fn event_dir() -> Result<PathBuf, TraceError> {
    for root in [TRACEFS, DEBUGFS_TRACING] {
        let dir = Path::new(root).join(EVENT_DIR);
        if dir.join("id").exists() {
            return Ok(dir);
        }
    }
    mount_tracefs()?;
    let dir = Path::new(TRACEFS).join(EVENT_DIR);
    if dir.join("id").exists() {
        Ok(dir)
    } else {
        Err(TraceError::NoTracefs(format!(
            "tracefs mounted but {} is missing (kernel without the sock tracepoints?)",
            dir.display()
        )))
    }
}

fn mount_tracefs() -> Result<(), TraceError> {
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are NUL-terminated C strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(TraceError::NoTracefs(format!(
            "mounting tracefs at {TRACEFS}: {}",
            std::io::Error::last_os_error()
        )))
    }
}

/// CPUs from /sys/devices/system/cpu/online ("0-3,5"), else 0..available_parallelism.
fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(&s))
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n as u32).collect()
        })
}

fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracer() -> ConnectTracer {
        let layout = parse_format(
            "\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;",
        )
        .unwrap();
        ConnectTracer {
            rings: Vec::new(),
            layout,
            comms: HashMap::new(),
            connectors: HashMap::new(),
            deferred: HashMap::new(),
            drains: 0,
            lost: 0,
        }
    }

    fn change(skaddr: u64, local: &str, old: TcpState, new: TcpState) -> Pending {
        Pending::Change {
            // pid/tid of whatever task ran; the tests set them per call below.
            pid: 0,
            tid: 0,
            change: StateChange {
                skaddr,
                proto: Proto::Tcp,
                local: local.parse().unwrap(),
                remote: "127.0.0.1:8080".parse().unwrap(),
                old_state: old,
                new_state: new,
            },
        }
    }

    fn by(pid: u32, item: Pending) -> Pending {
        match item {
            Pending::Change { change, .. } => Pending::Change {
                pid,
                tid: pid,
                change,
            },
            other => other,
        }
    }

    fn comm(tid: u32, name: &[u8]) -> Pending {
        Pending::Comm {
            tid,
            comm: name.to_vec(),
        }
    }

    #[test]
    fn connect_waits_for_its_port_and_names_later_events() {
        let mut t = tracer();
        let mut out = Vec::new();
        // Names come from the ring, so no /proc lookup happens for these fake pids.
        t.apply(1, comm(4_000_001, b"nlshort"), &mut out);
        t.apply(1, comm(4_000_002, b"bystander"), &mut out);
        let syn = change(7, "127.0.0.1:0", TcpState::Close, TcpState::SynSent);
        t.apply(2, by(4_000_001, syn), &mut out);
        assert!(out.is_empty(), "held until the port is known");
        let est = change(
            7,
            "127.0.0.1:40000",
            TcpState::SynSent,
            TcpState::Established,
        );
        t.apply(3, by(4_000_002, est), &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[0].is_connect());
        assert_eq!(out[0].local.port(), 40000);
        assert_eq!(
            (out[0].pid, out[0].comm.as_slice()),
            (4_000_001, &b"nlshort"[..])
        );
        assert_eq!(out[0].time_ns, 2);
        // The softirq event is credited to the connecting process, not the bystander.
        assert_eq!(
            (out[1].pid, out[1].comm.as_slice()),
            (4_000_001, &b"nlshort"[..])
        );
        // After CLOSE the socket address may be reused by someone else.
        let close = change(7, "127.0.0.1:40000", TcpState::Established, TcpState::Close);
        t.apply(4, by(4_000_001, close), &mut out);
        assert!(t.connectors.is_empty());
    }

    #[test]
    fn a_connect_without_follow_up_is_released_after_a_few_drains() {
        let mut t = tracer();
        let mut out = Vec::new();
        t.apply(1, comm(4_000_003, b"quick"), &mut out);
        let syn = change(9, "127.0.0.1:0", TcpState::Close, TcpState::SynSent);
        t.apply(2, by(4_000_003, syn), &mut out);
        assert!(out.is_empty());
        let mut released = Vec::new();
        for _ in 0..DEFER_DRAINS {
            released.extend(t.drain());
        }
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].local.port(), 0);
        assert_eq!(released[0].comm, b"quick");
    }

    #[test]
    fn fork_inherits_and_exit_forgets_names() {
        let mut t = tracer();
        let mut out = Vec::new();
        t.apply(1, comm(4_000_010, b"parent"), &mut out);
        t.apply(1, comm(4_000_011, b"stale"), &mut out);
        let fork = |tid, ptid| Pending::Fork {
            tid,
            ptid,
            ppid: ptid,
        };
        t.apply(2, fork(4_000_012, 4_000_010), &mut out);
        assert_eq!(
            t.comms.get(&4_000_012).map(Vec::as_slice),
            Some(&b"parent"[..])
        );
        // A recycled tid whose parent we never saw must not keep the old name.
        t.apply(3, fork(4_000_011, 4_000_099), &mut out);
        assert!(!t.comms.contains_key(&4_000_011));
        t.apply(
            4,
            Pending::Exit {
                pid: 4_000_012,
                tid: 4_000_012,
            },
            &mut out,
        );
        assert!(!t.comms.contains_key(&4_000_012));
        assert!(out.is_empty());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
