//! The collector over the real kernel, capture and /proc (root, as CI runs): between full
//! dumps only sockets a segment arrived for are passed on, and their bytes stay exact.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use proto::{CollectorMode, Proto};

use super::*;
use crate::aggregate::Aggregator;
use crate::collect::Collector;

/// The connection local → remote was passed on.
fn listed(sample: &Sample, (local, remote): (SocketAddr, SocketAddr)) -> bool {
    sample
        .sockets
        .iter()
        .any(|s| s.proto == Proto::Tcp && s.local == local && s.remote == Some(remote))
}

struct Rig {
    collector: LinuxCollector,
    agg: Aggregator,
    t0: Instant,
}

impl Rig {
    fn new(collector: LinuxCollector) -> Self {
        Rig {
            collector,
            agg: Aggregator::new(CollectorMode::Netlink),
            t0: Instant::now(),
        }
    }

    fn tick(&mut self) -> Sample {
        let sample = self.collector.collect().unwrap();
        self.agg.ingest(sample.clone(), self.t0.elapsed(), 0);
        std::thread::sleep(Duration::from_millis(20));
        sample
    }

    /// Tick until `f` holds for a sample (at most 100 ticks).
    fn until(&mut self, what: &str, f: impl Fn(&Sample, &Aggregator) -> bool) -> Sample {
        for _ in 0..100 {
            let sample = self.tick();
            if f(&sample, &self.agg) {
                return sample;
            }
        }
        panic!("timed out waiting for {what}");
    }
}

/// Bytes (up, down) the aggregator credits our process over the connection local → remote.
fn bytes_of(agg: &Aggregator, (local, remote): (SocketAddr, SocketAddr)) -> Option<(u64, u64)> {
    let detail = agg.detail(std::process::id())?;
    let c = detail
        .connections
        .iter()
        .find(|c| c.local == local && c.remote == Some(remote))?;
    Some((c.traffic.up_bytes, c.traffic.down_bytes))
}

#[test]
fn between_full_dumps_only_sockets_with_arriving_segments_are_read_and_bytes_stay_exact() {
    let mut rig = Rig::new(LinuxCollector::open().unwrap());
    assert!(rig.collector.caps().packet_bytes, "needs AF_PACKET (root)");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let (ca, sa) = (client.local_addr().unwrap(), server.local_addr().unwrap());
    // The client's and the server's end (the latter shares its local port with the listener).
    let (c, s) = ((ca, sa), (sa, ca));

    let first = rig.tick();
    assert!(!first.tcp_partial, "the first listing is complete");
    assert!(listed(&first, c) && listed(&first, s));
    // Once the handshake's last segments are counted, the idle pair is no longer read.
    let idle = rig.until("the idle pair to be left out", |smp, _| {
        !listed(smp, c) && !listed(smp, s)
    });
    assert!(idle.tcp_partial);
    assert!(
        idle.sockets
            .iter()
            .any(|x| x.local == listener.local_addr().unwrap() && x.remote.is_none()),
        "listeners are listed every tick"
    );
    assert_eq!(bytes_of(&rig.agg, c), Some((0, 0)), "idle, still shown");

    // 123,456 bytes one way, 7,890 back: both ends are read again and counted exactly.
    client.write_all(&vec![7; 123_456]).unwrap();
    let mut got = vec![0; 123_456];
    server.read_exact(&mut got).unwrap();
    server.write_all(&vec![9; 7_890]).unwrap();
    let mut back = vec![0; 7_890];
    client.read_exact(&mut back).unwrap();
    let moved = rig.until("the moved pair to be read", |smp, _| {
        listed(smp, c) || listed(smp, s)
    });
    assert!(moved.tcp_partial);
    rig.until("exact bytes on both ends", |_, agg| {
        bytes_of(agg, c) == Some((123_456, 7_890)) && bytes_of(agg, s) == Some((7_890, 123_456))
    });
    // Ticks read TCP by lookups, not full dumps (the next is 30 s away). A burst of dense
    // TCP from another test may pause the marks a while; full dumps then stand in, exact
    // all the same.
    assert!(
        rig.collector.lookup_ticks() > 0,
        "no tick read TCP by lookups instead of a full dump"
    );
    // Idle again: left out again, bytes kept.
    rig.until("the pair to go quiet", |smp, _| {
        !listed(smp, c) && !listed(smp, s)
    });
    assert_eq!(bytes_of(&rig.agg, c), Some((123_456, 7_890)));

    // Closed: the destroy event ends it without any lookup; nothing more is counted.
    drop(client);
    rig.until("the client end to be gone", |_, agg| {
        bytes_of(agg, c).is_none()
    });
    let s_bytes = bytes_of(&rig.agg, s);
    assert!(s_bytes.is_none_or(|b| b == (7_890, 123_456)), "{s_bytes:?}");
}

#[test]
fn a_resync_walk_spread_over_ticks_keeps_idle_sockets_and_exact_bytes() {
    let mut rig = Rig::new(LinuxCollector::open().unwrap());
    assert!(rig.collector.caps().packet_bytes, "needs AF_PACKET (root)");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to = listener.local_addr().unwrap();
    // 300 idle pairs: 600 sockets, several datagrams of the walk.
    let idle: Vec<(TcpStream, TcpStream)> = (0..300)
        .map(|_| {
            let client = TcpStream::connect(to).unwrap();
            (client, listener.accept().unwrap().0)
        })
        .collect();
    let ends = |(c, s): &(TcpStream, TcpStream)| {
        let (ca, sa) = (c.local_addr().unwrap(), s.local_addr().unwrap());
        [(ca, sa), (sa, ca)]
    };
    let idle_ends: Vec<(SocketAddr, SocketAddr)> = idle.iter().flat_map(ends).collect();
    let mut client = TcpStream::connect(to).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let busy = (client.local_addr().unwrap(), server.local_addr().unwrap());

    rig.until(
        "every socket counted and the idle ones left out",
        |smp, agg| {
            idle_ends.iter().all(|e| !listed(smp, *e))
                && idle_ends.iter().all(|e| bytes_of(agg, *e) == Some((0, 0)))
        },
    );

    // A re-sync walk of about 50 sockets a tick, while bytes move on the busy pair.
    rig.collector.set_walk_slice(50);
    rig.collector.resync_soon();
    let (walks, resyncs) = (rig.collector.walk_ticks(), rig.collector.resyncs());
    let mut sent = 0u64;
    let mut chunk = vec![0u8; 10_000];
    for round in 0..100 {
        client.write_all(&chunk).unwrap();
        server.read_exact(&mut chunk).unwrap();
        sent += chunk.len() as u64;
        let sample = rig.tick();
        assert!(
            sample.tcp_gone.is_empty() || rig.collector.resyncs() > resyncs,
            "nothing is gone before the walk ends (round {round})"
        );
        if rig.collector.resyncs() > resyncs {
            break;
        }
    }
    assert!(rig.collector.resyncs() > resyncs, "the walk never ended");
    let slices = rig.collector.walk_ticks() - walks;
    assert!(
        slices >= 3,
        "the walk took {slices} ticks, expected several"
    );
    // Nothing was taken for gone, and the busy pair's bytes are exact.
    for end in &idle_ends {
        assert_eq!(bytes_of(&rig.agg, *end), Some((0, 0)), "{end:?} lost");
    }
    rig.until("exact bytes on the busy pair", |_, agg| {
        bytes_of(agg, busy) == Some((sent, 0))
    });
}

#[test]
fn an_idle_socket_changing_hands_shows_its_new_owner_without_waiting_for_a_resync() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut rig = Rig::new(LinuxCollector::open().unwrap());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to = listener.local_addr().unwrap();
    // Connects, waits, then forks: the child keeps the socket, the parent exits.
    let script = format!(
        "import os, socket, sys, time\n\
         s = socket.create_connection(('127.0.0.1', {}))\n\
         print(s.getsockname()[1], flush=True)\n\
         sys.stdin.readline()\n\
         if os.fork() == 0:\n\
         \x20   print(os.getpid(), flush=True)\n\
         \x20   time.sleep(60)\n\
         os._exit(0)\n",
        to.port()
    );
    let mut parent = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(parent.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let client: SocketAddr = (Ipv4Addr::LOCALHOST, line.trim().parse::<u16>().unwrap()).into();
    let (_server, _) = listener.accept().unwrap();
    let owns = |agg: &Aggregator, pid: u32| {
        agg.detail(pid).is_some_and(|d| {
            d.connections
                .iter()
                .any(|c| c.local == client && c.remote == Some(to))
        })
    };
    let parent_pid = parent.id();
    rig.until("the connection under its process", |smp, agg| {
        owns(agg, parent_pid) && !listed(smp, (client, to))
    });

    let resyncs = rig.collector.resyncs();
    parent.stdin.take().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let child: u32 = line.trim().parse().unwrap();
    parent.wait().unwrap();
    let moved = (0..100).any(|_| {
        rig.tick();
        owns(&rig.agg, child) && !owns(&rig.agg, parent_pid)
    });
    // SAFETY: kill(2) on the child this test forked (through python), by its pid.
    unsafe { libc::kill(child as libc::pid_t, libc::SIGKILL) };
    assert!(moved, "the socket never moved to the child {child}");
    assert_eq!(
        rig.collector.resyncs(),
        resyncs,
        "shown by a lookup, not by a re-sync"
    );
}

/// A process that closes a connection its peer keeps open leaves, in the kernel's table, a
/// TIME-WAIT minisocket reporting FIN-WAIT-2 (`ss`: `timer:(timewait,…) ino:0`): no owner,
/// no counters, no destroy event to come. Read as a connection it stood as an ownerless one
/// until re-syncs missed it — thousands on a host whose clients close first.
#[test]
fn a_connection_closed_first_leaves_no_ownerless_fin_wait_2_minisocket_behind() {
    let mut rig = Rig::new(LinuxCollector::open().unwrap());
    // The first sample is the baseline: what came before it is not counted.
    rig.tick();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let c = (client.local_addr().unwrap(), server.local_addr().unwrap());
    client.write_all(&[1; 4096]).unwrap();
    server.read_exact(&mut [0; 4096]).unwrap();
    rig.until("the client's 4096 bytes", |_, agg| {
        bytes_of(agg, c) == Some((4096, 0))
    });

    drop(client);
    let minisocket = || {
        let ss = std::process::Command::new("ss")
            .args([
                "-tanoH",
                "state",
                "fin-wait-2",
                "sport",
                "=",
                &format!(":{}", c.0.port()),
            ])
            .output()
            .expect("ss (iproute2)");
        String::from_utf8_lossy(&ss.stdout).contains("timewait")
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !minisocket() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(minisocket(), "no FIN-WAIT-2 minisocket to test with");
    // Its FIN's ACK arrived (a lookup of the tuple finds the minisocket); a re-sync lists
    // the whole table.
    rig.collector.resync_soon();
    for _ in 0..8 {
        let sample = rig.tick();
        assert!(!listed(&sample, c), "the minisocket was passed on");
    }
    assert!(bytes_of(&rig.agg, c).is_none(), "the connection is gone");
    drop(server);
}

/// A process that writes a large reply and closes at once leaves an orphan (no file, inode
/// 0) that keeps sending the queued bytes for as long as the peer takes to read them. Those
/// bytes are still that process's: the orphan keeps the owners it was last seen with, not
/// whatever the listener or connect fallbacks would name. Here they name nothing: the
/// listener is gone, the orphan is the accepting side, and no tracer saw who closed it (as
/// on a host without CAP_PERFMON).
#[test]
fn an_orphan_still_sending_after_close_keeps_its_owner() {
    let kernel = super::super::kernel::NetlinkKernel::open()
        .unwrap()
        .without_tracer();
    let mut rig = Rig::new(
        LinuxCollector::with_kernel(Box::new(kernel), "/proc", IfaceSource::default())
            .with_packet(PacketCounter::open(Keep::NonTcp)),
    );
    rig.tick();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let s = (server.local_addr().unwrap(), client.local_addr().unwrap());
    drop(listener);
    // Fill the client's receive queue and the server's send queue, then close.
    server.set_nonblocking(true).unwrap();
    let chunk = vec![5u8; 65_536];
    let mut written = 0usize;
    loop {
        match server.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    rig.until("the server's end under this process", |_, agg| {
        bytes_of(agg, s).is_some()
    });
    drop(server);
    // Read slowly: the orphan sends what was queued over several ticks, until its FIN is
    // acked and the kernel destroys it.
    let mut read = 0usize;
    let mut buf = vec![0u8; 65_536];
    let (mut orphan_ticks, mut closed) = (0, None);
    while read < written {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {read} of {written} bytes");
        read += n;
        if closed.is_none() && read % (256 * 1024) < n {
            let sample = rig.tick();
            let matches = |l: SocketAddr, r: Option<SocketAddr>| l == s.0 && r == Some(s.1);
            closed = sample
                .closed
                .iter()
                .find(|c| matches(c.local, c.remote))
                .cloned();
            if closed.is_none() {
                assert!(
                    bytes_of(&rig.agg, s).is_some(),
                    "the orphan left its process after {read} of {written} bytes"
                );
            }
            if sample
                .sockets
                .iter()
                .any(|x| matches(x.local, x.remote) && x.inode == 0)
            {
                orphan_ticks += 1;
            }
        }
    }
    // The last bytes, then its FIN: the destroy event names its owner one last time.
    for _ in 0..100 {
        if closed.is_some() {
            break;
        }
        closed = rig
            .tick()
            .closed
            .into_iter()
            .find(|c| c.local == s.0 && c.remote == Some(s.1));
    }
    let closed = closed.expect("no destroy event");
    let me = std::process::id();
    assert!(
        closed.owners.iter().all(|o| o.pid == me) && !closed.owners.is_empty(),
        "closed under {:?}",
        closed.owners
    );
    assert_eq!(closed.sent, written as u64);
    assert!(
        orphan_ticks >= 2,
        "the orphan was read in only {orphan_ticks} ticks"
    );
}
