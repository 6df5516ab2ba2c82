//! `sock:inet_sock_set_state` via perf_event_open: who connected, named at connect time.
//! (API committed first; the ring reader follows.)

use std::net::SocketAddr;

use proto::{Proto, TcpState};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TraceError {
    #[error("tracefs is not available at /sys/kernel/tracing ({0})")]
    NoTracefs(String),
    #[error("tracepoint sock:inet_sock_set_state: {0}")]
    Format(String),
    #[error("perf_event_open on cpu {cpu}: {source} (needs CAP_PERFMON or perf_event_paranoid)")]
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

/// One TCP state change. `pid`/`comm` name the task running when it happened: meaningful
/// for changes made in process context (connect: CLOSE → SYN_SENT; close/shutdown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectEvent {
    /// Thread group id (the process).
    pub pid: u32,
    pub tid: u32,
    /// The task's comm at that moment (up to 15 bytes, not necessarily UTF-8).
    pub comm: Vec<u8>,
    pub proto: Proto,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub old_state: TcpState,
    pub new_state: TcpState,
    /// perf clock (CLOCK_MONOTONIC-like), ns.
    pub time_ns: u64,
    /// Kernel address of the socket: ties the events of one connection together.
    pub skaddr: u64,
}

/// perf rings on every CPU for `sock:inet_sock_set_state`, plus comm/fork records.
pub struct ConnectTracer {
    lost: u64,
}

impl ConnectTracer {
    pub fn open() -> Result<Self, TraceError> {
        Err(TraceError::NoTracefs("not implemented yet".into()))
    }

    /// Non-blocking: events since the last call, oldest first.
    pub fn drain(&mut self) -> Vec<ConnectEvent> {
        Vec::new()
    }

    /// PERF_RECORD_LOST total.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}
