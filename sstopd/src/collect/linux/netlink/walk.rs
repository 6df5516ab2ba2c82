//! A dump of every non-listening TCP socket, read a slice per tick.
//!
//! The kernel keeps a dump's place between reads (the hash bucket it stopped at), so a
//! re-sync over tens of thousands of sockets can be spread over several ticks instead of
//! stalling one. It runs on a netlink socket of its own: a socket with a dump in progress
//! cannot start another, and lookups must not wait behind it.
//!
//! After each read the kernel builds the next datagram at once, so the first datagram of
//! a slice was filled at the end of the previous one, a tick earlier: those sockets come
//! back as `stale`, to be read again by lookup (their counters may be older than what the
//! caller has seen since; passing them on would make counters run backwards).

use proto::Proto;

use super::wire::{self, Item, NLM_F_DUMP_INTR};
use super::{DiagSocket, NetlinkError, SKIPPED_STATES, SockDiag, tcp_both_states_request};

/// Every TCP state but LISTEN (listed each tick anyway) and the minisockets.
const WALK_STATES: u32 = !(SKIPPED_STATES | super::LISTEN_ONLY);

/// One tick's share of a walk.
#[derive(Debug, Default)]
pub struct Slice {
    /// Read now.
    pub fresh: Vec<DiagSocket>,
    /// Read a slice earlier (see the module notes).
    pub stale: Vec<DiagSocket>,
    /// The walk reached its end: with the slices before, every socket that lived through
    /// the whole walk was listed once.
    pub done: bool,
}

pub struct TcpWalk {
    diag: SockDiag,
    seq: u32,
    running: bool,
    /// A walk began on this socket and was not read to its end.
    unfinished: bool,
    /// The kernel filled a datagram after the last slice's final read.
    carried: bool,
}

impl TcpWalk {
    pub fn open() -> Result<Self, NetlinkError> {
        Ok(TcpWalk {
            diag: SockDiag::open()?,
            seq: 0,
            running: false,
            unfinished: false,
            carried: false,
        })
    }

    /// A walk is under way.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Start a walk. One left unfinished (abandoned, or ended by an error) may still be
    /// running in the kernel, which refuses a second dump on that socket: a fresh socket
    /// replaces it.
    pub fn begin(&mut self) -> Result<(), NetlinkError> {
        if self.unfinished {
            self.diag = SockDiag::open()?;
            self.unfinished = false;
        }
        self.running = false;
        self.diag.seq = self.diag.seq.wrapping_add(1);
        self.seq = self.diag.seq;
        self.diag
            .socket
            .send(&tcp_both_states_request(self.seq, WALK_STATES), 0)?;
        self.running = true;
        self.unfinished = true;
        self.carried = false;
        Ok(())
    }

    /// Stop reading the walk (a full dump superseded it).
    pub fn abandon(&mut self) {
        self.running = false;
    }

    /// Read on until at least `budget` sockets came or the walk ends. An error ends the
    /// walk.
    pub fn step(&mut self, budget: usize) -> Result<Slice, NetlinkError> {
        let result = self.read(budget);
        if !matches!(&result, Ok(slice) if !slice.done) {
            self.running = false;
        }
        result
    }

    fn read(&mut self, budget: usize) -> Result<Slice, NetlinkError> {
        let mut slice = Slice::default();
        if !self.running {
            slice.done = true;
            return Ok(slice);
        }
        let mut stale = self.carried;
        loop {
            let len = self.diag.recv()?;
            let into = if stale {
                &mut slice.stale
            } else {
                &mut slice.fresh
            };
            for message in wire::messages(&self.diag.buf[..len]) {
                let (header, item) = message?;
                if header.seq != self.seq {
                    continue;
                }
                if header.flags & NLM_F_DUMP_INTR != 0 {
                    return Err(NetlinkError::Interrupted);
                }
                match item {
                    Item::Socket(payload) => into.push(wire::parse_diag_msg(payload, Proto::Tcp)?),
                    Item::Done { errno: 0 } => {
                        self.unfinished = false;
                        slice.done = true;
                        return Ok(slice);
                    }
                    Item::Done { errno } | Item::Error { errno } if errno != 0 => {
                        return Err(NetlinkError::Kernel {
                            errno: errno.saturating_neg(),
                        });
                    }
                    _ => {}
                }
            }
            stale = false;
            if slice.fresh.len() >= budget {
                self.carried = true;
                return Ok(slice);
            }
        }
    }
}
