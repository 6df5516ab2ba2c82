//! [`NetlinkKernel`] over the real kernel (root, as CI runs).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};

use super::*;

#[test]
fn refreshes_during_a_walk_never_hand_on_counters_older_than_the_last_read() {
    let mut kernel = NetlinkKernel::open().unwrap();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut pairs: Vec<(TcpStream, TcpStream)> = (0..300)
        .map(|_| {
            let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            (client, listener.accept().unwrap().0)
        })
        .collect();
    let mut notes = Vec::new();
    kernel.dump(&mut notes).unwrap();
    assert!(
        kernel.begin_walk(50),
        "walks need the one-walk TCP dump and lookups"
    );
    // Our server ends' received bytes in a refresh.
    let servers = |r: &Refreshed| -> Vec<u64> {
        r.sockets
            .iter()
            .filter(|s| s.proto == Proto::Tcp && s.local.port() == port && s.remote.is_some())
            .map(|s| s.received.unwrap())
            .collect()
    };
    let first = kernel.refresh(&[], &mut notes).unwrap().unwrap();
    assert!(!first.walk_done);
    let mut total = servers(&first).len();
    let mut round = 0u64;
    loop {
        // Every pair moves 1,000 bytes between two refreshes, so any counter read
        // before this point is behind. The datagram the kernel built at the end of the
        // last refresh is such a read: its sockets must be read again, not handed on.
        round += 1;
        for (client, server) in &mut pairs {
            client.write_all(&[1; 1000]).unwrap();
            server.read_exact(&mut [0; 1000]).unwrap();
        }
        let r = kernel.refresh(&[], &mut notes).unwrap().unwrap();
        let got = servers(&r);
        assert!(
            got.iter().all(|&n| n == round * 1000),
            "round {round}: a socket handed on with old counters: {got:?}"
        );
        total += got.len();
        if r.walk_done {
            break;
        }
        assert!(round < 100, "the walk never ended");
    }
    assert!(
        round >= 3,
        "{round} refreshes for 600 sockets in slices of 50"
    );
    assert!(total >= 300, "every server end listed: {total}");
}
