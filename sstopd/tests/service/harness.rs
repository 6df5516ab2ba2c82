//! A daemon in this process and viewers that speak the protocol.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proto::*;
use sstopd::Config;
use sstopd::collect::CollectorChoice;
use sstopd::config::SyntheticSize;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(10);

pub fn config(dir: &Path) -> Config {
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
pub struct Daemon {
    pub path: PathBuf,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), sstopd::ServiceError>>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Daemon {
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

    pub async fn viewer(&self) -> Viewer {
        Viewer::connect(&self.path).await
    }

    /// Connect, handshake and subscribe.
    pub async fn subscribed(&self, interval_ms: u32, detail_pid: Option<u32>) -> Viewer {
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
    pub async fn stop(mut self) {
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

pub struct Viewer {
    pub stream: UnixStream,
}

impl Viewer {
    pub async fn connect(path: &Path) -> Viewer {
        Viewer {
            stream: UnixStream::connect(path).await.expect("connect"),
        }
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        write_frame_async(&mut self.stream, msg)
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send raw");
    }

    /// Next message; `None` on EOF or a reset. Panics after `WAIT`.
    pub async fn recv(&mut self) -> Option<ServerMsg> {
        self.recv_within(WAIT).await.expect("a frame in time")
    }

    /// `Err(())` when nothing arrived within `d` (the stream is then out of step; stop using it).
    pub async fn recv_within(&mut self, d: Duration) -> Result<Option<ServerMsg>, ()> {
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

    pub async fn hello(&mut self) -> Welcome {
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

    pub async fn snapshot(&mut self) -> Snapshot {
        loop {
            match self.recv().await {
                Some(ServerMsg::Snapshot(s)) => return *s,
                Some(ServerMsg::Detail(_)) => continue,
                other => panic!("expected Snapshot, got {other:?}"),
            }
        }
    }

    /// Every message until `window` has passed (or the stream ends).
    pub async fn collect_for(&mut self, window: Duration) -> Vec<ServerMsg> {
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
    pub async fn expect_error_then_eof(&mut self, code: ErrorCode) -> String {
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

pub fn seqs(msgs: &[ServerMsg]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Snapshot(s) => Some(s.seq),
            _ => None,
        })
        .collect()
}
