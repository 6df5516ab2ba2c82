//! `execute` against real processes this test starts (as other uids via setpriv).
//! The peer is given directly here; the integration test (tests/kill.rs) gets it from
//! a real socket.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

const ALICE: u32 = 64_101;
const BOB: u32 = 64_102;
const ADMINS: u32 = 64_150;

/// A `sleep` running as `uid`; killed and reaped on drop.
struct Proc {
    child: Child,
    start_time: u64,
}

impl Proc {
    fn spawn_as(uid: u32, program: &str) -> Proc {
        Proc::spawn_until(uid, &[program, "30"], |t| t.comm != b"setpriv")
    }

    /// Run `argv` as `uid` and wait until `ready` says the process is what the test needs.
    fn spawn_until(uid: u32, argv: &[&str], ready: impl Fn(&Target) -> bool) -> Proc {
        let child = Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ])
            .args(argv)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut guard = Proc {
            child,
            start_time: 0,
        };
        // setpriv execs the program after setuid: wait until that has happened.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let t = target::inspect(pid).unwrap();
            if t.real_uid == uid && ready(&t) {
                guard.start_time = t.start_time;
                return guard;
            }
            assert!(Instant::now() < deadline, "{argv:?} never became ready");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn req(&self, signal: Signal) -> KillRequest {
        KillRequest {
            pid: self.pid(),
            start_time: self.start_time,
            signal,
        }
    }

    /// `/proc/<pid>/stat` state letter, polled until it is `want` (or time runs out).
    fn wait_state(&self, want: u8) -> u8 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let raw = std::fs::read(format!("/proc/{}/stat", self.pid())).unwrap();
            let state = target::parse_stat(&raw).unwrap().state;
            if state == want || Instant::now() > deadline {
                return state;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn assert_alive_untouched(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "process exited");
        assert_eq!(self.wait_state(b'S'), b'S');
    }

    /// Reap and return the terminating signal.
    fn wait_signal(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.child.wait().unwrap().signal()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer(uid: u32, groups: &[u32]) -> Peer {
    Peer {
        uid,
        gid: uid,
        pid: 999_999,
        groups: groups.to_vec(),
    }
}

fn policy(admin_gid: Option<u32>) -> KillPolicy {
    KillPolicy {
        admin_gid,
        daemon_pid: std::process::id(),
    }
}

#[test]
fn owner_signals_own_process() {
    let mut p = Proc::spawn_as(ALICE, "sleep");
    let r = execute(&policy(None), &peer(ALICE, &[]), true, p.req(Signal::Term));
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
    assert_eq!(
        r.message,
        format!("sent TERM to process {} (sleep)", p.pid())
    );
    assert_eq!(p.wait_signal(), Some(libc::SIGTERM));
}

#[test]
fn other_users_process_is_denied() {
    let mut p = Proc::spawn_as(BOB, "sleep");
    let r = execute(&policy(None), &peer(ALICE, &[]), true, p.req(Signal::Kill));
    assert_eq!(r.outcome, KillOutcome::Denied);
    assert_eq!(
        r.message,
        format!(
            "refused: process {} (sleep) belongs to uid {BOB}; you (uid {ALICE}) may only signal your own processes",
            p.pid()
        )
    );
    p.assert_alive_untouched();
}

#[test]
fn root_may_stop_anyones_process() {
    let p = Proc::spawn_as(BOB, "sleep");
    let r = execute(&policy(None), &peer(0, &[]), true, p.req(Signal::Stop));
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
    assert_eq!(p.wait_state(b'T'), b'T');
    let r = execute(&policy(None), &peer(0, &[]), true, p.req(Signal::Cont));
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
    assert_eq!(p.wait_state(b'S'), b'S');
}

#[test]
fn admin_group_only_when_configured() {
    let mut p = Proc::spawn_as(BOB, "sleep");
    let admin = peer(ALICE, &[ADMINS]);
    let r = execute(&policy(None), &admin, true, p.req(Signal::Usr1));
    assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
    p.assert_alive_untouched();
    let r = execute(&policy(Some(ADMINS)), &admin, true, p.req(Signal::Kill));
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
    assert_eq!(p.wait_signal(), Some(libc::SIGKILL));
}

#[test]
fn wrong_start_time_is_stale_and_untouched() {
    let mut p = Proc::spawn_as(ALICE, "sleep");
    let mut req = p.req(Signal::Kill);
    req.start_time -= 1;
    let r = execute(&policy(None), &peer(0, &[]), true, req);
    assert_eq!(r.outcome, KillOutcome::Stale, "{}", r.message);
    assert!(r.message.contains("nothing was signalled"), "{}", r.message);
    p.assert_alive_untouched();
}

#[test]
fn protected_pids_are_refused_even_for_root() {
    let me = std::process::id();
    for (pid, words) in [
        (1, "init process"),
        (2, "kernel thread daemon"),
        (me, "sstopd itself"),
        (0, "not a process id"),
    ] {
        // The start time is irrelevant: protected pids are refused before they are opened.
        let req = KillRequest {
            pid,
            start_time: 0,
            signal: Signal::Cont,
        };
        let r = execute(&policy(Some(0)), &peer(0, &[]), true, req);
        assert_eq!(r.outcome, KillOutcome::Denied, "{pid}: {}", r.message);
        assert!(r.message.contains(words), "{pid}: {}", r.message);
    }
}

#[test]
fn kernel_threads_are_refused() {
    // Any kernel thread other than kthreadd, with its real start time.
    let kthread = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid > 2)
        .find_map(|pid| target::inspect(pid).ok().filter(|t| t.kernel_thread))
        .expect("a kernel thread");
    let req = KillRequest {
        pid: kthread.pid,
        start_time: kthread.start_time,
        signal: Signal::Cont,
    };
    let r = execute(&policy(None), &peer(0, &[]), true, req);
    assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
    assert!(r.message.contains("kernel thread"), "{}", r.message);
}

#[test]
fn unlisted_signal_is_refused() {
    let mut p = Proc::spawn_as(ALICE, "sleep");
    for n in [libc::SIGTERM, libc::SIGSEGV, 0, 64] {
        let r = execute(&policy(None), &peer(0, &[]), true, p.req(Signal::Other(n)));
        assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
        assert!(
            r.message.contains(&format!("signal {n} is not a signal")),
            "{}",
            r.message
        );
    }
    p.assert_alive_untouched();
}

#[test]
fn not_in_view_is_refused() {
    let mut p = Proc::spawn_as(ALICE, "sleep");
    let r = execute(&policy(None), &peer(ALICE, &[]), false, p.req(Signal::Kill));
    assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
    assert!(
        r.message.contains("not among the processes"),
        "{}",
        r.message
    );
    p.assert_alive_untouched();
}

#[test]
fn exited_process_is_gone() {
    // Exited and reaped: the pid names nothing (or, rarely, a newer process → Stale).
    let mut p = Proc::spawn_as(ALICE, "sleep");
    let req = p.req(Signal::Term);
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let r = execute(&policy(None), &peer(ALICE, &[]), true, req);
    assert!(
        matches!(r.outcome, KillOutcome::Gone | KillOutcome::Stale),
        "{:?}: {}",
        r.outcome,
        r.message
    );
}

#[test]
fn zombie_is_gone() {
    // Exited, not reaped yet: a signal would do nothing, so the answer is "gone".
    let p = Proc::spawn_as(ALICE, "sleep");
    let req = p.req(Signal::Term);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(p.pid() as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    assert_eq!(p.wait_state(b'Z'), b'Z');
    let r = execute(&policy(None), &peer(ALICE, &[]), true, req);
    assert_eq!(r.outcome, KillOutcome::Gone, "{}", r.message);
    assert!(r.message.contains("already exited"), "{}", r.message);
}

// B03 / B04: the name in the answer is the full comm, parentheses and all.
#[test]
fn odd_names_appear_intact_in_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let weird = dir.path().join("we ird) (x");
    std::fs::copy("/bin/sleep", &weird).unwrap();
    // setpriv runs it as another uid: the directory must be reachable.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut p = Proc::spawn_as(BOB, weird.to_str().unwrap());
    let r = execute(&policy(None), &peer(ALICE, &[]), true, p.req(Signal::Term));
    assert_eq!(r.outcome, KillOutcome::Denied);
    assert!(
        r.message.starts_with(&format!(
            "refused: process {} (we ird) (x) belongs",
            p.pid()
        )),
        "{}",
        r.message
    );
    p.assert_alive_untouched();
}

// B04: a comm that is not UTF-8 (the process set it itself) is answered lossily, no panic.
#[test]
fn non_utf8_name_is_answered_lossily() {
    let script =
        r#"open("/proc/self/comm", "wb").write(b"ab\xff\xfecd"); import time; time.sleep(30)"#;
    let mut p = Proc::spawn_until(BOB, &["/usr/bin/python3", "-c", script], |t| {
        t.comm == b"ab\xff\xfecd"
    });
    let r = execute(&policy(None), &peer(ALICE, &[]), true, p.req(Signal::Term));
    assert_eq!(r.outcome, KillOutcome::Denied);
    assert!(
        r.message.starts_with(&format!(
            "refused: process {} (ab\u{fffd}\u{fffd}cd) belongs",
            p.pid()
        )),
        "{}",
        r.message
    );
    p.assert_alive_untouched();
}

#[test]
fn a_thread_id_is_not_a_process() {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        tid_tx
            .send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
            .unwrap();
        let _ = done_rx.recv();
    });
    let tid = tid_rx.recv().unwrap();
    let start_time = target::inspect(tid).unwrap().start_time;
    let req = KillRequest {
        pid: tid,
        start_time,
        signal: Signal::Term,
    };
    let r = execute(&policy(None), &peer(0, &[]), true, req);
    drop(done_tx);
    thread.join().unwrap();
    assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
    assert_eq!(
        r.message,
        format!(
            "refused: {tid} is a thread of process {}, not a process; signal the process instead",
            std::process::id()
        )
    );
}

/// Log lines written while `f` runs (this thread only).
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

#[test]
fn every_decision_is_logged_with_who_what_and_why() {
    let mut p = Proc::spawn_as(BOB, "sleep");
    let alice = Peer {
        pid: 4321,
        ..peer(ALICE, &[])
    };
    let (r, log) = logged(|| execute(&policy(None), &alice, true, p.req(Signal::Hup)));
    assert_eq!(r.outcome, KillOutcome::Denied);
    assert!(log.contains("WARN"), "{log}");
    for field in [
        format!("peer_uid={ALICE}"),
        "peer_pid=4321".into(),
        format!("target_pid={}", p.pid()),
        "target_name=\"sleep\"".into(),
        format!("target_uid={BOB}"),
        "signal=HUP".into(),
        "outcome=Denied".into(),
        "may only signal your own processes".into(),
    ] {
        assert!(log.contains(&field), "{field} missing from {log}");
    }
    p.assert_alive_untouched();

    let (r, log) = logged(|| execute(&policy(None), &peer(0, &[]), true, p.req(Signal::Kill)));
    assert_eq!(r.outcome, KillOutcome::Sent);
    assert!(
        log.contains("INFO") && log.contains("outcome=Sent"),
        "{log}"
    );
    assert!(log.contains("grant=\"Root\""), "{log}");
    assert_eq!(p.wait_signal(), Some(libc::SIGKILL));
}
