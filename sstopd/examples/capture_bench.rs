//! Capture cost: CPU of the capture thread per 100k packets/s of UDP on loopback, and
//! kernel drops. Runs in a private network namespace (no one else's traffic), as root.
//! Also the whole process's CPU with and without the capture: the difference includes
//! the kernel's side of the tap (filter + copy into the ring), charged to the sender.
//!
//! `cargo run --release -p sstopd --example capture_bench -- [packets_per_s] [seconds] [payload]`
//! (defaults 100000, 5, 64).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sstopd::collect::linux::packet::flows::Batch;
use sstopd::collect::linux::packet::{Capture, Keep};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rate: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let secs: u64 = args.next().map_or(Ok(5), |a| a.parse())?;
    let payload: usize = args.next().map_or(Ok(64), |a| a.parse())?;

    // SAFETY: single-threaded at this point; moves this process into a new network namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        bail!(
            "unshare(CLONE_NEWNET): {} (run as root)",
            std::io::Error::last_os_error()
        );
    }
    let st = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .context("ip link set lo up")?;
    if !st.success() {
        bail!("ip link set lo up failed");
    }

    let sink = UdpSocket::bind("127.0.0.1:0")?;
    let dst = sink.local_addr()?;

    // Baseline: the same traffic with no capture.
    let base0 = process_cpu_ticks()?;
    let tb = Instant::now();
    let base_sent = send(dst, rate, secs, payload)?;
    let base_cpu = (process_cpu_ticks()? - base0) as f64 / tb.elapsed().as_secs_f64();

    let capture = Capture::start(Keep::NonTcp).context("starting the capture")?;
    let tid = capture_tid().context("capture thread not found")?;
    let proc0 = process_cpu_ticks()?;
    let sender = std::thread::spawn(move || send(dst, rate, secs, payload));

    let cpu0 = thread_cpu_ticks(tid)?;
    let t0 = Instant::now();
    let mut total = Batch::default();
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(b) = capture.take(Duration::from_millis(250)) {
            total.merge(b);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = thread_cpu_ticks(tid)?;
    let sent = sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    let with_cpu = (process_cpu_ticks()? - proc0) as f64 / elapsed;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (cpu1 - cpu0) as f64 / hz / elapsed;
    let pps = total.frames as f64 / elapsed;
    println!("sent {sent} datagrams of {payload} B in {secs} s (target {rate}/s)");
    println!(
        "captured {} frames ({pps:.0}/s), payload {} B, kernel drops {}",
        total.frames,
        total.flows.values().sum::<u64>(),
        total.drops
    );
    println!("capture thread CPU: {:.1}% of one core", cpu * 100.0);
    if pps > 0.0 {
        println!(
            "=> {:.1}% of one core per 100k packets/s (capture thread)",
            cpu * 100.0 * 100_000.0 / pps
        );
        let extra = (with_cpu - base_cpu) / hz;
        println!(
            "process CPU without capture {:.1}% ({base_sent} sent), with {:.1}%: +{:.1}% of one core per 100k packets/s (tap + thread)",
            base_cpu / hz * 100.0,
            with_cpu / hz * 100.0,
            extra * 100.0 * 100_000.0 / pps
        );
    }
    Ok(())
}

/// Send `rate` datagrams per second for `secs` seconds, paced per millisecond.
fn send(dst: std::net::SocketAddr, rate: u64, secs: u64, payload: usize) -> anyhow::Result<u64> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.connect(dst)?;
    let buf = vec![0x62u8; payload];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            // The sink never reads: ENOBUFS/EAGAIN-free on loopback, a full buffer just drops.
            let _ = s.send(&buf);
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(sent)
}

/// The capture thread's id (it names itself once running: retry briefly).
fn capture_tid() -> anyhow::Result<u32> {
    for _ in 0..100 {
        for e in std::fs::read_dir("/proc/self/task")? {
            let e = e?;
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if comm.trim() == "sstopd-capture" {
                return Ok(e.file_name().to_string_lossy().parse()?);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("no sstopd-capture thread")
}

/// utime + stime of the whole process, in clock ticks.
fn process_cpu_ticks() -> anyhow::Result<u64> {
    stat_cpu_ticks(&std::fs::read_to_string("/proc/self/stat")?)
}

/// utime + stime of one thread, in clock ticks.
fn thread_cpu_ticks(tid: u32) -> anyhow::Result<u64> {
    stat_cpu_ticks(&std::fs::read_to_string(format!(
        "/proc/self/task/{tid}/stat"
    ))?)
}

fn stat_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3; utime/stime are fields 14/15 → indices 11/12.
    let utime: u64 = f.get(11).context("utime")?.parse()?;
    let stime: u64 = f.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}
