//! AF_PACKET capture end to end, as root: real sockets, real traffic of known size.
#![cfg(target_os = "linux")]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use proto::Proto;
use sstopd::collect::linux::packet::flows::{Batch, Dir};
use sstopd::collect::linux::packet::{Capture, Keep};

/// Take batches until `done` holds over the sum, or fail after `limit`.
fn collect_until(cap: &Capture, limit: Duration, done: impl Fn(&Batch) -> bool) -> Batch {
    let start = Instant::now();
    let mut total = Batch::default();
    while start.elapsed() < limit {
        if let Some(b) = cap.take(Duration::from_millis(200)) {
            total.merge(b);
        }
        if done(&total) {
            break;
        }
    }
    total
}

#[test]
fn loopback_udp_is_counted_once_per_frame() {
    let cap = Capture::start(Keep::NonTcp).unwrap();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (rxa, txa) = (rx.local_addr().unwrap(), tx.local_addr().unwrap());
    let buf = [7u8; 1000];
    for _ in 0..100 {
        tx.send_to(&buf, rxa).unwrap();
    }
    let ours = |b: &Batch| -> u64 {
        b.flows
            .iter()
            .filter(|(k, _)| k.proto == Proto::Udp && k.src == txa && k.dst == rxa)
            .map(|(k, v)| {
                assert_eq!(k.dir, Dir::Loop);
                *v
            })
            .sum()
    };
    let b = collect_until(&cap, Duration::from_secs(5), |b| ours(b) >= 100_000);
    std::thread::sleep(Duration::from_millis(100));
    let mut b = b;
    if let Some(more) = cap.take(Duration::from_millis(200)) {
        b.merge(more);
    }
    assert_eq!(ours(&b), 100_000);
}
