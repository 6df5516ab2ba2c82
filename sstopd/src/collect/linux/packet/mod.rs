//! AF_PACKET capture with a classic BPF filter; bytes per 5-tuple, credited to sockets.
//!
//! `frame` parses (pure), `bpf` builds the kernel filter, `ring` owns the TPACKET_V3
//! mmap ring, `flows` counts per 5-tuple on the capture thread, `attribute` credits the
//! flows to sockets once per tick. [`PacketCounter`] is the one step a collector calls.
//!
//! Why `SOCK_DGRAM` ("cooked"): the kernel strips the link header on every link type, so
//! Ethernet, loopback, tun, WireGuard and PPP (B14) need no per-link decoding, and frames
//! of link types that carry no IP never pass the filter. Sizes come from the IP header
//! and `tp_len`, never from the copied bytes, so the 256-byte snaplen loses nothing (B16).

pub mod attribute;
pub mod bpf;
pub mod capture;
pub mod flows;
pub mod frame;
pub mod links;
pub mod ring;

use std::path::Path;
use std::time::{Duration, Instant};

use proto::{Note, Proto};

use crate::collect::linux::netlink::Tuple;
use crate::collect::linux::procnet::{self, Table};
use crate::collect::{ClosedSocket, PeerFlow, Sample, SocketSample, UnexplainedFlow};

pub use bpf::Keep;
pub use capture::{Capture, CaptureError};

/// The note shown when the capture cannot run for lack of privilege.
pub const NO_CAP_NOTE: &str = "UDP/ICMP bytes unavailable (no CAP_NET_RAW)";

/// How long `account` waits for the capture thread's hand-off.
const HANDOFF_TIMEOUT: Duration = Duration::from_millis(250);
/// Arriving TCP segments per second above which activity marks are paused.
pub const DENSE_TCP_FPS: f64 = 50_000.0;
/// How long they stay off.
pub const DENSE_TCP_PAUSE: Duration = Duration::from_secs(30);
/// How often bridge/bond ports (whose frames their master also carries) are listed again.
const PORTS_REFRESH: Duration = Duration::from_secs(5);
/// Samples a "losing frames" note stays up after the last drop.
const DROP_NOTE_TICKS: u32 = 10;

/// Capture + ledger: given a sample's socket list, fills captured bytes in.
pub struct PacketCounter {
    keep: Keep,
    capture: Result<Capture, String>,
    ledger: attribute::Ledger,
    drops: DropTracker,
    /// Link types whose frames did not decode: logged once each, listed in a note.
    undecodable: std::collections::BTreeSet<u16>,
    /// This tick's hand-off, taken early by [`PacketCounter::tcp_activity`].
    taken: Option<Option<flows::Batch>>,
    /// Raw, ping and SCTP sockets as last read.
    extra: Option<Vec<SocketSample>>,
    /// When the bridge/bond ports were last listed.
    ports_listed: Option<Instant>,
    /// When [`PacketCounter::tcp_activity`] last took a hand-off.
    activity_taken: Option<Instant>,
    tcp_marks: TcpMarks,
}

/// Whether the tap marks TCP activity (main mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpMarks {
    On,
    /// Dense TCP: dropped in the kernel until then.
    Off {
        until: Instant,
    },
}

/// One tick of [`TcpMarks`]: the next state, a filter switch to make, and whether this
/// tick's marks tell which sockets moved.
#[derive(Debug, PartialEq)]
struct MarksStep {
    state: TcpMarks,
    switch: Option<bool>,
    usable: bool,
}

impl TcpMarks {
    /// `rate`: TCP segments per second in this tick's batch, if known.
    fn next(self, rate: Option<f64>, now: Instant) -> MarksStep {
        let step = |state, switch, usable| MarksStep {
            state,
            switch,
            usable,
        };
        match self {
            TcpMarks::Off { until } if now < until => step(self, None, false),
            // Back on; this tick's batch was still taken with the marks off, the next
            // one is complete again.
            TcpMarks::Off { .. } => step(TcpMarks::On, Some(true), false),
            TcpMarks::On => match rate {
                // Complete, but one dump is cheaper than a header copy per segment.
                Some(r) if r > DENSE_TCP_FPS => step(
                    TcpMarks::Off {
                        until: now + DENSE_TCP_PAUSE,
                    },
                    Some(false),
                    false,
                ),
                _ => step(TcpMarks::On, None, true),
            },
        }
    }
}

impl PacketCounter {
    /// Start capturing. Never fails: without CAP_NET_RAW (or AF_PACKET) the counter runs
    /// empty and says why in every sample's notes.
    pub fn open(keep: Keep) -> PacketCounter {
        let capture = Capture::start(keep).map_err(|e| match e {
            CaptureError::Permission(_) => NO_CAP_NOTE.to_string(),
            other => format!("UDP/ICMP bytes unavailable ({other})"),
        });
        if let Err(msg) = &capture {
            tracing::warn!("{msg}");
        }
        PacketCounter {
            keep,
            capture,
            ledger: attribute::Ledger::default(),
            drops: DropTracker::default(),
            undecodable: Default::default(),
            taken: None,
            extra: None,
            ports_listed: None,
            activity_taken: None,
            tcp_marks: TcpMarks::On,
        }
    }

    /// Take this tick's hand-off now, keeping it for the calls after.
    fn take_early(&mut self) {
        if self.taken.is_none() {
            let batch = self.take();
            self.taken = Some(batch);
        }
    }

    /// This tick's hand-off from the capture thread (once per tick).
    fn take(&mut self) -> Option<flows::Batch> {
        if let Some(batch) = self.taken.take() {
            return batch;
        }
        let capture = self.capture.as_ref().ok()?;
        // Ports join and leave bridges rarely; listing them is a netlink dump of every link.
        if self
            .ports_listed
            .is_none_or(|t| t.elapsed() >= PORTS_REFRESH)
        {
            self.ports_listed = Some(Instant::now());
            match links::enslaved() {
                Ok(ports) => capture.set_skip(ports),
                Err(e) => tracing::debug!("listing bridge/bond ports: {e}"),
            }
        }
        capture.take(HANDOFF_TIMEOUT)
    }

    /// Main mode: the (local, remote) tuples of the TCP sockets a segment arrived for
    /// since the previous tick — the only sockets whose counters can have moved. `None`
    /// when that cannot be known (no capture, a late hand-off, frames lost, too many
    /// tuples): then every socket must be read. Call before [`PacketCounter::account`].
    ///
    /// Dense TCP (more than [`DENSE_TCP_FPS`] arriving segments a second) turns the marks
    /// off in the kernel for [`DENSE_TCP_PAUSE`]: copying a header per segment would then
    /// cost the host more than dumping every socket each tick, which is what happens
    /// meanwhile (`None`).
    pub fn tcp_activity(&mut self) -> Option<Vec<Tuple>> {
        self.take_early();
        let now = Instant::now();
        let since = self.activity_taken.replace(now);
        let mut batch = self.taken.take().flatten();
        if self.keep == Keep::NonTcp && !self.pace_tcp_marks(batch.as_ref(), since, now) {
            self.taken = Some(batch);
            return None;
        }
        let tuples = match &mut batch {
            Some(b) if self.keep == Keep::NonTcp && b.drops == 0 && !b.tcp_overflow => {
                Some(std::mem::take(&mut b.tcp_active).into_iter().collect())
            }
            _ => None,
        };
        let healthy = self.capture.as_ref().is_ok_and(|c| c.error().is_none());
        self.taken = Some(batch);
        tuples.filter(|_| healthy)
    }

    /// Turn TCP activity marks off when they come too densely, back on after the pause.
    /// False when this tick's batch cannot say which sockets moved.
    fn pace_tcp_marks(
        &mut self,
        batch: Option<&flows::Batch>,
        since: Option<Instant>,
        now: Instant,
    ) -> bool {
        let Ok(capture) = &self.capture else {
            return false;
        };
        let rate = batch.zip(since).map(|(b, since)| {
            b.tcp_frames as f64 / now.saturating_duration_since(since).as_secs_f64().max(0.05)
        });
        let step = self.tcp_marks.next(rate, now);
        if let Some(on) = step.switch {
            if let Err(e) = capture.set_tcp_activity(on) {
                tracing::debug!(
                    "switching TCP activity marks {}: {e}",
                    if on { "on" } else { "off" }
                );
                return false;
            }
            if !on {
                tracing::info!(
                    "dense TCP ({:.0} segments/s): every socket is dumped each tick for {} s",
                    rate.unwrap_or_default(),
                    DENSE_TCP_PAUSE.as_secs()
                );
            }
        }
        self.tcp_marks = step.state;
        step.usable
    }

    /// True when frames are being captured.
    pub fn available(&self) -> bool {
        self.capture.is_ok()
    }

    /// Raw, ping (ICMP) and SCTP sockets, which sock_diag dumps do not cover here:
    /// `/proc/net/{raw,raw6,icmp,icmp6}` and `/proc/net/sctp/eps` under `net_dir`
    /// (owners still to be filled from their inodes).
    ///
    /// Re-read when `full` (every socket is being listed) or when frames of those
    /// protocols arrived since the last tick; else the last reading is reused: five files
    /// a tick for sockets that are rare and idle is most of an idle tick's reading.
    pub fn extra_sockets(&mut self, net_dir: &Path, full: bool) -> Vec<SocketSample> {
        self.take_early();
        let other_traffic = matches!(&self.taken, Some(Some(b))
            if b.flows.keys().any(|k| !matches!(k.proto, Proto::Tcp | Proto::Udp)));
        if full || other_traffic || self.extra.is_none() {
            self.extra = Some(Self::read_extra_sockets(net_dir));
        }
        self.extra.clone().unwrap_or_default()
    }

    fn read_extra_sockets(net_dir: &Path) -> Vec<SocketSample> {
        let mut out =
            procnet::read_sockets(net_dir, &[Table::Raw, Table::Icmp]).unwrap_or_else(|e| {
                tracing::debug!("reading raw/icmp sockets: {e}");
                Vec::new()
            });
        out.extend(procnet::read_sctp(net_dir));
        out
    }

    /// Credit the frames captured since the previous call to `sockets`: fills
    /// `sent`/`received` of UDP, ICMP, raw and SCTP sockets (and TCP in fallback mode),
    /// reports sockets gone since the previous call in `closed`. Call it before owners are
    /// resolved, so sockets that carry bytes get their owners searched; `closed` entries
    /// are named by the caller from earlier dumps.
    pub fn account(
        &mut self,
        sockets: &mut [SocketSample],
        closed: &mut Vec<ClosedSocket>,
    ) -> Accounting {
        let capture = match &self.capture {
            Ok(c) => c,
            Err(msg) => {
                return Accounting {
                    notes: vec![Note::warning(msg.clone())],
                    ..Accounting::default()
                };
            }
        };
        let error = capture.error();
        let batch = self.take().unwrap_or_default();
        let keep = self.keep;
        let eligible = move |s: &SocketSample| keep == Keep::AllIp || s.proto != Proto::Tcp;
        let unexplained = self.ledger.account(sockets, closed, batch.flows, eligible);

        let mut notes = Vec::new();
        notes.extend(self.drops.add(batch.drops));
        for l in &batch.undecodable_links {
            if self.undecodable.insert(*l) {
                tracing::info!("frames on link type {l} do not decode as IP: skipped");
            }
        }
        if !self.undecodable.is_empty() {
            let list: Vec<String> = self.undecodable.iter().map(u16::to_string).collect();
            notes.push(Note::info(format!(
                "frames on link type(s) {} not decoded (skipped)",
                list.join(", ")
            )));
        }
        if let Some(err) = error {
            notes.push(Note::warning(format!("packet capture stopped: {err}")));
        }
        Accounting {
            unexplained,
            peer_flows: self.ledger.take_peers(),
            notes,
            capture_drops: self.drops.total,
        }
    }
}

/// What one tick of counting adds to a sample besides the socket counters.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Accounting {
    pub unexplained: Vec<UnexplainedFlow>,
    pub peer_flows: Vec<PeerFlow>,
    pub notes: Vec<Note>,
    /// Frames the kernel dropped before capture read them, since start.
    pub capture_drops: u64,
}

impl Accounting {
    /// Put it into `sample`.
    pub fn apply(self, sample: &mut Sample) {
        sample.unexplained.extend(self.unexplained);
        sample.peer_flows.extend(self.peer_flows);
        sample.notes.extend(self.notes);
        sample.capture_drops = sample.capture_drops.max(self.capture_drops);
    }
}

/// Kernel drops since start; a warning while they rose within the last few samples.
#[derive(Debug, Default)]
struct DropTracker {
    total: u64,
    /// Samples left to show the warning.
    show: u32,
}

impl DropTracker {
    fn add(&mut self, new: u64) -> Option<Note> {
        self.total += new;
        self.show = if new > 0 {
            DROP_NOTE_TICKS
        } else {
            self.show.saturating_sub(1)
        };
        (self.show > 0).then(|| {
            Note::warning(format!(
                "packet capture is losing frames: {} dropped by the kernel since start",
                self.total
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_tcp_pauses_activity_marks_then_resumes_after_a_complete_tick() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let on = TcpMarks::On.next(Some(1_000.0), at(0));
        assert_eq!((on.state, on.switch, on.usable), (TcpMarks::On, None, true));
        // Dense: off for the pause, nothing usable meanwhile.
        let off = TcpMarks::On.next(Some(DENSE_TCP_FPS * 2.0), at(1));
        let until = at(1) + DENSE_TCP_PAUSE;
        assert_eq!(
            off,
            MarksStep {
                state: TcpMarks::Off { until },
                switch: Some(false),
                usable: false
            }
        );
        let still = off.state.next(Some(0.0), at(10));
        assert_eq!((still.switch, still.usable), (None, false));
        // Pause over: back on, but this tick's batch had no marks.
        let resume = still.state.next(Some(0.0), until);
        assert_eq!(
            resume,
            MarksStep {
                state: TcpMarks::On,
                switch: Some(true),
                usable: false
            }
        );
        // The next tick's batch is complete again.
        let next = resume
            .state
            .next(Some(10.0), until + Duration::from_secs(1));
        assert_eq!((next.state, next.usable), (TcpMarks::On, true));
        // Still dense after resuming: off again at once.
        let again = resume.state.next(Some(DENSE_TCP_FPS + 1.0), until);
        assert_eq!((again.switch, again.usable), (Some(false), false));
        // Unknown rate (first tick): usable.
        assert!(TcpMarks::On.next(None, at(0)).usable);
    }

    #[test]
    fn drop_note_appears_when_drops_rise_and_fades() {
        let mut d = DropTracker::default();
        assert_eq!(d.add(0), None);
        let n = d.add(42).unwrap();
        assert!(n.message.contains("42 dropped"));
        assert_eq!(n.severity, proto::Severity::Warning);
        for _ in 1..DROP_NOTE_TICKS {
            assert!(d.add(0).is_some());
        }
        assert_eq!(d.add(0), None);
        assert_eq!(d.total, 42);
    }
}
