//! The fallback collector (`--collector packet`, or kernels without inet_diag, B12):
//! sockets from `/proc/net/{tcp,tcp6,udp,udp6}` (+ raw, ping, SCTP), owners from
//! `/proc/<pid>/fd`, every byte — TCP included — from the AF_PACKET capture.
//!
//! It is the netlink-mode assembly ([`LinuxCollector`]: owners, processes, interfaces)
//! over a [`Kernel`] that reads procfs instead of sock_diag, with a capture that keeps TCP.
//!
//! TCP bytes here are IP length − IP header − TCP header per captured segment, so a
//! retransmitted segment counts again (sock_diag's `bytes_acked`/`bytes_received` count
//! it once); SYN/FIN carry no payload and count 0 in both.

use std::path::PathBuf;

use proto::{Caps, CollectorMode, Note};

use super::collector::{ConnectRecord, Kernel, LinuxCollector};
use super::ifaces::IfaceSource;
use super::packet::{Keep, PacketCounter};
use super::procnet::{self, Table};
use crate::collect::{ClosedSocket, CollectError, Collector, Sample, SocketSample};

/// TCP and UDP sockets from procfs; no closed-socket or connect events.
pub struct ProcNetKernel {
    net_dir: PathBuf,
}

impl ProcNetKernel {
    /// `net_dir` is normally `/proc/thread-self/net` (the calling thread's namespace).
    pub fn new(net_dir: impl Into<PathBuf>) -> Self {
        ProcNetKernel {
            net_dir: net_dir.into(),
        }
    }
}

impl Kernel for ProcNetKernel {
    fn dump(&mut self, _notes: &mut Vec<Note>) -> Result<Vec<SocketSample>, CollectError> {
        procnet::read_sockets(&self.net_dir, &[Table::Tcp, Table::Udp]).map_err(|source| {
            CollectError::Io {
                what: format!("reading {}", self.net_dir.display()),
                source,
            }
        })
    }

    fn drain_closed(&mut self, _notes: &mut Vec<Note>) -> Vec<ClosedSocket> {
        Vec::new()
    }

    fn drain_connects(&mut self, _notes: &mut Vec<Note>) -> Vec<ConnectRecord> {
        Vec::new()
    }

    fn reports_closed(&self) -> bool {
        false
    }
}

pub struct PacketCollector {
    inner: LinuxCollector,
    /// Why this mode runs (netlink unavailable), repeated in every sample's notes.
    reason: Option<Note>,
}

impl PacketCollector {
    /// Over the real `/proc` and `/sys`. Works without CAP_NET_RAW too (sockets and owners
    /// only, bytes unavailable, said in the notes).
    pub fn open() -> Self {
        Self::with_proc_root("/proc")
    }

    /// Over another procfs mount (tests).
    pub fn with_proc_root(proc_root: impl Into<PathBuf>) -> Self {
        let proc_root = proc_root.into();
        let kernel = ProcNetKernel::new(proc_root.join("thread-self/net"));
        let inner =
            LinuxCollector::with_kernel(Box::new(kernel), proc_root, IfaceSource::default())
                .with_packet(PacketCounter::open(Keep::AllIp));
        PacketCollector {
            inner,
            reason: None,
        }
    }

    /// Record why the fallback is in use (shown with every sample).
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(Note::info(reason));
        self
    }
}

impl Collector for PacketCollector {
    fn mode(&self) -> CollectorMode {
        CollectorMode::Packet
    }

    fn caps(&self) -> Caps {
        self.inner.caps()
    }

    fn collect(&mut self) -> Result<Sample, CollectError> {
        let mut sample = self.inner.collect()?;
        if let Some(r) = &self.reason {
            sample.notes.insert(0, r.clone());
        }
        Ok(sample)
    }
}
