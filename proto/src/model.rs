//! The data a daemon shows its viewers: plain serde structs, no behaviour
//! beyond small conveniences. Rates are bytes per second, totals are bytes.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Number of points in the system history and per-process sparklines.
pub const HISTORY_LEN: usize = 60;

/// How the daemon learns about sockets and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CollectorMode {
    /// sock_diag netlink for sockets and TCP counters, AF_PACKET for the rest.
    Netlink,
    /// `/proc/net/*` for sockets, AF_PACKET capture for every byte.
    Packet,
    /// macOS: `netstat`, `lsof`.
    Macos,
    /// Generated data, for benchmarks and development without root.
    Synthetic,
}

impl CollectorMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectorMode::Netlink => "netlink",
            CollectorMode::Packet => "packet",
            CollectorMode::Macos => "macos",
            CollectorMode::Synthetic => "synthetic",
        }
    }
}

impl std::fmt::Display for CollectorMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    Info,
    Warning,
}

/// A degradation or fact about collection the viewer should see
/// (missing capability, kernel drops, fallback in use, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Note {
    pub severity: Severity,
    pub message: String,
}

impl Note {
    pub fn info(message: impl Into<String>) -> Self {
        Note {
            severity: Severity::Info,
            message: message.into(),
        }
    }
    pub fn warning(message: impl Into<String>) -> Self {
        Note {
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorInfo {
    pub mode: CollectorMode,
    pub notes: Vec<Note>,
    /// Frames the kernel dropped before the capture could read them, since start.
    pub capture_drops: u64,
}

/// Transport protocol of a socket or flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Sctp,
    /// Any other IP protocol number (raw sockets).
    Ip(u8),
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proto::Tcp => f.write_str("TCP"),
            Proto::Udp => f.write_str("UDP"),
            Proto::Icmp => f.write_str("ICMP"),
            Proto::Icmpv6 => f.write_str("ICMPv6"),
            Proto::Sctp => f.write_str("SCTP"),
            Proto::Ip(n) => write!(f, "IP/{n}"),
        }
    }
}

/// TCP states as the Linux kernel numbers them (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    Unknown(u8),
}

impl TcpState {
    /// From the kernel's numbering (1 = ESTABLISHED ... 12 = NEW_SYN_RECV).
    pub fn from_kernel(n: u8) -> Self {
        match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            other => TcpState::Unknown(other),
        }
    }

    /// Short upper-case label, as `ss` prints it.
    pub fn label(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "CLOSED",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW-SYN-RECV",
            TcpState::Unknown(_) => "UNKNOWN",
        }
    }
}

/// Direction of a rate compared with its recent past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Trend {
    Rising,
    Falling,
    #[default]
    Steady,
}

/// One point of a history: rates in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct RatePoint {
    pub up: f32,
    pub down: f32,
}

/// Rates and cumulative bytes; the common core of every row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Traffic {
    /// Bytes per second sent (EMA).
    pub up_bps: f64,
    /// Bytes per second received (EMA).
    pub down_bps: f64,
    /// Bytes sent since the daemon first saw the owner, closed connections included.
    pub up_bytes: u64,
    /// Bytes received since the daemon first saw the owner, closed connections included.
    pub down_bytes: u64,
}

impl Traffic {
    pub fn total_bps(&self) -> f64 {
        self.up_bps + self.down_bps
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub is_up: bool,
    pub is_default: bool,
    /// Wire bytes from `/proc/net/dev` (headers included), unlike process figures.
    pub rx_bps: f64,
    pub tx_bps: f64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Sum over all processes and the unattributed buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Totals {
    pub traffic: Traffic,
    /// Oldest first, at most [`HISTORY_LEN`] points, one per sample interval.
    pub history: Vec<RatePoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// Kernel start time in clock ticks since boot: with `pid`, the identity of a process.
    pub start_time: u64,
    pub uid: u32,
    pub user: String,
    /// Display name (comm, or argv[0]/exe when comm was cut); lossy UTF-8.
    pub name: String,
    /// Command line joined with spaces, lossy UTF-8; empty for kernel threads and zombies.
    pub cmdline: String,
    pub traffic: Traffic,
    /// Open connections (non-listening sockets).
    pub connections: u32,
    /// Listening sockets.
    pub listening: u32,
    /// Sockets this process shares with other processes (bytes split among owners).
    pub shared: u32,
    /// False once the process has exited; its bytes stay visible for a while.
    pub alive: bool,
    pub trend: Trend,
    /// Oldest first, at most [`HISTORY_LEN`]; empty when the process was idle throughout.
    pub history: Vec<RatePoint>,
}

/// Traffic no process can be named for, by protocol; shown as a named row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unattributed {
    pub proto: Proto,
    pub traffic: Traffic,
    pub connections: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteHost {
    pub addr: IpAddr,
    pub traffic: Traffic,
    pub connections: u32,
    /// Distinct remote ports in use, sorted.
    pub ports: Vec<u16>,
    /// Names of the processes talking to this host, sorted, de-duplicated.
    pub processes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenPort {
    pub proto: Proto,
    pub addr: IpAddr,
    pub port: u16,
    /// 0 when the owner is unknown.
    pub pid: u32,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub proto: Proto,
    pub local: SocketAddr,
    /// `None` for unconnected sockets (UDP servers, raw sockets).
    pub remote: Option<SocketAddr>,
    /// `None` outside TCP.
    pub state: Option<TcpState>,
    /// Milliseconds since the daemon first saw the socket.
    pub age_ms: u64,
    /// This owner's share of the socket's traffic.
    pub traffic: Traffic,
    /// Number of processes holding this socket (1 = not shared).
    pub owners: u16,
}

/// Connections of one process; sent only to the viewer that asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    pub pid: u32,
    pub start_time: u64,
    pub connections: Vec<Connection>,
}

/// One tick of the daemon's view of the host; the same bytes go to every viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: u64,
    /// Wall clock, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Sampling interval that produced this snapshot.
    pub interval_ms: u32,
    pub collector: CollectorInfo,
    pub interfaces: Vec<Interface>,
    pub totals: Totals,
    pub processes: Vec<Process>,
    pub unattributed: Vec<Unattributed>,
    pub remote_hosts: Vec<RemoteHost>,
    pub listen_ports: Vec<ListenPort>,
}

impl Snapshot {
    /// An empty snapshot, e.g. before the first sample.
    pub fn empty(mode: CollectorMode) -> Self {
        Snapshot {
            seq: 0,
            time_ms: 0,
            interval_ms: 1000,
            collector: CollectorInfo {
                mode,
                notes: Vec::new(),
                capture_drops: 0,
            },
            interfaces: Vec::new(),
            totals: Totals::default(),
            processes: Vec::new(),
            unattributed: Vec::new(),
            remote_hosts: Vec::new(),
            listen_ports: Vec::new(),
        }
    }
}
