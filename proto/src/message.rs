//! Messages on the socket. Variant order is part of the wire format:
//! append new variants, never reorder. `Hello` and `Error` are variant 0 and
//! keep their shape forever so that any two versions can say they differ.

use serde::{Deserialize, Serialize};

use crate::model::{CollectorMode, Detail, Snapshot};

/// Interval bounds a daemon accepts from a viewer.
pub const MIN_INTERVAL_MS: u32 = 100;
pub const MAX_INTERVAL_MS: u32 = 10_000;
pub const DEFAULT_INTERVAL_MS: u32 = 1_000;

/// Client → daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// First frame of every session.
    Hello {
        protocol: u32,
        client: String,
    },
    /// Start or change the stream. `detail_pid` asks for that process's connections.
    Subscribe {
        interval_ms: u32,
        detail_pid: Option<u32>,
    },
    /// Ask the daemon to signal a process the viewer saw (`pid` + `start_time` pin it).
    Kill {
        pid: u32,
        start_time: u64,
        signal: Signal,
    },
    Ping,
}

/// Daemon → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Refusal or failure, with words a person can act on.
    Error {
        code: ErrorCode,
        message: String,
    },
    Welcome(Welcome),
    Snapshot(Box<Snapshot>),
    /// Connections of the process this viewer subscribed to; follows the snapshot it belongs to.
    Detail(Detail),
    KillResult(KillResult),
    Pong,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    /// Daemon version (`CARGO_PKG_VERSION`).
    pub daemon: String,
    pub host: String,
    pub os: String,
    pub collector: CollectorMode,
    pub caps: Caps,
    /// The viewer's uid as the daemon sees it (peer credentials), not as claimed.
    pub viewer_uid: u32,
}

/// What this daemon can do for this viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Caps {
    /// The daemon may signal processes on request (policy still applies per target).
    pub kill: bool,
    /// UDP/ICMP/raw bytes are counted (AF_PACKET available).
    pub packet_bytes: bool,
    /// Bytes of connections that closed between two samples are counted.
    pub closed_connections: bool,
    /// Other users' processes are attributed (the daemon can read every /proc/<pid>/fd).
    pub all_users: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    VersionMismatch,
    /// A frame that does not decode, or a message out of order.
    BadRequest,
    TooManyViewers,
    FrameTooLarge,
    Internal,
}

/// Signals a viewer may ask for. Numbers differ between OSes, so names travel;
/// `Other` carries anything else and is always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Signal {
    Term,
    Kill,
    Int,
    Hup,
    Quit,
    Stop,
    Cont,
    Usr1,
    Usr2,
    Other(i32),
}

impl Signal {
    /// The signals offered in the kill overlay, in display order.
    pub const LISTED: [Signal; 9] = [
        Signal::Term,
        Signal::Kill,
        Signal::Int,
        Signal::Hup,
        Signal::Quit,
        Signal::Stop,
        Signal::Cont,
        Signal::Usr1,
        Signal::Usr2,
    ];

    pub fn name(self) -> String {
        match self {
            Signal::Term => "TERM".into(),
            Signal::Kill => "KILL".into(),
            Signal::Int => "INT".into(),
            Signal::Hup => "HUP".into(),
            Signal::Quit => "QUIT".into(),
            Signal::Stop => "STOP".into(),
            Signal::Cont => "CONT".into(),
            Signal::Usr1 => "USR1".into(),
            Signal::Usr2 => "USR2".into(),
            Signal::Other(n) => format!("signal {n}"),
        }
    }

    /// Parse `TERM`, `SIGTERM`, `term` or a number.
    pub fn parse(s: &str) -> Option<Signal> {
        let up = s.trim().to_ascii_uppercase();
        let bare = up.strip_prefix("SIG").unwrap_or(&up);
        if let Some(sig) = Signal::LISTED
            .iter()
            .copied()
            .find(|sig| sig.name() == bare)
        {
            return Some(sig);
        }
        bare.parse::<i32>().ok().map(Signal::Other)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillResult {
    pub pid: u32,
    pub signal: Signal,
    pub outcome: KillOutcome,
    /// One sentence for a person, e.g. "process 4242 belongs to uid 0; you may only signal your own".
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KillOutcome {
    /// The signal was delivered.
    Sent,
    /// Policy refused; the reason is in the message.
    Denied,
    /// The pid now belongs to a different process than the viewer saw.
    Stale,
    /// The process exited before the signal could be delivered.
    Gone,
    /// Too many requests from this viewer; try again shortly.
    RateLimited,
    /// The signal could not be sent for another reason (see message).
    Failed,
}

impl KillOutcome {
    pub fn is_success(self) -> bool {
        matches!(self, KillOutcome::Sent)
    }
}
