//! Collection: kernel (or OS tools) → [`Sample`]. Collectors never format text
//! for people beyond [`Note`]s; aggregation turns samples into snapshots.

use std::net::SocketAddr;

use proto::{Caps, CollectorMode, Note, Proto, TcpState};
use thiserror::Error;

#[cfg(target_os = "linux")]
pub mod linux;
/// macOS parsers are plain functions over text, compiled and tested everywhere.
pub mod macos;
pub mod synthetic;

/// Identity of a process: a pid alone is recycled, pid + kernel start time is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    pub pid: u32,
    /// Clock ticks since boot (`/proc/<pid>/stat` field 22; macOS: start time in µs).
    pub start_time: u64,
}

/// A process that owns (or owned) sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub key: ProcKey,
    pub ppid: u32,
    pub uid: u32,
    /// Raw comm bytes (may be cut at 15 bytes, may not be UTF-8).
    pub comm: Vec<u8>,
    /// Display name chosen by the collector: comm, or exe/argv[0] when comm was cut; lossy UTF-8.
    pub name: String,
    /// Command line joined with spaces, lossy UTF-8; empty for kernel threads and zombies.
    pub cmdline: String,
    /// False for a process known only from a cache (it exited; its bytes are still its own).
    pub alive: bool,
}

/// Stable identity of a socket for its whole life: the sock_diag cookie on
/// Linux netlink mode; elsewhere derived from the inode or the tuple.
pub type SocketId = u64;

/// One socket as seen in this sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSample {
    pub id: SocketId,
    pub proto: Proto,
    pub local: SocketAddr,
    /// `None` when unconnected (listening TCP, unconnected UDP, raw).
    pub remote: Option<SocketAddr>,
    /// `None` outside TCP.
    pub state: Option<TcpState>,
    pub uid: u32,
    /// 0 when unknown (e.g. TIME-WAIT sockets have none).
    pub inode: u64,
    /// Processes holding the socket; empty when unknown. Bytes are split evenly among them.
    pub owners: Vec<ProcKey>,
    /// Cumulative payload bytes sent over the socket's life; `None` = not measurable.
    pub sent: Option<u64>,
    /// Cumulative payload bytes received over the socket's life; `None` = not measurable.
    pub received: Option<u64>,
}

impl SocketSample {
    pub fn is_listening(&self) -> bool {
        match self.proto {
            Proto::Tcp => self.state == Some(TcpState::Listen),
            // An unconnected UDP socket bound to a port serves whoever sends to it.
            Proto::Udp => self.remote.is_none() && self.local.port() != 0,
            _ => false,
        }
    }
}

/// A socket that closed since the previous sample, with its final counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedSocket {
    pub id: SocketId,
    pub proto: Proto,
    pub local: SocketAddr,
    pub remote: Option<SocketAddr>,
    /// Final cumulative payload bytes.
    pub sent: u64,
    pub received: u64,
    /// Owners from earlier dumps, the listener, or connect-time tracing; empty → unattributed.
    pub owners: Vec<ProcKey>,
}

/// Traffic no socket explains, as deltas since the previous sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexplainedFlow {
    pub proto: Proto,
    pub remote: Option<std::net::IpAddr>,
    pub sent: u64,
    pub received: u64,
}

/// One interface's counters (wire bytes, from `/proc/net/dev` or `netstat -ibn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceSample {
    pub name: String,
    pub is_up: bool,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Everything one collection cycle learned. Counters are cumulative unless said otherwise;
/// aggregation computes deltas and rates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// Every socket, or with `tcp_partial` every socket but the TCP ones known unchanged.
    pub sockets: Vec<SocketSample>,
    /// TCP sockets are listed only when new or changed, plus every listener; a known TCP
    /// socket missing from `sockets` is unchanged, not gone (a gone one comes through
    /// `closed` or `tcp_gone`). Non-TCP sockets are always listed in full.
    pub tcp_partial: bool,
    /// With `tcp_partial`: TCP sockets the kernel no longer lists, with no destroy event
    /// (yet): a socket unhashed by a reset while its fd stays open.
    pub tcp_gone: Vec<SocketId>,
    pub closed: Vec<ClosedSocket>,
    /// Every process referenced by an owner list above (alive or remembered).
    pub processes: Vec<ProcessInfo>,
    pub unexplained: Vec<UnexplainedFlow>,
    pub interfaces: Vec<IfaceSample>,
    pub default_interface: Option<String>,
    pub notes: Vec<Note>,
    /// Frames the kernel dropped before capture read them, since start.
    pub capture_drops: u64,
    /// Per-peer bytes of unconnected sockets this sample (deltas), for the hosts roll-up.
    pub peer_flows: Vec<PeerFlow>,
}

/// Bytes an unconnected socket (a QUIC or DNS server, a `sendto` client) exchanged with
/// one peer during one sample, from capture. The socket's own counters already carry
/// these bytes; this only says with whom (B13: a server's host view lists its peers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFlow {
    pub socket: SocketId,
    pub remote: SocketAddr,
    pub sent: u64,
    pub received: u64,
}

#[derive(Debug, Error)]
pub enum CollectError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{0} is not available on this system")]
    Unavailable(String),
    #[error("command `{command}` failed: {reason}")]
    Command { command: String, reason: String },
}

/// A source of samples. `collect` blocks (netlink dumps, /proc walks, commands):
/// call it from a thread or `spawn_blocking`, never on the async reactor.
pub trait Collector: Send + 'static {
    fn mode(&self) -> CollectorMode;
    fn caps(&self) -> Caps;
    fn collect(&mut self) -> Result<Sample, CollectError>;
}

/// Which collector to run (`--collector`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CollectorChoice {
    /// netlink where it works, else the packet fallback; macOS tools on macOS.
    #[default]
    Auto,
    Netlink,
    Packet,
    /// Generated data (benchmarks, development without root).
    Synthetic,
}

/// Open the collector for `choice`. Blocking (probes the kernel).
pub fn open(choice: CollectorChoice) -> Result<Box<dyn Collector>, CollectError> {
    match choice {
        CollectorChoice::Synthetic => Ok(Box::new(synthetic::SyntheticCollector::new(200, 4))),
        #[cfg(target_os = "linux")]
        CollectorChoice::Netlink => open_netlink(),
        #[cfg(target_os = "linux")]
        CollectorChoice::Packet => Ok(Box::new(linux::fallback::PacketCollector::open())),
        // netlink where the kernel has inet_diag, else /proc/net + AF_PACKET (B12).
        #[cfg(target_os = "linux")]
        CollectorChoice::Auto => open_netlink().or_else(|e| {
            tracing::warn!("{e}; using the packet collector");
            let why = format!("fallback collector in use: {e}");
            Ok(
                Box::new(linux::fallback::PacketCollector::open().because(why))
                    as Box<dyn Collector>,
            )
        }),
        #[cfg(target_os = "macos")]
        CollectorChoice::Auto => Ok(Box::new(macos::MacosCollector::system())),
        #[cfg(not(target_os = "linux"))]
        other => Err(CollectError::Unavailable(format!("collector {other:?}"))),
    }
}

/// The netlink-mode collector; on failure the error names the fallback to use.
#[cfg(target_os = "linux")]
fn open_netlink() -> Result<Box<dyn Collector>, CollectError> {
    match linux::LinuxCollector::open() {
        Ok(c) => Ok(Box::new(c)),
        Err(e) => Err(CollectError::Unavailable(format!(
            "netlink collector ({e}); the packet collector (--collector packet: /proc/net + AF_PACKET) is the fallback"
        ))),
    }
}
