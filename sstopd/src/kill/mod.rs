//! Kill requests: policy (who may signal what) and delivery through a pidfd so
//! a recycled pid is never hit.
//!
//! Order of checks, each answered in words a person understands: the signal is
//! listed → the pid is not protected (0, 1, 2, the daemon) → open a pidfd (exited →
//! Gone) → read the target from /proc *after* the pidfd is open, so the pidfd is
//! the process that was read → start time matches what the viewer saw (else Stale,
//! nothing signalled) → not a kernel thread, not already exited → in the daemon's
//! view → the requester (peer credentials, never message content) may signal it →
//! signal through the pidfd (exited meanwhile → Gone). Every decision is logged.

mod deliver;
mod policy;
mod target;

use proto::{KillOutcome, KillResult, Signal};

use crate::peer::Peer;
use deliver::{DeliverError, Handle};
use policy::{Grant, Protected};
use target::{Target, TargetError};

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
pub fn execute(policy: &KillPolicy, peer: &Peer, in_view: bool, req: KillRequest) -> KillResult {
    let verdict = judge_and_deliver(policy, peer, in_view, &req);
    log(peer, &req, &verdict);
    KillResult {
        pid: req.pid,
        signal: req.signal,
        outcome: verdict.outcome,
        message: verdict.message,
    }
}

/// One decision: the answer, and what the daemon knew about the target (for the log).
struct Verdict {
    outcome: KillOutcome,
    message: String,
    target: Option<Target>,
    /// Why it was allowed, when it was.
    grant: Option<Grant>,
}

impl Verdict {
    fn new(outcome: KillOutcome, target: Option<Target>, message: String) -> Verdict {
        Verdict {
            outcome,
            message,
            target,
            grant: None,
        }
    }
}

fn judge_and_deliver(
    policy: &KillPolicy,
    peer: &Peer,
    in_view: bool,
    req: &KillRequest,
) -> Verdict {
    let Some(os_signal) = policy::deliverable(req.signal) else {
        return Verdict::new(KillOutcome::Denied, None, unlisted_signal(req.signal));
    };
    if let Some(why) = policy::protected_pid(req.pid, policy.daemon_pid) {
        return Verdict::new(KillOutcome::Denied, None, protected(req.pid, why));
    }
    let (handle, target) = match pin(req.pid) {
        Ok(pinned) => pinned,
        Err(verdict) => return verdict,
    };
    let grant = match judge(policy, peer, in_view, req, &target) {
        Ok(grant) => grant,
        Err((outcome, message)) => return Verdict::new(outcome, Some(target), message),
    };
    let (pid, name, sig) = (req.pid, target.name(), req.signal.name());
    let (outcome, message) = match handle.send(os_signal, target.start_time) {
        Ok(()) => (
            KillOutcome::Sent,
            format!("sent {sig} to process {pid} ({name})"),
        ),
        Err(DeliverError::Gone | DeliverError::NotAProcess) => (
            KillOutcome::Gone,
            format!("process {pid} ({name}) exited before {sig} could be delivered"),
        ),
        Err(DeliverError::Os(e)) => (
            KillOutcome::Failed,
            format!("could not send {sig} to process {pid} ({name}): {e}"),
        ),
    };
    Verdict {
        outcome,
        message,
        target: Some(target),
        grant: Some(grant),
    }
}

/// Open the process, then read it. The pidfd comes first: whatever is read afterwards
/// describes the pidfd's process whenever a signal through it is actually delivered.
fn pin(pid: u32) -> Result<(Handle, Target), Verdict> {
    let gone = || {
        Verdict::new(
            KillOutcome::Gone,
            None,
            format!("process {pid} no longer exists"),
        )
    };
    let handle = match Handle::open(pid) {
        Ok(handle) => handle,
        Err(DeliverError::Gone) => return Err(gone()),
        // pidfd_open refuses thread ids; otherwise the pid vanished mid-call.
        Err(DeliverError::NotAProcess) => {
            return Err(match target::owning_process(pid) {
                Some(process) => Verdict::new(
                    KillOutcome::Denied,
                    None,
                    format!(
                        "refused: {pid} is a thread of process {process}, not a process; \
                         signal the process instead"
                    ),
                ),
                None => gone(),
            });
        }
        Err(DeliverError::Os(e)) => {
            let message = format!("could not open process {pid}: {e}");
            return Err(Verdict::new(KillOutcome::Failed, None, message));
        }
    };
    match target::inspect(pid) {
        Ok(target) => Ok((handle, target)),
        Err(TargetError::Gone) => Err(gone()),
        Err(e) => {
            let message = format!("could not inspect process {pid}: {e}");
            Err(Verdict::new(KillOutcome::Failed, None, message))
        }
    }
}

/// The checks on a pinned target, in order: identity, kind, liveness, view, owner.
fn judge(
    policy: &KillPolicy,
    peer: &Peer,
    in_view: bool,
    req: &KillRequest,
    target: &Target,
) -> Result<Grant, (KillOutcome, String)> {
    let (pid, name) = (req.pid, target.name());
    if target.start_time != req.start_time {
        return Err((
            KillOutcome::Stale,
            format!(
                "refused: pid {pid} now belongs to another process ({name}) than the one you \
                 saw; nothing was signalled"
            ),
        ));
    }
    if target.kernel_thread {
        return Err((
            KillOutcome::Denied,
            format!(
                "refused: process {pid} ({name}) is a kernel thread; kernel threads are never \
                 signalled"
            ),
        ));
    }
    if target.zombie {
        return Err((
            KillOutcome::Gone,
            format!(
                "process {pid} ({name}) has already exited and is waiting for its parent to \
                 reap it"
            ),
        ));
    }
    if !in_view {
        return Err((
            KillOutcome::Denied,
            format!(
                "refused: process {pid} ({name}) is not among the processes this daemon shows; \
                 only processes in its view can be signalled"
            ),
        ));
    }
    policy::grant(policy, peer, target.real_uid).ok_or_else(|| {
        (
            KillOutcome::Denied,
            format!(
                "refused: process {pid} ({name}) belongs to {}; you ({}) may only signal your \
                 own processes",
                user_label(target.real_uid),
                user_label(peer.uid),
            ),
        )
    })
}

fn unlisted_signal(signal: Signal) -> String {
    let listed: Vec<String> = Signal::LISTED.iter().map(|s| s.name()).collect();
    format!(
        "refused: {} is not a signal this daemon sends; ask for one of {}",
        signal.name(),
        listed.join(", ")
    )
}

fn protected(pid: u32, why: Protected) -> String {
    match why {
        Protected::NotAPid => format!("refused: {pid} is not a process id"),
        Protected::Init => {
            format!("refused: process {pid} is the system's init process and is never signalled")
        }
        Protected::Kthreadd => {
            format!("refused: process {pid} is the kernel thread daemon and is never signalled")
        }
        Protected::Daemon => {
            format!("refused: process {pid} is sstopd itself and is never signalled by request")
        }
    }
}

/// `alice (uid 1000)`, or `uid 1000` when the account has no name.
fn user_label(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

fn log(peer: &Peer, req: &KillRequest, verdict: &Verdict) {
    let target_name = verdict.target.as_ref().map(Target::name);
    let target_uid = verdict.target.as_ref().map(|t| t.real_uid);
    let grant = verdict.grant.map(|g| format!("{g:?}"));
    macro_rules! decision {
        ($level:ident) => {
            tracing::$level!(
                peer_uid = peer.uid,
                peer_pid = peer.pid,
                target_pid = req.pid,
                target_name = target_name.as_deref(),
                target_uid,
                signal = %req.signal.name(),
                outcome = ?verdict.outcome,
                grant = grant.as_deref(),
                "kill request: {}",
                verdict.message
            )
        };
    }
    match verdict.outcome {
        KillOutcome::Sent | KillOutcome::Gone | KillOutcome::Stale => decision!(info),
        KillOutcome::Denied | KillOutcome::RateLimited | KillOutcome::Failed => decision!(warn),
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests;
