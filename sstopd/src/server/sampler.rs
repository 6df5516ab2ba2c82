//! The collection loop: one dedicated thread owns the collector and the
//! aggregator. Each tick: collect → ingest → snapshot → encode once → publish,
//! plus detail frames for the pids viewers asked about. It never waits on a
//! viewer; it pings the systemd watchdog itself, so a stuck loop is noticed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::{Caps, CollectorMode, Detail, Note, ServerMsg, encode_frame};
use tokio_util::sync::CancellationToken;

use super::hub::{FrameBytes, Hub, Tick};
use crate::aggregate::Aggregator;
use crate::collect::{self, CollectError, Collector, CollectorChoice, synthetic};
use crate::config::{Config, MAX_INTERVAL, MIN_INTERVAL};
use crate::systemd::Notifier;

/// STATUS= lines at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// A running collection loop.
pub struct Sampler {
    pub mode: CollectorMode,
    pub caps: Caps,
    thread: JoinHandle<()>,
    /// Resolves when the thread ends, for whatever reason.
    pub ended: tokio::sync::oneshot::Receiver<()>,
}

struct Plan {
    default_interval: Duration,
    notifier: Notifier,
}

impl Sampler {
    /// Start the thread, open the collector on it (blocking probes stay off
    /// the reactor) and return once it is open.
    /// `injected`: run this collector instead of opening `config.collector`
    /// (tests that need a view of chosen processes; see `crate::run_with`).
    pub async fn start(
        config: &Config,
        injected: Option<Box<dyn Collector>>,
        hub: Arc<Hub>,
        wake: Receiver<()>,
        notifier: Notifier,
        stop: CancellationToken,
    ) -> Result<Sampler, CollectError> {
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        let choice = config.collector;
        let size = config.synthetic;
        let plan = Plan {
            default_interval: config.interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
            notifier,
        };
        let thread = std::thread::Builder::new()
            .name("sstopd-collect".into())
            .spawn(move || {
                let opened = match injected {
                    Some(collector) => Ok(collector),
                    None => open(choice, size),
                };
                let collector = match opened {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                let _ = opened_tx.send(Ok((collector.mode(), collector.caps())));
                run_loop(collector, &hub, &wake, &plan, &stop);
                drop(ended_tx);
            })
            .map_err(|e| CollectError::Io {
                what: "cannot start the collection thread".into(),
                source: e,
            })?;
        let (mode, caps) = match opened_rx.await {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(CollectError::Unavailable(
                    "collector (its thread stopped while opening)".into(),
                ));
            }
        };
        Ok(Sampler {
            mode,
            caps,
            thread,
            ended,
        })
    }

    /// Wait (blocking) for the thread to finish its current tick and end.
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

fn open(
    choice: CollectorChoice,
    size: crate::config::SyntheticSize,
) -> Result<Box<dyn Collector>, CollectError> {
    match choice {
        CollectorChoice::Synthetic => Ok(Box::new(synthetic::SyntheticCollector::new(
            size.processes,
            size.sockets_per_process,
        ))),
        other => collect::open(other),
    }
}

fn run_loop(
    mut collector: Box<dyn Collector>,
    hub: &Hub,
    wake: &Receiver<()>,
    plan: &Plan,
    stop: &CancellationToken,
) {
    let origin = Instant::now();
    let mut agg = Aggregator::new(collector.mode());
    let mut last_tick: Option<Instant> = None;
    let watchdog = plan.notifier.watchdog_period();
    let mut last_ping = Instant::now();
    let mut status = StatusLine::default();
    let mut last_error: Option<String> = None;

    while !stop.is_cancelled() {
        let interval = hub
            .fastest_interval()
            .unwrap_or(plan.default_interval)
            .clamp(MIN_INTERVAL, MAX_INTERVAL);
        let now = Instant::now();
        let due = last_tick.map_or(now, |t| t + interval);
        if due <= now {
            let sockets = tick(
                &mut *collector,
                &mut agg,
                hub,
                origin,
                interval,
                &mut last_error,
            );
            // Keep the schedule anchored (no drift) unless we fell a whole interval behind.
            last_tick = Some(if now.duration_since(due) < interval {
                due
            } else {
                now
            });
            status.update(&plan.notifier, hub.viewer_count(), sockets);
        } else {
            let mut wait = due - now;
            if let Some(period) = watchdog {
                wait = wait.min(period.saturating_sub(last_ping.elapsed()));
            }
            match wake.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if watchdog.is_some_and(|period| last_ping.elapsed() >= period) {
            plan.notifier.watchdog();
            last_ping = Instant::now();
        }
    }
}

/// One collection cycle. Returns the number of sockets seen.
fn tick(
    collector: &mut dyn Collector,
    agg: &mut Aggregator,
    hub: &Hub,
    origin: Instant,
    interval: Duration,
    last_error: &mut Option<String>,
) -> usize {
    let at = Instant::now();
    let mut sockets = 0;
    let error_note = match collector.collect() {
        Ok(sample) => {
            if last_error.take().is_some() {
                tracing::info!("collection works again");
            }
            sockets = sample.sockets.len();
            agg.ingest(sample, at.duration_since(origin), wall_ms());
            None
        }
        Err(e) => {
            let text = e.to_string();
            if last_error.as_deref() != Some(text.as_str()) {
                tracing::warn!("collection failed: {text}; serving the last good data");
            }
            *last_error = Some(text.clone());
            Some(Note::warning(format!(
                "collection failed: {text}; showing the last good data"
            )))
        }
    };
    let mut snapshot = agg.snapshot();
    snapshot.collector.notes.extend(error_note);
    let seq = snapshot.seq;
    let in_view = snapshot
        .processes
        .iter()
        .map(|p| (p.pid, p.start_time))
        .collect();
    let frame = match encode_frame(&ServerMsg::Snapshot(Box::new(snapshot))) {
        Ok(f) => FrameBytes::from(f),
        Err(e) => {
            tracing::warn!("snapshot {seq} not sent: {e}");
            return sockets;
        }
    };
    let mut details = HashMap::new();
    for pid in hub.detail_pids() {
        // A pid that is gone gets an empty list, so its viewer stops showing stale rows.
        let detail = agg.detail(pid).unwrap_or(Detail {
            pid,
            start_time: 0,
            connections: Vec::new(),
        });
        match encode_frame(&ServerMsg::Detail(detail)) {
            Ok(f) => {
                details.insert(pid, FrameBytes::from(f));
            }
            Err(e) => tracing::warn!("detail for pid {pid} not sent: {e}"),
        }
    }
    hub.publish(Tick {
        seq,
        at,
        interval,
        snapshot: frame,
        details,
        in_view,
    });
    sockets
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0)
}

/// `STATUS=` for systemd: sent when it changes, at most once a second.
#[derive(Default)]
struct StatusLine {
    last: String,
    sent_at: Option<Instant>,
}

impl StatusLine {
    fn update(&mut self, notifier: &Notifier, viewers: usize, sockets: usize) {
        if !notifier.is_enabled() {
            return;
        }
        if self.sent_at.is_some_and(|t| t.elapsed() < STATUS_EVERY) {
            return;
        }
        let text = format!("{viewers} viewers, {sockets} sockets");
        if text != self.last {
            notifier.status(&text);
            self.last = text;
            self.sent_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::decode_payload;

    /// Works, then fails twice, then works again.
    struct Flaky {
        inner: synthetic::SyntheticCollector,
        calls: u32,
    }

    impl Collector for Flaky {
        fn mode(&self) -> CollectorMode {
            CollectorMode::Synthetic
        }
        fn caps(&self) -> Caps {
            Caps::default()
        }
        fn collect(&mut self) -> Result<collect::Sample, CollectError> {
            self.calls += 1;
            if (2..=3).contains(&self.calls) {
                return Err(CollectError::Netlink("dump interrupted".into()));
            }
            self.inner.collect()
        }
    }

    fn published(hub: &Hub) -> proto::Snapshot {
        let tick = hub.latest().expect("a tick");
        match decode_payload::<ServerMsg>(&tick.snapshot[4..]).expect("decodes") {
            ServerMsg::Snapshot(s) => *s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn collector_error_becomes_a_note_and_the_loop_goes_on() {
        let (hub, _wake) = Hub::new();
        let mut c = Flaky {
            inner: synthetic::SyntheticCollector::new(5, 1),
            calls: 0,
        };
        let mut agg = Aggregator::new(CollectorMode::Synthetic);
        let origin = Instant::now();
        let mut err = None;
        let iv = Duration::from_secs(1);
        assert_eq!(tick(&mut c, &mut agg, &hub, origin, iv, &mut err), 5);
        assert!(published(&hub).collector.notes.is_empty());
        tick(&mut c, &mut agg, &hub, origin, iv, &mut err);
        let s = published(&hub);
        assert_eq!(s.processes.len(), 5, "last good data still served");
        assert!(
            s.collector
                .notes
                .iter()
                .any(|n| n.severity == proto::Severity::Warning
                    && n.message.contains("dump interrupted")),
            "{:?}",
            s.collector.notes
        );
        tick(&mut c, &mut agg, &hub, origin, iv, &mut err);
        tick(&mut c, &mut agg, &hub, origin, iv, &mut err);
        assert!(
            published(&hub).collector.notes.is_empty(),
            "note cleared on recovery"
        );
        assert!(err.is_none());
    }

    #[test]
    fn details_are_encoded_for_requested_pids_only() {
        let (hub, _wake) = Hub::new();
        let viewer = hub.join();
        viewer.set_subscription(super::super::hub::Subscription::new(1000, Some(10_002)));
        let mut c = synthetic::SyntheticCollector::new(5, 2);
        let mut agg = Aggregator::new(CollectorMode::Synthetic);
        let mut err = None;
        tick(
            &mut c,
            &mut agg,
            &hub,
            Instant::now(),
            Duration::from_secs(1),
            &mut err,
        );
        let t = hub.latest().unwrap();
        assert_eq!(t.details.keys().copied().collect::<Vec<_>>(), vec![10_002]);
        assert_eq!(t.in_view.len(), 5);
        assert!(t.in_view.contains(&(10_002, 1_002)));
    }
}
