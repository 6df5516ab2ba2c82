//! Print TCP connects (pid, name, tuple) and closed-socket byte counts as they happen.
//! `cargo run -p sstopd --example connect_trace [SECONDS]` as root; a debugging aid for
//! the kernel sources the Linux collector uses, and a quick check of their errors.

#[cfg(target_os = "linux")]
fn main() -> anyhow::Result<()> {
    use std::time::{Duration, Instant};

    use anyhow::Context;
    use sstopd::collect::linux::destroy::DestroyWatcher;
    use sstopd::collect::linux::tracepoint::ConnectTracer;

    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut tracer = ConnectTracer::open().context("connect tracer")?;
    let mut watcher = DestroyWatcher::open().context("destroy watcher")?;
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        for e in tracer.drain().into_iter().filter(|e| e.is_connect()) {
            println!(
                "connect  pid {:>7} {:<16} {} -> {}",
                e.pid,
                String::from_utf8_lossy(&e.comm),
                e.local,
                e.remote
            );
        }
        let batch = watcher.drain();
        for s in batch.closed {
            println!(
                "closed   {:?} {} -> {:?} sent {:?} received {:?}",
                s.proto,
                s.local,
                s.remote,
                s.payload_sent(),
                s.payload_received()
            );
        }
        if batch.overrun {
            println!("(destroy events overran)");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("lost {} throttled {}", tracer.lost(), tracer.throttled());
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("Linux only");
}
