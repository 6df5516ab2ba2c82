//! What goes out to one viewer: a writer whose every write is bounded by the
//! write timeout, and the pacing that picks which ticks a viewer gets.

use std::time::{Duration, Instant};

use proto::{ServerMsg, encode_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;

use super::hub::{Subscription, Tick};
use super::session::{End, gone};

/// Should a viewer pacing at `interval` get `tick`, having last got the tick taken at `last`?
/// Half the loop's own interval is tolerated, so a viewer at the loop's pace gets every
/// tick despite jitter and a slower one gets one per `interval`.
fn is_due(last: Option<Instant>, tick: &Tick, interval: Duration) -> bool {
    let Some(last) = last else { return true };
    let slack = tick.interval / 2;
    tick.at.saturating_duration_since(last) + slack >= interval
}

/// What a viewer asked for and what it has been sent.
#[derive(Debug, Default)]
pub(super) struct Pace {
    pub(super) sub: Option<Subscription>,
    /// `at` of the last tick whose snapshot went out.
    last_sent: Option<Instant>,
    /// `at` and pid of the last detail that went out.
    detail_sent: Option<(Instant, u32)>,
}

impl Pace {
    /// Send what `tick` owes this viewer: snapshot (+ detail) when due or
    /// `now`; otherwise a detail added to an already-sent tick.
    pub(super) async fn deliver(
        &mut self,
        out: &mut Writer,
        tick: &Tick,
        now: bool,
    ) -> Result<(), End> {
        let Some(sub) = self.sub else { return Ok(()) };
        if now || is_due(self.last_sent, tick, sub.interval) {
            if let Some(sent) = out.send_tick(tick, sub.detail_pid).await? {
                self.detail_sent = Some(sent);
            }
            self.last_sent = Some(tick.at);
            return Ok(());
        }
        let Some(pid) = sub.detail_pid else {
            return Ok(());
        };
        let owed = self.last_sent == Some(tick.at) && self.detail_sent != Some((tick.at, pid));
        if let Some(frame) = tick.details.get(&pid).filter(|_| owed) {
            out.send(frame).await?;
            self.detail_sent = Some((tick.at, pid));
        }
        Ok(())
    }
}

/// The write half, every write bounded by the write timeout.
pub(super) struct Writer {
    pub(super) wr: OwnedWriteHalf,
    pub(super) timeout: Duration,
}

impl Writer {
    pub(super) async fn send(&mut self, bytes: &[u8]) -> Result<(), End> {
        match tokio::time::timeout(self.timeout, self.wr.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(gone(e)),
            Err(_) => Err(End::WriteTimeout),
        }
    }

    /// Tell the viewer why it is being cut off (best effort); returns the ending.
    pub(super) async fn refuse(&mut self, end: End) -> End {
        if let End::Refused(code, message) = &end {
            let msg = ServerMsg::Error {
                code: *code,
                message: message.clone(),
            };
            let _ = self.send_msg(&msg).await;
        }
        end
    }

    pub(super) async fn send_msg(&mut self, msg: &ServerMsg) -> Result<(), End> {
        match encode_frame(msg) {
            Ok(frame) => self.send(&frame).await,
            Err(e) => {
                tracing::error!("cannot encode a reply: {e}");
                Ok(())
            }
        }
    }

    /// Snapshot, then the detail for `detail_pid` if the tick has it.
    /// Returns which detail went out, if any.
    pub(super) async fn send_tick(
        &mut self,
        tick: &Tick,
        detail_pid: Option<u32>,
    ) -> Result<Option<(Instant, u32)>, End> {
        self.send(&tick.snapshot).await?;
        if let Some((pid, frame)) = detail_pid.and_then(|pid| Some((pid, tick.details.get(&pid)?)))
        {
            self.send(frame).await?;
            return Ok(Some((tick.at, pid)));
        }
        Ok(None)
    }
}
