//! One viewer's connection: handshake, then frames at the viewer's pace,
//! answers to its requests (detail, kill, ping). Anything the viewer does
//! wrong ends this session only.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::{
    ClientMsg, CodecError, ErrorCode, KillOutcome, KillResult, MAX_CLIENT_FRAME_LEN,
    PROTOCOL_VERSION, ServerMsg, Welcome, decode_payload, encode_frame, read_frame_async_max,
};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Subscription, Tick, ViewerGuard};
use super::ratelimit::TokenBucket;
use super::writer::{Pace, Writer};
use crate::kill::{self, KillPolicy, KillRequest};
use crate::peer::Peer;

/// What every session needs to know.
#[derive(Debug)]
pub struct SessionCtx {
    pub hub: Arc<Hub>,
    /// Sent after a good `Hello`, with `viewer_uid` filled in per session.
    pub welcome: Welcome,
    pub policy: KillPolicy,
    pub handshake_timeout: Duration,
    pub write_timeout: Duration,
}

/// Why a session ended (logged at disconnect).
#[derive(Debug)]
pub(super) enum End {
    /// The viewer closed its end.
    Closed,
    Shutdown,
    /// The peer vanished mid-write or mid-read (EPIPE, ECONNRESET, ...).
    Gone(io::Error),
    WriteTimeout,
    HandshakeTimeout,
    /// Refused with an `Error` frame (bad frame, wrong version, ...).
    Refused(ErrorCode, String),
}

impl End {
    fn describe(&self) -> String {
        match self {
            End::Closed => "closed by viewer".into(),
            End::Shutdown => "daemon shutting down".into(),
            End::Gone(e) => format!("connection lost ({e})"),
            End::WriteTimeout => "stopped reading (write timeout)".into(),
            End::HandshakeTimeout => "no Hello in time".into(),
            End::Refused(code, msg) => format!("refused ({code:?}): {msg}"),
        }
    }
}

/// Serve one accepted connection to its end.
pub async fn serve(stream: UnixStream, ctx: Arc<SessionCtx>, stop: CancellationToken) {
    let peer = match peer_credentials(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("closing a connection whose credentials cannot be read: {e}");
            return;
        }
    };
    tracing::info!(uid = peer.uid, pid = peer.pid, "viewer connected");
    let started = Instant::now();
    let end = Session::new(stream, &ctx, peer.clone()).run(&stop).await;
    let secs = started.elapsed().as_secs_f32();
    let (uid, pid, why) = (peer.uid, peer.pid, end.describe());
    match &end {
        // The viewer misbehaved or stalled: worth an operator's attention.
        End::Refused(..) | End::HandshakeTimeout | End::WriteTimeout => {
            tracing::warn!(uid, pid, "viewer dropped after {secs:.1}s: {why}")
        }
        _ => tracing::info!(uid, pid, "viewer disconnected after {secs:.1}s: {why}"),
    }
}

/// Answer a connection over the viewer cap with a clear refusal, then close.
pub async fn refuse(mut stream: UnixStream, max: usize, write_timeout: Duration) {
    let msg = ServerMsg::Error {
        code: ErrorCode::TooManyViewers,
        message: format!(
            "sstopd already serves {max} viewers (its --max-viewers limit); \
             close another viewer or raise the limit"
        ),
    };
    if let Ok(frame) = encode_frame(&msg) {
        let _ = tokio::time::timeout(write_timeout, stream.write_all(&frame)).await;
    }
    linger_close(stream).await;
}

/// Close politely: stop writing, then take what the viewer still sends (its
/// `Hello`) for a moment, so it can read our last frame instead of a reset.
async fn linger_close(mut stream: UnixStream) {
    use tokio::io::AsyncReadExt;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async {
        let mut left = MAX_CLIENT_FRAME_LEN;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

struct Session<'a> {
    stream: Option<UnixStream>,
    ctx: &'a SessionCtx,
    peer: Peer,
    kills: TokenBucket,
}

impl<'a> Session<'a> {
    fn new(stream: UnixStream, ctx: &'a SessionCtx, peer: Peer) -> Self {
        Session {
            stream: Some(stream),
            ctx,
            peer,
            kills: TokenBucket::for_kills(),
        }
    }

    async fn run(mut self, stop: &CancellationToken) -> End {
        let Some(mut stream) = self.stream.take() else {
            return End::Closed;
        };
        let hello = tokio::select! {
            _ = stop.cancelled() => return End::Shutdown,
            r = tokio::time::timeout(
                self.ctx.handshake_timeout,
                read_frame_async_max(&mut stream, MAX_CLIENT_FRAME_LEN),
            ) => r,
        };
        let end = match hello {
            Err(_) => End::HandshakeTimeout,
            Ok(Ok(None)) => return End::Closed,
            Ok(Ok(Some(payload))) => match decode_payload::<ClientMsg>(&payload) {
                Ok(ClientMsg::Hello { protocol, client }) => {
                    return self.welcome(stream, protocol, &client, stop).await;
                }
                Ok(other) => End::Refused(
                    ErrorCode::BadRequest,
                    format!("the first message must be Hello, not {}", msg_name(&other)),
                ),
                Err(e) => bad_frame(e),
            },
            Ok(Err(e)) => bad_frame(e),
        };
        self.refuse_with(stream, end).await
    }

    /// Send the `Error` frame an ending explains (if any), then close.
    async fn refuse_with(&self, mut stream: UnixStream, end: End) -> End {
        let msg = match &end {
            End::Refused(code, text) => Some((*code, text.clone())),
            End::HandshakeTimeout => Some((
                ErrorCode::BadRequest,
                format!(
                    "no Hello within {:.0?}; is this an sstop viewer?",
                    self.ctx.handshake_timeout
                ),
            )),
            _ => None,
        };
        if let Some((code, message)) = msg {
            if let Ok(frame) = encode_frame(&ServerMsg::Error { code, message }) {
                let _ =
                    tokio::time::timeout(self.ctx.write_timeout, stream.write_all(&frame)).await;
            }
            linger_close(stream).await;
        }
        end
    }

    async fn welcome(
        self,
        stream: UnixStream,
        protocol: u32,
        client: &str,
        stop: &CancellationToken,
    ) -> End {
        if protocol != PROTOCOL_VERSION {
            let advice = if protocol > PROTOCOL_VERSION {
                "upgrade sstopd (the daemon) to match"
            } else {
                "upgrade sstop (the viewer) to match"
            };
            let text = format!(
                "the viewer ({client}) speaks protocol {protocol}, this daemon speaks \
                 {PROTOCOL_VERSION}; {advice}"
            );
            return self
                .refuse_with(stream, End::Refused(ErrorCode::VersionMismatch, text))
                .await;
        }
        tracing::debug!(uid = self.peer.uid, "viewer says it is {client:?}");
        let welcome = ServerMsg::Welcome(Welcome {
            viewer_uid: self.peer.uid,
            ..self.ctx.welcome.clone()
        });
        let (rd, wr) = stream.into_split();
        let mut out = Writer {
            wr,
            timeout: self.ctx.write_timeout,
        };
        if let Err(end) = out.send_msg(&welcome).await {
            return end;
        }
        let viewer = self.ctx.hub.join();
        let (tx, rx) = mpsc::channel(8);
        let reader = AbortOnDrop(tokio::spawn(read_loop(rd, tx)));
        let end = self.stream_loop(out, rx, &viewer, stop).await;
        drop(reader);
        end
    }

    /// After the handshake: frames on ticks, answers to requests.
    async fn stream_loop(
        mut self,
        mut out: Writer,
        mut requests: mpsc::Receiver<Result<ClientMsg, CodecError>>,
        viewer: &ViewerGuard,
        stop: &CancellationToken,
    ) -> End {
        let mut ticks = self.ctx.hub.subscribe_ticks();
        let mut pace = Pace::default();
        loop {
            let step = tokio::select! {
                biased;
                _ = stop.cancelled() => Err(End::Shutdown),
                req = requests.recv() => match req {
                    None => Err(End::Closed),
                    Some(Err(e)) => Err(out.refuse(bad_frame(e)).await),
                    Some(Ok(msg)) => self.answer(msg, &mut out, viewer, &mut pace, &mut ticks).await,
                },
                changed = ticks.changed(), if pace.sub.is_some() => match changed {
                    Err(_) => Err(End::Shutdown),
                    Ok(()) => {
                        let tick = ticks.borrow_and_update().clone();
                        match tick {
                            Some(tick) => pace.deliver(&mut out, &tick, false).await,
                            None => Ok(()),
                        }
                    }
                },
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Handle one request from the viewer.
    async fn answer(
        &mut self,
        msg: ClientMsg,
        out: &mut Writer,
        viewer: &ViewerGuard,
        pace: &mut Pace,
        ticks: &mut watch::Receiver<Option<Arc<Tick>>>,
    ) -> Result<(), End> {
        match msg {
            ClientMsg::Subscribe {
                interval_ms,
                detail_pid,
            } => {
                let sub = Subscription::new(interval_ms, detail_pid);
                viewer.set_subscription(sub);
                pace.sub = Some(sub);
                // The latest at once: a late joiner's first frame carries the history.
                let latest = ticks.borrow_and_update().clone();
                match latest {
                    Some(tick) => pace.deliver(out, &tick, true).await,
                    None => Ok(()),
                }
            }
            ClientMsg::Kill {
                pid,
                start_time,
                signal,
            } => {
                let result = self.kill(pid, start_time, signal).await;
                out.send_msg(&ServerMsg::KillResult(result)).await
            }
            ClientMsg::Ping => out.send_msg(&ServerMsg::Pong).await,
            ClientMsg::Hello { .. } => Err(out
                .refuse(End::Refused(
                    ErrorCode::BadRequest,
                    "Hello sent twice".into(),
                ))
                .await),
        }
    }

    async fn kill(&mut self, pid: u32, start_time: u64, signal: proto::Signal) -> KillResult {
        if !self.kills.take() {
            tracing::info!(uid = self.peer.uid, pid, "kill request rate-limited");
            return KillResult {
                pid,
                signal,
                outcome: KillOutcome::RateLimited,
                message: "too many kill requests; try again in a moment".into(),
            };
        }
        let in_view = self
            .ctx
            .hub
            .latest()
            .is_some_and(|t| t.in_view.contains(&(pid, start_time)));
        let policy = self.ctx.policy.clone();
        let peer = self.peer.clone();
        let req = KillRequest {
            pid,
            start_time,
            signal,
        };
        match tokio::task::spawn_blocking(move || kill::execute(&policy, &peer, in_view, req)).await
        {
            Ok(result) => result,
            Err(e) => {
                tracing::error!("kill request for pid {pid} failed internally: {e}");
                KillResult {
                    pid,
                    signal,
                    outcome: KillOutcome::Failed,
                    message: "the daemon failed while handling this request".into(),
                }
            }
        }
    }
}

/// Read frames until EOF or an error (which is passed on, then the loop ends).
async fn read_loop(mut rd: OwnedReadHalf, tx: mpsc::Sender<Result<ClientMsg, CodecError>>) {
    loop {
        let item = match read_frame_async_max(&mut rd, MAX_CLIENT_FRAME_LEN).await {
            Ok(None) => return,
            Ok(Some(payload)) => decode_payload::<ClientMsg>(&payload),
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// A frame that could not be read or understood → how the session ends.
fn bad_frame(e: CodecError) -> End {
    match e {
        CodecError::FrameTooLarge { len, max } => End::Refused(
            ErrorCode::FrameTooLarge,
            format!("frame of {len} bytes exceeds the {max}-byte limit for viewer messages"),
        ),
        CodecError::Decode(_) | CodecError::TrailingBytes(_) | CodecError::Encode(_) => {
            End::Refused(
                ErrorCode::BadRequest,
                format!("malformed message ({e}); is this an sstop viewer of the same version?"),
            )
        }
        CodecError::Truncated { .. } => End::Closed,
        CodecError::Io(e) => gone(e),
    }
}

/// A viewer closing mid-stream (EPIPE, ECONNRESET) is an ordinary disconnect.
pub(super) fn gone(e: io::Error) -> End {
    match e.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
            tracing::debug!("viewer went away: {e}");
            End::Closed
        }
        _ => End::Gone(e),
    }
}

fn msg_name(msg: &ClientMsg) -> &'static str {
    match msg {
        ClientMsg::Hello { .. } => "Hello",
        ClientMsg::Subscribe { .. } => "Subscribe",
        ClientMsg::Kill { .. } => "Kill",
        ClientMsg::Ping => "Ping",
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(target_os = "linux")]
fn peer_credentials(stream: &UnixStream) -> io::Result<Peer> {
    use std::os::fd::AsFd;
    Peer::from_fd(stream.as_fd())
}

/// BSDs and macOS: `getpeereid` gives uid and gid (no pid, no groups).
#[cfg(not(target_os = "linux"))]
fn peer_credentials(stream: &UnixStream) -> io::Result<Peer> {
    let cred = stream.peer_cred()?;
    Ok(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        groups: Vec::new(),
    })
}
