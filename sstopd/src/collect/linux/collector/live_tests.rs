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
    let mut rig = Rig {
        collector: LinuxCollector::open().unwrap(),
        agg: Aggregator::new(CollectorMode::Netlink),
        t0: Instant::now(),
    };
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
