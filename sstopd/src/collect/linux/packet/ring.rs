//! A `SOCK_DGRAM` AF_PACKET socket with a TPACKET_V3 mmap ring: the kernel fills whole
//! blocks of frames and hands a block over when it is full or `RETIRE_MS` old, so one
//! `poll` wake-up yields many frames and no syscall is made per packet.
//!
//! Each frame carries `tp_len` (the true length, even when the BPF snaplen cut the copy)
//! and a `sockaddr_ll` with `sll_pkttype` (direction), `sll_hatype` (link type) and
//! `sll_protocol` (ethertype).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use libc::sock_filter;

/// Ring geometry: 32 blocks × 256 KiB = 8 MiB. With the 256-byte snaplen a block holds
/// ~800 frames, so the ring absorbs ~25,000 frames between two reads.
const BLOCK_SIZE: u32 = 256 << 10;
const BLOCK_NR: u32 = 32;
const FRAME_SIZE: u32 = 2048;
/// A partly filled block is handed over after this long: the latency of the counts.
const RETIRE_MS: u32 = 50;

/// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`: where the `sockaddr_ll` starts.
const SLL_OFFSET: usize = 48;

/// One captured frame, borrowed from the ring.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// Bytes from the network header on (cut to the snaplen).
    pub data: &'a [u8],
    /// Length of the whole frame from the network header on.
    pub wire_len: u32,
    /// `PACKET_HOST`, `PACKET_OUTGOING`, ...
    pub pkttype: u8,
    pub hatype: u16,
    /// Ethertype (host order).
    pub protocol: u16,
    pub ifindex: i32,
}

pub struct Ring {
    fd: OwnedFd,
    map: NonNull<u8>,
    map_len: usize,
    current: u32,
}

// SAFETY: the mapping is owned by this value alone and only touched through &mut self.
unsafe impl Send for Ring {}

impl Ring {
    /// Open the socket, attach `filter`, map the ring, then bind to every interface
    /// (ifindex 0, so interfaces that come and go are covered). The socket starts with
    /// protocol 0 (receives nothing) so no unfiltered frame slips in before the filter.
    pub fn open(filter: &[sock_filter]) -> io::Result<Ring> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        super::bpf::attach(fd.as_fd(), filter)?;
        setsockopt(
            fd.as_fd(),
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
        )?;
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK_SIZE,
            tp_block_nr: BLOCK_NR,
            tp_frame_size: FRAME_SIZE,
            tp_frame_nr: BLOCK_SIZE / FRAME_SIZE * BLOCK_NR,
            tp_retire_blk_tov: RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(fd.as_fd(), libc::PACKET_RX_RING, &req)?;
        let map_len = (BLOCK_SIZE * BLOCK_NR) as usize;
        // The ring's pages are kernel memory (never swapped): no MAP_LOCKED needed.
        // SAFETY: maps the ring the kernel just allocated for this socket; checked below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map =
            NonNull::new(map.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        let ring = Ring {
            fd,
            map,
            map_len,
            current: 0,
        };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid starting value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = 0;
        // SAFETY: sll is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ring)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Wait up to `timeout_ms` for a block, or until `wake` (an eventfd) becomes readable;
    /// `Ok(false)` on timeout or EINTR.
    pub fn wait(&self, wake: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
        if self.block_ready(self.current) {
            return Ok(true);
        }
        let mut pfd = [
            libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        let rc = unsafe { libc::poll(pfd.as_mut_ptr(), 2, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(rc > 0)
    }

    fn status(&self, block: u32) -> &AtomicU32 {
        let off = (block * BLOCK_SIZE) as usize + 8; // tpacket_block_desc.hdr.bh1.block_status
        // SAFETY: `off` lies inside the mapping and is 8-aligned (blocks are page aligned);
        // the kernel and we hand the block over through this word only.
        unsafe { &*self.map.as_ptr().add(off).cast::<AtomicU32>() }
    }

    fn block_ready(&self, block: u32) -> bool {
        self.status(block).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Visit every frame of every block the kernel has handed over, then return the
    /// blocks to the kernel. Returns the number of frames visited.
    pub fn drain(&mut self, mut visit: impl FnMut(RawFrame<'_>)) -> usize {
        let mut n = 0;
        while self.block_ready(self.current) {
            let start = (self.current * BLOCK_SIZE) as usize;
            // SAFETY: the block is user-owned (TP_STATUS_USER, acquired above) until we
            // write TP_STATUS_KERNEL below; the kernel does not touch it meanwhile.
            let block = unsafe {
                std::slice::from_raw_parts(self.map.as_ptr().add(start), BLOCK_SIZE as usize)
            };
            n += frames(block, &mut visit);
            self.status(self.current)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.current = (self.current + 1) % BLOCK_NR;
        }
        n
    }

    /// `(packets, drops)` since the previous call (the kernel resets them on read).
    pub fn stats(&self) -> io::Result<(u32, u32)> {
        // SAFETY: zeroed plain data, filled by getsockopt.
        let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: st/len describe a writable buffer of the right size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((st.tp_packets, st.tp_drops))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `open`; no borrows outlive &mut self.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

/// Walk the frames of one block (bounds-checked: a corrupt offset ends the walk).
fn frames(block: &[u8], visit: &mut impl FnMut(RawFrame<'_>)) -> usize {
    let u32_at = |off: usize| {
        block
            .get(off..off + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u16_at = |off: usize| {
        block
            .get(off..off + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let (Some(num), Some(first)) = (u32_at(12), u32_at(16)) else {
        return 0;
    };
    let mut off = first as usize;
    let mut n = 0;
    for _ in 0..num {
        let hdr = (|| {
            let next = u32_at(off)?;
            let snaplen = u32_at(off + 12)? as usize;
            let len = u32_at(off + 16)?;
            let mac = u16_at(off + 24)? as usize;
            let sll = off + SLL_OFFSET;
            let protocol = u16::from_be(u16_at(sll + 2)?);
            let ifindex = u32_at(sll + 4)? as i32;
            let hatype = u16_at(sll + 8)?;
            let pkttype = *block.get(sll + 10)?;
            let data = block.get(off + mac..off + mac + snaplen)?;
            Some((
                next,
                RawFrame {
                    data,
                    wire_len: len,
                    pkttype,
                    hatype,
                    protocol,
                    ifindex,
                },
            ))
        })();
        let Some((next, frame)) = hdr else { break };
        visit(frame);
        n += 1;
        if next == 0 {
            break;
        }
        off += next as usize;
    }
    n
}

fn setsockopt<T>(fd: BorrowedFd<'_>, opt: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a live, correctly sized value of the option's type.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
