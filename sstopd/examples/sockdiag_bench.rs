//! sock_diag dump cost at ~5k and ~30k sockets (test-only; Linux, root).
//!
//! `cargo run -p sstopd --example sockdiag_bench [TOTAL ...]` (default 5000 30000).
//! Sockets are loopback TCP pairs held by helper processes (this binary with `--hold N`),
//! so no process passes the 20,000 open-file cap. Prints the time of one TCP v4 dump
//! and of a full v4+v6 TCP+UDP round, min/median/max over several runs.

#[cfg(target_os = "linux")]
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--hold") {
        let pairs = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
        return linux::hold(pairs);
    }
    let totals: Vec<usize> = if args.is_empty() {
        vec![5_000, 30_000]
    } else {
        args.iter().filter_map(|a| a.parse().ok()).collect()
    };
    for total in totals {
        linux::measure(total)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("sock_diag is Linux-only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail};
    use proto::Proto;
    use sstopd::collect::linux::netlink::{Family, SockDiag};

    /// Pairs per helper: 2 fds each, well under the 20,000 cap.
    const PAIRS_PER_HELPER: usize = 7_000;

    /// Helper: hold `pairs` connected loopback pairs until stdin closes.
    pub fn hold(pairs: usize) -> anyhow::Result<()> {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).context("raising RLIMIT_NOFILE")?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let mut held = Vec::with_capacity(pairs * 2);
        for _ in 0..pairs {
            let client = TcpStream::connect(addr)?;
            let (server, _) = listener.accept()?;
            // Close with RST on exit: no TIME-WAIT residue to skew the next run.
            for s in [&client, &server] {
                socket2::SockRef::from(s).set_linger(Some(Duration::ZERO))?;
            }
            held.push(client);
            held.push(server);
        }
        println!("ready {}", held.len());
        std::io::stdout().flush()?;
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        Ok(())
    }

    struct Helper(Child);

    impl Drop for Helper {
        fn drop(&mut self) {
            drop(self.0.stdin.take()); // EOF: the helper exits and closes its sockets
            if self.0.wait_timeout_ms(5_000).is_none() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }

    trait WaitTimeout {
        fn wait_timeout_ms(&mut self, ms: u64) -> Option<std::process::ExitStatus>;
    }

    impl WaitTimeout for Child {
        fn wait_timeout_ms(&mut self, ms: u64) -> Option<std::process::ExitStatus> {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(ms) {
                if let Ok(Some(status)) = self.try_wait() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        }
    }

    pub fn measure(total: usize) -> anyhow::Result<()> {
        let exe = std::env::current_exe()?;
        let baseline = SockDiag::open()?.dump(Family::V4, Proto::Tcp)?.len();
        let mut pairs = total / 2;
        let mut helpers = Vec::new();
        let start = Instant::now();
        while pairs > 0 {
            let n = pairs.min(PAIRS_PER_HELPER);
            pairs -= n;
            let mut child = Command::new(&exe)
                .args(["--hold", &n.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let stdout = child.stdout.take().context("helper stdout")?;
            helpers.push(Helper(child));
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line)?;
            if !line.starts_with("ready") {
                bail!("helper failed to set up {n} pairs");
            }
        }
        let setup = start.elapsed();

        let mut diag = SockDiag::open()?;
        let mut tcp4 = Vec::new();
        let mut tcp4_user = Vec::new();
        let mut tcp4_sys = Vec::new();
        let mut round = Vec::new();
        let mut seen = 0;
        for _ in 0..7 {
            let t = Instant::now();
            let cpu = thread_cpu();
            let sockets = diag.dump(Family::V4, Proto::Tcp)?;
            tcp4.push(t.elapsed());
            let after = thread_cpu();
            tcp4_user.push(after.0 - cpu.0);
            tcp4_sys.push(after.1 - cpu.1);
            seen = sockets.len();
            // Touch the accounting the collector will call for each socket.
            let bytes: u64 = sockets.iter().filter_map(|s| s.payload_sent()).sum();
            std::hint::black_box(bytes);

            let t = Instant::now();
            let mut n = 0;
            for family in [Family::V4, Family::V6] {
                for proto in [Proto::Tcp, Proto::Udp] {
                    n += diag.dump(family, proto)?.len();
                }
            }
            round.push(t.elapsed());
            std::hint::black_box(n);
        }
        println!(
            "{total} sockets requested (setup {setup:.1?}, {baseline} there before); TCP v4 dump saw {seen}: wall {}, \
             user {}, sys {}; full v4+v6 TCP+UDP round: wall {}",
            stats(&mut tcp4),
            stats(&mut tcp4_user),
            stats(&mut tcp4_sys),
            stats(&mut round)
        );
        drop(helpers);
        Ok(())
    }

    /// This thread's (user, system) CPU time; the kernel's dump work runs in our context.
    fn thread_cpu() -> (Duration, Duration) {
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is valid and writable for the duration of the call.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        (tv(usage.ru_utime), tv(usage.ru_stime))
    }

    fn stats(times: &mut [Duration]) -> String {
        times.sort();
        format!(
            "min {:.1?} median {:.1?} max {:.1?}",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        )
    }
}
