//! The capture thread: drains the ring, parses frames, counts them into a [`Batch`] it
//! owns alone, and hands the whole batch over when the collector asks (once per tick).

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use proto::Proto;
use thiserror::Error;

use super::bpf::{self, Keep};
use super::flows::{self, Batch, Dir};
use super::frame::{self, LinkType};
use super::links;
use super::ring::{RawFrame, Ring};
use crate::collect::linux::wake::Wake;

/// Poll timeout: the thread wakes at once when a ring block is handed over or on a
/// hand-off or stop request (eventfd), so this only bounds an idle host's wake-ups.
const POLL_MS: i32 = 1000;

#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("no permission to open an AF_PACKET socket: {0}")]
    Permission(io::Error),
    #[error("AF_PACKET capture unavailable: {0}")]
    Unavailable(io::Error),
    #[error("cannot start the capture thread: {0}")]
    Thread(io::Error),
}

struct Shared {
    want: AtomicBool,
    stop: AtomicBool,
    /// eventfd that wakes the capture thread out of `poll` for a hand-off or a stop.
    wake: Wake,
    error: Mutex<Option<String>>,
    /// Ifindexes whose frames are skipped (bridge/bond ports: their master sees them too).
    skip: Mutex<Arc<HashSet<i32>>>,
}

pub struct Capture {
    /// The ring's socket, to swap its filter from the collector's thread.
    filter_fd: OwnedFd,
    keep: Keep,
    shared: Arc<Shared>,
    rx: Receiver<Batch>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Open the ring in the calling thread (so permission errors surface here, and the
    /// socket lives in the caller's network namespace) and start the capture thread.
    pub fn start(keep: Keep) -> Result<Capture, CaptureError> {
        let ring = Ring::open(&bpf::program(keep)).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => CaptureError::Permission(e),
            _ => CaptureError::Unavailable(e),
        })?;
        let shared = Arc::new(Shared {
            want: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            wake: Wake::new().map_err(CaptureError::Unavailable)?,
            error: Mutex::new(None),
            skip: Mutex::new(Arc::new(links::enslaved().unwrap_or_default())),
        });
        let filter_fd = ring
            .fd()
            .try_clone_to_owned()
            .map_err(CaptureError::Unavailable)?;
        let (tx, rx) = mpsc::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sstopd-capture".into())
            .spawn(move || run(ring, keep, &thread_shared, &tx))
            .map_err(CaptureError::Thread)?;
        Ok(Capture {
            filter_fd,
            keep,
            shared,
            rx,
            thread: Some(thread),
        })
    }

    /// Everything counted since the previous call. Waits up to `timeout` for the thread
    /// to hand its batch over; a batch that arrives later is merged into the next one.
    pub fn take(&self, timeout: Duration) -> Option<Batch> {
        self.shared.want.store(true, Ordering::Release);
        self.shared.wake.wake();
        let mut batch = match self.rx.recv_timeout(timeout) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        };
        while let Ok(more) = self.rx.try_recv() {
            batch.merge(more);
        }
        Some(batch)
    }

    /// Frames on these interfaces are skipped from the next hand-off on (bridge/bond
    /// ports, whose master carries the same frames).
    pub fn set_skip(&self, ifindexes: HashSet<i32>) {
        if let Ok(mut s) = self.shared.skip.lock()
            && **s != ifindexes
        {
            *s = Arc::new(ifindexes);
        }
    }

    /// Main mode: pass arriving TCP segments up as activity marks, or drop all TCP in the
    /// kernel (the filter is replaced atomically; frames already queued keep the old one).
    pub fn set_tcp_activity(&self, on: bool) -> io::Result<()> {
        bpf::attach(self.filter_fd.as_fd(), &bpf::program_with(self.keep, on))
    }

    /// Why the capture thread stopped, if it did.
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(mut ring: Ring, keep: Keep, shared: &Shared, tx: &mpsc::Sender<Batch>) {
    let mut batch = Batch::default();
    let current_skip = || shared.skip.lock().map(|s| s.clone()).unwrap_or_default();
    let mut skip = current_skip();
    let fail = |msg: String| {
        tracing::error!("{msg}");
        if let Ok(mut e) = shared.error.lock() {
            *e = Some(msg);
        }
    };
    while !shared.stop.load(Ordering::Acquire) {
        if let Err(e) = ring.wait(shared.wake.as_fd(), POLL_MS) {
            fail(format!("poll: {e}"));
            break;
        }
        shared.wake.clear();
        ring.drain(|f| {
            if !skip.contains(&f.ifindex) {
                count(&mut batch, keep, f);
            }
        });
        if shared.want.swap(false, Ordering::AcqRel) {
            match ring.stats() {
                Ok((_, drops)) => batch.drops += u64::from(drops),
                Err(e) => tracing::debug!("PACKET_STATISTICS: {e}"),
            }
            if tx.send(std::mem::take(&mut batch)).is_err() {
                break;
            }
            skip = current_skip();
        }
    }
}

/// One frame → one flow entry (or a skip).
fn count(batch: &mut Batch, keep: Keep, f: RawFrame<'_>) {
    let Some(dir) = flows::direction(f.pkttype, f.hatype) else {
        return;
    };
    let link = LinkType::Cooked {
        protocol: f.protocol,
    };
    match frame::decode(link, f.data, f.wire_len) {
        // Main mode has kernel counters for TCP: a segment only says which socket to read.
        Ok(p) if keep == Keep::NonTcp && p.proto == Proto::Tcp => {
            if dir != Dir::Out {
                batch.add_tcp_activity(&p, u32::try_from(f.ifindex).unwrap_or(0));
            }
        }
        Ok(p) => batch.add(&p, dir),
        Err(frame::Skip::LaterFragment) => {}
        // Known link types: a malformed frame. Unknown ones (nlmon, monitor-mode Wi-Fi, ...):
        // listed once in a note.
        Err(_) if LinkType::from_arphrd(f.hatype).is_some() => batch.skipped += 1,
        Err(_) => batch.note_undecodable(f.hatype),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};

    use super::*;
    use crate::collect::linux::netlink::Tuple;

    /// Send `n` bytes client → server and read them; returns (client, server) addresses.
    fn tcp_burst(client: &mut TcpStream, server: &mut TcpStream, n: usize) {
        client.write_all(&vec![1; n]).unwrap();
        server.read_exact(&mut vec![0; n]).unwrap();
    }

    fn take_until(cap: &Capture, f: impl Fn(&Batch) -> bool) -> Batch {
        let mut all = Batch::default();
        for _ in 0..50 {
            // Partly filled ring blocks are handed over after RETIRE_MS.
            std::thread::sleep(Duration::from_millis(50));
            if let Some(b) = cap.take(Duration::from_millis(200)) {
                all.merge(b);
            }
            if f(&all) {
                return all;
            }
        }
        all
    }

    #[test]
    fn tcp_activity_marks_follow_the_filter_switch() {
        let cap = Capture::start(Keep::NonTcp).expect("AF_PACKET (root)");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let (c, s): (SocketAddr, SocketAddr) =
            (client.local_addr().unwrap(), server.local_addr().unwrap());
        tcp_burst(&mut client, &mut server, 10_000);
        let lo = |local, remote| Tuple {
            local,
            remote,
            ifindex: 1,
        };
        let marked = take_until(&cap, |b| b.tcp_active.contains(&lo(s, c)));
        assert!(
            marked.tcp_active.contains(&lo(s, c)),
            "the receiving end is marked: {:?}",
            marked.tcp_active
        );
        assert!(marked.tcp_frames > 0);
        assert!(
            marked.flows.keys().all(|k| k.proto != Proto::Tcp),
            "TCP bytes never come from the tap in main mode"
        );

        // Marks off: TCP is dropped in the kernel, UDP still counted.
        cap.set_tcp_activity(false).unwrap();
        let _ = cap.take(Duration::from_millis(200));
        tcp_burst(&mut client, &mut server, 10_000);
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        udp.send_to(&[0; 100], udp.local_addr().unwrap()).unwrap();
        let to = udp.local_addr().unwrap();
        let quiet = take_until(&cap, |b| b.flows.keys().any(|k| k.dst == to));
        assert!(quiet.flows.keys().any(|k| k.dst == to), "UDP still counted");
        assert!(
            !quiet.tcp_active.contains(&lo(s, c)) && !quiet.tcp_active.contains(&lo(c, s)),
            "no TCP marks while off"
        );

        // Back on.
        cap.set_tcp_activity(true).unwrap();
        tcp_burst(&mut client, &mut server, 10_000);
        let again = take_until(&cap, |b| b.tcp_active.contains(&lo(s, c)));
        assert!(again.tcp_active.contains(&lo(s, c)));
    }
}
