//! Fan-out cost of the sstopd service: CPU time per tick of an in-process
//! daemon (`sstopd::run`, synthetic collector, 2,000 processes) serving 0, 1,
//! 10 and 100 viewers at 1 s and 100 ms. Viewers run in a child process so
//! their reading does not count against the daemon.
//!
//! ```text
//! cargo run --release -p sstopd --example fanout_bench [-- --runs 3 --secs 10]
//! ```
//!
//! Prints, per interval and viewer count, the median over runs of: total CPU
//! per tick, the collection thread's share (collect + aggregate + encode once),
//! the rest (fan-out: sessions writing the shared bytes), and the fan-out cost
//! over the 0-viewer baseline as a percentage of one core.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sstopd::Config;
use sstopd::collect::CollectorChoice;
use sstopd::config::SyntheticSize;
use tokio_util::sync::CancellationToken;

const PROCESSES: u32 = 2_000;
const SOCKETS_PER_PROCESS: u32 = 4;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("viewers") {
        return viewers(&args[2..]);
    }
    let runs = flag(&args, "--runs").unwrap_or(3);
    let secs = flag(&args, "--secs").unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "fan-out benchmark: {PROCESSES} processes x {SOCKETS_PER_PROCESS} sockets (synthetic), \
         median of {runs} runs; CPU in ms per tick"
    );
    println!(
        "{:>9} {:>7} {:>10} {:>9} {:>10} {:>9} {:>13} {:>12}",
        "interval",
        "viewers",
        "total/tick",
        "collect",
        "fan-out",
        "frame KB",
        "fan-out - 0",
        "% of a core"
    );
    for interval_ms in [1000u64, 100] {
        // Shorter windows at 100 ms still give many ticks.
        let window = Duration::from_secs(if interval_ms >= 1000 {
            secs
        } else {
            secs.div_ceil(3).max(2)
        });
        let mut baseline = None;
        for n in [0usize, 1, 10, 100] {
            let mut samples = Vec::new();
            for _ in 0..runs {
                samples.push(rt.block_on(measure(n, interval_ms, window))?);
            }
            let med = |f: fn(&Measure) -> f64| median(samples.iter().map(f).collect());
            let total = med(|m| m.total_ms_per_tick);
            let collect = med(|m| m.collect_ms_per_tick);
            let fanout = med(|m| m.total_ms_per_tick - m.collect_ms_per_tick);
            let kb = med(|m| m.frame_kb);
            // The collection thread's work does not depend on viewers; its run-to-run
            // noise would swamp the fan-out figure, so the baseline is the fan-out part.
            let base = *baseline.get_or_insert(fanout);
            let added = fanout - base;
            let pct = added / interval_ms as f64 * 100.0;
            println!(
                "{:>7}ms {:>7} {:>10.2} {:>9.2} {:>10.2} {:>9.0} {:>13.2} {:>11.2}%",
                interval_ms, n, total, collect, fanout, kb, added, pct
            );
        }
    }
    Ok(())
}

struct Measure {
    total_ms_per_tick: f64,
    collect_ms_per_tick: f64,
    frame_kb: f64,
}

async fn measure(viewers: usize, interval_ms: u64, window: Duration) -> anyhow::Result<Measure> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.sock");
    let mut cfg = Config::new(&path);
    cfg.collector = CollectorChoice::Synthetic;
    cfg.synthetic = SyntheticSize {
        processes: PROCESSES,
        sockets_per_process: SOCKETS_PER_PROCESS,
    };
    cfg.interval = Duration::from_millis(interval_ms);
    cfg.max_viewers = 1_000;
    let token = CancellationToken::new();
    let daemon = tokio::spawn(sstopd::run(cfg, token.clone()));
    while std::os::unix::net::UnixStream::connect(&path).is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the history fill a little so frames have their steady-state size.
    tokio::time::sleep(Duration::from_millis(interval_ms * 3)).await;

    let mut child = None;
    let mut frame_kb = 0.0;
    if viewers > 0 {
        let mut c = Command::new(std::env::current_exe()?)
            .args(["viewers", &path.display().to_string(), &viewers.to_string()])
            .arg(interval_ms.to_string())
            .stdout(Stdio::piped())
            .spawn()?;
        // The child prints the first frame's size once every viewer has one.
        let stdout = c
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await??;
        frame_kb = line.trim().parse::<f64>().unwrap_or(0.0) / 1024.0;
        child = Some(c);
    }

    let (cpu0, collect0, t0) = (process_cpu(), collect_thread_cpu(), Instant::now());
    tokio::time::sleep(window).await;
    let (cpu1, collect1, elapsed) = (process_cpu(), collect_thread_cpu(), t0.elapsed());

    token.cancel();
    let _ = daemon.await;
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    let ticks = elapsed.as_secs_f64() * 1000.0 / interval_ms as f64;
    Ok(Measure {
        total_ms_per_tick: (cpu1 - cpu0).as_secs_f64() * 1000.0 / ticks,
        collect_ms_per_tick: (collect1 - collect0).as_secs_f64() * 1000.0 / ticks,
        frame_kb,
    })
}

/// User + system CPU of this whole process.
fn process_cpu() -> Duration {
    // SAFETY: rusage is plain old data; all-zero is valid and getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU of the collection thread (named `sstopd-collect`), from /proc.
fn collect_thread_cpu() -> Duration {
    let tick = rustix::param::clock_ticks_per_second() as f64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "sstopd-collect" {
            continue;
        }
        return thread_cpu(&dir, tick);
    }
    Duration::ZERO
}

fn thread_cpu(dir: &Path, tick: f64) -> Duration {
    let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
    // Fields after the last ')': state is field 3; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Duration::from_secs_f64((get(11) + get(12)) / tick)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn flag(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// Child role: `viewers SOCKET N INTERVAL_MS` — N subscribed viewers reading
/// (not decoding) frames until killed. Prints the first frame size when all
/// N have one.
fn viewers(args: &[String]) -> anyhow::Result<()> {
    let path = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("socket"))?
        .clone();
    let n: usize = args.get(1).ok_or_else(|| anyhow::anyhow!("n"))?.parse()?;
    let interval_ms: u32 = args
        .get(2)
        .ok_or_else(|| anyhow::anyhow!("interval"))?
        .parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(n);
        for _ in 0..n {
            let path = path.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut s = tokio::net::UnixStream::connect(&path).await?;
                proto::write_frame_async(
                    &mut s,
                    &proto::ClientMsg::Hello {
                        protocol: proto::PROTOCOL_VERSION,
                        client: "fanout_bench".into(),
                    },
                )
                .await?;
                proto::read_frame_async(&mut s).await?;
                proto::write_frame_async(
                    &mut s,
                    &proto::ClientMsg::Subscribe {
                        interval_ms,
                        detail_pid: None,
                    },
                )
                .await?;
                let mut first = true;
                while let Some(frame) = proto::read_frame_async(&mut s).await? {
                    if first {
                        let _ = tx.send(frame.len()).await;
                        first = false;
                    }
                }
                anyhow::Ok(())
            });
        }
        drop(tx);
        let mut size = 0;
        for _ in 0..n {
            size = rx.recv().await.unwrap_or(size);
        }
        println!("{size}");
        // Keep reading until the parent kills us.
        std::future::pending::<()>().await;
        anyhow::Ok(())
    })
}
