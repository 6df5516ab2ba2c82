//! Who may send which signal to which process. Pure decisions over plain values,
//! the same on every OS; the caller supplies the facts (peer credentials from the
//! socket, target facts from the kernel).

use proto::Signal;
use rustix::process::Signal as OsSignal;

use super::KillPolicy;
use crate::peer::Peer;

/// The signals a viewer may ask for, as this OS numbers them. `Other(n)` is never
/// deliverable, whatever `n` is: names travel on the wire because numbers differ.
pub fn deliverable(signal: Signal) -> Option<OsSignal> {
    Some(match signal {
        Signal::Term => OsSignal::TERM,
        Signal::Kill => OsSignal::KILL,
        Signal::Int => OsSignal::INT,
        Signal::Hup => OsSignal::HUP,
        Signal::Quit => OsSignal::QUIT,
        Signal::Stop => OsSignal::STOP,
        Signal::Cont => OsSignal::CONT,
        Signal::Usr1 => OsSignal::USR1,
        Signal::Usr2 => OsSignal::USR2,
        Signal::Other(_) => return None,
    })
}

/// Why a pid is never signalled, whoever asks. Checked before the pid is even opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protected {
    /// 0 and anything above `i32::MAX` name no process (0 would mean "my process group").
    NotAPid,
    Init,
    Kthreadd,
    Daemon,
}

pub fn protected_pid(pid: u32, daemon_pid: u32) -> Option<Protected> {
    match pid {
        0 => Some(Protected::NotAPid),
        p if i32::try_from(p).is_err() => Some(Protected::NotAPid),
        1 => Some(Protected::Init),
        2 if cfg!(target_os = "linux") => Some(Protected::Kthreadd),
        p if p == daemon_pid => Some(Protected::Daemon),
        _ => None,
    }
}

/// Why the requester may signal a process it owns-or-not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Root,
    AdminGroup(u32),
    Owner,
}

/// Owner rule: root may signal anything; members of the admin group (primary or
/// supplementary, when one is configured) anything; everyone else only processes
/// whose *real* uid is theirs.
pub fn grant(policy: &KillPolicy, peer: &Peer, target_real_uid: u32) -> Option<Grant> {
    if peer.is_root() {
        return Some(Grant::Root);
    }
    if let Some(gid) = policy.admin_gid
        && peer.in_group(gid)
    {
        return Some(Grant::AdminGroup(gid));
    }
    (peer.uid == target_real_uid).then_some(Grant::Owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid,
            gid,
            pid: 4000,
            groups: groups.to_vec(),
        }
    }

    fn policy(admin_gid: Option<u32>) -> KillPolicy {
        KillPolicy {
            admin_gid,
            daemon_pid: 777,
        }
    }

    #[test]
    fn only_listed_signals_are_deliverable() {
        for sig in Signal::LISTED {
            assert!(deliverable(sig).is_some(), "{sig:?}");
        }
        assert_eq!(
            deliverable(Signal::Term).map(OsSignal::as_raw),
            Some(libc::SIGTERM)
        );
        assert_eq!(
            deliverable(Signal::Stop).map(OsSignal::as_raw),
            Some(libc::SIGSTOP)
        );
        // Even a number that equals a listed signal is refused when it travels as a number.
        for n in [
            0,
            -1,
            libc::SIGTERM,
            libc::SIGKILL,
            libc::SIGSEGV,
            35,
            64,
            65,
            i32::MAX,
            i32::MIN,
        ] {
            assert!(deliverable(Signal::Other(n)).is_none(), "{n}");
        }
    }

    #[test]
    fn protected_pids() {
        assert_eq!(protected_pid(0, 777), Some(Protected::NotAPid));
        assert_eq!(protected_pid(1, 777), Some(Protected::Init));
        assert_eq!(protected_pid(777, 777), Some(Protected::Daemon));
        assert_eq!(protected_pid(u32::MAX, 777), Some(Protected::NotAPid));
        assert_eq!(protected_pid(1 << 31, 777), Some(Protected::NotAPid));
        assert_eq!(protected_pid(4242, 777), None);
        #[cfg(target_os = "linux")]
        assert_eq!(protected_pid(2, 777), Some(Protected::Kthreadd));
    }

    #[test]
    fn root_may_signal_anyone() {
        assert_eq!(
            grant(&policy(None), &peer(0, 0, &[]), 1000),
            Some(Grant::Root)
        );
    }

    #[test]
    fn users_may_signal_only_their_own() {
        let alice = peer(1000, 1000, &[27]);
        assert_eq!(grant(&policy(None), &alice, 1000), Some(Grant::Owner));
        assert_eq!(grant(&policy(None), &alice, 1001), None);
        assert_eq!(grant(&policy(None), &alice, 0), None);
    }

    #[test]
    fn admin_group_only_when_configured() {
        let by_primary = peer(1000, 500, &[]);
        let by_supplementary = peer(1001, 1001, &[20, 500]);
        let outsider = peer(1002, 1002, &[20]);
        for p in [&by_primary, &by_supplementary] {
            assert_eq!(grant(&policy(None), p, 0), None);
            assert_eq!(
                grant(&policy(Some(500)), p, 0),
                Some(Grant::AdminGroup(500))
            );
        }
        assert_eq!(grant(&policy(Some(500)), &outsider, 0), None);
    }
}
