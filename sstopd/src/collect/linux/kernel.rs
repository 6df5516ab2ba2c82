//! [`Kernel`] over sock_diag dumps, the destroy multicast and the connect tracepoint.

use std::collections::HashMap;
use std::net::SocketAddr;

use proto::{Note, Proto, TcpState};

use super::collector::{ConnectRecord, Kernel, Refreshed};
use super::destroy::DestroyWatcher;
use super::netlink::{
    DiagSocket, Family, NetlinkError, Slice, SockDiag, TcpWalk, Tuple, infer_roles,
};
use super::tracepoint::{ConnectEvent, ConnectTracer};
use crate::collect::{ClosedSocket, CollectError, SocketSample};

/// Connects waiting for their local port (the tracepoint fires at SYN-SENT before the
/// port is chosen; the next event of the same socket carries it). Bounded.
const MAX_PENDING: usize = 65_536;

pub struct NetlinkKernel {
    diag: SockDiag,
    destroy: Option<DestroyWatcher>,
    destroy_error: Option<String>,
    tracer: Option<ConnectTracer>,
    tracer_error: Option<String>,
    /// skaddr → (pid, comm) of a connect whose local port was still 0.
    pending: HashMap<u64, (u32, Vec<u8>)>,
    udp_missing: bool,
    /// TCP of both families comes from one dump until the kernel refuses that request.
    tcp_both: bool,
    /// Exact-tuple lookups work (until the kernel refuses one).
    lookups: bool,
    /// The re-sync walk's own socket, opened on first use (`None` after it failed).
    walk: Option<TcpWalk>,
    /// Sockets the walk reads per refresh.
    walk_slice: usize,
    walk_failed: bool,
    /// The "no byte counters" warning of the latest full listing, repeated by refreshes.
    unmeasured: Option<Note>,
    lost_reported: u64,
}

impl NetlinkKernel {
    /// Without connect-time tracing, as where CAP_PERFMON or tracefs is missing (tests).
    pub fn without_tracer(mut self) -> Self {
        self.tracer = None;
        self.tracer_error = Some("switched off".into());
        self
    }

    /// Opens sock_diag and probes a TCP dump (a kernel without inet_diag fails here, so
    /// the caller can pick the fallback); the destroy watcher and the tracer are optional.
    pub fn open() -> Result<Self, CollectError> {
        let mut diag = SockDiag::open().map_err(netlink_err)?;
        diag.dump(Family::V4, Proto::Tcp).map_err(netlink_err)?;
        let (destroy, destroy_error) = match DestroyWatcher::open() {
            Ok(w) => (Some(w), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let (tracer, tracer_error) = match ConnectTracer::open() {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(NetlinkKernel {
            diag,
            destroy,
            destroy_error,
            tracer,
            tracer_error,
            pending: HashMap::new(),
            udp_missing: false,
            tcp_both: true,
            lookups: true,
            walk: None,
            walk_slice: 0,
            walk_failed: false,
            unmeasured: None,
            lost_reported: 0,
        })
    }
}

fn netlink_err(e: NetlinkError) -> CollectError {
    CollectError::Netlink(e.to_string())
}

/// A dumped socket as a sample (owners filled later).
pub fn to_sample(d: DiagSocket) -> SocketSample {
    SocketSample {
        id: d.cookie,
        proto: d.proto,
        local: d.local,
        remote: d.remote,
        state: d.state,
        uid: d.uid,
        inode: d.inode,
        owners: Vec::new(),
        sent: d.payload_sent(),
        received: d.payload_received(),
    }
}

/// A destroyed socket with its final payload counters (0 when unreadable).
pub fn to_closed(d: DiagSocket) -> ClosedSocket {
    ClosedSocket {
        id: d.cookie,
        proto: d.proto,
        local: d.local,
        remote: d.remote,
        sent: d.payload_sent().unwrap_or(0),
        received: d.payload_received().unwrap_or(0),
        owners: Vec::new(),
    }
}

/// State changes made in the owning process's context (connect, close): their pid is
/// the owner. Others run in softirq context and name whatever task was current.
pub fn in_process_context(old: TcpState, new: TcpState) -> bool {
    matches!(
        (old, new),
        (TcpState::Close, TcpState::SynSent)
            | (TcpState::Established, TcpState::FinWait1)
            | (TcpState::CloseWait, TcpState::LastAck)
    )
}

/// Turn tracer events into connect records, pairing a SYN-SENT without local port with
/// the next event of the same socket (`skaddr`) that has one.
pub fn pair_events(
    pending: &mut HashMap<u64, (u32, Vec<u8>)>,
    events: Vec<ConnectEvent>,
) -> Vec<ConnectRecord> {
    let mut out = Vec::new();
    for ev in events {
        if ev.proto != Proto::Tcp {
            continue;
        }
        let record = |pid: u32, comm: Vec<u8>, local: SocketAddr| ConnectRecord {
            pid,
            comm,
            local,
            remote: ev.remote,
        };
        if in_process_context(ev.old_state, ev.new_state) {
            if ev.local.port() == 0 {
                if pending.len() >= MAX_PENDING {
                    pending.clear();
                }
                pending.insert(ev.skaddr, (ev.pid, ev.comm.clone()));
            }
            out.push(record(ev.pid, ev.comm.clone(), ev.local));
        } else if ev.local.port() != 0
            && let Some((pid, comm)) = pending.remove(&ev.skaddr)
        {
            out.push(record(pid, comm, ev.local));
        }
    }
    out
}

impl NetlinkKernel {
    /// TCP sockets of every state that counts (one walk of both families when possible).
    fn dump_tcp(&mut self) -> Result<Vec<DiagSocket>, CollectError> {
        if self.tcp_both {
            match self.diag.dump_tcp_both() {
                Ok(both) => return Ok(both),
                Err(e) => {
                    tracing::info!("one-walk TCP dump refused ({e}): dumping per family");
                    self.tcp_both = false;
                }
            }
        }
        let mut tcp = Vec::new();
        for family in [Family::V4, Family::V6] {
            tcp.extend(self.diag.dump(family, Proto::Tcp).map_err(netlink_err)?);
        }
        Ok(tcp)
    }

    fn dump_listeners(&mut self) -> Result<Vec<DiagSocket>, NetlinkError> {
        if self.tcp_both {
            return self.diag.dump_tcp_listeners();
        }
        let mut tcp = self.diag.dump_listeners(Family::V4)?;
        tcp.extend(self.diag.dump_listeners(Family::V6)?);
        Ok(tcp)
    }

    /// TCP samples plus every UDP socket (sock_diag, else /proc/net/udp).
    fn with_udp(&mut self, tcp: Vec<DiagSocket>) -> Result<Vec<SocketSample>, CollectError> {
        // TIME-WAIT and request minisockets have no owner, no inode and no counters (the
        // full socket's final bytes came with its destroy event). Requests leave them
        // out; this keeps it so should a kernel ignore the state mask.
        let mut sockets: Vec<SocketSample> = tcp
            .into_iter()
            .filter(|d| !matches!(d.state, Some(TcpState::TimeWait | TcpState::NewSynRecv)))
            .map(to_sample)
            .collect();
        for family in [Family::V4, Family::V6] {
            match self.diag.dump(family, Proto::Udp) {
                Ok(udp) => sockets.extend(udp.into_iter().map(to_sample)),
                Err(NetlinkError::NoDiagHandler { .. }) => self.udp_missing = true,
                Err(e) => return Err(netlink_err(e)),
            }
        }
        if self.udp_missing {
            let net = std::path::Path::new("/proc/thread-self/net");
            match super::procnet::read_sockets(net, &[super::procnet::Table::Udp]) {
                Ok(udp) => sockets.extend(udp),
                Err(e) => tracing::warn!("reading /proc/net/udp: {e}"),
            }
        }
        Ok(sockets)
    }

    fn push_notes(&self, notes: &mut Vec<Note>) {
        notes.extend(self.unmeasured.clone());
        if self.udp_missing {
            notes.push(Note::warning(
                "no UDP sock_diag handler (udp_diag): UDP sockets are read from /proc/net/udp instead",
            ));
        }
    }
}

impl Kernel for NetlinkKernel {
    fn dump(&mut self, notes: &mut Vec<Note>) -> Result<Vec<SocketSample>, CollectError> {
        // A full dump supersedes a walk under way.
        if let Some(walk) = self.walk.as_mut() {
            walk.abandon();
        }
        let tcp = self.dump_tcp()?;
        let sockets = self.with_udp(tcp)?;
        // A tcp_info too short for the byte counters (B11: kernels before 4.x) leaves
        // connections unmeasured; say so instead of showing zeros.
        let unmeasured = sockets
            .iter()
            .filter(|s| s.proto == Proto::Tcp && s.state == Some(TcpState::Established))
            .filter(|s| s.sent.is_none() || s.received.is_none())
            .count();
        self.unmeasured = (unmeasured > 0).then(|| {
            Note::warning(format!(
                "{unmeasured} TCP connections report no byte counters (this kernel's tcp_info is too short): their bytes need the packet collector"
            ))
        });
        self.push_notes(notes);
        Ok(sockets)
    }

    fn refresh(
        &mut self,
        tuples: &[Tuple],
        notes: &mut Vec<Note>,
    ) -> Option<Result<Refreshed, CollectError>> {
        if !self.lookups {
            return None;
        }
        // A walk slice first: its stale sockets are looked up with the marked ones.
        let slice = match self.walk.as_mut().filter(|w| w.running()) {
            Some(w) => match w.step(self.walk_slice) {
                Ok(slice) => Some(slice),
                Err(e) => {
                    tracing::debug!("re-sync walk failed ({e}): dumping instead");
                    return None;
                }
            },
            None => None,
        };
        let walking = slice.is_some();
        let Slice { fresh, stale, done } = slice.unwrap_or_default();
        let mut lookups = tuples.to_vec();
        lookups.extend(stale.iter().filter_map(|d| {
            Some(Tuple {
                local: d.local,
                remote: d.remote?,
                ifindex: d.ifindex,
            })
        }));
        let looked_up = self.dump_listeners().and_then(|mut tcp| {
            tcp.extend(self.diag.lookup_tcp(&lookups)?);
            Ok(tcp)
        });
        let mut tcp = match looked_up {
            Ok(tcp) => tcp,
            // A kernel that cannot answer lookups: dump every tick from now on.
            Err(
                e @ (NetlinkError::NoDiagHandler { .. }
                | NetlinkError::Kernel {
                    errno: libc::EINVAL | libc::EOPNOTSUPP | libc::EPROTONOSUPPORT,
                }),
            ) => {
                tracing::info!("sock_diag lookups refused ({e}): full dumps every cycle");
                self.lookups = false;
                return None;
            }
            // A timeout, a busy socket table, a full buffer: this tick dumps instead.
            Err(e) => {
                tracing::debug!("sock_diag lookups failed this tick ({e}): dumping");
                return None;
            }
        };
        // A tuple nobody holds may answer with its port's listener, listed already; a
        // socket both looked up and walked keeps its lookup.
        tcp.extend(fresh);
        let mut seen = std::collections::HashSet::with_capacity(tcp.len());
        tcp.retain(|d| seen.insert(d.cookie));
        infer_roles(&mut tcp);
        let sockets = self.with_udp(tcp);
        self.push_notes(notes);
        Some(sockets.map(|sockets| Refreshed {
            sockets,
            walked: stale.iter().map(|d| d.cookie).collect(),
            walk_done: walking && done,
        }))
    }

    fn begin_walk(&mut self, slice: usize) -> bool {
        self.walk_slice = slice;
        if !self.lookups || !self.tcp_both || self.walk_failed {
            return false;
        }
        if self.walk.is_none() {
            match TcpWalk::open() {
                Ok(w) => self.walk = Some(w),
                Err(e) => {
                    tracing::info!("re-sync walk unavailable ({e}): full dumps at once");
                    self.walk_failed = true;
                    return false;
                }
            }
        }
        let Some(walk) = self.walk.as_mut() else {
            return false;
        };
        match walk.begin() {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("re-sync walk refused ({e}): dumping at once");
                false
            }
        }
    }

    fn drain_closed(&mut self, notes: &mut Vec<Note>) -> Vec<ClosedSocket> {
        let Some(w) = self.destroy.as_mut() else {
            notes.push(Note::warning(format!(
                "closed-connection events unavailable ({}): bytes of connections shorter than one interval are missed",
                self.destroy_error.as_deref().unwrap_or("unknown")
            )));
            return Vec::new();
        };
        let batch = w.drain();
        if batch.overrun {
            notes.push(Note::warning(
                "closed-connection events overran the kernel buffer: some final bytes were missed",
            ));
        }
        batch
            .closed
            .into_iter()
            .filter(|d| d.proto == Proto::Tcp)
            .map(to_closed)
            .collect()
    }

    fn drain_connects(&mut self, notes: &mut Vec<Note>) -> Vec<ConnectRecord> {
        let Some(t) = self.tracer.as_mut() else {
            notes.push(Note::info(format!(
                "connect-time tracing unavailable ({}): short-lived outgoing connections whose process exits within one interval are unattributed",
                self.tracer_error.as_deref().unwrap_or("unknown")
            )));
            return Vec::new();
        };
        let events = t.drain();
        if t.lost() > self.lost_reported {
            self.lost_reported = t.lost();
            notes.push(Note::warning(format!(
                "connect tracer lost {} events: some short-lived connections may be unattributed",
                t.lost()
            )));
        }
        pair_events(&mut self.pending, events)
    }

    fn reports_closed(&self) -> bool {
        self.destroy.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(pid: u32, local: &str, old: TcpState, new: TcpState, skaddr: u64) -> ConnectEvent {
        ConnectEvent {
            pid,
            tid: pid,
            comm: format!("p{pid}").into_bytes(),
            proto: Proto::Tcp,
            local: local.parse().unwrap(),
            remote: "10.0.0.2:80".parse().unwrap(),
            old_state: old,
            new_state: new,
            time_ns: 0,
            skaddr,
        }
    }

    #[test]
    fn syn_sent_without_port_is_paired_with_the_established_event() {
        let mut pending = HashMap::new();
        let out = pair_events(
            &mut pending,
            vec![ev(
                42,
                "0.0.0.0:0",
                TcpState::Close,
                TcpState::SynSent,
                0xabc,
            )],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].local.port(), 0);
        // Softirq context: pid 0 (or any bystander), but the 4-tuple is complete.
        let out = pair_events(
            &mut pending,
            vec![ev(
                0,
                "10.0.0.1:40000",
                TcpState::SynSent,
                TcpState::Established,
                0xabc,
            )],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].pid, out[0].comm.as_slice(), out[0].local.port()),
            (42, &b"p42"[..], 40000)
        );
        assert!(pending.is_empty());
        // Unrelated softirq events name nobody.
        let out = pair_events(
            &mut pending,
            vec![ev(
                7,
                "10.0.0.1:8080",
                TcpState::SynRecv,
                TcpState::Established,
                0xdef,
            )],
        );
        assert!(out.is_empty());
    }

    #[test]
    fn close_in_process_context_names_the_closer() {
        let mut pending = HashMap::new();
        let out = pair_events(
            &mut pending,
            vec![ev(
                9,
                "10.0.0.1:8080",
                TcpState::Established,
                TcpState::FinWait1,
                1,
            )],
        );
        assert_eq!(out[0].pid, 9);
    }
}

#[cfg(test)]
mod live_tests;
