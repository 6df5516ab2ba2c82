//! Support for the kill end-to-end tests: target processes running as other uids,
//! an in-process daemon whose view is those processes, and a protocol client run
//! under `setpriv` as a real unprivileged user.

use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::{
    Caps, ClientMsg, CollectorMode, KillResult, PROTOCOL_VERSION, Proto, ServerMsg, TcpState,
};
use sstopd::collect::{CollectError, Collector, ProcKey, ProcessInfo, Sample, SocketSample};

/// Unused uids and a gid (no passwd entry needed: setpriv takes numbers).
pub const ALICE: u32 = 64_201;
pub const BOB: u32 = 64_202;
pub const ADMINS: u32 = 64_250;

/// Set (to "SOCKET PID START_TIME SIGNAL COUNT") when this binary runs as the helper client.
pub const HELPER_ENV: &str = "SSTOPD_KILL_TEST_HELPER";

// ---------------------------------------------------------------- target processes

/// A `sleep` running as `uid` (real uid, via setpriv); killed and reaped on drop.
pub struct Target {
    pub child: Child,
    pub start_time: u64,
}

impl Target {
    pub fn spawn_as(uid: u32) -> Target {
        let child = Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ])
            .args(["sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut target = Target {
            child,
            start_time: 0,
        };
        // setpriv execs sleep after changing uid; wait for that before putting it in view.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = std::fs::read_to_string(format!("/proc/{}/status", target.pid())).unwrap();
            if status.contains("Name:\tsleep") && status.contains(&format!("Uid:\t{uid}\t")) {
                break;
            }
            assert!(Instant::now() < deadline, "setpriv did not exec sleep");
            std::thread::sleep(Duration::from_millis(5));
        }
        target.start_time = stat(target.pid()).start_time;
        target
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn key(&self) -> ProcKey {
        ProcKey {
            pid: self.pid(),
            start_time: self.start_time,
        }
    }

    /// Poll the /proc state letter until it is `want`; return the last one seen.
    pub fn wait_state(&self, want: char) -> char {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = stat(self.pid()).state;
            if state == want || Instant::now() > deadline {
                return state;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Still running, not stopped, not reaped: nothing reached it.
    pub fn assert_untouched(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "target exited");
        assert_eq!(self.wait_state('S'), 'S');
    }

    /// Reap and return the signal that ended it.
    pub fn reap_signal(&mut self) -> Option<i32> {
        self.child.wait().unwrap().signal()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Stat {
    pub state: char,
    pub start_time: u64,
}

pub fn stat(pid: u32) -> Stat {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &raw[raw.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    Stat {
        state: fields[0].chars().next().unwrap(),
        start_time: fields[19].parse().unwrap(),
    }
}

// ---------------------------------------------------------------- the daemon

/// A collector whose view is exactly the given real processes, each owning one
/// fake TCP connection that moves a few bytes per sample.
pub struct ViewOf {
    pub processes: Vec<(ProcKey, u32)>,
    pub tick: u64,
}

impl Collector for ViewOf {
    fn mode(&self) -> CollectorMode {
        CollectorMode::Synthetic
    }

    fn caps(&self) -> Caps {
        Caps::default()
    }

    fn collect(&mut self) -> Result<Sample, CollectError> {
        self.tick += 1;
        let mut sample = Sample::default();
        for (i, &(key, uid)) in self.processes.iter().enumerate() {
            sample.processes.push(ProcessInfo {
                key,
                ppid: 1,
                uid,
                comm: b"sleep".to_vec(),
                name: "sleep".into(),
                cmdline: "sleep 30".into(),
                alive: true,
            });
            sample.sockets.push(SocketSample {
                id: i as u64 + 1,
                proto: Proto::Tcp,
                local: format!("127.0.0.1:{}", 40_000 + i).parse().unwrap(),
                remote: Some("127.0.0.1:9".parse().unwrap()),
                state: Some(TcpState::Established),
                uid,
                inode: 0,
                owners: vec![key],
                sent: Some(self.tick * 100),
                received: Some(self.tick * 300),
            });
        }
        Ok(sample)
    }
}

/// `sstopd` on a temporary socket (mode 0666 so any uid may connect), in this process,
/// on its own runtime thread; shut down and joined on drop.
pub struct Daemon {
    pub socket: PathBuf,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(in_view: &[&Target], uids: &[u32], kill_gid: Option<u32>) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("sstopd.sock");
        let mut config = sstopd::Config::new(&socket);
        config.socket_mode = 0o666;
        config.interval = Duration::from_millis(100);
        config.kill_gid = kill_gid;
        let collector = ViewOf {
            processes: in_view
                .iter()
                .map(|t| t.key())
                .zip(uids.iter().copied())
                .collect(),
            tick: 0,
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let token = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(sstopd::run_with(config, Box::new(collector), token))
                .unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "daemon did not start");
            assert!(!thread.is_finished(), "daemon exited early");
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon {
            socket,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------- the client

/// A viewer on the daemon's socket speaking the real protocol.
pub struct Viewer {
    pub stream: UnixStream,
    pub welcome_uid: u32,
}

impl Viewer {
    pub fn connect(socket: &Path) -> Viewer {
        let mut stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let hello = ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "kill-test".into(),
        };
        proto::write_frame(&mut stream, &hello).unwrap();
        let welcome_uid = match Viewer::read(&mut stream) {
            ServerMsg::Welcome(w) => w.viewer_uid,
            other => panic!("expected Welcome, got {other:?}"),
        };
        Viewer {
            stream,
            welcome_uid,
        }
    }

    pub fn read(stream: &mut UnixStream) -> ServerMsg {
        let payload = proto::read_frame(stream).unwrap().expect("daemon closed");
        proto::decode_payload(&payload).unwrap()
    }

    pub fn send(&mut self, msg: &ClientMsg) {
        proto::write_frame(&mut self.stream, msg).unwrap();
    }

    /// Next KillResult, skipping snapshots.
    pub fn kill_result(&mut self) -> KillResult {
        loop {
            match Viewer::read(&mut self.stream) {
                ServerMsg::KillResult(r) => return r,
                ServerMsg::Error { code, message } => panic!("daemon error {code:?}: {message}"),
                _ => continue,
            }
        }
    }
}

/// Who asks: uid, gid (= uid) and supplementary groups, as the kernel will report them.
pub struct As {
    pub uid: u32,
    pub groups: &'static [u32],
}

pub const AS_ROOT: As = As {
    uid: 0,
    groups: &[],
};
pub const AS_ALICE: As = As {
    uid: ALICE,
    groups: &[],
};
pub const AS_ALICE_ADMIN: As = As {
    uid: ALICE,
    groups: &[ADMINS],
};

/// Send `count` Kill requests as `who` from a separate process and return the answers.
pub fn ask_as(
    who: &As,
    daemon: &Daemon,
    pid: u32,
    start_time: u64,
    signal: &str,
    count: usize,
) -> Vec<KillResult> {
    let groups = if who.groups.is_empty() {
        "--clear-groups".to_string()
    } else {
        let list: Vec<String> = who.groups.iter().map(u32::to_string).collect();
        format!("--groups={}", list.join(","))
    };
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={}", who.uid),
            &format!("--regid={}", who.uid),
            &groups,
        ])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_client",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            HELPER_ENV,
            format!(
                "{} {pid} {start_time} {signal} {count}",
                daemon.socket.display()
            ),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helper failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The daemon saw the uid setpriv gave us, whatever the message could have said.
    assert!(
        stdout.contains(&format!("WELCOME_UID {}\n", who.uid)),
        "{stdout}"
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("KILLRESULT "))
        .map(|j| serde_json::from_str(j).unwrap())
        .collect()
}

pub fn ask_once(who: &As, daemon: &Daemon, pid: u32, start_time: u64, signal: &str) -> KillResult {
    let mut answers = ask_as(who, daemon, pid, start_time, signal, 1);
    assert_eq!(answers.len(), 1);
    answers.remove(0)
}
