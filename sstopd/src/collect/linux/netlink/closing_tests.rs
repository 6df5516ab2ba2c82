//! The closing states loopback passes through too fast to see (FIN-WAIT-1, LAST-ACK):
//! held open by a veth pair between two namespaces whose link is cut before the FIN, so
//! it is never acknowledged. Root; namespaces and veths are named after this process and
//! removed by a guard.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use proto::{Proto, TcpState};

use super::*;

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}");
}

/// Two namespaces joined by a veth pair; deleted (with the pair) on drop.
struct Netns {
    a: String,
    b: String,
    veth_b: String,
}

impl Netns {
    fn new(tag: &str) -> Self {
        let pid = std::process::id();
        let (a, b) = (format!("nl{tag}a{pid}"), format!("nl{tag}b{pid}"));
        let (veth_a, veth_b) = (format!("nv{tag}a{pid}"), format!("nv{tag}b{pid}"));
        let guard = Netns {
            a: a.clone(),
            b: b.clone(),
            veth_b: veth_b.clone(),
        };
        ip(&["netns", "add", &a]);
        ip(&["netns", "add", &b]);
        ip(&[
            "link", "add", &veth_a, "netns", &a, "type", "veth", "peer", "name", &veth_b, "netns",
            &b,
        ]);
        ip(&["-n", &a, "addr", "add", "192.0.2.1/24", "dev", &veth_a]);
        ip(&["-n", &b, "addr", "add", "192.0.2.2/24", "dev", &veth_b]);
        ip(&["-n", &a, "link", "set", &veth_a, "up"]);
        ip(&["-n", &b, "link", "set", &veth_b, "up"]);
        guard
    }

    /// Cut the link: nothing crosses any more, so FINs stay unacknowledged.
    fn cut(&self) {
        ip(&["-n", &self.b, "link", "set", &self.veth_b, "down"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Run `f` with this thread inside namespace `name` (sockets made there stay there).
fn inside<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let own = File::open("/proc/thread-self/ns/net").unwrap();
    let target = File::open(format!("/run/netns/{name}")).unwrap();
    // SAFETY: setns on valid namespace fds; it only changes this thread's network namespace.
    assert_eq!(
        unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
    let out = f();
    // SAFETY: as above, back to where the thread was.
    assert_eq!(
        unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
    out
}

fn wait_for(
    diag: &mut SockDiag,
    local: SocketAddr,
    remote: SocketAddr,
    state: TcpState,
) -> DiagSocket {
    let start = Instant::now();
    loop {
        let sockets = diag.dump(Family::V4, Proto::Tcp).unwrap();
        let found = sockets
            .iter()
            .find(|s| s.local == local && s.remote == Some(remote));
        if let Some(s) = found.filter(|s| s.state == Some(state)) {
            return s.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{local} → {remote} never reached {state:?}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A connection B → A after `up` bytes client→server and `down` bytes back, with a
/// sock_diag socket in each namespace. The listener stays open so the accepted socket is
/// recognised as passive.
struct Connected {
    _listener: TcpListener,
    client: TcpStream,
    server: TcpStream,
    diag_a: SockDiag,
    diag_b: SockDiag,
}

fn connected(net: &Netns, up: usize, down: usize) -> Connected {
    let (listener, diag_a) = inside(&net.a, || {
        let l = TcpListener::bind("192.0.2.1:0").unwrap();
        (l, SockDiag::open().unwrap())
    });
    let (mut client, diag_b) = inside(&net.b, || {
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (c, SockDiag::open().unwrap())
    });
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(&vec![1u8; up]).unwrap();
    server.read_exact(&mut vec![0u8; up]).unwrap();
    server.write_all(&vec![2u8; down]).unwrap();
    client.read_exact(&mut vec![0u8; down]).unwrap();
    Connected {
        _listener: listener,
        client,
        server,
        diag_a,
        diag_b,
    }
}

/// LAST-ACK (server) and FIN-WAIT-1 (client) with exact payload, FIN not yet acked.
#[test]
fn netlink_unacked_fin_states_read_exact_payload() {
    std::thread::spawn(|| {
        // LAST-ACK: the client's FIN arrived (CLOSE-WAIT), then the link is cut and the
        // server's own FIN is never acked.
        let net = Netns::new("l");
        let mut x = connected(&net, 12_345, 54_321);
        let (c, s) = (
            x.client.local_addr().unwrap(),
            x.server.local_addr().unwrap(),
        );
        x.client.shutdown(Shutdown::Write).unwrap();
        wait_for(&mut x.diag_a, s, c, TcpState::CloseWait);
        net.cut();
        x.server.shutdown(Shutdown::Write).unwrap();
        let last_ack = wait_for(&mut x.diag_a, s, c, TcpState::LastAck);
        assert_eq!(last_ack.passive, Some(true));
        assert_eq!(
            (last_ack.payload_sent(), last_ack.payload_received()),
            (Some(54_321), Some(12_345)),
            "{:?}",
            last_ack.counters
        );
        drop(x);
        drop(net);

        // FIN-WAIT-1: the link is cut first, so the client's FIN is never acked.
        let net = Netns::new("f");
        let mut x = connected(&net, 7_777, 3_333);
        let (c, s) = (
            x.client.local_addr().unwrap(),
            x.server.local_addr().unwrap(),
        );
        net.cut();
        x.client.shutdown(Shutdown::Write).unwrap();
        let fin_wait1 = wait_for(&mut x.diag_b, c, s, TcpState::FinWait1);
        assert_eq!(fin_wait1.passive, Some(false));
        assert_eq!(
            (fin_wait1.payload_sent(), fin_wait1.payload_received()),
            (Some(7_777), Some(3_333)),
            "{:?}",
            fin_wait1.counters
        );
    })
    .join()
    .unwrap();
}
