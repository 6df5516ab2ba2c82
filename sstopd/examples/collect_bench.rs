//! Cost of the netlink-mode collector, as the daemon runs it: one cycle = collect +
//! aggregate + snapshot. Run as root: `cargo run -p sstopd --release --example collect_bench`
//! (`-- quick`: one run, 5 s CPU windows).
//!
//! Prints, as medians of several runs (`runs=N`, default 3): cycle CPU time (each run the
//! median of 15 cycles) at ~5k and ~30k loopback sockets, for a cycle that dumps every
//! socket in one go (the first cycle, and whenever activity is unknown), for a scheduled
//! re-sync (every 30–120 s: a walk over every socket, a slice per tick; its dearest tick)
//! and for a cycle between those (listeners, UDP, sockets with arriving segments); CPU
//! share over 30 s at a 1 s interval with ~5k sockets, idle and under 50 connections/s
//! churn (whole process and per thread; each window holds one re-sync, as the daemon's
//! steady state does), peak RSS. `idle=SECS [trace]`: only the idle share,
//! with per-cycle CPU (`touched`: and the memory each cycle touched), for profilers.
//! `daemon=SECS`: only the real daemon's idle share over a longer window. `dumps`: each
//! per-tick kernel query's cost at a 1 s cadence. `full30k`: full-dump cycles and re-sync
//! walks at ~30k.
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
    /// One cycle that dumps every socket (as every 30 s, or whenever activity is unknown).
    fn full_cycle(&mut self) -> Result<(Duration, Duration, Duration, usize)> {
        self.collector.resync();
        self.cycle()
    }

    /// A scheduled re-sync's first cycle, as the daemon runs it (a walk, a slice a tick).
    fn resync_cycle(&mut self) -> Result<(Duration, Duration, Duration, usize)> {
        self.collector.resync_soon();
        self.cycle()
    }

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

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
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

/// Memory this process touched since the last write to /proc/self/clear_refs.
fn referenced_kib() -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    smaps
        .lines()
        .find_map(|l| l.strip_prefix("Referenced:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
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

/// CPU time per thread name (utime + stime from /proc/self/task/*/stat), to attribute the
/// idle cost to the collect loop, the capture thread and the tracer's reader thread.
fn thread_times() -> Vec<(String, Duration)> {
    let mut out: Vec<(String, Duration)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in dir.filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let d = stat_cpu(&stat).unwrap_or_default();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += d,
            None => out.push((name, d)),
        }
    }
    out
}

/// One cycle measurement: medians over 15 cycles after 3 warm-up ones.
#[derive(Clone, Copy)]
struct CycleCost {
    sockets: usize,
    collect_ms: f64,
    aggregate_ms: f64,
    wall_ms: f64,
}

/// `full`: every cycle dumps every socket; else cycles as the daemon runs them between
/// full dumps (listeners, UDP and the TCP sockets with arriving segments).
fn cycle_cost(rig: &mut Rig, full: bool) -> Result<CycleCost> {
    // Warm: the first cycles read every /proc entry and set the baseline.
    for _ in 0..3 {
        rig.full_cycle()?;
    }
    let (mut col, mut agg, mut walls, mut n) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..15 {
        let (c, a, w, s) = if full {
            rig.full_cycle()?
        } else {
            rig.cycle()?
        };
        col.push(c);
        agg.push(a);
        walls.push(w);
        n = s;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(CycleCost {
        sockets: n,
        collect_ms: ms(median(col)),
        aggregate_ms: ms(median(agg)),
        wall_ms: ms(median(walls)),
    })
}

/// A scheduled re-sync as the daemon runs it: a walk over every TCP socket, a slice per
/// tick (100 ms apart). Returns the ticks it took and the dearest tick, medians of 5 walks.
fn walk_cost(rig: &mut Rig) -> Result<(usize, CycleCost)> {
    for _ in 0..3 {
        rig.full_cycle()?;
    }
    let (mut ticks, mut col, mut agg, mut walls, mut n) = (vec![], vec![], vec![], vec![], 0);
    for _ in 0..5 {
        let before = rig.collector.resyncs();
        let mut dearest = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut k = 0;
        rig.collector.resync_soon();
        while rig.collector.resyncs() == before && k < 1000 {
            let (c, a, w, s) = rig.cycle()?;
            if c + a > dearest.0 + dearest.1 {
                dearest = (c, a, w);
            }
            n = n.max(s);
            k += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        ticks.push(k);
        col.push(dearest.0);
        agg.push(dearest.1);
        walls.push(dearest.2);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok((
        median(ticks),
        CycleCost {
            sockets: n,
            collect_ms: ms(median(col)),
            aggregate_ms: ms(median(agg)),
            wall_ms: ms(median(walls)),
        },
    ))
}

/// CPU share (% of one core) over `secs` at a 1 s interval: whole process, and per thread.
struct Share {
    total: f64,
    threads: Vec<(String, f64)>,
}

fn cpu_share(rig: &mut Rig, secs: u32) -> Result<Share> {
    let start_cpu = cpu_time();
    let start_threads = thread_times();
    let start = Instant::now();
    let trace = std::env::args().any(|a| a == "trace");
    for i in 0..secs {
        let touched = std::env::args().any(|a| a == "touched");
        if touched {
            let _ = std::fs::write("/proc/self/clear_refs", "1");
        }
        // The window holds the daemon's steady state: one re-sync per 30 s or more.
        let (c, a, w, n) = if i == 0 {
            rig.resync_cycle()?
        } else {
            rig.cycle()?
        };
        if trace {
            eprintln!(
                "  cycle {i}: {n} sockets passed on, collect {:.1} ms + aggregate {:.1} ms CPU, \
                 wall {:.1} ms{}",
                c.as_secs_f64() * 1e3,
                a.as_secs_f64() * 1e3,
                w.as_secs_f64() * 1e3,
                if touched {
                    format!(", touched {} KiB", referenced_kib())
                } else {
                    String::new()
                }
            );
        }
        let next = start + Duration::from_secs(u64::from(i) + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let used = cpu_time() - start_cpu;
    let wall = start.elapsed().as_secs_f64();
    let threads = thread_times()
        .into_iter()
        .map(|(name, t)| {
            let before = start_threads
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(Duration::ZERO, |(_, b)| *b);
            (name, 100.0 * t.saturating_sub(before).as_secs_f64() / wall)
        })
        .collect();
    Ok(Share {
        total: 100.0 * used.as_secs_f64() / wall,
        threads,
    })
}

fn print_cycles(label: &str, runs: &[CycleCost]) {
    let pick = |f: fn(&CycleCost) -> f64| median(runs.iter().map(f).collect());
    let all: Vec<String> = runs
        .iter()
        .map(|c| format!("{:.1}", c.collect_ms + c.aggregate_ms))
        .collect();
    println!(
        "cycle @ {label}: {} sockets passed on: CPU collect {:.1} ms + aggregate/snapshot {:.1} ms = {:.1} ms; wall {:.1} ms \
         (median of {} runs of 15 cycles; runs: {} ms)",
        runs.last().map_or(0, |c| c.sockets),
        pick(|c| c.collect_ms),
        pick(|c| c.aggregate_ms),
        pick(|c| c.collect_ms + c.aggregate_ms),
        pick(|c| c.wall_ms),
        runs.len(),
        all.join(" / ")
    );
}

fn print_walks(label: &str, runs: &[(usize, CycleCost)]) {
    let all: Vec<String> = runs
        .iter()
        .map(|(t, c)| format!("{:.1} ms/{t} ticks", c.collect_ms + c.aggregate_ms))
        .collect();
    println!(
        "cycle @ {label}, scheduled re-sync (a walk, a slice per tick): {} ticks, dearest tick CPU {:.1} ms; wall {:.1} ms (median of {} runs of 5 walks; runs: {})",
        median(runs.iter().map(|(t, _)| *t).collect()),
        median(
            runs.iter()
                .map(|(_, c)| c.collect_ms + c.aggregate_ms)
                .collect()
        ),
        median(runs.iter().map(|(_, c)| c.wall_ms).collect()),
        runs.len(),
        all.join(" / ")
    );
}

fn print_share(label: &str, secs: u32, runs: &[Share]) {
    let all: Vec<String> = runs.iter().map(|s| format!("{:.2}", s.total)).collect();
    let mut names: Vec<&str> = runs
        .iter()
        .flat_map(|s| s.threads.iter().map(|(n, _)| n.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let per_thread: Vec<String> = names
        .iter()
        .map(|name| {
            let v: Vec<f64> = runs
                .iter()
                .map(|s| {
                    s.threads
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or(0.0, |(_, p)| *p)
                })
                .collect();
            format!("{name} {:.2}", median(v))
        })
        .collect();
    println!(
        "cpu @ {label}: {:.2} % of one core over {secs} s at 1 s interval (median of {} runs: {} %); \
         by thread: {}",
        median(runs.iter().map(|s| s.total).collect()),
        runs.len(),
        all.join(" / "),
        per_thread.join(", ")
    );
}

/// CPU time to read one process's socket inodes (what a /proc rescan does per pid):
/// the collector's way, and by full path per fd (as before), medians of 5.
fn fd_scan_cost(pid: u32) -> (usize, f64, f64) {
    use sstopd::collect::linux::procmap::pid::socket_inodes;
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let time = |f: &dyn Fn() -> usize| {
        let mut v = Vec::new();
        let mut n = 0;
        for _ in 0..5 {
            let t = thread_cpu();
            n = f();
            v.push((thread_cpu() - t).as_secs_f64() * 1e3);
        }
        (n, median(v))
    };
    let (n, now) = time(&|| socket_inodes(&dir).map_or(0, |v| v.len()));
    let (_, by_path) = time(&|| {
        std::fs::read_dir(dir.join("fd")).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|t| t.to_string_lossy().starts_with("socket:"))
                .count()
        })
    });
    (n, now, by_path)
}

/// CPU (utime + stime) of process `pid` so far.
fn process_cpu(pid: u32) -> Option<Duration> {
    stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of a `/proc/.../stat` line.
fn stat_cpu(stat: &str) -> Option<Duration> {
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // After "pid (comm) ": state is field 0, utime 11, stime 12.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks: f64 = fields
        .get(11..13)?
        .iter()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    Some(Duration::from_secs_f64(ticks / hz))
}

/// CPU share of the real daemon (`target/release/sstopd`, beside this example's
/// directory) over `secs` with no viewer, after a 5 s warm-up: everything it runs
/// (sampler, capture and tracer threads, the reactor). `None` when it is not built.
fn daemon_share(secs: u32) -> Result<Option<f64>> {
    let exe = std::env::current_exe()?;
    let Some(bin) = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("sstopd"))
    else {
        return Ok(None);
    };
    if !bin.exists() {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let child = Command::new(&bin)
        .arg("--socket")
        .arg(dir.path().join("sstopd.sock"))
        .args(["--socket-mode", "0600", "--log-level", "warn"])
        .stdin(Stdio::null())
        .spawn()
        .context("starting sstopd")?;
    let daemon = Helper(child);
    let pid = daemon.0.id();
    std::thread::sleep(Duration::from_secs(5));
    let (t0, c0) = (Instant::now(), process_cpu(pid).context("daemon exited")?);
    std::thread::sleep(Duration::from_secs(u64::from(secs)));
    let c1 = process_cpu(pid).context("daemon exited")?;
    Ok(Some(
        100.0 * (c1 - c0).as_secs_f64() / t0.elapsed().as_secs_f64(),
    ))
}

fn churn(port: &str, secs: u32) -> Result<Helper> {
    // The churn helper prints only at the end; start it and go on measuring.
    let child = Command::new("python3")
        .arg(script("churn.py"))
        .args(["127.0.0.1", port, "50", &secs.to_string(), "4096"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("python3 churn.py")?;
    Ok(Helper(child))
}

/// `collect_bench [quick] [runs=N]`: quick = 5 s CPU windows and 1 run.
fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "quick");
    let runs: usize = std::env::args()
        .find_map(|a| a.strip_prefix("runs=")?.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let secs = if quick { 5 } else { 30 };
    let mut rig = Rig::new()?;
    if let Some(n) = std::env::args().find_map(|a| a.strip_prefix("idle=")?.parse::<u32>().ok()) {
        // Only the idle share (`churn`: under churn), for profilers: `idle=SECS`.
        let (_s, _i, port) = hold(2_500)?;
        cycle_cost(&mut rig, false)?;
        let _churn = if std::env::args().any(|a| a == "churn") {
            Some(churn(&port, n)?)
        } else {
            None
        };
        print_share("~5k", n, &[cpu_share(&mut rig, n)?]);
        return Ok(());
    }
    if let Some(n) = std::env::args().find_map(|a| a.strip_prefix("daemon=")?.parse::<u32>().ok()) {
        // Only the real daemon's idle share over a longer window (its steady state: full
        // dumps back off to every 120 s), for the figures.
        let (_s, _i, _port) = hold(2_500)?;
        match daemon_share(n)? {
            Some(p) => {
                println!("real sstopd process, ~5k sockets, no viewer, {n} s at 1 s: idle {p:.2} %")
            }
            None => println!("real daemon: not built (cargo build --release -p sstopd)"),
        }
        return Ok(());
    }
    if std::env::args().any(|a| a == "dumps") {
        // Cost of each per-tick kernel query at a 1 s cadence (cold), for profilers.
        use sstopd::collect::linux::netlink::{Family, SockDiag};
        let mut sd = SockDiag::open()?;
        let mut rows: Vec<(&str, Vec<f64>)> = vec![
            ("tcp listeners", vec![]),
            ("udp v4", vec![]),
            ("udp v6", vec![]),
        ];
        for _ in 0..10 {
            std::thread::sleep(Duration::from_secs(1));
            let t = thread_cpu();
            sd.dump_tcp_listeners()?;
            let a = thread_cpu();
            sd.dump(Family::V4, proto::Proto::Udp)?;
            let b = thread_cpu();
            sd.dump(Family::V6, proto::Proto::Udp)?;
            let c = thread_cpu();
            for (i, d) in [a - t, b - a, c - b].into_iter().enumerate() {
                rows[i].1.push(d.as_secs_f64() * 1e3);
            }
        }
        for (name, v) in rows {
            println!("{name}: median {:.2} ms CPU at a 1 s cadence", median(v));
        }
        return Ok(());
    }
    if std::env::args().any(|a| a == "full30k") {
        // Only full-dump cycles at ~30k sockets, for profilers.
        let (_s1, _i1, _) = hold(7_500)?;
        let (_s2, _i2, _) = hold(7_500)?;
        print_cycles(
            "~30k, full dump",
            &[cycle_cost(&mut rig, true)?, cycle_cost(&mut rig, true)?],
        );
        print_walks("~30k", &[walk_cost(&mut rig)?, walk_cost(&mut rig)?]);
        println!("peak RSS: {} KiB", peak_rss_kib());
        return Ok(());
    }
    let (mut small, mut idle, mut busy, mut large) = (vec![], vec![], vec![], vec![]);
    let (mut small_partial, mut large_partial) = (vec![], vec![]);
    let (mut small_walk, mut large_walk) = (vec![], vec![]);
    let (mut daemon_idle, mut daemon_busy) = (vec![], vec![]);
    let fd_scan;
    {
        let (s, _i, port) = hold(2_500)?;
        fd_scan = fd_scan_cost(s.0.id());
        for _ in 0..runs {
            daemon_idle.extend(daemon_share(secs)?);
            {
                let _churn = churn(&port, secs + 5)?;
                daemon_busy.extend(daemon_share(secs)?);
            }
            small.push(cycle_cost(&mut rig, true)?);
            small_partial.push(cycle_cost(&mut rig, false)?);
            small_walk.push(walk_cost(&mut rig)?);
            idle.push(cpu_share(&mut rig, secs)?);
            let _churn = churn(&port, secs)?;
            busy.push(cpu_share(&mut rig, secs)?);
        }
    }
    {
        // Two pairs of helpers: each process stays under the 20k open-file cap.
        let (_s1, _i1, _) = hold(7_500)?;
        let (_s2, _i2, _) = hold(7_500)?;
        for _ in 0..runs {
            large.push(cycle_cost(&mut rig, true)?);
            large_partial.push(cycle_cost(&mut rig, false)?);
            large_walk.push(walk_cost(&mut rig)?);
        }
    }
    print_cycles("~5k, full dump", &small);
    print_cycles("~30k, full dump", &large);
    print_walks("~5k", &small_walk);
    print_walks("~30k", &large_walk);
    print_cycles("~5k, between full dumps", &small_partial);
    print_cycles("~30k, between full dumps", &large_partial);
    print_share("~5k idle", secs, &idle);
    print_share("~5k + 50 conn/s churn", secs, &busy);
    let all = |v: &[f64]| {
        v.iter()
            .map(|p| format!("{p:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    if daemon_idle.is_empty() {
        println!("real daemon: not measured (build it first: cargo build --release -p sstopd)");
    } else {
        println!(
            "real sstopd process, ~5k sockets, no viewer, {secs} s at 1 s: idle {:.2} % (runs: {} %), \
             50 conn/s churn {:.2} % (runs: {} %)",
            median(daemon_idle.clone()),
            all(&daemon_idle),
            median(daemon_busy.clone()),
            all(&daemon_busy)
        );
    }
    println!(
        "fd scan of one process holding {} sockets: {:.2} ms CPU (readlink by full path: {:.2} ms)",
        fd_scan.0, fd_scan.1, fd_scan.2
    );
    println!("peak RSS: {} KiB", peak_rss_kib());
    Ok(())
}
