//! The `sstopd` binary: sd_notify, SIGTERM, socket activation, B27 (vanished viewers, fd exhaustion, fd leaks).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;
use proto::*;

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

/// Wait for a notification line `want` on `notify`, collecting everything seen.
fn await_notify(notify: &std::os::unix::net::UnixDatagram, want: &str, seen: &mut Vec<String>) {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let n = notify.recv(&mut buf).expect("notification in time");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let hit = text.lines().any(|l| l == want);
        seen.push(text);
        if hit {
            return;
        }
    }
    panic!("no {want}: {seen:?}");
}

#[test]
fn systemd_socket_activation_is_used_and_left_alone() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let notify_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(WAIT)).unwrap();
    let fd = listener.as_raw_fd();
    let mut cmd = std::process::Command::new("/bin/sh");
    // LISTEN_PID must be the daemon's pid: the shell's own, which exec keeps.
    cmd.args([
        "-c",
        "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_sstopd"),
        "--collector",
        "synthetic",
        "--socket",
    ])
    .arg(dir.path().join("unused.sock"))
    .env("NOTIFY_SOCKET", &notify_path)
    .stderr(std::fs::File::create(dir.path().join("log")).unwrap());
    // SAFETY: dup2 and fcntl are async-signal-safe; they put the listener at
    // fd 3 (SD_LISTEN_FDS_START) without close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(fd, 3) >= 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = Child(cmd.spawn().expect("spawn sstopd"));
    drop(listener);
    let mut seen = Vec::new();
    let log = dir.path().join("log");
    let mut buf = [0u8; 4096];
    match notify.recv(&mut buf) {
        Ok(n) => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e) => panic!("{e}: {}", std::fs::read_to_string(&log).unwrap_or_default()),
    }
    if !seen[0].lines().any(|l| l == "READY=1") {
        await_notify(&notify, "READY=1", &mut seen);
    }
    assert!(
        !dir.path().join("unused.sock").exists(),
        "--socket is not bound when systemd passes one"
    );
    // Served on the activated socket.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write_frame(
        &mut s,
        &ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "t".into(),
        },
    )
    .unwrap();
    let p = read_frame(&mut s).unwrap().unwrap();
    assert!(matches!(
        decode_payload::<ServerMsg>(&p).unwrap(),
        ServerMsg::Welcome(_)
    ));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    await_notify(&notify, "STOPPING=1", &mut seen);
    let mut child = child;
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(sock.exists(), "the activated socket belongs to systemd");
}

#[test]
fn unknown_kill_group_stops_startup_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sstopd"))
        .args([
            "--collector",
            "synthetic",
            "--kill-group",
            "no-such-group-sstt",
        ])
        .arg("--socket")
        .arg(dir.path().join("d.sock"))
        .output()
        .expect("run sstopd");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--kill-group") && stderr.contains("no-such-group-sstt"),
        "{stderr}"
    );
    assert!(!dir.path().join("d.sock").exists());
}
