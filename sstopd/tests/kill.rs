//! Kill requests end to end: a real daemon (`sstopd::run_with`) on a temporary socket,
//! real target processes running as other uids, and requests sent over the real
//! socket by real unprivileged clients (this test binary re-run under `setpriv`, see
//! `helper_client`). Every case checks the daemon's answer *and* what happened to
//! the target (/proc state, waitpid).
//!
//! Needs root (CI runs as root): setpriv changes uid, the daemon signals other users.
#![cfg(target_os = "linux")]
// Test support code outside #[test] fns: a failed unwrap here is a failed test.
#![allow(clippy::unwrap_used)]

#[path = "kill/support.rs"]
mod support;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proto::{ClientMsg, KillOutcome, ServerMsg, Signal};
use support::*;

/// Not a case: the client the cases run under `setpriv` (see `support::ask_as`). Without
/// `HELPER_ENV` it returns at once. With it: connect as whoever setpriv made us, send the
/// Kill requests, print the daemon's answers as JSON lines.
#[test]
fn helper_client() {
    let Ok(spec) = std::env::var(HELPER_ENV) else {
        return;
    };
    // "SOCKET PID START_TIME SIGNAL COUNT"
    let parts: Vec<&str> = spec.split(' ').collect();
    let mut viewer = Viewer::connect(Path::new(parts[0]));
    let pid: u32 = parts[1].parse().unwrap();
    let start_time: u64 = parts[2].parse().unwrap();
    let signal = Signal::parse(parts[3]).unwrap();
    let count: usize = parts[4].parse().unwrap();
    // Pipelined from a second thread: a flood arrives as fast as the socket carries it,
    // while this thread keeps reading answers (a viewer that stops reading is dropped).
    let mut writer = viewer.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for _ in 0..count {
            let kill = ClientMsg::Kill {
                pid,
                start_time,
                signal,
            };
            proto::write_frame(&mut writer, &kill).unwrap();
        }
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "WELCOME_UID {}", viewer.welcome_uid).unwrap();
    for _ in 0..count {
        let r = viewer.kill_result();
        writeln!(out, "KILLRESULT {}", serde_json::to_string(&r).unwrap()).unwrap();
    }
    sender.join().unwrap();
}

// ---------------------------------------------------------------- cases

#[test]
fn own_process_is_signalled() {
    let mut mine = Target::spawn_as(ALICE);
    let daemon = Daemon::start(&[&mine], &[ALICE], None);
    let r = ask_once(&AS_ALICE, &daemon, mine.pid(), mine.start_time, "TERM");
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
    assert_eq!(
        r.message,
        format!("sent TERM to process {} (sleep)", mine.pid())
    );
    assert_eq!(mine.reap_signal(), Some(libc::SIGTERM));
}

#[test]
fn another_users_process_is_denied() {
    let mut bobs = Target::spawn_as(BOB);
    let daemon = Daemon::start(&[&bobs], &[BOB], None);
    let r = ask_once(&AS_ALICE, &daemon, bobs.pid(), bobs.start_time, "KILL");
    assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
    assert_eq!(
        r.message,
        format!(
            "refused: process {} (sleep) belongs to uid {BOB}; you (uid {ALICE}) may only signal \
             your own processes",
            bobs.pid()
        )
    );
    bobs.assert_untouched();
}

#[test]
fn root_may_signal_anyone() {
    let bobs = Target::spawn_as(BOB);
    let daemon = Daemon::start(&[&bobs], &[BOB], None);
    let r = ask_once(&AS_ROOT, &daemon, bobs.pid(), bobs.start_time, "STOP");
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
    assert_eq!(bobs.wait_state('T'), 'T');
    let r = ask_once(&AS_ROOT, &daemon, bobs.pid(), bobs.start_time, "CONT");
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
    assert_eq!(bobs.wait_state('S'), 'S');
}

#[test]
fn admin_group_only_when_configured() {
    let mut bobs = Target::spawn_as(BOB);
    {
        let daemon = Daemon::start(&[&bobs], &[BOB], None);
        let r = ask_once(
            &AS_ALICE_ADMIN,
            &daemon,
            bobs.pid(),
            bobs.start_time,
            "KILL",
        );
        assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
        bobs.assert_untouched();
    }
    let daemon = Daemon::start(&[&bobs], &[BOB], Some(ADMINS));
    // Not in the group: still only their own.
    let r = ask_once(&AS_ALICE, &daemon, bobs.pid(), bobs.start_time, "KILL");
    assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
    bobs.assert_untouched();
    // In the group (supplementary, as SO_PEERGROUPS reports it).
    let r = ask_once(
        &AS_ALICE_ADMIN,
        &daemon,
        bobs.pid(),
        bobs.start_time,
        "KILL",
    );
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
    assert_eq!(bobs.reap_signal(), Some(libc::SIGKILL));
}

#[test]
fn stale_start_time_is_refused_and_the_process_untouched() {
    // The pid the viewer names is alive and in view, but with another start time:
    // exactly what a recycled pid looks like.
    let mut mine = Target::spawn_as(ALICE);
    let daemon = Daemon::start(&[&mine], &[ALICE], None);
    let r = ask_once(&AS_ALICE, &daemon, mine.pid(), mine.start_time - 1, "KILL");
    assert_eq!(r.outcome, KillOutcome::Stale, "{}", r.message);
    assert!(r.message.contains("nothing was signalled"), "{}", r.message);
    mine.assert_untouched();
}

#[test]
fn init_kernel_threads_and_the_daemon_are_refused() {
    let daemon = Daemon::start(&[], &[], Some(0));
    let me = std::process::id();
    let before_1 = stat(1);
    // pid 1 and kthreadd get CONT (harmless even if it went through); the daemon gets TERM,
    // which would end this very test binary if it were delivered.
    for (pid, signal, words) in [
        (1, "CONT", "init process"),
        (2, "CONT", "kernel thread"),
        (me, "TERM", "sstopd itself"),
    ] {
        let start_time = stat(pid).start_time;
        let r = ask_once(&AS_ROOT, &daemon, pid, start_time, signal);
        assert_eq!(r.outcome, KillOutcome::Denied, "{pid}: {}", r.message);
        assert!(r.message.contains(words), "{pid}: {}", r.message);
    }
    let after_1 = stat(1);
    assert_eq!(
        (after_1.state == 'T', after_1.start_time),
        (false, before_1.start_time)
    );
    assert_ne!(stat(me).state, 'T');
}

#[test]
fn unlisted_signal_number_is_refused() {
    let mut mine = Target::spawn_as(ALICE);
    let daemon = Daemon::start(&[&mine], &[ALICE], None);
    // "9" travels as Signal::Other(9): numbers are never trusted, even SIGKILL's.
    for n in ["9", "11", "64"] {
        let r = ask_once(&AS_ALICE, &daemon, mine.pid(), mine.start_time, n);
        assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
        assert!(
            r.message.contains(&format!("signal {n} is not a signal")),
            "{}",
            r.message
        );
    }
    mine.assert_untouched();
}

#[test]
fn process_that_exits_before_delivery_is_gone() {
    let mut mine = Target::spawn_as(ALICE);
    let daemon = Daemon::start(&[&mine], &[ALICE], None);
    let (pid, start_time) = (mine.pid(), mine.start_time);
    // It exits (and is reaped) after the viewer saw it, before the request arrives.
    mine.child.kill().unwrap();
    assert_eq!(mine.reap_signal(), Some(libc::SIGKILL));
    let r = ask_once(&AS_ALICE, &daemon, pid, start_time, "TERM");
    match r.outcome {
        KillOutcome::Gone => assert!(r.message.contains("no longer exists"), "{}", r.message),
        // Only if the pid was recycled in those milliseconds: the new process is spared.
        KillOutcome::Stale => assert_ne!(stat(pid).start_time, start_time),
        other => panic!("{other:?}: {}", r.message),
    }
}

#[test]
fn process_that_exited_but_is_not_reaped_is_gone() {
    let mut mine = Target::spawn_as(ALICE);
    let daemon = Daemon::start(&[&mine], &[ALICE], None);
    // Dead but not yet waited for: a zombie still holds its pid and start time.
    let pid = rustix::process::Pid::from_raw(mine.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    assert_eq!(mine.wait_state('Z'), 'Z');
    let r = ask_once(&AS_ALICE, &daemon, mine.pid(), mine.start_time, "TERM");
    assert_eq!(r.outcome, KillOutcome::Gone, "{}", r.message);
    assert!(r.message.contains("already exited"), "{}", r.message);
    // It died of our KILL, not of the TERM it was asked for.
    assert_eq!(mine.reap_signal(), Some(libc::SIGKILL));
}

#[test]
fn not_in_view_is_refused() {
    let mut mine = Target::spawn_as(ALICE);
    let daemon = Daemon::start(&[], &[], None);
    let r = ask_once(&AS_ALICE, &daemon, mine.pid(), mine.start_time, "KILL");
    assert_eq!(r.outcome, KillOutcome::Denied, "{}", r.message);
    assert!(
        r.message.contains("not among the processes"),
        "{}",
        r.message
    );
    mine.assert_untouched();
}

#[test]
fn flood_is_rate_limited_without_disturbing_other_viewers() {
    let mine = Target::spawn_as(ALICE);
    let daemon = Daemon::start(&[&mine], &[ALICE], None);

    // Another viewer (root) streaming at 100 ms: record when its frames arrive.
    let mut watcher = Viewer::connect(&daemon.socket);
    watcher.send(&ClientMsg::Subscribe {
        interval_ms: 100,
        detail_pid: None,
    });
    let flooding = Arc::new(AtomicBool::new(true));
    let watching = {
        let flooding = Arc::clone(&flooding);
        std::thread::spawn(move || {
            let mut arrivals = Vec::new();
            while flooding.load(Ordering::Relaxed) {
                if let ServerMsg::Snapshot(_) = Viewer::read(&mut watcher.stream) {
                    arrivals.push(Instant::now());
                }
            }
            arrivals
        })
    };

    // CONT to a running process changes nothing visible, so every Sent is harmless.
    let flood_started = Instant::now();
    let answers = ask_as(
        &AS_ALICE,
        &daemon,
        mine.pid(),
        mine.start_time,
        "CONT",
        10000,
    );
    let flood_took = flood_started.elapsed();
    // Keep watching a little after the flood, then stop.
    std::thread::sleep(Duration::from_millis(300));
    flooding.store(false, Ordering::Relaxed);
    let arrivals = watching.join().unwrap();

    let sent = answers
        .iter()
        .filter(|r| r.outcome == KillOutcome::Sent)
        .count();
    let limited = answers
        .iter()
        .filter(|r| r.outcome == KillOutcome::RateLimited)
        .count();
    assert_eq!(answers.len(), 10000);
    assert_eq!(sent + limited, 10000);
    assert!(sent >= 1, "nothing got through");
    assert!(
        limited >= 100,
        "only {limited} of 200 were limited ({sent} sent in {flood_took:?})"
    );
    assert!(answers.iter().all(|r| r.pid == mine.pid()));
    assert_eq!(stat(mine.pid()).state, 'S');

    // The other viewer kept its pace: frames throughout, no long gap.
    let window = flood_took + Duration::from_millis(300);
    let worst_gap = arrivals
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "flood: {sent} sent, {limited} rate-limited in {flood_took:?}; other viewer: {} frames \
         in {window:?}, worst gap {worst_gap:?}",
        arrivals.len()
    );
    let expected = window.as_millis() / 100;
    assert!(
        arrivals.len() as u128 >= expected / 2,
        "{} frames in {window:?}",
        arrivals.len()
    );
    let worst_gap = arrivals
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        worst_gap < Duration::from_millis(600),
        "gap of {worst_gap:?}"
    );

    // The limit is per session: a fresh session of the same user is served at once.
    let r = ask_once(&AS_ALICE, &daemon, mine.pid(), mine.start_time, "CONT");
    assert_eq!(r.outcome, KillOutcome::Sent, "{}", r.message);
}
