//! The link to the daemon. One task owns the socket: it says Hello, checks
//! the version, subscribes, forwards what arrives as [`Event`]s and sends what
//! the viewer asks for. When the daemon goes away it reports it, retries with
//! backoff, and on success re-sends the same subscription by itself.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::{ClientMsg, ErrorCode, FrameDecoder, PROTOCOL_VERSION, ServerMsg, Welcome};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::event::Event;

/// How long the daemon may take to answer Hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum ConnError {
    #[error(
        "permission denied on {path}: join the `sstop` group to watch \
         (`sudo usermod -aG sstop $USER`, then log in again)"
    )]
    PermissionDenied { path: PathBuf },
    #[error("no sstopd daemon is listening on {path} ({source})")]
    NoDaemon { path: PathBuf, source: io::Error },
    #[error(
        "version mismatch: this sstop {client} speaks protocol {ours}, the daemon at {path} {theirs}; \
         install matching versions of sstop and sstopd"
    )]
    VersionMismatch {
        path: PathBuf,
        client: &'static str,
        ours: u32,
        /// What we know about the daemon's side, in words.
        theirs: String,
    },
    #[error("the daemon refused the connection: {0}")]
    Refused(String),
    #[error("the daemon did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the daemon closed the connection")]
    Closed,
    #[error("connection to the daemon failed: {0}")]
    Io(#[from] io::Error),
    #[error("garbled data from the daemon: {0}")]
    Codec(#[from] proto::CodecError),
}

impl ConnError {
    /// True when no daemon is there at all (embedded mode may take over).
    pub fn is_no_daemon(&self) -> bool {
        matches!(self, ConnError::NoDaemon { .. })
    }
}

/// A connected, greeted session.
pub struct Session {
    wire: Wire,
    pub welcome: Welcome,
}

/// The socket and its frame decoder.
struct Wire {
    stream: UnixStream,
    decoder: FrameDecoder,
    buf: Box<[u8]>,
}

const CLIENT: &str = env!("CARGO_PKG_VERSION");

/// Connect to `path` and complete the handshake.
pub async fn connect(path: &Path) -> Result<Session, ConnError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => ConnError::PermissionDenied { path: path.into() },
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ConnError::NoDaemon {
                path: path.into(),
                source: e,
            },
            _ => ConnError::Io(e),
        })?;
    let mut s = Wire {
        stream,
        decoder: FrameDecoder::new(),
        buf: vec![0u8; 64 * 1024].into_boxed_slice(),
    };
    s.send(&ClientMsg::Hello {
        protocol: PROTOCOL_VERSION,
        client: format!("sstop {CLIENT}"),
    })
    .await?;
    let mismatch = |theirs: String| ConnError::VersionMismatch {
        path: path.into(),
        client: CLIENT,
        ours: PROTOCOL_VERSION,
        theirs,
    };
    let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, s.recv()).await {
        Err(_) => return Err(ConnError::Timeout(HANDSHAKE_TIMEOUT)),
        // A frame we cannot decode as our Welcome is another version's.
        Ok(Err(ConnError::Codec(proto::CodecError::Decode(e)))) => {
            return Err(mismatch(format!(
                "answered in a format this version cannot read ({e})"
            )));
        }
        Ok(r) => r?,
    };
    match first {
        ServerMsg::Welcome(welcome) if welcome.protocol == PROTOCOL_VERSION => {
            Ok(Session { wire: s, welcome })
        }
        ServerMsg::Welcome(w) => Err(mismatch(format!(
            "is sstopd {} speaking protocol {}",
            w.daemon, w.protocol
        ))),
        ServerMsg::Error {
            code: ErrorCode::VersionMismatch,
            message,
        } => Err(mismatch(format!("says: {message}"))),
        ServerMsg::Error { message, .. } => Err(ConnError::Refused(message)),
        other => Err(ConnError::Refused(format!(
            "unexpected first message {other:?}"
        ))),
    }
}

impl Session {
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), ConnError> {
        self.wire.send(msg).await
    }

    /// Next message. Cancel-safe: bytes read stay in the decoder.
    pub async fn recv(&mut self) -> Result<ServerMsg, ConnError> {
        self.wire.recv().await
    }
}

impl Wire {
    async fn send(&mut self, msg: &ClientMsg) -> Result<(), ConnError> {
        let frame = proto::encode_frame(msg)?;
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<ServerMsg, ConnError> {
        loop {
            if let Some(payload) = self.decoder.next_payload()? {
                return Ok(proto::decode_payload(&payload)?);
            }
            let n = self.stream.read(&mut self.buf).await?;
            if n == 0 {
                self.decoder.finish()?;
                return Err(ConnError::Closed);
            }
            self.decoder.push(&self.buf[..n]);
        }
    }
}

/// What the viewer asks the connection task to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Subscribe {
        interval_ms: u32,
        detail_pid: Option<u32>,
    },
    Kill {
        pid: u32,
        start_time: u64,
        signal: proto::Signal,
    },
}

/// Where the task delivers events; returns false when nobody listens any more.
pub type Sink = Box<dyn FnMut(Event) -> bool + Send>;

/// Handle to a running connection task.
pub struct Link {
    requests: mpsc::UnboundedSender<Request>,
}

impl Link {
    /// Queue a request; dropped silently once the task has ended (the viewer is quitting).
    pub fn request(&self, r: Request) {
        let _ = self.requests.send(r);
    }
}

/// Start the task on the current runtime with an already greeted session.
pub fn spawn(
    path: PathBuf,
    first: Session,
    subscription: Request,
    sink: Sink,
    shutdown: CancellationToken,
) -> Link {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(path, first, subscription, rx, sink, shutdown));
    Link { requests: tx }
}

async fn run(
    path: PathBuf,
    first: Session,
    mut subscription: Request,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut sink: Sink,
    shutdown: CancellationToken,
) {
    let mut session = Some(first);
    let mut backoff = BACKOFF_MIN;
    loop {
        let mut s = match session.take() {
            Some(s) => s,
            None => {
                let attempt = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = connect(&path) => r,
                };
                match attempt {
                    Ok(s) => s,
                    Err(e) => {
                        if !sink(Event::Disconnected {
                            reason: e.to_string(),
                        }) {
                            return;
                        }
                        let wait = tokio::time::sleep(backoff);
                        tokio::pin!(wait);
                        loop {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = &mut wait => break,
                                r = requests.recv() => match r {
                                    None => return,
                                    Some(r) => if !while_down(r, &mut subscription, &mut sink) { return },
                                },
                            }
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
        };
        backoff = BACKOFF_MIN;
        if !sink(Event::Connected(Box::new(s.welcome.clone()))) {
            return;
        }
        let reason = match serve(
            &mut s,
            &mut subscription,
            &mut requests,
            &mut sink,
            &shutdown,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => e.to_string(),
        };
        if !sink(Event::Disconnected { reason }) {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

/// A request while no daemon is connected: remember subscriptions, answer kills at once.
fn while_down(r: Request, subscription: &mut Request, sink: &mut Sink) -> bool {
    match r {
        Request::Subscribe { .. } => {
            *subscription = r;
            true
        }
        Request::Kill { pid, signal, .. } => sink(Event::KillResult(proto::KillResult {
            pid,
            signal,
            outcome: proto::KillOutcome::Failed,
            message: "not connected to the daemon; nothing was sent".into(),
        })),
    }
}

fn to_msg(r: &Request) -> ClientMsg {
    match *r {
        Request::Subscribe {
            interval_ms,
            detail_pid,
        } => ClientMsg::Subscribe {
            interval_ms,
            detail_pid,
        },
        Request::Kill {
            pid,
            start_time,
            signal,
        } => ClientMsg::Kill {
            pid,
            start_time,
            signal,
        },
    }
}

/// One connected stretch. `Ok` = the viewer is gone (stop); `Err` = the daemon is (retry).
async fn serve(
    s: &mut Session,
    subscription: &mut Request,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    sink: &mut Sink,
    shutdown: &CancellationToken,
) -> Result<(), ConnError> {
    s.send(&to_msg(subscription)).await?;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = requests.recv() => {
                let Some(r) = r else { return Ok(()) };
                if matches!(r, Request::Subscribe { .. }) {
                    *subscription = r.clone();
                }
                s.send(&to_msg(&r)).await?;
            }
            msg = s.recv() => {
                let event = match msg? {
                    ServerMsg::Snapshot(snap) => Event::Snapshot(snap),
                    ServerMsg::Detail(d) => Event::Detail(d),
                    ServerMsg::KillResult(k) => Event::KillResult(k),
                    ServerMsg::Error { message, .. } => return Err(ConnError::Refused(message)),
                    ServerMsg::Welcome(_) | ServerMsg::Pong => continue,
                };
                if !sink(event) {
                    return Ok(());
                }
            }
        }
    }
}
