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
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Subscription, Tick, ViewerGuard};
use super::ratelimit::TokenBucket;
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
enum End {
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
    match &end {
        End::Gone(e) => tracing::debug!(uid = peer.uid, pid = peer.pid, "peer error: {e}"),
        End::Refused(..) | End::HandshakeTimeout | End::WriteTimeout => tracing::warn!(
            uid = peer.uid,
            pid = peer.pid,
            "viewer dropped after {secs:.1}s: {}",
            end.describe()
        ),
        _ => {}
    }
    tracing::info!(
        uid = peer.uid,
        pid = peer.pid,
        "viewer disconnected after {secs:.1}s: {}",
        end.describe()
    );
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
        let mut sub: Option<Subscription> = None;
        let mut last_sent: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return End::Shutdown,
                req = requests.recv() => {
                    let msg = match req {
                        None => return End::Closed,
                        Some(Err(e)) => {
                            let end = bad_frame(e);
                            if let End::Refused(code, text) = &end {
                                let _ = out.send_msg(&ServerMsg::Error { code: *code, message: text.clone() }).await;
                            }
                            return end;
                        }
                        Some(Ok(msg)) => msg,
                    };
                    match msg {
                        ClientMsg::Subscribe { interval_ms, detail_pid } => {
                            let s = Subscription::new(interval_ms, detail_pid);
                            viewer.set_subscription(s);
                            sub = Some(s);
                            // Send the latest at once: a late joiner's first frame carries the history.
                            let latest = ticks.borrow_and_update().clone();
                            if let Some(tick) = latest {
                                if let Err(end) = out.send_tick(&tick, s.detail_pid).await {
                                    return end;
                                }
                                last_sent = Some(tick.at);
                            }
                        }
                        ClientMsg::Kill { pid, start_time, signal } => {
                            let result = self.kill(pid, start_time, signal).await;
                            if let Err(end) = out.send_msg(&ServerMsg::KillResult(result)).await {
                                return end;
                            }
                        }
                        ClientMsg::Ping => {
                            if let Err(end) = out.send_msg(&ServerMsg::Pong).await {
                                return end;
                            }
                        }
                        ClientMsg::Hello { .. } => {
                            let text = "Hello sent twice".to_string();
                            let _ = out.send_msg(&ServerMsg::Error { code: ErrorCode::BadRequest, message: text.clone() }).await;
                            return End::Refused(ErrorCode::BadRequest, text);
                        }
                    }
                }
                changed = ticks.changed(), if sub.is_some() => {
                    if changed.is_err() {
                        return End::Shutdown;
                    }
                    let Some(tick) = ticks.borrow_and_update().clone() else { continue };
                    let Some(s) = sub else { continue };
                    if is_due(last_sent, &tick, s.interval) {
                        if let Err(end) = out.send_tick(&tick, s.detail_pid).await {
                            return end;
                        }
                        last_sent = Some(tick.at);
                    }
                }
            }
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

/// Should a viewer pacing at `interval` get `tick`, having last got the tick taken at `last`?
/// Half the loop's own interval is tolerated, so a viewer at the loop's pace gets every
/// tick despite jitter and a slower one gets one per `interval`.
fn is_due(last: Option<Instant>, tick: &Tick, interval: Duration) -> bool {
    let Some(last) = last else { return true };
    let slack = tick.interval / 2;
    tick.at.saturating_duration_since(last) + slack >= interval
}

/// The write half, every write bounded by the write timeout.
struct Writer {
    wr: OwnedWriteHalf,
    timeout: Duration,
}

impl Writer {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), End> {
        match tokio::time::timeout(self.timeout, self.wr.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(gone(e)),
            Err(_) => Err(End::WriteTimeout),
        }
    }

    async fn send_msg(&mut self, msg: &ServerMsg) -> Result<(), End> {
        match encode_frame(msg) {
            Ok(frame) => self.send(&frame).await,
            Err(e) => {
                tracing::error!("cannot encode a reply: {e}");
                Ok(())
            }
        }
    }

    async fn send_tick(&mut self, tick: &Tick, detail_pid: Option<u32>) -> Result<(), End> {
        self.send(&tick.snapshot).await?;
        if let Some(frame) = detail_pid.and_then(|pid| tick.details.get(&pid)) {
            self.send(frame).await?;
        }
        Ok(())
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
fn gone(e: io::Error) -> End {
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
