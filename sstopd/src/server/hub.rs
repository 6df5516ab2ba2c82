//! Meeting point of the collection loop and the viewer sessions.
//!
//! The loop publishes each tick's frames, encoded once, as the latest value of
//! a `watch`; sessions take the latest when they are ready (a slow viewer
//! skips frames, nothing queues per viewer). Sessions register what they want
//! (interval, detail pid) in a small registry the loop reads once per tick.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::{MAX_INTERVAL, MIN_INTERVAL};

/// An encoded frame (length prefix included), shared by every viewer.
pub type FrameBytes = Arc<[u8]>;

/// One tick of the collection loop, ready to send.
#[derive(Debug)]
pub struct Tick {
    /// `Snapshot::seq` of the frame.
    pub seq: u64,
    /// When the sample was taken.
    pub at: Instant,
    /// Interval the loop is running at; viewers with a slower pace skip ticks.
    pub interval: Duration,
    /// `ServerMsg::Snapshot`, encoded once.
    pub snapshot: FrameBytes,
    /// `ServerMsg::Detail` per pid some viewer asked for.
    pub details: HashMap<u32, FrameBytes>,
    /// (pid, start_time) of every process in this snapshot, for kill requests.
    pub in_view: HashSet<(u32, u64)>,
}

/// What one viewer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub interval: Duration,
    pub detail_pid: Option<u32>,
}

impl Subscription {
    /// Clamp a viewer's wish to what the daemon offers.
    pub fn new(interval_ms: u32, detail_pid: Option<u32>) -> Self {
        let interval =
            Duration::from_millis(u64::from(interval_ms)).clamp(MIN_INTERVAL, MAX_INTERVAL);
        Subscription {
            interval,
            detail_pid,
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    subs: HashMap<u64, Subscription>,
}

/// Shared between the collection loop and every session.
#[derive(Debug)]
pub struct Hub {
    ticks: watch::Sender<Option<Arc<Tick>>>,
    registry: Mutex<Registry>,
    viewers: AtomicUsize,
    /// Wakes the collection loop when subscriptions change (or at shutdown).
    wake: std::sync::mpsc::SyncSender<()>,
}

impl Hub {
    /// The hub and the receiving end of its wake-up channel (for the collection loop).
    pub fn new() -> (Arc<Hub>, std::sync::mpsc::Receiver<()>) {
        let (wake, wake_rx) = std::sync::mpsc::sync_channel(1);
        let (ticks, _) = watch::channel(None);
        let hub = Hub {
            ticks,
            registry: Mutex::new(Registry::default()),
            viewers: AtomicUsize::new(0),
            wake,
        };
        (Arc::new(hub), wake_rx)
    }

    pub fn publish(&self, tick: Tick) {
        self.ticks.send_replace(Some(Arc::new(tick)));
    }

    pub fn subscribe_ticks(&self) -> watch::Receiver<Option<Arc<Tick>>> {
        self.ticks.subscribe()
    }

    pub fn latest(&self) -> Option<Arc<Tick>> {
        self.ticks.borrow().clone()
    }

    /// Nudge the collection loop to re-plan (coalesced; never blocks).
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// Count a connected viewer until the returned guard drops.
    pub fn join(self: &Arc<Self>) -> ViewerGuard {
        self.viewers.fetch_add(1, Ordering::Relaxed);
        let id = {
            let mut reg = self.lock();
            reg.next_id += 1;
            reg.next_id
        };
        ViewerGuard {
            hub: Arc::clone(self),
            id,
        }
    }

    pub fn viewer_count(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Fastest interval any viewer asked for.
    pub fn fastest_interval(&self) -> Option<Duration> {
        self.lock().subs.values().map(|s| s.interval).min()
    }

    /// Pids some viewer wants connections for.
    pub fn detail_pids(&self) -> HashSet<u32> {
        self.lock()
            .subs
            .values()
            .filter_map(|s| s.detail_pid)
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // The registry holds plain data; a panic elsewhere cannot leave it half-updated
        // in a way that matters, so a poisoned lock is used as is.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connected viewer's registration; unregisters on drop.
#[derive(Debug)]
pub struct ViewerGuard {
    hub: Arc<Hub>,
    id: u64,
}

impl ViewerGuard {
    pub fn set_subscription(&self, sub: Subscription) {
        let changed = self.hub.lock().subs.insert(self.id, sub) != Some(sub);
        if changed {
            self.hub.wake();
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        let had = self.hub.lock().subs.remove(&self.id).is_some();
        self.hub.viewers.fetch_sub(1, Ordering::Relaxed);
        if had {
            self.hub.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastest_interval_and_details_follow_viewers() {
        let (hub, wake) = Hub::new();
        assert_eq!(hub.fastest_interval(), None);
        let a = hub.join();
        let b = hub.join();
        assert_eq!(hub.viewer_count(), 2);
        a.set_subscription(Subscription::new(1000, Some(7)));
        b.set_subscription(Subscription::new(200, None));
        assert!(wake.try_recv().is_ok());
        assert_eq!(hub.fastest_interval(), Some(Duration::from_millis(200)));
        assert_eq!(hub.detail_pids(), HashSet::from([7]));
        drop(b);
        assert_eq!(hub.fastest_interval(), Some(Duration::from_secs(1)));
        drop(a);
        assert_eq!(hub.fastest_interval(), None);
        assert_eq!(hub.viewer_count(), 0);
    }

    #[test]
    fn intervals_are_clamped() {
        assert_eq!(Subscription::new(0, None).interval, MIN_INTERVAL);
        assert_eq!(Subscription::new(u32::MAX, None).interval, MAX_INTERVAL);
    }
}
