//! Bytes per 5-tuple and direction, counted on the capture thread in a map it owns
//! alone and handed off whole once per tick (no lock per packet).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use proto::Proto;

use super::frame::Packet;
use crate::collect::linux::netlink::Tuple;

/// `sll_pkttype` values (linux/if_packet.h).
const PACKET_HOST: u8 = 0;
const PACKET_BROADCAST: u8 = 1;
const PACKET_MULTICAST: u8 = 2;
const PACKET_OUTGOING: u8 = 4;
const ARPHRD_LOOPBACK: u16 = 772;

/// Beyond this many distinct flows in one tick (a scan, a flood from spoofed sources),
/// further new flows are folded into one per protocol and direction.
const MAX_FLOWS: usize = 1 << 18;

/// Which end of a frame is on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// Leaving through an interface: the source is local.
    Out,
    /// Arriving: the destination is local.
    In,
    /// On loopback: both ends are local; seen once (the outgoing copy).
    Loop,
}

/// The direction of a frame, or `None` when it must not be counted: on loopback every
/// packet passes the tap twice (OUTGOING, then HOST), so only the outgoing copy counts;
/// frames for other hosts (promiscuous) and multicast loop-backs are not ours.
pub fn direction(pkttype: u8, hatype: u16) -> Option<Dir> {
    let lo = hatype == ARPHRD_LOOPBACK;
    match pkttype {
        PACKET_OUTGOING if lo => Some(Dir::Loop),
        PACKET_OUTGOING => Some(Dir::Out),
        PACKET_HOST | PACKET_BROADCAST | PACKET_MULTICAST if !lo => Some(Dir::In),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub proto: Proto,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub dir: Dir,
}

/// Beyond this many distinct TCP tuples in one tick, the activity set is given up (the
/// collector then dumps every socket instead of looking them up one by one).
const MAX_TCP_ACTIVE: usize = 1 << 16;

/// One tick's worth of counting.
#[derive(Debug, Default)]
pub struct Batch {
    /// Payload bytes per flow.
    pub flows: HashMap<FlowKey, u64>,
    /// Main mode: (local, remote) of every TCP socket a segment arrived for. Only an
    /// arriving segment moves a socket's `bytes_acked`/`bytes_received`.
    pub tcp_active: HashSet<Tuple>,
    /// More TCP tuples than [`MAX_TCP_ACTIVE`] arrived: `tcp_active` is incomplete.
    pub tcp_overflow: bool,
    /// TCP segments seen as activity marks.
    pub tcp_frames: u64,
    pub frames: u64,
    /// Frames the snaplen cut (counted from their headers anyway).
    pub truncated: u64,
    /// Frames that did not parse (not IP, malformed).
    pub skipped: u64,
    /// Kernel drops reported by PACKET_STATISTICS during this tick.
    pub drops: u64,
    /// Link types (ARPHRD) of frames that did not decode, at most a few.
    pub undecodable_links: Vec<u16>,
}

impl Batch {
    pub fn add(&mut self, pkt: &Packet, dir: Dir) {
        self.frames += 1;
        if pkt.truncated {
            self.truncated += 1;
        }
        let mut key = FlowKey {
            proto: pkt.proto,
            src: pkt.src,
            dst: pkt.dst,
            dir,
        };
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            let any = SocketAddr::from(([0, 0, 0, 0], 0));
            key.src = any;
            key.dst = any;
        }
        *self.flows.entry(key).or_default() += u64::from(pkt.payload);
    }

    /// A TCP segment arrived for the socket `pkt.dst` ← `pkt.src` (main mode).
    pub fn add_tcp_activity(&mut self, pkt: &Packet, ifindex: u32) {
        self.tcp_frames += 1;
        if self.tcp_overflow {
            return;
        }
        if self.tcp_active.len() >= MAX_TCP_ACTIVE {
            self.tcp_overflow = true;
            self.tcp_active = HashSet::new();
            return;
        }
        self.tcp_active.insert(Tuple {
            local: pkt.dst,
            remote: pkt.src,
            ifindex,
        });
    }

    /// Fold a later batch into this one (when a hand-off was picked up late).
    pub fn merge(&mut self, other: Batch) {
        self.tcp_overflow |= other.tcp_overflow;
        self.tcp_frames += other.tcp_frames;
        if self.tcp_overflow {
            self.tcp_active = HashSet::new();
        } else {
            self.tcp_active.extend(other.tcp_active);
        }
        for (k, v) in other.flows {
            *self.flows.entry(k).or_default() += v;
        }
        self.frames += other.frames;
        self.truncated += other.truncated;
        self.skipped += other.skipped;
        self.drops += other.drops;
        for l in other.undecodable_links {
            self.note_undecodable(l);
        }
    }

    /// A frame on link type `hatype` did not decode.
    pub fn note_undecodable(&mut self, hatype: u16) {
        self.skipped += 1;
        if self.undecodable_links.len() < 8 && !self.undecodable_links.contains(&hatype) {
            self.undecodable_links.push(hatype);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_counts_only_the_outgoing_copy() {
        assert_eq!(direction(PACKET_OUTGOING, ARPHRD_LOOPBACK), Some(Dir::Loop));
        assert_eq!(direction(PACKET_HOST, ARPHRD_LOOPBACK), None);
        assert_eq!(direction(PACKET_OUTGOING, 1), Some(Dir::Out));
        assert_eq!(direction(PACKET_HOST, 1), Some(Dir::In));
        assert_eq!(direction(PACKET_HOST, 65534), Some(Dir::In));
        // PACKET_OTHERHOST (promiscuous) and PACKET_LOOPBACK (multicast loop) are not ours.
        assert_eq!(direction(3, 1), None);
        assert_eq!(direction(5, 1), None);
    }

    #[test]
    fn batch_sums_per_flow_and_caps_the_table() {
        let mut b = Batch::default();
        let pkt = |i: u32, payload| Packet {
            proto: Proto::Udp,
            src: SocketAddr::from((i.to_be_bytes(), 1000)),
            dst: SocketAddr::from(([10, 0, 0, 2], 53)),
            ip_len: payload + 28,
            payload,
            truncated: false,
        };
        b.add(&pkt(1000, 100), Dir::Out);
        b.add(&pkt(1000, 50), Dir::Out);
        assert_eq!(b.flows.len(), 1);
        assert_eq!(b.flows.values().sum::<u64>(), 150);
        for i in 0..MAX_FLOWS as u32 + 10 {
            b.add(&pkt(i, 1), Dir::In);
        }
        assert!(b.flows.len() <= MAX_FLOWS + 2);
        assert_eq!(b.flows.values().sum::<u64>(), 150 + MAX_FLOWS as u64 + 10);
    }
}
