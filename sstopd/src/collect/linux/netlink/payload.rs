//! Payload bytes from tcp_info's sequence-space counters.
//!
//! `bytes_acked` counts acked sequence space: the payload, plus our SYN on the active
//! side (the SYN-ACK advances `snd_una` through `tcp_ack`; an accepted child starts with
//! `snd_una` past its SYN), plus our FIN once acked. `bytes_received` counts in-order
//! sequence space received: the payload plus the peer's FIN (the SYN sets `rcv_nxt`
//! directly). Verified against `ss -tin` and known transfers on Linux 6.18 (see tests).

use proto::TcpState;

use super::DiagSocket;

pub fn sent(s: &DiagSocket) -> Option<u64> {
    let acked = s.counters.bytes_acked?;
    let state = s.state?;
    // SYN: counted once the handshake completed, on the active side only.
    let handshake_done = !matches!(
        state,
        TcpState::SynSent | TcpState::SynRecv | TcpState::NewSynRecv | TcpState::Listen
    );
    let syn = match s.passive {
        Some(passive) => Known((handshake_done && !passive) as u64),
        None => Guess(handshake_done as u64),
    };
    // Our FIN is acked in FIN-WAIT-2 (and TIME-WAIT, which has no tcp_info). A socket in
    // CLOSE (destroy events) usually got there through an acked FIN, but not after a reset.
    let fin = match state {
        TcpState::FinWait2 | TcpState::TimeWait => Known(1),
        TcpState::Close => Guess(1),
        _ => Known(0),
    };
    let known = syn.known() + fin.known();
    match s.counters.unique_sent() {
        // Acked payload never exceeds payload transmitted, which holds no SYN/FIN: only
        // what is certain is subtracted, the bound settles the rest exactly.
        Some(unique) => Some(acked.saturating_sub(known).min(unique)),
        None => Some(acked.saturating_sub(known + syn.guess() + fin.guess())),
    }
}

pub fn received(s: &DiagSocket) -> Option<u64> {
    let received = s.counters.bytes_received?;
    let fin = match s.state? {
        TcpState::CloseWait | TcpState::LastAck | TcpState::Closing | TcpState::TimeWait => 1,
        // Destroyed sockets: a normal close saw the peer's FIN; a reset may not have
        // (then this is one byte short; tcp_info cannot tell the two apart).
        TcpState::Close => u64::from(received > 0),
        _ => 0,
    };
    Some(received.saturating_sub(fin))
}

/// A sequence number that is certainly counted, or only probably.
#[derive(Clone, Copy)]
enum Count {
    Known(u64),
    Guess(u64),
}
use Count::{Guess, Known};

impl Count {
    fn known(self) -> u64 {
        match self {
            Known(n) => n,
            Guess(_) => 0,
        }
    }
    fn guess(self) -> u64 {
        match self {
            Known(_) => 0,
            Guess(n) => n,
        }
    }
}
