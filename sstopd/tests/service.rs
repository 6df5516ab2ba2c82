//! The service for real: `sstopd::run` (and the `sstopd` binary) on a
//! temporary socket with the synthetic collector, talked to by real viewers
//! over the real socket.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proto::*;
use sstopd::Config;
use sstopd::collect::CollectorChoice;
use sstopd::config::SyntheticSize;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

// ---------- harness ----------

fn config(dir: &Path) -> Config {
    let mut c = Config::new(dir.join("sstopd.sock"));
    c.collector = CollectorChoice::Synthetic;
    c.synthetic = SyntheticSize {
        processes: 30,
        sockets_per_process: 4,
    };
    c.interval = Duration::from_millis(200);
    c
}

/// A daemon running `sstopd::run` in this process; cancelled on drop.
struct Daemon {
    path: PathBuf,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), sstopd::ServiceError>>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(dir.path());
        tweak(&mut cfg);
        let path = cfg.socket_path.clone();
        let token = CancellationToken::new();
        let task = tokio::spawn(sstopd::run(cfg, token.clone()));
        // Listening (a stale file may already be there): poll until a connect works.
        let deadline = Instant::now() + WAIT;
        while std::os::unix::net::UnixStream::connect(&path).is_err() {
            assert!(Instant::now() < deadline, "daemon did not listen in time");
            assert!(!task.is_finished(), "daemon exited early");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Daemon {
            path,
            token,
            task: Some(task),
            _dir: dir,
        }
    }

    async fn viewer(&self) -> Viewer {
        Viewer::connect(&self.path).await
    }

    /// Connect, handshake and subscribe.
    async fn subscribed(&self, interval_ms: u32, detail_pid: Option<u32>) -> Viewer {
        let mut v = self.viewer().await;
        v.hello().await;
        v.send(&ClientMsg::Subscribe {
            interval_ms,
            detail_pid,
        })
        .await;
        v
    }

    /// Cancel and check a clean return with the socket removed.
    async fn stop(mut self) {
        self.token.cancel();
        let task = self.task.take().expect("running");
        let res = tokio::time::timeout(WAIT, task)
            .await
            .expect("run() returns after cancel")
            .expect("run() did not panic");
        assert!(res.is_ok(), "run() failed: {res:?}");
        assert!(!self.path.exists(), "socket left behind");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

struct Viewer {
    stream: UnixStream,
}

impl Viewer {
    async fn connect(path: &Path) -> Viewer {
        Viewer {
            stream: UnixStream::connect(path).await.expect("connect"),
        }
    }

    async fn send(&mut self, msg: &ClientMsg) {
        write_frame_async(&mut self.stream, msg)
            .await
            .expect("send");
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send raw");
    }

    /// Next message; `None` on EOF or a reset. Panics after `WAIT`.
    async fn recv(&mut self) -> Option<ServerMsg> {
        self.recv_within(WAIT).await.expect("a frame in time")
    }

    /// `Err(())` when nothing arrived within `d` (the stream is then out of step; stop using it).
    async fn recv_within(&mut self, d: Duration) -> Result<Option<ServerMsg>, ()> {
        match tokio::time::timeout(d, read_frame_async(&mut self.stream)).await {
            Err(_) => Err(()),
            Ok(Ok(Some(p))) => Ok(Some(decode_payload(&p).expect("daemon frames decode"))),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(CodecError::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                Ok(None)
            }
            Ok(Err(e)) => panic!("bad frame from daemon: {e}"),
        }
    }

    async fn hello(&mut self) -> Welcome {
        self.send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "service-test".into(),
        })
        .await;
        match self.recv().await {
            Some(ServerMsg::Welcome(w)) => w,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    async fn snapshot(&mut self) -> Snapshot {
        loop {
            match self.recv().await {
                Some(ServerMsg::Snapshot(s)) => return *s,
                Some(ServerMsg::Detail(_)) => continue,
                other => panic!("expected Snapshot, got {other:?}"),
            }
        }
    }

    /// Every message until `window` has passed (or the stream ends).
    async fn collect_for(&mut self, window: Duration) -> Vec<ServerMsg> {
        let end = Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.recv_within(left).await {
                Ok(Some(m)) => out.push(m),
                Ok(None) | Err(()) => return out,
            }
        }
    }

    /// Expect an `Error` frame with `code`, then the end of the stream.
    async fn expect_error_then_eof(&mut self, code: ErrorCode) -> String {
        let message = match self.recv().await {
            Some(ServerMsg::Error { code: c, message }) => {
                assert_eq!(c, code, "{message}");
                message
            }
            other => panic!("expected Error {code:?}, got {other:?}"),
        };
        assert!(
            self.recv().await.is_none(),
            "connection closed after the error"
        );
        message
    }
}

fn seqs(msgs: &[ServerMsg]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Snapshot(s) => Some(s.seq),
            _ => None,
        })
        .collect()
}

// ---------- handshake and lifecycle ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_stream_and_clean_stop() {
    let d = Daemon::start(|_| {}).await;
    let mut v = d.viewer().await;
    let w = v.hello().await;
    assert_eq!(w.protocol, PROTOCOL_VERSION);
    assert_eq!(w.collector, CollectorMode::Synthetic);
    assert_eq!(w.viewer_uid, rustix::process::getuid().as_raw());
    assert_eq!(w.os, std::env::consts::OS);
    assert!(!w.host.is_empty());

    // Nothing streams before Subscribe.
    assert!(v.recv_within(Duration::from_millis(500)).await.is_err());
    v.send(&ClientMsg::Subscribe {
        interval_ms: 200,
        detail_pid: None,
    })
    .await;
    let s = v.snapshot().await;
    assert_eq!(s.processes.len(), 30);
    assert_eq!(s.collector.mode, CollectorMode::Synthetic);
    let next = v.snapshot().await;
    assert!(next.seq > s.seq);

    v.send(&ClientMsg::Ping).await;
    let mut got_pong = false;
    for _ in 0..10 {
        match v.recv().await {
            Some(ServerMsg::Pong) => {
                got_pong = true;
                break;
            }
            Some(ServerMsg::Snapshot(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(got_pong);
    d.stop().await;
    // The viewer sees the end of the stream.
    loop {
        match v.recv().await {
            None => break,
            Some(ServerMsg::Snapshot(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_mismatch_is_refused_in_words() {
    let d = Daemon::start(|_| {}).await;
    let mut newer = d.viewer().await;
    newer
        .send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION + 1,
            client: "sstop 9.0".into(),
        })
        .await;
    let msg = newer
        .expect_error_then_eof(ErrorCode::VersionMismatch)
        .await;
    assert!(
        msg.contains(&format!("protocol {}", PROTOCOL_VERSION + 1))
            && msg.contains(&format!("speaks {PROTOCOL_VERSION}"))
            && msg.contains("upgrade sstopd"),
        "{msg}"
    );

    let mut older = d.viewer().await;
    older
        .send(&ClientMsg::Hello {
            protocol: 0,
            client: "sstop 0.0".into(),
        })
        .await;
    let msg = older
        .expect_error_then_eof(ErrorCode::VersionMismatch)
        .await;
    assert!(msg.contains("upgrade sstop (the viewer)"), "{msg}");

    // The daemon is unaffected.
    d.subscribed(200, None).await.snapshot().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_daemon_on_a_live_socket_is_refused() {
    let d = Daemon::start(|_| {}).await;
    let dir = d.path.parent().expect("dir").to_path_buf();
    let mut cfg = config(&dir);
    cfg.socket_path = d.path.clone();
    let err = sstopd::run(cfg, CancellationToken::new())
        .await
        .expect_err("second daemon refused");
    assert!(err.to_string().contains("already running"), "{err}");
    // The binary says so too, and exits non-zero.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sstopd"))
        .args(["--collector", "synthetic", "--socket"])
        .arg(&d.path)
        .output()
        .expect("run sstopd");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already running"), "{stderr}");
    // The first daemon still serves.
    assert!(d.path.exists());
    d.subscribed(200, None).await.snapshot().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sstopd.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let d = Daemon::start(|c| c.socket_path = path.clone()).await;
    d.subscribed(200, None).await.snapshot().await;
    d.stop().await;
}

// ---------- permissions ----------

/// A group made for this test, removed on drop.
struct TestGroup {
    name: String,
    gid: u32,
}

impl TestGroup {
    fn create() -> TestGroup {
        let name = format!("sstt{}", std::process::id());
        // A leftover from a crashed run with the same pid.
        let _ = std::process::Command::new("groupdel")
            .arg(&name)
            .stderr(std::process::Stdio::null())
            .status();
        let st = std::process::Command::new("groupadd")
            .arg(&name)
            .status()
            .expect("groupadd");
        assert!(st.success(), "groupadd {name}");
        let gid = nix::unistd::Group::from_name(&name)
            .expect("group database")
            .expect("group exists")
            .gid
            .as_raw();
        TestGroup { name, gid }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("groupdel")
            .arg(&self.name)
            .status();
    }
}

/// Connect as uid 65534 with the given gid (no supplementary groups), in a
/// child process; true if the kernel let it connect.
fn connect_as_nobody(path: &Path, gid: u32) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    // Built before fork: the child only makes raw syscalls.
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let mut cmd = std::process::Command::new("/bin/true");
    // SAFETY: the closure runs between fork and exec and makes only
    // async-signal-safe syscalls (setgroups, setresgid, setresuid, socket,
    // connect) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(gid, gid, gid) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return fail();
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                return fail();
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if libc::connect(fd, (&raw const addr).cast(), len) != 0 {
                return fail();
            }
            Ok(())
        });
    }
    match cmd.status() {
        Ok(st) => st.success(),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => false,
        Err(e) => panic!("connect as nobody: unexpected {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_and_group_as_configured() {
    let group = TestGroup::create();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("run/sstop/sstopd.sock");
    let d = Daemon::start(|c| {
        c.socket_path = path.clone();
        c.socket_gid = Some(group.gid);
        c.socket_mode = 0o660;
    })
    .await;
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), group.gid);
    assert_eq!(meta.uid(), 0);
    let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
    assert_eq!(
        parent.permissions().mode() & 0o777,
        0o755,
        "parent dir created 0755"
    );

    // Group members may connect, others may not.
    assert!(connect_as_nobody(&path, group.gid), "group member refused");
    assert!(!connect_as_nobody(&path, 65534), "outsider admitted");
    d.stop().await;

    // Mode 0666 opens viewing to everyone.
    let d = Daemon::start(|c| {
        c.socket_path = path.clone();
        c.socket_mode = 0o666;
    })
    .await;
    assert_eq!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o666
    );
    assert!(connect_as_nobody(&path, 65534));
    d.stop().await;
}

// ---------- fan-out ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_receive_the_same_frames() {
    let d = Daemon::start(|c| c.interval = Duration::from_millis(200)).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut v = d.subscribed(200, None).await;
        tasks.push(tokio::spawn(async move {
            v.collect_for(Duration::from_millis(2500)).await
        }));
    }
    let mut common: Option<BTreeSet<u64>> = None;
    let mut bytes_by_seq = std::collections::HashMap::new();
    for t in tasks {
        let msgs = t.await.unwrap();
        let s: BTreeSet<u64> = seqs(&msgs).into_iter().collect();
        assert!(s.len() >= 5, "a viewer got only {} frames", s.len());
        // Same seq → same content for everyone (encoded once).
        for m in &msgs {
            if let ServerMsg::Snapshot(snap) = m {
                let enc = encode_frame(m).unwrap();
                let prev = bytes_by_seq.entry(snap.seq).or_insert_with(|| enc.clone());
                assert_eq!(*prev, enc, "seq {} differs between viewers", snap.seq);
            }
        }
        common = Some(match common {
            None => s,
            Some(c) => c.intersection(&s).copied().collect(),
        });
    }
    let common = common.unwrap();
    assert!(
        common.len() >= 4,
        "all 50 viewers should share most frames, common seqs: {common:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_reading_viewer_is_dropped_without_slowing_others() {
    let d = Daemon::start(|c| {
        c.interval = Duration::from_millis(100);
        c.write_timeout = Duration::from_millis(800);
        // Big frames fill the socket buffers quickly.
        c.synthetic = SyntheticSize {
            processes: 1500,
            sockets_per_process: 1,
        };
    })
    .await;
    let mut stalled = d.subscribed(100, None).await;
    let mut good = d.subscribed(100, None).await;
    let started = Instant::now();
    let msgs = good.collect_for(Duration::from_secs(3)).await;
    let got = seqs(&msgs);
    // 100 ms ticks for 3 s: ~30 frames; the stalled viewer must not hold them up.
    assert!(got.len() >= 20, "good viewer got {} frames", got.len());
    let max_gap = got.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(max_gap <= 3, "good viewer skipped {max_gap} ticks: {got:?}");

    // The stalled viewer was dropped: draining its buffer ends in EOF (the
    // write that timed out may have left half a frame).
    let mut frames = 0;
    loop {
        match tokio::time::timeout(WAIT, read_frame_async(&mut stalled.stream)).await {
            Ok(Ok(Some(_))) => frames += 1,
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!(
                "stalled viewer still connected after {:?}",
                started.elapsed()
            ),
        }
    }
    assert!(
        frames < 20,
        "stalled viewer was not cut off ({frames} frames)"
    );
    // And the good one keeps going.
    good.snapshot().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_full_history_at_once() {
    let d = Daemon::start(|c| c.interval = Duration::from_millis(100)).await;
    let mut early = d.subscribed(100, None).await;
    // Let the daemon build up history.
    loop {
        if early.snapshot().await.totals.history.len() >= 10 {
            break;
        }
    }
    let mut late = d.subscribed(1000, None).await;
    let first = late.snapshot().await;
    assert!(
        first.totals.history.len() >= 10,
        "first frame carries the history, got {}",
        first.totals.history.len()
    );
    assert!(first.processes.iter().any(|p| p.history.len() >= 10));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_negotiation_fastest_wins_each_at_own_pace() {
    let d = Daemon::start(|c| c.interval = Duration::from_secs(1)).await;
    let mut slow = d.subscribed(1000, None).await;
    let mut fast = d.subscribed(200, None).await;
    // Skip the immediate frames sent on Subscribe and let the daemon re-plan.
    slow.snapshot().await;
    fast.snapshot().await;
    fast.snapshot().await;
    let (slow_msgs, fast_msgs) = tokio::join!(
        slow.collect_for(Duration::from_secs(3)),
        fast.collect_for(Duration::from_secs(3))
    );
    let fast_seqs = seqs(&fast_msgs);
    let slow_seqs = seqs(&slow_msgs);
    assert!(
        (11..=17).contains(&fast_seqs.len()),
        "fast viewer: {} frames in 3 s",
        fast_seqs.len()
    );
    assert!(
        (2..=4).contains(&slow_seqs.len()),
        "slow viewer: {} frames in 3 s",
        slow_seqs.len()
    );
    // The daemon samples at 200 ms: the fast viewer sees consecutive seqs, and
    // the snapshot says what interval produced it.
    assert!(
        fast_seqs.windows(2).all(|w| w[1] - w[0] <= 2),
        "{fast_seqs:?}"
    );
    let intervals: Vec<u32> = fast_msgs
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Snapshot(s) => Some(s.interval_ms),
            _ => None,
        })
        .collect();
    let median = {
        let mut v = intervals.clone();
        v.sort();
        v[v.len() / 2]
    };
    assert!(
        (150..=260).contains(&median),
        "sampling interval {intervals:?}"
    );
    // The slow viewer skips ~4 of every 5 ticks.
    assert!(
        slow_seqs.windows(2).all(|w| w[1] - w[0] >= 3),
        "{slow_seqs:?}"
    );

    // When the fast viewer leaves, the daemon slows back down.
    drop(fast);
    slow.snapshot().await;
    let a = slow.snapshot().await;
    let b = slow.snapshot().await;
    assert!(
        b.seq - a.seq <= 2,
        "back to 1 s sampling: {} -> {}",
        a.seq,
        b.seq
    );
    assert!(b.interval_ms >= 800, "interval {}", b.interval_ms);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_goes_only_to_the_viewer_that_asked() {
    let d = Daemon::start(|_| {}).await;
    let pid = 10_003;
    let mut asker = d.subscribed(200, Some(pid)).await;
    let mut other = d.subscribed(200, None).await;
    let (a, b) = tokio::join!(
        asker.collect_for(Duration::from_millis(1500)),
        other.collect_for(Duration::from_millis(1500))
    );
    let details: Vec<&Detail> = a
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Detail(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(details.len() >= 3, "asker got {} details", details.len());
    for det in &details {
        assert_eq!(det.pid, pid);
        assert_eq!(det.start_time, 1_003);
        assert_eq!(det.connections.len(), 4, "synthetic: 4 sockets per process");
    }
    // Each Detail follows the Snapshot it belongs to.
    for w in a.windows(2) {
        if matches!(w[1], ServerMsg::Detail(_)) {
            assert!(matches!(w[0], ServerMsg::Snapshot(_)));
        }
    }
    assert!(seqs(&b).len() >= 3);
    assert!(
        !b.iter().any(|m| matches!(m, ServerMsg::Detail(_))),
        "detail leaked to a viewer that did not ask"
    );
    d.stop().await;
}

// ---------- bad input ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_ends_only_that_session() {
    let d = Daemon::start(|c| {
        c.handshake_timeout = Duration::from_millis(700);
        c.interval = Duration::from_millis(100);
    })
    .await;
    let mut good = d.subscribed(100, None).await;
    let watcher = tokio::spawn(async move {
        let msgs = good.collect_for(Duration::from_secs(3)).await;
        (good, msgs)
    });

    // Garbage as the first frame.
    let mut v = d.viewer().await;
    v.send_raw(&[0, 0, 0, 6, 0xde, 0xad, 0xbe, 0xef, 0xff, 0x01])
        .await;
    v.expect_error_then_eof(ErrorCode::BadRequest).await;

    // An oversized length: refused before the daemon reads (or allocates) it.
    let mut v = d.viewer().await;
    v.send_raw(&u32::MAX.to_be_bytes()).await;
    let msg = v.expect_error_then_eof(ErrorCode::FrameTooLarge).await;
    assert!(msg.contains("limit"), "{msg}");

    // Half a frame, then silence: the handshake times out.
    let mut v = d.viewer().await;
    v.send_raw(&[0, 0, 0, 50, 0, 1]).await;
    let t = Instant::now();
    v.expect_error_then_eof(ErrorCode::BadRequest).await;
    assert!(t.elapsed() < Duration::from_secs(3));

    // Connect and say nothing at all.
    let mut v = d.viewer().await;
    v.expect_error_then_eof(ErrorCode::BadRequest).await;

    // Something other than Hello first.
    let mut v = d.viewer().await;
    v.send(&ClientMsg::Ping).await;
    let msg = v.expect_error_then_eof(ErrorCode::BadRequest).await;
    assert!(msg.contains("Hello"), "{msg}");

    // Garbage after a good handshake.
    let mut v = d.subscribed(100, None).await;
    v.snapshot().await;
    v.send_raw(&[0, 0, 0, 3, 0x7f, 0x7f, 0x7f]).await;
    let mut saw_error = false;
    while let Some(m) = v.recv().await {
        match m {
            ServerMsg::Error { code, .. } => {
                assert_eq!(code, ErrorCode::BadRequest);
                saw_error = true;
            }
            ServerMsg::Snapshot(_) => assert!(!saw_error, "frames after the error"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_error);

    // Random bytes from many connections at once.
    for i in 0..20u8 {
        let mut v = d.viewer().await;
        let junk: Vec<u8> = (0..200u16)
            .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
            .collect();
        let _ = v.stream.write_all(&junk).await;
    }

    // Meanwhile the good viewer kept its frame rate.
    let (_good, msgs) = watcher.await.unwrap();
    let got = seqs(&msgs);
    assert!(
        got.len() >= 20,
        "good viewer got {} frames in 3 s",
        got.len()
    );
    let max_gap = got.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(max_gap <= 3, "good viewer stalled: {got:?}");
    // And new viewers are still welcome.
    d.subscribed(100, None).await.snapshot().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_refuses_clearly() {
    let d = Daemon::start(|c| c.max_viewers = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(d.subscribed(200, None).await);
    }
    for v in held.iter_mut() {
        v.snapshot().await;
    }
    let mut extra = d.viewer().await;
    extra
        .send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "one too many".into(),
        })
        .await;
    let msg = extra.expect_error_then_eof(ErrorCode::TooManyViewers).await;
    assert!(msg.contains("3 viewers"), "{msg}");

    // A slot frees when a viewer leaves.
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let mut v = d.viewer().await;
        v.send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "retry".into(),
        })
        .await;
        match v.recv().await {
            Some(ServerMsg::Welcome(_)) => break,
            Some(ServerMsg::Error {
                code: ErrorCode::TooManyViewers,
                ..
            }) => {
                assert!(Instant::now() < deadline, "slot never freed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_requests_are_answered_to_the_asker_and_rate_limited() {
    let d = Daemon::start(|_| {}).await;
    let mut asker = d.viewer().await;
    asker.hello().await;
    let mut bystander = d.subscribed(200, None).await;
    // A pid beyond pid_max: no real process can be hit whatever the policy says.
    let pid = 4_000_000_000;
    for _ in 0..25 {
        asker
            .send(&ClientMsg::Kill {
                pid,
                start_time: 1,
                signal: Signal::Term,
            })
            .await;
    }
    let mut outcomes = Vec::new();
    while outcomes.len() < 25 {
        match asker.recv().await {
            Some(ServerMsg::KillResult(r)) => {
                assert_eq!(r.pid, pid);
                assert_eq!(r.signal, Signal::Term);
                assert!(!r.message.is_empty());
                outcomes.push(r.outcome);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let limited = outcomes
        .iter()
        .filter(|o| **o == KillOutcome::RateLimited)
        .count();
    assert_eq!(limited, 5, "burst of 20, then limited: {outcomes:?}");
    assert!(
        outcomes[..20]
            .iter()
            .all(|o| *o != KillOutcome::RateLimited)
    );
    assert!(outcomes.iter().all(|o| *o != KillOutcome::Sent));
    let seen = bystander.collect_for(Duration::from_millis(600)).await;
    assert!(!seen.iter().any(|m| matches!(m, ServerMsg::KillResult(_))));
    d.stop().await;
}

// ---------- the binary under a service manager ----------

/// A child process killed and reaped on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigterm_gives_stopping_exit_zero_and_no_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d/sstopd.sock");
    let notify_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(WAIT)).unwrap();
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_sstopd"))
            .args([
                "--collector",
                "synthetic",
                "--interval",
                "200ms",
                "--socket",
            ])
            .arg(&sock)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("WATCHDOG_USEC", "400000")
            .env_remove("LISTEN_FDS")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn sstopd"),
    );
    let mut messages: Vec<String> = Vec::new();
    let recv_until = |want: &str, messages: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let n = notify.recv(&mut buf).expect("notification in time");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = text.lines().any(|l| l == want);
            messages.push(text);
            if hit {
                return;
            }
        }
        panic!("no {want}: {messages:?}");
    };
    recv_until("READY=1", &mut messages);
    assert!(sock.exists(), "READY only once the socket listens");
    // The watchdog is fed from the collection loop (every WATCHDOG_USEC / 2).
    recv_until("WATCHDOG=1", &mut messages);
    recv_until("WATCHDOG=1", &mut messages);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("STATUS=") && m.contains("viewers")),
        "{messages:?}"
    );

    // A viewer is served by the binary too.
    {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(
            &encode_frame(&ClientMsg::Hello {
                protocol: PROTOCOL_VERSION,
                client: "t".into(),
            })
            .unwrap(),
        )
        .unwrap();
        let p = read_frame(&mut s).unwrap().unwrap();
        assert!(matches!(
            decode_payload::<ServerMsg>(&p).unwrap(),
            ServerMsg::Welcome(_)
        ));
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    recv_until("STOPPING=1", &mut messages);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "sstopd did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "exit code after SIGTERM");
    assert!(!sock.exists(), "socket file left behind");
}

// ---------- B27: vanished viewers, descriptor exhaustion, descriptor leaks ----------

/// Start the real binary on `sock` with extra arguments; stderr goes to `log`.
fn spawn_binary(sock: &Path, log: &Path, nofile: Option<u64>, extra: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sstopd"));
    cmd.args([
        "--collector",
        "synthetic",
        "--interval",
        "100ms",
        "--socket",
    ])
    .arg(sock)
    .args(extra)
    .env_remove("NOTIFY_SOCKET")
    .env_remove("LISTEN_FDS")
    .stderr(std::fs::File::create(log).expect("log file"));
    if let Some(n) = nofile {
        // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = Child(cmd.spawn().expect("spawn sstopd"));
    let deadline = Instant::now() + WAIT;
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        assert!(Instant::now() < deadline, "sstopd did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("daemon fd dir")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_viewers_cost_nothing_and_leak_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let log = dir.path().join("log");
    let child = spawn_binary(&sock, &log, None, &["--log-level", "debug"]);
    let pid = child.0.id();
    let mut steady = Viewer::connect(&sock).await;
    steady.hello().await;
    steady
        .send(&ClientMsg::Subscribe {
            interval_ms: 100,
            detail_pid: Some(10_001),
        })
        .await;
    steady.snapshot().await;
    let baseline = fd_count(pid);

    // Viewers that disappear mid-stream, with frames unread (like kill -9).
    let steady_task = tokio::spawn(async move {
        let msgs = steady.collect_for(Duration::from_secs(3)).await;
        (steady, msgs)
    });
    for round in 0..60 {
        let mut v = Viewer::connect(&sock).await;
        v.hello().await;
        v.send(&ClientMsg::Subscribe {
            interval_ms: 100,
            detail_pid: None,
        })
        .await;
        if round % 2 == 0 {
            v.snapshot().await;
        }
        drop(v);
    }
    let (mut steady, msgs) = steady_task.await.unwrap();
    let got = seqs(&msgs);
    assert!(got.len() >= 20, "steady viewer got {} frames", got.len());

    // Descriptors return to where they were (sessions closed, nothing leaked).
    let deadline = Instant::now() + WAIT;
    loop {
        let now = fd_count(pid);
        if now <= baseline + 2 {
            break;
        }
        assert!(Instant::now() < deadline, "fds {baseline} -> {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    steady.snapshot().await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains("viewer disconnected"),
        "disconnects are logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_exhaustion_is_reported_once_and_survived() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let log = dir.path().join("log");
    let child = spawn_binary(&sock, &log, Some(40), &[]);
    // More viewers than the daemon has descriptors for.
    let mut viewers = Vec::new();
    for _ in 0..60 {
        let mut v = Viewer::connect(&sock).await;
        v.send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "fd-hog".into(),
        })
        .await;
        viewers.push(v);
    }
    // Some get in, the rest wait in the backlog; the daemon keeps running.
    let mut welcomed = 0;
    for v in viewers.iter_mut().take(10) {
        if let Ok(Some(ServerMsg::Welcome(_))) = v.recv_within(Duration::from_secs(3)).await {
            welcomed += 1;
        }
    }
    assert!(welcomed > 0, "nobody was served");
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("out of file descriptors") {
            break;
        }
        assert!(Instant::now() < deadline, "exhaustion not reported: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(viewers);
    // Once descriptors are free again, a new viewer is served in full.
    let deadline = Instant::now() + WAIT;
    let snap = loop {
        let mut v = Viewer::connect(&sock).await;
        v.send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "after".into(),
        })
        .await;
        match v.recv_within(Duration::from_secs(2)).await {
            Ok(Some(ServerMsg::Welcome(_))) => {
                v.send(&ClientMsg::Subscribe {
                    interval_ms: 100,
                    detail_pid: None,
                })
                .await;
                break v.snapshot().await;
            }
            _ => assert!(Instant::now() < deadline, "never served again"),
        }
    };
    assert_eq!(snap.processes.len(), 200);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("out of file descriptors").count(),
        1,
        "reported once: {text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    drop(child);
}
