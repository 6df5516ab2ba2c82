//! End to end: a real `sstopd` (synthetic collector) on a temporary socket and
//! the real `sstop`, in tmux for the TUI, as an unprivileged user for --json.

// Helpers outside #[test] fns drive processes; a failure there should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SSTOP: &str = env!("CARGO_BIN_EXE_sstop");

#[path = "e2e/cases.rs"]
mod cases;

fn sstopd_bin() -> PathBuf {
    let p = Path::new(SSTOP).with_file_name("sstopd");
    assert!(
        p.exists(),
        "{} is missing: `cargo test --workspace` builds it; alone, run `cargo build -p sstopd` first",
        p.display()
    );
    p
}

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Poll `f` until it returns Some or `timeout` passes.
fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A temp dir any user may traverse (the socket's own mode decides who connects).
fn open_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A daemon we started; killed and reaped on drop.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn start(socket: &Path, extra: &[&str]) -> Daemon {
        let mut cmd = Command::new(sstopd_bin());
        cmd.args(["--collector", "synthetic"]).args(extra);
        Daemon::launch(cmd, socket)
    }

    /// Run `cmd` (an sstopd invocation) on `socket` and wait until it listens.
    fn launch(mut cmd: Command, socket: &Path) -> Daemon {
        let child = cmd
            .arg("--socket")
            .arg(socket)
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let d = Daemon { child };
        let up = wait_for(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(socket).ok()
        });
        assert!(
            up.is_some(),
            "sstopd did not start listening on {}",
            socket.display()
        );
        d
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private tmux server running one command; killed on drop.
struct Tmux {
    server: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let t = Tmux {
            server: unique("sstop-e2e-"),
        };
        let ok = t
            .tmux(&[
                "new-session",
                "-d",
                "-s",
                "main",
                "-x",
                "120",
                "-y",
                "40",
                cmd,
            ])
            .status
            .success();
        assert!(ok, "tmux new-session failed");
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.server, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux is needed for this test (apt-get install tmux)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "main"]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    fn literal(&self, text: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "main", "-l", text])
                .status
                .success()
        );
    }

    /// Wait until the screen satisfies `pred`; panic with the screen otherwise.
    fn expect(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let got = wait_for(Duration::from_secs(15), || {
            last = self.screen();
            pred(&last).then(|| last.clone())
        });
        got.unwrap_or_else(|| panic!("screen never showed {what}:\n{last}"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn tui_command(socket: &Path) -> String {
    // The echo shows how sstop exited; the sleep keeps the pane readable afterwards.
    format!(
        "TERM=xterm-256color {SSTOP} --socket {} ; echo EXITED-$? ; sleep 60",
        socket.display()
    )
}

#[test]
fn tui_keys_views_and_overlays_in_tmux() {
    let dir = open_tempdir();
    let socket = dir.path().join("d.sock");
    let _daemon = Daemon::start(&socket, &[]);
    let t = Tmux::start(&tui_command(&socket));
    t.expect("the process table", |s| {
        s.contains("sstop") && s.contains("synth-0") && s.contains("PROCESS")
    });
    t.expect("the process count", |s| s.contains("200 processes"));

    t.keys(&["h"]);
    t.expect("remote hosts", |s| s.contains("Remote Hosts"));
    t.keys(&["h"]);
    t.expect("the table again", |s| {
        s.contains("PROCESS") && !s.contains("Remote Hosts")
    });

    t.keys(&["l"]);
    t.expect("listen ports", |s| s.contains("Listening Ports"));
    t.keys(&["Escape"]);
    t.expect("the table again", |s| {
        s.contains("PROCESS") && !s.contains("Listening Ports")
    });

    t.keys(&["?"]);
    t.expect("help", |s| {
        s.contains("Keyboard Shortcuts") && s.contains("cycle sort")
    });
    t.keys(&["?"]);
    t.expect("help closed", |s| !s.contains("Keyboard Shortcuts"));

    t.keys(&["/"]);
    t.literal("SYNTH-17");
    let s = t.expect("the filtered table", |s| {
        s.contains("/ SYNTH-17") && s.contains("synth-17 ")
    });
    assert!(!s.contains("synth-0 "), "filter left other rows:\n{s}");
    t.keys(&["Enter"]);
    t.expect("the filter kept after Enter", |s| {
        s.contains("filter: SYNTH-17")
    });

    t.keys(&["g", "Enter"]);
    t.expect("the detail view", |s| {
        s.contains("PID 10017") && s.contains("Connections (") && s.contains("/usr/bin/synth-17")
    });
    t.keys(&["Escape"]);
    t.expect("the table again", |s| {
        s.contains("PROCESS") && !s.contains("PID 10017")
    });

    // Kill overlay: the daemon's answer is shown, whatever it is.
    t.keys(&["K"]);
    t.expect("the kill overlay", |s| {
        s.contains("Kill process") && s.contains("SIGTERM") && s.contains("pid 10017")
    });
    t.keys(&["j", "j", "Enter"]);
    t.expect("the daemon's answer", |s| {
        s.contains("SIGINT") && (s.contains("not sent:") || s.contains("sent:"))
    });
    t.keys(&["Escape"]);
    t.expect("the overlay closed", |s| !s.contains("Kill process"));

    // B23: tiny sizes live, then back; the viewer survives and redraws in full.
    for (w, h) in [
        ("80", "1"),
        ("20", "2"),
        ("5", "3"),
        ("1", "1"),
        ("80", "2"),
        ("120", "40"),
    ] {
        assert!(
            t.tmux(&["resize-window", "-t", "main", "-x", w, "-y", h])
                .status
                .success()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    t.expect("the full table after resizing back", |s| {
        s.contains("PROCESS") && s.contains("synth-")
    });

    t.keys(&["q"]);
    t.expect("a clean exit", |s| s.contains("EXITED-0"));
}

#[test]
fn tui_embedded_mode_as_root_without_a_daemon() {
    let dir = open_tempdir();
    let missing = dir.path().join("none.sock");
    let cmd = format!(
        "TERM=xterm-256color {SSTOP} --socket {} --collector synthetic ; echo EXITED-$? ; sleep 60",
        missing.display()
    );
    let t = Tmux::start(&cmd);
    t.expect("the embedded note and data", |s| {
        s.contains("embedded collector") && s.contains("synth-0")
    });
    t.keys(&["q"]);
    t.expect("a clean exit", |s| s.contains("EXITED-0"));
}

#[test]
fn tui_keeps_the_last_frame_and_reconnects_when_the_daemon_restarts() {
    let dir = open_tempdir();
    let socket = dir.path().join("d.sock");
    let mut daemon = Daemon::start(&socket, &[]);
    let t = Tmux::start(&tui_command(&socket));
    t.expect("the process table", |s| s.contains("synth-0"));
    daemon.kill();
    let s = t.expect("the reconnecting banner", |s| s.contains("reconnecting"));
    assert!(s.contains("synth-0"), "last frame kept:\n{s}");
    let _daemon = Daemon::start(&socket, &[]);
    t.expect("the banner gone and data back", |s| {
        !s.contains("reconnecting") && s.contains("synth-0")
    });
    t.keys(&["q"]);
    t.expect("a clean exit", |s| s.contains("EXITED-0"));
}

/// A system group that exists for the life of the test.
struct Group {
    name: String,
    gid: u32,
}

impl Group {
    fn create() -> Group {
        let name = unique("sst");
        let ok = Command::new("groupadd")
            .arg(&name)
            .status()
            .unwrap()
            .success();
        assert!(ok, "groupadd {name} failed (tests run as root)");
        let out = Command::new("getent")
            .args(["group", &name])
            .output()
            .unwrap();
        let line = String::from_utf8(out.stdout).unwrap();
        let gid = line.split(':').nth(2).unwrap().trim().parse().unwrap();
        Group { name, gid }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).status();
    }
}

fn as_nobody(groups: &str, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", groups, "--", SSTOP])
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn json_as_an_unprivileged_member_of_the_socket_group() {
    let group = Group::create();
    let dir = open_tempdir();
    let socket = dir.path().join("d.sock");
    let _daemon = Daemon::start(
        &socket,
        &["--socket-group", &group.name, "--socket-mode", "0660"],
    );
    let sock = socket.to_str().unwrap();

    let out = as_nobody(
        &format!("--groups={}", group.gid),
        &[
            "--socket",
            sock,
            "--json",
            "--count",
            "3",
            "--interval",
            "200ms",
        ],
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let frames: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), 3, "{text}");
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "seq must increase: {seqs:?}"
    );
    for f in &frames {
        assert_eq!(f["collector"]["mode"], "synthetic");
        let procs = f["processes"].as_array().unwrap();
        assert_eq!(procs.len(), 200);
        for key in [
            "pid",
            "ppid",
            "name",
            "cmdline",
            "uid",
            "user",
            "up_bps",
            "down_bps",
            "up_bytes",
            "down_bytes",
            "connections",
            "listening",
            "alive",
        ] {
            assert!(procs[0].get(key).is_some(), "process field {key} missing");
        }
        for key in ["up_bps", "down_bps", "up_bytes", "down_bytes"] {
            assert!(f["totals"][key].is_number(), "totals.{key}");
        }
        for key in ["unattributed", "interfaces", "remote_hosts", "listen_ports"] {
            assert!(f[key].is_array(), "{key}");
        }
    }

    // Without the group: refused, and told which group to join.
    let out = as_nobody("--clear-groups", &["--socket", sock, "--json", "--once"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission denied")
            && err.contains("sstop")
            && err.contains("usermod -aG sstop"),
        "{err}"
    );
}

#[test]
fn no_daemon_as_root_runs_embedded() {
    let dir = open_tempdir();
    let missing = dir.path().join("none.sock");
    let out = Command::new(SSTOP)
        .args([
            "--socket",
            missing.to_str().unwrap(),
            "--collector",
            "synthetic",
            "--json",
            "--count",
            "2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("embedded mode"), "{err}");
    let frames: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0]["collector"]["mode"], "synthetic");
}

#[test]
fn no_daemon_as_a_normal_user_explains_how_to_start_one() {
    let dir = open_tempdir();
    let missing = dir.path().join("none.sock");
    let out = as_nobody(
        "--clear-groups",
        &["--socket", missing.to_str().unwrap(), "--json", "--once"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("systemctl enable --now sstopd") && err.contains("sudo"),
        "{err}"
    );
}

#[test]
fn closed_stdout_ends_headless_output_quietly() {
    let dir = open_tempdir();
    let socket = dir.path().join("d.sock");
    let _daemon = Daemon::start(&socket, &[]);
    for format in ["--json", "--csv"] {
        let mut child = Command::new(SSTOP)
            .args([
                "--socket",
                socket.to_str().unwrap(),
                format,
                "--interval",
                "100ms",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        // The reader is gone (like `| head -1`): the next write fails with EPIPE.
        let status = wait_for(Duration::from_secs(10), || child.try_wait().unwrap());
        let status = status.unwrap_or_else(|| {
            let _ = child.kill();
            panic!("sstop {format} kept running after stdout closed")
        });
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(status.success(), "{format}: {status:?} {err}");
        assert!(err.is_empty(), "{format} should exit quietly: {err}");
    }
}

#[test]
fn version_mismatch_names_both_versions() {
    use std::os::unix::net::UnixListener;
    let dir = open_tempdir();
    let socket = dir.path().join("old.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // A daemon from the future: reads Hello, answers a Welcome for protocol 999.
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _hello = proto::read_frame(&mut s).unwrap();
        let welcome = proto::ServerMsg::Welcome(proto::Welcome {
            protocol: 999,
            daemon: "9.9.9".into(),
            host: "h".into(),
            os: "linux".into(),
            collector: proto::CollectorMode::Synthetic,
            caps: proto::Caps::default(),
            viewer_uid: 0,
        });
        proto::write_frame(&mut s, &welcome).unwrap();
    });
    let out = Command::new(SSTOP)
        .args(["--socket", socket.to_str().unwrap(), "--json", "--once"])
        .output()
        .unwrap();
    fake.join().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("version mismatch"), "{err}");
    assert!(
        err.contains(&format!("protocol {}", proto::PROTOCOL_VERSION))
            && err.contains("protocol 999"),
        "{err}"
    );
    assert!(
        err.contains("9.9.9") && err.contains(env!("CARGO_PKG_VERSION")),
        "{err}"
    );
}

/// A daemon with the real collector (root, as CI runs), so real processes are in its view.
fn start_real_daemon(socket: &Path) -> Daemon {
    let mut cmd = Command::new(sstopd_bin());
    cmd.args(["--collector", "auto", "--interval", "200ms"]);
    Daemon::launch(cmd, socket)
}

fn sstop_kill(socket: &Path, pid: u32, signal: &str) -> Output {
    Command::new(SSTOP)
        .args([
            "--socket",
            socket.to_str().unwrap(),
            "kill",
            &pid.to_string(),
            "--signal",
            signal,
        ])
        .output()
        .unwrap()
}

#[test]
fn kill_subcommand_signals_a_process_the_daemon_shows() {
    let dir = open_tempdir();
    let socket = dir.path().join("d.sock");
    let _daemon = start_real_daemon(&socket);
    // A process with a listening socket: the daemon shows it, so it may be signalled.
    let mut target = Command::new("python3")
        .args([
            "-c",
            "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); time.sleep(60)",
        ])
        .spawn()
        .unwrap();
    let pid = target.id();
    let shown = wait_for(Duration::from_secs(15), || {
        let out = Command::new(SSTOP)
            .args(["--socket", socket.to_str().unwrap(), "--json", "--once"])
            .output()
            .unwrap();
        let frame: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        frame["processes"]
            .as_array()?
            .iter()
            .any(|p| p["pid"] == pid)
            .then_some(())
    });
    assert!(shown.is_some(), "the daemon never showed pid {pid}");
    let out = sstop_kill(&socket, pid, "TERM");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sent SIGTERM"), "{stdout}");
    // Said once: the daemon's own "sent TERM to process …" is not repeated after it.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(!stdout.contains("sent TERM"), "{stdout}");
    let status = wait_for(Duration::from_secs(5), || target.try_wait().unwrap());
    let status = status.unwrap_or_else(|| panic!("daemon said sent, but {pid} lives"));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

#[test]
fn kill_subcommand_refuses_a_process_the_daemon_does_not_show() {
    let dir = open_tempdir();
    let socket = dir.path().join("d.sock");
    let _daemon = Daemon::start(&socket, &[]);
    // `sleep` has no sockets, and the synthetic collector shows none of our pids.
    let mut target = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = target.id();
    let out = sstop_kill(&socket, pid, "TERM");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("not among the processes sstopd shows"),
        "{stderr}"
    );
    assert!(
        target.try_wait().unwrap().is_none(),
        "{pid} must be untouched"
    );
    let _ = target.kill();
    let _ = target.wait();
}

/// The connection task against a scripted daemon: after the daemon drops it,
/// it reconnects and re-sends the latest subscription (interval and detail pid).
#[test]
fn conn_task_reconnects_and_resubscribes() {
    use proto::{ClientMsg, ServerMsg};
    use sstop_client::conn::{self, Request};
    use sstop_client::event::Event;
    use std::os::unix::net::UnixListener;

    let dir = open_tempdir();
    let socket = dir.path().join("scripted.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let welcome = |s: &mut std::os::unix::net::UnixStream| {
        let hello: ClientMsg =
            proto::decode_payload(&proto::read_frame(s).unwrap().unwrap()).unwrap();
        assert!(
            matches!(hello, ClientMsg::Hello { protocol, .. } if protocol == proto::PROTOCOL_VERSION)
        );
        let w = proto::Welcome {
            protocol: proto::PROTOCOL_VERSION,
            daemon: "test".into(),
            host: "scripted".into(),
            os: "linux".into(),
            collector: proto::CollectorMode::Synthetic,
            caps: proto::Caps::default(),
            viewer_uid: 0,
        };
        proto::write_frame(s, &ServerMsg::Welcome(w)).unwrap();
    };
    let next = |s: &mut std::os::unix::net::UnixStream| -> ClientMsg {
        proto::decode_payload(&proto::read_frame(s).unwrap().unwrap()).unwrap()
    };
    let snap = |seq| {
        let mut s = proto::Snapshot::empty(proto::CollectorMode::Synthetic);
        s.seq = seq;
        ServerMsg::Snapshot(Box::new(s))
    };
    let daemon = std::thread::spawn(move || {
        let (mut a, _) = listener.accept().unwrap();
        welcome(&mut a);
        let first = next(&mut a);
        let changed = next(&mut a);
        proto::write_frame(&mut a, &snap(1)).unwrap();
        drop(a);
        let (mut b, _) = listener.accept().unwrap();
        welcome(&mut b);
        let resent = next(&mut b);
        proto::write_frame(&mut b, &snap(2)).unwrap();
        (first, changed, resent, b)
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let session = rt.block_on(conn::connect(&socket)).unwrap();
    assert_eq!(session.welcome.host, "scripted");
    let (tx, rx) = std::sync::mpsc::channel();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let link = {
        let _g = rt.enter();
        conn::spawn(
            socket.clone(),
            session,
            Request::Subscribe {
                interval_ms: 1000,
                detail_pid: None,
            },
            Box::new(move |e| tx.send(e).is_ok()),
            shutdown.clone(),
        )
    };
    link.request(Request::Subscribe {
        interval_ms: 200,
        detail_pid: Some(42),
    });
    let mut kinds = Vec::new();
    while kinds.last().map(String::as_str) != Some("snapshot 2") {
        let e = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("events stopped");
        kinds.push(match e {
            Event::Connected(_) => "connected".to_string(),
            Event::Disconnected { .. } => "disconnected".to_string(),
            Event::Snapshot(s) => format!("snapshot {}", s.seq),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        kinds,
        [
            "connected",
            "snapshot 1",
            "disconnected",
            "connected",
            "snapshot 2"
        ]
    );
    let (first, changed, resent, _keep) = daemon.join().unwrap();
    assert_eq!(
        first,
        ClientMsg::Subscribe {
            interval_ms: 1000,
            detail_pid: None
        }
    );
    assert_eq!(
        changed,
        ClientMsg::Subscribe {
            interval_ms: 200,
            detail_pid: Some(42)
        }
    );
    assert_eq!(resent, changed, "the same subscription after reconnecting");
    shutdown.cancel();
}
