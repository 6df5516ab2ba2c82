//! One CPU's perf event on the tracepoint and its mmap ring, read without blocking.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use super::TraceError;
use super::records::{HEADER_LEN, header};

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_SAMPLE_TID: u64 = 1 << 1;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
const ATTR_FLAG_COMM: u64 = 1 << 9;
const ATTR_FLAG_TASK: u64 = 1 << 13;
const ATTR_FLAG_WATERMARK: u64 = 1 << 14;
const ATTR_FLAG_SAMPLE_ID_ALL: u64 = 1 << 18;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `_IOW('$', 6, char *)`.
const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;

/// `struct perf_event_attr` up to `config1` (PERF_ATTR_SIZE_VER0, 64 bytes): every field
/// this reader sets; the kernel treats the rest as zero.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// Offsets in `struct perf_event_mmap_page`.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;
const DATA_OFFSET: usize = 1040;
const DATA_SIZE: usize = 1048;

pub struct Ring {
    /// Closed after Drop unmaps the ring.
    fd: OwnedFd,
    base: *mut u8,
    map_len: usize,
    data_offset: usize,
    data_size: usize,
    scratch: Vec<u8>,
}

// SAFETY: the mapping is owned by this value alone and only touched through `&mut self`.
unsafe impl Send for Ring {}

impl Ring {
    /// Open the tracepoint `id` on `cpu` (every task) with `pages` data pages (a power of
    /// two), keeping only records that match the ftrace-syntax `filter` when the kernel
    /// accepts it.
    pub fn open(id: u64, cpu: u32, pages: usize, filter: &CStr) -> Result<Self, TraceError> {
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: id,
            sample_period: 1,
            sample_type: PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW,
            flags: ATTR_FLAG_COMM | ATTR_FLAG_TASK | ATTR_FLAG_SAMPLE_ID_ALL | ATTR_FLAG_WATERMARK,
            // With `watermark`, this is `wakeup_watermark`: poll() wakes at a quarter full.
            wakeup_events: u32::try_from(pages * page_size() / 4).unwrap_or(u32::MAX),
            ..Default::default()
        };
        // SAFETY: perf_event_open reads `attr` (valid, sized as declared) and returns an fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                -1 as libc::pid_t,
                cpu as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(TraceError::Perf {
                cpu,
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: the syscall returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        // Filtered-out events never reach the ring nor count toward throttling.
        // SAFETY: PERF_EVENT_IOC_SET_FILTER reads a NUL-terminated string that outlives the call.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_SET_FILTER, filter.as_ptr()) };
        if rc != 0 {
            tracing::debug!(
                "tracepoint filter refused ({}); reading every state change",
                io::Error::last_os_error()
            );
        }
        let page = page_size();
        let map_len = (pages + 1) * page;
        // SAFETY: mapping a perf fd as documented in perf_event_open(2): one metadata
        // page plus 2^n data pages, shared and writable (we write data_tail).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(TraceError::Io {
                what: format!("mmap of the perf ring on cpu {cpu}"),
                source: io::Error::last_os_error(),
            });
        }
        let base = base.cast::<u8>();
        let mut ring = Self {
            fd,
            base,
            map_len,
            data_offset: page,
            data_size: pages * page,
            scratch: Vec::new(),
        };
        // Kernels since 4.1 say where the data area is; older ones use page 1 onwards.
        let (offset, size) = (ring.meta(DATA_OFFSET), ring.meta(DATA_SIZE));
        if size != 0 && offset as usize + size as usize <= map_len {
            ring.data_offset = offset as usize;
            ring.data_size = size as usize;
        }
        Ok(ring)
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    fn meta(&self, at: usize) -> u64 {
        // SAFETY: `at` is one of the 8-byte aligned fields inside the first mapped page.
        unsafe { (*self.base.add(at).cast::<AtomicU64>()).load(Ordering::Acquire) }
    }

    fn set_tail(&self, tail: u64) {
        // SAFETY: data_tail is an aligned u64 in the metadata page; the kernel reads it.
        unsafe { (*self.base.add(DATA_TAIL).cast::<AtomicU64>()).store(tail, Ordering::Release) }
    }

    /// Hand every complete record written since the last call to `each`, then free them.
    pub fn read(&mut self, mut each: impl FnMut(&[u8])) {
        let head = self.meta(DATA_HEAD);
        let mut tail = self.meta(DATA_TAIL);
        while head.saturating_sub(tail) >= HEADER_LEN as u64 {
            let mut hdr = [0u8; HEADER_LEN];
            self.copy_out(tail, &mut hdr);
            let size = header(&hdr).map_or(0, |(_, size)| size);
            if size < HEADER_LEN || size as u64 > head - tail {
                // A corrupt size would loop forever or read garbage: skip what is there.
                tracing::warn!("perf ring: bad record size {size}, dropping the rest");
                tail = head;
                break;
            }
            let mut record = std::mem::take(&mut self.scratch);
            record.resize(size, 0);
            self.copy_out(tail, &mut record);
            each(&record);
            self.scratch = record;
            tail += size as u64;
        }
        self.set_tail(tail);
    }

    /// Copy `out.len()` bytes starting at ring position `pos`, across the wrap if needed.
    fn copy_out(&self, pos: u64, out: &mut [u8]) {
        let start = (pos % self.data_size as u64) as usize;
        let first = out.len().min(self.data_size - start);
        // SAFETY: both ranges lie inside the data area of the live mapping
        // (start < data_size, first <= data_size - start, the rest wraps to offset 0).
        unsafe {
            let data = self.base.add(self.data_offset);
            std::ptr::copy_nonoverlapping(data.add(start), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, out.as_mut_ptr().add(first), out.len() - first);
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are exactly the mapping created in `open`, unmapped once.
        unsafe {
            libc::munmap(self.base.cast(), self.map_len);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(4096)
}
