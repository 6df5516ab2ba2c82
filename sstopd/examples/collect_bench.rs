//! Cost of the netlink-mode collector, as the daemon runs it: one cycle = collect +
//! aggregate + snapshot. Run as root: `cargo run -p sstopd --release --example collect_bench`
//! (`-- quick` skips the 30 s CPU runs).
//!
//! Prints: cycle time (median of 15) at ~5k and ~30k loopback sockets, CPU share over
//! 30 s at a 1 s interval with ~5k sockets, idle and under 50 connections/s churn, peak RSS.
//! Sockets are held by helper python processes on loopback (the test scripts in
//! tests/linux_e2e/); they are killed on exit.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use proto::CollectorMode;
use sstopd::aggregate::Aggregator;
use sstopd::collect::Collector;
use sstopd::collect::linux::LinuxCollector;

struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/linux_e2e")
        .join(name)
}

/// Start a helper script and read its first line.
fn helper(name: &str, args: &[String]) -> Result<(Helper, String)> {
    let mut child = Command::new("python3")
        .arg(script(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3")?;
    let out = child.stdout.take().context("stdout")?;
    let h = Helper(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    if line.is_empty() {
        bail!("{name} ended early");
    }
    Ok((h, line.trim().to_string()))
}

struct Rig {
    collector: LinuxCollector,
    agg: Aggregator,
    t0: Instant,
}

impl Rig {
    fn new() -> Result<Rig> {
        Ok(Rig {
            collector: LinuxCollector::open().context("netlink collector (run as root)")?,
            agg: Aggregator::new(CollectorMode::Netlink),
            t0: Instant::now(),
        })
    }

    /// One daemon cycle; returns CPU time of (collect, aggregate+snapshot), wall time, sockets.
    /// CPU time, because wall time on a shared machine measures the neighbours.
    fn cycle(&mut self) -> Result<(Duration, Duration, Duration, usize)> {
        let wall = Instant::now();
        let a = thread_cpu();
        let sample = self.collector.collect()?;
        let n = sample.sockets.len();
        let b = thread_cpu();
        self.agg.ingest(sample, self.t0.elapsed(), 0);
        let snap = self.agg.snapshot();
        std::hint::black_box(&snap);
        let c = thread_cpu();
        Ok((b - a, c - b, wall.elapsed(), n))
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one plain struct we own; RUSAGE_SELF is always valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime fills one timespec we own; the clock id is a constant.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// ~2 × `conns` sockets: an idle client and the server's accepted ends.
fn hold(conns: usize) -> Result<(Helper, Helper, String)> {
    let (server, port) = helper("server.py", &["127.0.0.1".into()])?;
    let (idle, ready) = helper(
        "idle.py",
        &["127.0.0.1".into(), port.clone(), conns.to_string()],
    )?;
    if ready != format!("ready {conns}") {
        bail!("idle.py: {ready}");
    }
    Ok((server, idle, port))
}

fn cycle_cost(rig: &mut Rig, label: &str) -> Result<()> {
    // Warm: the first cycles read every /proc entry and set the baseline.
    for _ in 0..3 {
        rig.cycle()?;
    }
    let (mut col, mut agg, mut walls, mut n) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..15 {
        let (c, a, w, s) = rig.cycle()?;
        col.push(c);
        agg.push(a);
        walls.push(w);
        n = s;
    }
    let (c, a, w) = (median(col), median(agg), median(walls));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "cycle @ {label}: {n} sockets: CPU collect {:.1} ms + aggregate/snapshot {:.1} ms = {:.1} ms; wall {:.1} ms (medians of 15)",
        ms(c),
        ms(a),
        ms(c + a),
        ms(w)
    );
    Ok(())
}

fn cpu_share(rig: &mut Rig, label: &str, secs: u32) -> Result<()> {
    let start_cpu = cpu_time();
    let start_thread = thread_cpu();
    let start = Instant::now();
    for i in 0..secs {
        rig.cycle()?;
        let next = start + Duration::from_secs(u64::from(i) + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let used = cpu_time() - start_cpu;
    let cycles = thread_cpu() - start_thread;
    let wall = start.elapsed().as_secs_f64();
    println!(
        "cpu @ {label}: {:.2} % of one core over {secs} s at 1 s interval, all threads \
         ({:.2} % in the collect/aggregate thread, the rest in the connect tracer's reader \
         thread, which sees every TCP state change on the host)",
        100.0 * used.as_secs_f64() / wall,
        100.0 * cycles.as_secs_f64() / wall,
    );
    Ok(())
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "quick");
    let secs = if quick { 5 } else { 30 };
    let mut rig = Rig::new()?;
    {
        let (_s, _i, port) = hold(2_500)?;
        cycle_cost(&mut rig, "~5k")?;
        cpu_share(&mut rig, "~5k idle", secs)?;
        let (_churn, _) = {
            // The churn helper prints only at the end; start it and go on measuring.
            let child = Command::new("python3")
                .arg(script("churn.py"))
                .args(["127.0.0.1", &port, "50", &secs.to_string(), "4096"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .context("python3 churn.py")?;
            (Helper(child), ())
        };
        cpu_share(&mut rig, "~5k + 50 conn/s churn", secs)?;
    }
    {
        let (_s, _i, _port) = hold(15_000)?;
        cycle_cost(&mut rig, "~30k")?;
    }
    println!("peak RSS: {} KiB", peak_rss_kib());
    Ok(())
}
