//! `sock:inet_sock_set_state` via perf_event_open: who connected, named at connect time.
//!
//! No BPF toolchain: a tracepoint event per CPU with an mmap ring. The sample's tid is the
//! task running when the state changed — for connect() (CLOSE → SYN_SENT) the connecting
//! process. Its name is taken from the same rings (COMM records at exec/prctl, FORK
//! records to inherit, EXIT to forget), so a process that connects, sends and exits
//! within milliseconds is still named; `/proc/<pid>/comm` only fills gaps for tasks that
//! started before the tracer.
//!
//! The rings also carry a FORK/EXIT record for every task on the host, so besides the
//! collector's own read at each drain, a thread of their own reads them when a ring is a
//! quarter full: a busy host would overflow them between two drains. An idle host wakes
//! that thread about once a second.

mod format;
mod reader;
mod records;
mod ring;
#[cfg(test)]
mod tests;
mod tracefs;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use proto::{Proto, TcpState};
use thiserror::Error;

use format::parse_format;
pub use reader::DEFER_TIMEOUT;
use reader::Reader;
use ring::Ring;
use tracefs::{event_dir, online_cpus};

use super::wake::Wake;

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
/// The reader thread's longest sleep when the rings stay below their wake-up mark.
/// [`ConnectTracer::drain`] reads the rings first-hand, so connects never wait for this
/// thread; it reads them at least this often all the same, so a connecting task that
/// predates the tracer is named from `/proc/<pid>/comm` while it likely still runs, even
/// at a long collect interval.
const POLL_MS: libc::c_int = 1000;
/// Events kept for the collector between drains; beyond this they count as lost.
const MAX_QUEUED: usize = 1 << 20;

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
/// (at most [`DEFER_TIMEOUT`]; after that it is returned with port 0).
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

/// perf rings on every CPU for `sock:inet_sock_set_state`, read at each drain and by a
/// background thread in between.
pub struct ConnectTracer {
    inbox: Arc<Mutex<Inbox>>,
    stop: Arc<AtomicBool>,
    /// Wakes the reader thread for a stop.
    wake: Wake,
    thread: Option<JoinHandle<()>>,
}

/// The rings' reader and what it read, shared by the thread and [`ConnectTracer::drain`].
struct Inbox {
    reader: Reader,
    events: Vec<ConnectEvent>,
    /// PERF_RECORD_LOST plus events dropped because the collector did not drain.
    lost: u64,
    throttled: u64,
    /// Events dropped because the collector did not drain.
    dropped: u64,
}

impl Inbox {
    /// Move what the rings hold into `events`.
    fn pump(&mut self) {
        let events = self.reader.pump(Instant::now());
        let room = MAX_QUEUED.saturating_sub(self.events.len());
        self.dropped += events.len().saturating_sub(room) as u64;
        self.events.extend(events.into_iter().take(room));
        self.lost = self.reader.lost + self.dropped;
        self.throttled = self.reader.throttled;
    }
}

fn lock(inbox: &Mutex<Inbox>) -> MutexGuard<'_, Inbox> {
    // A panic elsewhere leaves plain data behind: keep using it.
    inbox
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The reader thread: sleep in poll() until a ring passes its wake-up mark (or a timeout),
/// then move what the rings hold into the inbox.
fn read_rings(mut fds: Vec<libc::pollfd>, inbox: &Mutex<Inbox>, stop: &AtomicBool) {
    // The last entry is the stop eventfd: its wake-up needs no reading.
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries for the whole call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_MS) };
        for fd in &mut fds {
            // A ring whose event died (e.g. its CPU went away) would wake poll at once
            // forever: stop watching it (poll skips negative fds); its data is still read.
            if fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                fd.fd = -1;
            }
        }
        if ready >= 0 {
            lock(inbox).pump();
        }
    }
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
        // Owned here, polled by the thread by raw fd: `Drop` joins the thread before the
        // eventfd closes.
        let wake = Wake::new().map_err(|source| TraceError::Io {
            what: "eventfd".into(),
            source,
        })?;
        let fds = rings
            .iter()
            .map(|ring| libc::pollfd {
                fd: ring.raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .chain([wake.pollfd()])
            .collect();
        let inbox = Arc::new(Mutex::new(Inbox {
            reader: Reader::new(rings, layout),
            events: Vec::new(),
            lost: 0,
            throttled: 0,
            dropped: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("sstopd-trace".into())
            .spawn({
                let (inbox, stop) = (inbox.clone(), stop.clone());
                move || read_rings(fds, &inbox, &stop)
            })
            .map_err(|source| TraceError::Io {
                what: "starting the ring reader thread".into(),
                source,
            })?;
        Ok(Self {
            inbox,
            stop,
            wake,
            thread: Some(thread),
        })
    }

    /// Non-blocking: events since the last call, oldest first, up to what the rings hold
    /// right now.
    pub fn drain(&mut self) -> Vec<ConnectEvent> {
        let mut inbox = lock(&self.inbox);
        inbox.pump();
        let mut events = std::mem::take(&mut inbox.events);
        drop(inbox);
        events.sort_by_key(|e| e.time_ns);
        events
    }

    /// Events lost so far: PERF_RECORD_LOST (a ring was full) plus events dropped because
    /// the collector did not drain for a very long time.
    pub fn lost(&self) -> u64 {
        lock(&self.inbox).lost
    }

    /// Times the kernel paused the event for exceeding its per-tick sample budget
    /// (`kernel.perf_event_max_sample_rate` / HZ per CPU); events in those ticks are gone.
    pub fn throttled(&self) -> u64 {
        lock(&self.inbox).throttled
    }
}

impl Drop for ConnectTracer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
