//! Per-socket state between samples: cumulative counters → deltas, including the final
//! deltas of sockets that closed and sockets born and gone between two samples.

use std::net::SocketAddr;
use std::time::Duration;

use proto::{Proto, Traffic};

use super::census::{Census, same_census};
use super::ema;
use crate::collect::{ClosedSocket, ProcKey, SocketId, SocketSample};
use crate::fasthash::{FastMap, FastSet};

/// Counter delta that treats a counter going backwards (reset, reuse) as zero.
pub fn counter_delta(prev: u64, now: u64) -> u64 {
    now.saturating_sub(prev)
}

/// Split `total` evenly among `n` owners; the remainder goes to the first so the parts sum
/// exactly to `total`.
pub fn split_even(total: u64, n: usize) -> impl Iterator<Item = u64> {
    let n = n.max(1) as u64;
    let part = total / n;
    let rest = total % n;
    (0..n).map(move |i| if i == 0 { part + rest } else { part })
}

#[derive(Debug, Clone)]
pub struct SocketState {
    last_sent: Option<u64>,
    last_received: Option<u64>,
    pub first_seen: Duration,
    /// The sample that last listed it.
    generation: u64,
    /// Bytes counted since the socket was first seen (all owners together), and rates as
    /// of `updated`: a socket left out of a partial listing is idle, and its rates decay
    /// when next read ([`SocketState::traffic_at`]) instead of every tick.
    traffic: Traffic,
    updated: Duration,
    pub sample: SocketSample,
}

impl SocketState {
    /// Bytes and rates as of `now`.
    pub fn traffic_at(&self, now: Duration) -> Traffic {
        let idle = now.saturating_sub(self.updated);
        Traffic {
            up_bps: ema::decay(self.traffic.up_bps, idle),
            down_bps: ema::decay(self.traffic.down_bps, idle),
            ..self.traffic
        }
    }
}

/// Bytes that moved over one socket since the previous sample, to be credited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub proto: Proto,
    pub remote: Option<SocketAddr>,
    pub owners: Vec<ProcKey>,
    pub up: u64,
    pub down: u64,
}

#[derive(Debug, Default)]
pub struct SocketTable {
    sockets: FastMap<SocketId, SocketState>,
    /// Sockets that left the listing without a destroy event, with their last counters
    /// and when they left. A TCP socket unhashed while its fd is still open (reset, or
    /// TIME-WAIT taken over by a minisocket) is destroyed only when the fd closes; its
    /// final counters then count from here, not from zero.
    retired: FastMap<SocketId, (Option<u64>, Option<u64>, Duration)>,
    /// Non-TCP sockets: listed in full every tick, so swept even after a partial listing.
    non_tcp: FastSet<SocketId>,
    census: Census,
    primed: bool,
    generation: u64,
}

/// How long a retired socket's counters wait for its destroy event.
pub const RETIRED_TTL: Duration = Duration::from_secs(600);

impl SocketTable {
    pub fn get(&self, id: SocketId) -> Option<&SocketState> {
        self.sockets.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &SocketState> {
        self.sockets.values()
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// What the current sockets add up to.
    pub fn census(&self) -> &Census {
        &self.census
    }

    /// Fold one sample's sockets and closed sockets; returns the non-zero credits.
    ///
    /// A socket first seen in a later sample was born since the previous one (every dump
    /// lists every socket), so all its bytes are new and counted; in the very first
    /// sample they predate us and only set the baseline. A socket missing from `sockets`
    /// is forgotten (its last bytes come through `closed` when the kernel reported them),
    /// except a TCP socket when `tcp_partial` says unlisted TCP sockets are unchanged
    /// (those that left are then named in `tcp_gone`).
    pub fn ingest(
        &mut self,
        sockets: Vec<SocketSample>,
        (tcp_partial, tcp_gone): (bool, Vec<SocketId>),
        closed: Vec<ClosedSocket>,
        now: Duration,
        dt: Duration,
    ) -> Vec<Credit> {
        let mut credits = Vec::new();
        let step = ema::Step::new(dt);
        // Updated in place (one hash lookup per socket); unlisted ones are swept below.
        self.generation += 1;
        let generation = self.generation;
        // The previous tick: a socket updated before it skipped ticks and decays first.
        let previous = now.saturating_sub(dt);
        for sock in sockets {
            let primed = self.primed;
            let retired = &mut self.retired;
            let census = &mut self.census;
            if sock.proto != Proto::Tcp {
                self.non_tcp.insert(sock.id);
            }
            let st = self.sockets.entry(sock.id).or_insert_with(|| {
                let (last_sent, last_received) = match retired.remove(&sock.id) {
                    Some((s, r, _)) => (s.or(Some(0)), r.or(Some(0))),
                    None => (None, None),
                };
                census.add(&sock);
                SocketState {
                    last_sent,
                    last_received,
                    first_seen: now,
                    generation: 0,
                    traffic: Traffic::default(),
                    updated: previous,
                    sample: sock.clone(),
                }
            });
            let count_all = primed && st.generation == 0;
            st.generation = generation;
            let up = advance(&mut st.last_sent, sock.sent, count_all);
            let down = advance(&mut st.last_received, sock.received, count_all);
            if !same_census(&st.sample, &sock) {
                census.remove(&st.sample);
                census.add(&sock);
            }
            st.sample = sock;
            if st.updated < previous {
                st.traffic = st.traffic_at(previous);
            }
            record(&mut st.traffic, up, down, &step);
            st.updated = now;
            if up > 0 || down > 0 {
                credits.push(Credit {
                    proto: st.sample.proto,
                    remote: st.sample.remote,
                    owners: st.sample.owners.clone(),
                    up,
                    down,
                });
            }
        }
        for c in closed {
            // Also listed in this very dump (destroyed right after it) or in an earlier one:
            // only what moved since; never seen: everything.
            let prev = self.sockets.remove(&c.id);
            if let Some(st) = &prev {
                self.census.remove(&st.sample);
                self.non_tcp.remove(&c.id);
            }
            let (up, down, known_owners) = match prev {
                Some(mut st) => (
                    advance(&mut st.last_sent, Some(c.sent), true),
                    advance(&mut st.last_received, Some(c.received), true),
                    st.sample.owners,
                ),
                None => match self.retired.remove(&c.id) {
                    Some((mut s, mut r, _)) => (
                        advance(&mut s, Some(c.sent), true),
                        advance(&mut r, Some(c.received), true),
                        Vec::new(),
                    ),
                    None => (c.sent, c.received, Vec::new()),
                },
            };
            if up > 0 || down > 0 {
                credits.push(Credit {
                    proto: c.proto,
                    remote: c.remote,
                    owners: if c.owners.is_empty() {
                        known_owners
                    } else {
                        c.owners
                    },
                    up,
                    down,
                });
            }
        }
        // Unlisted sockets left, unless unlisted TCP sockets are unchanged (a partial
        // listing): then only non-TCP ones and the TCP sockets named as gone.
        let gone: Vec<SocketId> = if tcp_partial {
            self.non_tcp
                .iter()
                .filter(|id| {
                    self.sockets
                        .get(id)
                        .is_none_or(|st| st.generation != generation)
                })
                .copied()
                .chain(tcp_gone)
                .collect()
        } else {
            self.sockets
                .iter()
                .filter(|(_, st)| st.generation != generation)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in gone {
            self.non_tcp.remove(&id);
            if let Some(st) = self.sockets.remove(&id) {
                self.retire(id, st, now);
            }
        }
        self.retired
            .retain(|_, (_, _, left)| now.saturating_sub(*left) < RETIRED_TTL);
        self.primed = true;
        credits
    }
}

impl SocketTable {
    /// A socket left the listing without a destroy event: counted out, its counters kept
    /// for a late destroy event.
    fn retire(&mut self, id: SocketId, st: SocketState, now: Duration) {
        self.census.remove(&st.sample);
        if st.last_sent.is_some() || st.last_received.is_some() {
            self.retired
                .insert(id, (st.last_sent, st.last_received, now));
        }
    }
}

/// Move a cumulative counter forward; returns the delta. `None` (not measurable this time,
/// e.g. a TIME-WAIT socket) keeps the old value and counts nothing.
fn advance(last: &mut Option<u64>, now: Option<u64>, count_from_zero: bool) -> u64 {
    let Some(now) = now else { return 0 };
    let delta = match *last {
        Some(prev) => counter_delta(prev, now),
        None if count_from_zero => now,
        None => 0,
    };
    *last = Some(now);
    delta
}

fn record(t: &mut Traffic, up: u64, down: u64, step: &ema::Step) {
    t.up_bytes = t.up_bytes.saturating_add(up);
    t.down_bytes = t.down_bytes.saturating_add(down);
    t.up_bps = step.update(t.up_bps, up);
    t.down_bps = step.update(t.down_bps, down);
}

/// Fold a delta into a row's traffic (bytes and EMA rates).
pub fn record_traffic(t: &mut Traffic, up: u64, down: u64, dt: Duration) {
    record(t, up, down, &ema::Step::new(dt));
}
