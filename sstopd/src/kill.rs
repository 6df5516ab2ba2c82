//! Kill requests: policy (who may signal what) and delivery through a pidfd so
//! a recycled pid is never hit. (in progress: see the kill issue)

use proto::{KillOutcome, KillResult, Signal};

use crate::peer::Peer;

/// Daemon-wide kill settings.
#[derive(Debug, Clone, Default)]
pub struct KillPolicy {
    /// Members of this group may signal any process (off by default).
    pub admin_gid: Option<u32>,
    /// The daemon's own pid: never signalled.
    pub daemon_pid: u32,
}

/// What a viewer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillRequest {
    pub pid: u32,
    pub start_time: u64,
    pub signal: Signal,
}

/// Judge and (if allowed) carry out one request. Blocking (reads /proc): call
/// from `spawn_blocking`. `in_view` tells whether the pid + start time is in the
/// daemon's latest snapshot.
pub fn execute(_policy: &KillPolicy, _peer: &Peer, _in_view: bool, req: KillRequest) -> KillResult {
    KillResult {
        pid: req.pid,
        signal: req.signal,
        outcome: KillOutcome::Failed,
        message: "this daemon cannot signal processes yet".into(),
    }
}
