//! The Linux netlink-mode collector: sock_diag dumps + /proc owners + closed sockets +
//! connect-time names → one [`Sample`] per call.
//!
//! Cost follows activity, not socket count: between full dumps (every
//! [`FULL_DUMP_EVERY`] to [`FULL_DUMP_MAX`]) only listeners and the TCP sockets the
//! capture saw a segment arrive for are read, and of any listing only new or changed sockets are passed on
//! ([`Changes`]); the aggregator keeps the rest as they were.
//!
//! The kernel side sits behind [`Kernel`] so the assembly can be driven from fixtures;
//! `kernel.rs` implements it over sock_diag, the destroy multicast and the tracepoint.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proto::{Caps, CollectorMode, Note};

use super::attribution::{Attribution, ConnectSeen};
use super::changes::Changes;
use super::ifaces::IfaceSource;
use super::netlink::Tuple;
use super::packet::{Keep, PacketCounter};
use super::procmap::{ProcMap, Wanted, pid};
use crate::collect::{
    ClosedSocket, CollectError, Collector, ProcKey, ProcessInfo, Sample, SocketId, SocketSample,
};
use crate::fasthash::FastSet;

/// How long a pid → process identification from a connect is reused without /proc.
const NAMED_TTL: Duration = Duration::from_secs(5);
/// Bound on that cache.
const MAX_NAMED: usize = 65_536;

/// Collect cycles an unnamed closed socket waits for its connect record (the rings are
/// read at each drain, but a connect is held back until an event names its local port).
const UNNAMED_WAIT: u32 = 3;

/// Every TCP socket is re-read (a re-sync) at least this often; in between, only
/// listeners and the sockets the capture saw a segment arrive for are looked up: an idle
/// socket's counters cannot move, and walking the kernel's whole established hash each
/// second cost more than everything else a cycle does. The re-sync catches what segments
/// cannot show: a socket unhashed by a reset while its fd stays open, traffic the tap
/// sees only encrypted (IPsec transport mode) or under other addresses (NAT).
pub const FULL_DUMP_EVERY: Duration = Duration::from_secs(30);
/// While re-syncs find nothing the activity marks missed, the next one comes twice as
/// late, up to this; one that finds missed bytes (NAT, IPsec: segments the tap sees
/// under other addresses) brings the interval back to [`FULL_DUMP_EVERY`].
pub const FULL_DUMP_MAX: Duration = Duration::from_secs(120);
/// Sockets a re-sync walk reads per tick (about 8 ms of kernel work here): a host with
/// 30k connections re-syncs over four ticks instead of stalling one for 50 ms.
pub const WALK_SLICE: usize = 8192;
/// More active tuples than this: one dump is cheaper than that many lookups.
const MAX_LOOKUPS: usize = 4096;

/// How long an exited process stays known after its last reference.
const REMEMBER: Duration = Duration::from_secs(120);

/// A connect seen by the tracer: who, and the 4-tuple (local port 0 when the tracepoint
/// fired before the port was chosen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRecord {
    pub pid: u32,
    pub comm: Vec<u8>,
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
}

/// What the collector needs from the kernel. Every method reports degradations as notes.
pub trait Kernel: Send + 'static {
    /// Every TCP and UDP socket, v4 and v6, owners empty, `sent/received` = payload bytes.
    fn dump(&mut self, notes: &mut Vec<Note>) -> Result<Vec<SocketSample>, CollectError>;
    /// Like [`Kernel::dump`], but TCP only for listeners, the sockets of these
    /// (local, remote) tuples and a slice of a walk begun by [`Kernel::begin_walk`];
    /// `None` when this kernel cannot look sockets up (the caller then dumps).
    fn refresh(
        &mut self,
        _tuples: &[Tuple],
        _notes: &mut Vec<Note>,
    ) -> Option<Result<Refreshed, CollectError>> {
        None
    }
    /// Begin a walk over every TCP socket, about `slice` sockets read per
    /// [`Kernel::refresh`]; false when this kernel cannot (the caller dumps at once).
    fn begin_walk(&mut self, _slice: usize) -> bool {
        false
    }
    /// Sockets destroyed since the last call, final counters, owners empty.
    fn drain_closed(&mut self, notes: &mut Vec<Note>) -> Vec<ClosedSocket>;
    /// Connects since the last call.
    fn drain_connects(&mut self, notes: &mut Vec<Note>) -> Vec<ConnectRecord>;
    /// Closed sockets' final bytes are reported.
    fn reports_closed(&self) -> bool;
}

/// What a [`Kernel::refresh`] listed.
#[derive(Debug, Default)]
pub struct Refreshed {
    pub sockets: Vec<SocketSample>,
    /// Sockets the walk slice listed with counters a tick old (re-read into `sockets`
    /// where a lookup could): they exist, whatever their counters.
    pub walked: Vec<SocketId>,
    /// The walk ended in this refresh: with the refreshes since it began, every TCP
    /// socket that lived through it was listed.
    pub walk_done: bool,
}

/// A re-sync under way: a walk over several ticks, or one full dump.
struct Resync {
    /// What the tap marked since it began (`None`: no marks to judge by).
    marks: Option<FastSet<(SocketAddr, SocketAddr)>>,
    /// Known sockets whose bytes moved with no mark so far.
    unmarked: Vec<(SocketAddr, Option<SocketAddr>)>,
    /// The owner map's change counter when it began.
    owners_from: u64,
}

pub struct LinuxCollector {
    kernel: Box<dyn Kernel>,
    proc_root: PathBuf,
    procmap: ProcMap,
    ifaces: IfaceSource,
    /// `/proc/thread-self/net` under `proc_root`: this thread's network namespace.
    net_dir: PathBuf,
    attribution: Attribution,
    /// Processes seen owning sockets or connecting, kept after they exit.
    remembered: HashMap<ProcKey, (ProcessInfo, Duration)>,
    /// Closed sockets held back for a late connect record, and how often they were tried.
    unnamed: Vec<(ClosedSocket, u32)>,
    /// pid → (process, comm at connect, when) for connects seen lately.
    named: HashMap<u32, (ProcKey, Vec<u8>, Duration)>,
    epoch: Instant,
    /// AF_PACKET counting of UDP/ICMP/raw bytes (and TCP in the fallback).
    packet: Option<PacketCounter>,
    /// When the last re-sync (every TCP socket read) ended.
    last_full: Option<Duration>,
    /// TCP sockets as last passed on, so unchanged ones stop here.
    changes: Changes,
    /// Ticks that read TCP by lookups instead of a full dump.
    lookup_ticks: u64,
    /// The tuples last tick's capture marked.
    last_tuples: Vec<Tuple>,
    /// Current interval between full dumps (see [`FULL_DUMP_MAX`]).
    full_every: Duration,
    resync: Option<Resync>,
    /// A finished re-sync's unmarked sockets, judged once the next tick's marks are in
    /// (a segment that arrived after the capture's hand-off is marked a tick late).
    verdict: Option<Vec<(SocketAddr, Option<SocketAddr>)>>,
    /// A walk is under way (the re-sync's listings come a slice per tick).
    walking: bool,
    walk_slice: usize,
    /// The next tick begins a re-sync, however recent the last one.
    resync_soon: bool,
    /// Ticks that read a walk slice; re-syncs completed.
    walk_ticks: u64,
    resyncs: u64,
}

/// One tick's TCP listing.
struct Listing {
    sockets: Vec<SocketSample>,
    /// Sockets known to exist without their counters (see [`Refreshed::walked`]).
    walked: Vec<SocketId>,
    /// A re-sync ended: with the listings since it began, every TCP socket was listed.
    full: bool,
}

impl LinuxCollector {
    /// Over the real kernel and `/proc`, `/sys`.
    pub fn open() -> Result<Self, CollectError> {
        let kernel = super::kernel::NetlinkKernel::open()?;
        Ok(
            Self::with_kernel(Box::new(kernel), "/proc", IfaceSource::default())
                .with_packet(PacketCounter::open(Keep::NonTcp)),
        )
    }

    /// Over any kernel source and /proc tree (tests, benchmarks).
    pub fn with_kernel(
        kernel: Box<dyn Kernel>,
        proc_root: impl Into<PathBuf>,
        ifaces: IfaceSource,
    ) -> Self {
        let proc_root = proc_root.into();
        LinuxCollector {
            kernel,
            procmap: ProcMap::new(proc_root.clone()),
            net_dir: proc_root.join("thread-self/net"),
            proc_root,
            ifaces,
            attribution: Attribution::default(),
            remembered: HashMap::new(),
            unnamed: Vec::new(),
            named: HashMap::new(),
            epoch: Instant::now(),
            packet: None,
            last_full: None,
            changes: Changes::default(),
            lookup_ticks: 0,
            last_tuples: Vec::new(),
            full_every: FULL_DUMP_EVERY,
            resync: None,
            verdict: None,
            walking: false,
            walk_slice: WALK_SLICE,
            resync_soon: false,
            walk_ticks: 0,
            resyncs: 0,
        }
    }

    /// Ticks so far that read TCP by lookups (listeners and active sockets) instead of a
    /// full dump.
    pub fn lookup_ticks(&self) -> u64 {
        self.lookup_ticks
    }

    /// Make the next [`Collector::collect`] dump every socket (benchmarks, tests).
    pub fn resync(&mut self) {
        self.last_full = None;
    }

    /// Make the next [`Collector::collect`] begin a scheduled re-sync (a walk where the
    /// kernel allows), as if its interval had passed (benchmarks, tests).
    pub fn resync_soon(&mut self) {
        self.resync_soon = true;
    }

    /// Sockets a re-sync walk reads per tick (benchmarks, tests; default [`WALK_SLICE`]).
    pub fn set_walk_slice(&mut self, sockets: usize) {
        self.walk_slice = sockets.max(1);
    }

    /// Ticks so far that read a slice of a re-sync walk.
    pub fn walk_ticks(&self) -> u64 {
        self.walk_ticks
    }

    /// Re-syncs (full dumps or walks) completed so far.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Count captured bytes into the sockets (see [`PacketCounter`]).
    pub fn with_packet(mut self, packet: PacketCounter) -> Self {
        self.packet = Some(packet);
        self
    }

    /// Step 1: name the connectors now, while they may still be alive.
    fn learn_connects(&mut self, records: Vec<ConnectRecord>, now: Duration) -> Vec<u32> {
        let mut pids = Vec::with_capacity(records.len());
        for r in records {
            let key = self.identify(r.pid, &r.comm, now);
            pids.push(r.pid);
            self.attribution.learn_connect(ConnectSeen {
                key,
                local: r.local,
                remote: r.remote,
                at: now,
            });
        }
        self.attribution.expire(now);
        pids
    }

    /// The identity of a pid just seen connecting: read it now; if it already exited,
    /// the last known process with that pid, else a record with the connect-time comm.
    fn identify(&mut self, pid_no: u32, comm: &[u8], now: Duration) -> ProcKey {
        // A process connecting again and again (a busy host: thousands of connects a
        // second) is read from /proc once, not per connect.
        if let Some((key, seen_comm, at)) = self.named.get_mut(&pid_no)
            && seen_comm.as_slice() == comm
            && now.saturating_sub(*at) < NAMED_TTL
            && let Some((_, seen)) = self.remembered.get_mut(key)
        {
            *at = now;
            *seen = now;
            return *key;
        }
        let key = self.identify_slow(pid_no, comm, now);
        if self.named.len() >= MAX_NAMED {
            self.named.clear();
        }
        self.named.insert(pid_no, (key, comm.to_vec(), now));
        key
    }

    fn identify_slow(&mut self, pid_no: u32, comm: &[u8], now: Duration) -> ProcKey {
        let dir = self.proc_root.join(pid_no.to_string());
        // Still running (a pid is not reused within one interval in practice); the comm may
        // differ when a thread other than the main one connected.
        if let Ok(stat) = pid::read_stat(&dir)
            && let Ok(info) = pid::read_info(&dir, stat)
        {
            let key = info.key;
            self.remembered.insert(key, (info, now));
            return key;
        }
        if let Some(info) = self.procmap.process(pid_no) {
            return info.key;
        }
        if let Some((key, _)) = self
            .remembered
            .iter()
            .find(|(k, (i, _))| k.pid == pid_no && i.comm == comm)
        {
            return *key;
        }
        // Exited before we could look: a start time of 0 marks "unknown"; the name is the
        // comm the kernel had at connect time.
        let key = ProcKey {
            pid: pid_no,
            start_time: 0,
        };
        let name = String::from_utf8_lossy(comm).into_owned();
        let info = ProcessInfo {
            key,
            ppid: 0,
            uid: u32::MAX,
            comm: comm.to_vec(),
            name,
            cmdline: String::new(),
            alive: false,
        };
        self.remembered.insert(key, (info, now));
        key
    }

    /// Step 2: listeners, UDP and the TCP sockets a segment arrived for, plus a slice of
    /// a re-sync walk while one runs; a full dump when activity is unknown.
    fn list_sockets(
        &mut self,
        now: Duration,
        notes: &mut Vec<Note>,
    ) -> Result<Listing, CollectError> {
        let active = self.packet.as_mut().and_then(PacketCounter::tcp_activity);
        // Last tick's tuples are read once more: a segment tapped just before the hand-off
        // may still have sat in its socket's backlog when that tick read the socket.
        let previous = std::mem::take(&mut self.last_tuples);
        if let Some(unmarked) = self.verdict.take() {
            let late = active
                .iter()
                .flatten()
                .map(|t| (t.local, t.remote))
                .collect();
            let missed = still_unmarked(&late, &unmarked).len();
            self.full_every = next_full_every(self.full_every, Some(missed));
        }
        let Some(fresh) = active.filter(|f| f.len() <= MAX_LOOKUPS && self.last_full.is_some())
        else {
            self.resync = None;
            return self.full_dump(now, notes);
        };
        let due = self.resync.is_none()
            && (std::mem::take(&mut self.resync_soon)
                || self
                    .last_full
                    .is_none_or(|t| now.saturating_sub(t) >= self.full_every));
        let marked = fresh.iter().chain(&previous).map(|t| (t.local, t.remote));
        if due {
            // A scheduled re-sync with marks at hand can tell whether they missed anything.
            let walk = self.kernel.begin_walk(self.walk_slice);
            self.start_resync(Some(marked.collect()), walk);
            if !walk {
                return self.full_dump(now, notes);
            }
            self.walking = true;
        } else if let Some(marks) = self.resync.as_mut().and_then(|r| r.marks.as_mut()) {
            marks.extend(marked);
        }
        let mut lookups: FastSet<Tuple> = fresh.iter().chain(&previous).copied().collect();
        // Idle sockets that changed hands since last tick: read again so their new owners
        // show now. No device is named (not kept): a device-bound one waits for a re-sync.
        let changed_hands = self.procmap.take_recent_changes();
        let procmap = &self.procmap;
        lookups.extend(
            self.changes
                .owner_moves(&changed_hands, |inode| procmap.last_change(inode))
                .into_iter()
                .map(|(local, remote)| Tuple {
                    local,
                    remote,
                    ifindex: 0,
                }),
        );
        let lookups: Vec<Tuple> = lookups.into_iter().collect();
        let Some(listed) = self.kernel.refresh(&lookups, notes) else {
            return self.full_dump(now, notes);
        };
        let Refreshed {
            sockets,
            walked,
            walk_done,
        } = listed?;
        self.lookup_ticks += 1;
        self.last_tuples = fresh;
        if self.walking {
            self.walk_ticks += 1;
        }
        if walk_done {
            self.walking = false;
            self.last_full = Some(now);
        }
        Ok(Listing {
            sockets,
            walked,
            full: walk_done,
        })
    }

    /// Every TCP socket in one dump: ends a re-sync under way, or is one by itself.
    fn full_dump(&mut self, now: Duration, notes: &mut Vec<Note>) -> Result<Listing, CollectError> {
        if self.resync.is_none() {
            self.start_resync(None, false);
        } else if self.walking {
            // Complete by itself, unlike the walk it replaces: it starts the count afresh.
            self.changes.begin(false);
        }
        self.walking = false;
        // Every socket comes with its owners as they are now.
        self.procmap.take_recent_changes();
        let sockets = self.kernel.dump(notes)?;
        self.last_full = Some(now);
        Ok(Listing {
            sockets,
            walked: Vec::new(),
            full: true,
        })
    }

    fn start_resync(&mut self, marks: Option<FastSet<(SocketAddr, SocketAddr)>>, walk: bool) {
        self.changes.begin(walk);
        self.resync = Some(Resync {
            marks,
            unmarked: Vec::new(),
            owners_from: self.procmap.change_seq(),
        });
    }

    /// After a listing went through [`Changes::filter`]: note what moved unmarked and,
    /// when the listing ended a re-sync, leave the verdict on the next interval to the
    /// next tick (its marks may still explain some).
    fn judge_resync(&mut self, full: bool) {
        if let Some(r) = self.resync.as_mut()
            && let Some(marks) = &r.marks
        {
            r.unmarked
                .extend(still_unmarked(marks, self.changes.moved()));
        }
        if !full {
            return;
        }
        if let Some(r) = self.resync.take() {
            self.resyncs += 1;
            // Every known socket was compared since it began: older owner changes are consumed.
            self.procmap.clear_changed_before(r.owners_from);
            match r.marks {
                // Marks gathered later in the re-sync explain earlier moves too.
                Some(marks) => self.verdict = Some(still_unmarked(&marks, &r.unmarked)),
                None => self.full_every = next_full_every(self.full_every, None),
            }
        }
    }

    /// Steps 3–4: owners from /proc, else from the second sources.
    fn fill_owners(&mut self, sockets: &mut [SocketSample], hint_pids: Vec<u32>, now: Duration) {
        let mut wanted = Wanted {
            unknown: Vec::new(),
            hint_pids,
        };
        for s in sockets.iter() {
            if s.inode != 0 && self.procmap.owners(s.inode).is_empty() && matters(s) {
                wanted.unknown.push((s.inode, s.uid));
            }
        }
        self.procmap.refresh(&wanted, now);
        for s in sockets.iter_mut() {
            s.owners = self.procmap.owners(s.inode).to_vec();
        }
        // Listeners of this very dump count for the fallback below.
        self.attribution.learn_dump(sockets, now);
        for s in sockets.iter_mut() {
            if s.owners.is_empty() && carries_bytes(s) {
                // An orphan (closed, still sending or acking; inode 0) keeps the owners it
                // was last seen with: the listener's or a connector's would be a guess.
                s.owners = match self.attribution.by_cookie(s.id) {
                    Some(owners) if s.inode == 0 => owners.to_vec(),
                    _ => {
                        let owners = self.attribution.fallback(s.proto, s.local, s.remote);
                        self.attribution.learn_owners(s.id, &owners, now);
                        owners
                    }
                };
            }
        }
    }

    /// Step 5: closed sockets' owners: earlier dumps, listener, connector.
    fn name_closed(&mut self, closed: &mut [ClosedSocket]) {
        for c in closed {
            c.owners = match self.attribution.by_cookie(c.id) {
                Some(o) => o.to_vec(),
                None => self.attribution.fallback(c.proto, c.local, c.remote),
            };
            self.attribution.forget(c.id);
        }
    }

    /// Closed sockets nobody could name wait up to [`UNNAMED_WAIT`] cycles for a late
    /// connect record before their bytes go to the unattributed row.
    fn hold_unnamed(&mut self, closed: Vec<ClosedSocket>, tries: Vec<u32>) -> Vec<ClosedSocket> {
        let mut out = Vec::with_capacity(closed.len());
        for (c, n) in closed.into_iter().zip(tries) {
            if c.owners.is_empty() && n < UNNAMED_WAIT && c.proto == proto::Proto::Tcp {
                self.unnamed.push((c, n + 1));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Step 6: describe every referenced process, alive or remembered.
    fn describe(&mut self, sample: &Sample, now: Duration) -> Vec<ProcessInfo> {
        let holders: FastSet<ProcKey> = sample
            .sockets
            .iter()
            .flat_map(|s| s.owners.iter())
            .copied()
            .collect();
        let mut keys = holders.clone();
        keys.extend(sample.closed.iter().flat_map(|c| c.owners.iter()).copied());
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let fresh = self
                .procmap
                .process(key.pid)
                .filter(|i| i.key == key)
                .cloned();
            if let Some(info) = fresh.clone() {
                self.remembered.insert(key, (info, now));
            }
            // /proc owners of a live socket are alive; an owner named only by a closed
            // socket may have exited since the last /proc scan.
            if holders.contains(&key)
                && let Some(info) = fresh
            {
                out.push(info);
                continue;
            }
            let running = still_running(&self.proc_root, key);
            if let Some((info, seen)) = self.remembered.get_mut(&key) {
                *seen = now;
                info.alive &= running;
                out.push(info.clone());
            }
        }
        let keep: HashSet<ProcKey> = self.attribution.connect_keys().collect();
        self.remembered
            .retain(|k, (_, seen)| now.saturating_sub(*seen) < REMEMBER || keep.contains(k));
        out
    }
}

/// Of the sockets whose bytes moved (`moved`), those with no activity mark (`marks`).
fn still_unmarked(
    marks: &FastSet<(SocketAddr, SocketAddr)>,
    moved: &[(SocketAddr, Option<SocketAddr>)],
) -> Vec<(SocketAddr, Option<SocketAddr>)> {
    moved
        .iter()
        .filter(|(local, remote)| remote.is_none_or(|r| !marks.contains(&(*local, r))))
        .copied()
        .collect()
}

/// The interval to the next re-sync, after one that found `missed` sockets whose bytes
/// the marks missed (`None`: no marks to judge by).
fn next_full_every(current: Duration, missed: Option<usize>) -> Duration {
    match missed {
        Some(0) => (current * 2).min(FULL_DUMP_MAX),
        Some(missed) => {
            tracing::debug!("{missed} sockets moved unmarked: re-sync every {FULL_DUMP_EVERY:?}");
            FULL_DUMP_EVERY
        }
        None => FULL_DUMP_EVERY,
    }
}

fn still_running(proc_root: &std::path::Path, key: ProcKey) -> bool {
    pid::read_stat(&proc_root.join(key.pid.to_string()))
        .is_ok_and(|s| s.start_time == key.start_time)
}

/// Sockets whose owner is worth a /proc search: they carry bytes or listen.
fn matters(s: &SocketSample) -> bool {
    s.is_listening() || carries_bytes(s)
}

fn carries_bytes(s: &SocketSample) -> bool {
    s.sent.unwrap_or(0) > 0 || s.received.unwrap_or(0) > 0
}

impl Collector for LinuxCollector {
    fn mode(&self) -> CollectorMode {
        CollectorMode::Netlink
    }

    fn caps(&self) -> Caps {
        Caps {
            kill: false,
            packet_bytes: self.packet.as_ref().is_some_and(PacketCounter::available),
            closed_connections: self.kernel.reports_closed(),
            all_users: !self.procmap.denied(),
        }
    }

    fn collect(&mut self) -> Result<Sample, CollectError> {
        let now = self.epoch.elapsed();
        let mut notes = Vec::new();

        // 1. Connects first: the connectors may exit any moment.
        let records = self.kernel.drain_connects(&mut notes);
        let hint_pids = self.learn_connects(records, now);
        let changes = &self.changes;
        self.attribution
            .expire_cookies(now, |cookie| changes.is_known(cookie));

        // 2. Every socket (or only those that may have changed), 3.–4. with its owners.
        let Listing {
            mut sockets,
            walked,
            full,
        } = match self.list_sockets(now, &mut notes) {
            Ok(listed) => listed,
            Err(e) => {
                // This tick's activity marks are spent: the next tick must read everything.
                self.last_full = None;
                self.resync = None;
                self.walking = false;
                return Err(e);
            }
        };

        // PACKET STEP (before owners, so sockets that carry bytes get theirs searched):
        // raw/ping/SCTP sockets from /proc/net, captured bytes into UDP/ICMP/raw sockets,
        // frames no socket explains; captured sockets gone since the last dump come back
        // in `packet_closed` with their final bytes (named in step 5 like the others).
        let mut packet_closed = Vec::new();
        let packet = self.packet.as_mut().map(|p| {
            sockets.extend(p.extra_sockets(&self.net_dir, full));
            p.account(&mut sockets, &mut packet_closed)
        });
        // Counters are all in: TCP sockets that did not change since they were last
        // passed on stop here (after the first listing, every TCP listing is partial).
        let tcp_partial = self.changes.primed();
        self.changes.seen(&walked);
        let procmap = &self.procmap;
        let tcp_gone = self.changes.filter(
            &mut sockets,
            full,
            |inode| procmap.last_change(inode),
            procmap.change_seq(),
        );
        self.judge_resync(full);
        self.fill_owners(&mut sockets, hint_pids, now);
        self.changes
            .owners_settled(sockets.iter().map(|s| s.id), self.procmap.change_seq());

        // 5. Sockets closed since the last call, with their final counters. Connects are
        // drained once more first-hand: a connection that opened and closed during the
        // dump has its connect event in the ring by now.
        let mut closed = self.kernel.drain_closed(&mut notes);
        closed.append(&mut packet_closed);
        for c in &closed {
            self.changes.closed(c.id);
        }
        let late = self.kernel.drain_connects(&mut Vec::new());
        self.learn_connects(late, now);
        let mut tries = vec![0; closed.len()];
        for (c, n) in std::mem::take(&mut self.unnamed) {
            closed.push(c);
            tries.push(n);
        }
        self.name_closed(&mut closed);
        let closed = self.hold_unnamed(closed, tries);

        let mut sample = Sample {
            sockets,
            tcp_partial,
            tcp_gone,
            closed,
            ..Sample::default()
        };
        if let Some(acc) = packet {
            acc.apply(&mut sample);
            notes.append(&mut sample.notes);
        }

        // 6. Who the owners are.
        sample.processes = self.describe(&sample, now);

        // 7. Interfaces and notes.
        let (interfaces, default) = self.ifaces.read();
        sample.interfaces = interfaces;
        sample.default_interface = default;
        notes.extend(self.procmap.notes());
        notes.dedup();
        sample.notes = notes;
        Ok(sample)
    }
}

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;
