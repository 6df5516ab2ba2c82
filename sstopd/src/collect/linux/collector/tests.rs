//! The assembly over a scripted kernel and a fixture /proc tree.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::{Arc, Mutex};

use proto::{Proto, TcpState};

use super::*;

#[derive(Default)]
struct Script {
    dumps: VecDeque<Vec<SocketSample>>,
    closed: VecDeque<Vec<ClosedSocket>>,
    connects: VecDeque<Vec<ConnectRecord>>,
}

#[derive(Clone, Default)]
struct FakeKernel(Arc<Mutex<Script>>);

impl Kernel for FakeKernel {
    fn dump(&mut self, _notes: &mut Vec<Note>) -> Result<Vec<SocketSample>, CollectError> {
        Ok(self.0.lock().unwrap().dumps.pop_front().unwrap_or_default())
    }
    fn drain_closed(&mut self, _notes: &mut Vec<Note>) -> Vec<ClosedSocket> {
        self.0
            .lock()
            .unwrap()
            .closed
            .pop_front()
            .unwrap_or_default()
    }
    fn drain_connects(&mut self, _notes: &mut Vec<Note>) -> Vec<ConnectRecord> {
        self.0
            .lock()
            .unwrap()
            .connects
            .pop_front()
            .unwrap_or_default()
    }
    fn reports_closed(&self) -> bool {
        true
    }
}

fn add_pid(root: &Path, pid: u32, comm: &str, start: u64, inodes: &[u64]) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(dir.join("fd")).unwrap();
    std::fs::write(
        dir.join("stat"),
        format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n"),
    )
    .unwrap();
    std::fs::write(dir.join("status"), "Uid:\t0\t0\t0\t0\n").unwrap();
    std::fs::write(dir.join("cmdline"), format!("{comm}\0")).unwrap();
    for (i, inode) in inodes.iter().enumerate() {
        symlink(
            format!("socket:[{inode}]"),
            dir.join(format!("fd/{}", i + 3)),
        )
        .unwrap();
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn tcp(
    id: u64,
    local: &str,
    remote: Option<&str>,
    state: TcpState,
    inode: u64,
    bytes: u64,
) -> SocketSample {
    SocketSample {
        id,
        proto: Proto::Tcp,
        local: sa(local),
        remote: remote.map(sa),
        state: Some(state),
        uid: 0,
        inode,
        owners: Vec::new(),
        sent: Some(bytes),
        received: Some(bytes),
    }
}

fn closed(id: u64, local: &str, remote: &str, sent: u64) -> ClosedSocket {
    ClosedSocket {
        id,
        proto: Proto::Tcp,
        local: sa(local),
        remote: Some(sa(remote)),
        sent,
        received: 0,
        owners: Vec::new(),
    }
}

fn setup() -> (tempfile::TempDir, FakeKernel, LinuxCollector) {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeKernel::default();
    let ifaces = IfaceSource {
        proc_root: root.path().join("none"),
        sys_root: root.path().join("none"),
    };
    let c = LinuxCollector::with_kernel(Box::new(fake.clone()), root.path(), ifaces);
    (root, fake, c)
}

fn key(pid: u32, start: u64) -> ProcKey {
    ProcKey {
        pid,
        start_time: start,
    }
}

#[test]
fn live_sockets_get_owners_and_processes_from_proc() {
    let (root, fake, mut c) = setup();
    add_pid(root.path(), 100, "server", 7, &[11, 12]);
    fake.0.lock().unwrap().dumps.push_back(vec![
        tcp(1, "0.0.0.0:8080", None, TcpState::Listen, 11, 0),
        tcp(
            2,
            "10.0.0.1:8080",
            Some("10.0.0.2:5000"),
            TcpState::Established,
            12,
            10,
        ),
        tcp(
            3,
            "10.0.0.1:9",
            Some("10.0.0.2:9"),
            TcpState::TimeWait,
            0,
            0,
        ),
    ]);
    let s = c.collect().unwrap();
    assert_eq!(s.sockets[0].owners, vec![key(100, 7)]);
    assert_eq!(s.sockets[1].owners, vec![key(100, 7)]);
    assert!(s.sockets[2].owners.is_empty());
    assert_eq!(s.processes.len(), 1);
    assert_eq!(s.processes[0].name, "server");
    assert!(s.processes[0].alive);
}

#[test]
fn closed_sockets_are_named_by_cookie_listener_connector_or_nobody() {
    let (root, fake, mut c) = setup();
    add_pid(root.path(), 100, "server", 7, &[11]);
    add_pid(root.path(), 200, "client", 8, &[21]);
    {
        let mut k = fake.0.lock().unwrap();
        k.dumps.push_back(vec![
            tcp(1, "0.0.0.0:8080", None, TcpState::Listen, 11, 0),
            tcp(
                2,
                "10.0.0.1:40000",
                Some("10.0.0.2:80"),
                TcpState::Established,
                21,
                5,
            ),
        ]);
        k.dumps
            .push_back(vec![tcp(1, "0.0.0.0:8080", None, TcpState::Listen, 11, 0)]);
        // A short-lived connector that exited before anyone could read /proc.
        k.connects.push_back(vec![]);
        k.connects.push_back(vec![ConnectRecord {
            pid: 300,
            comm: b"quick".to_vec(),
            local: sa("10.0.0.1:40001"),
            remote: sa("10.0.0.3:443"),
        }]);
        k.closed.push_back(vec![]);
        k.closed.push_back(vec![
            closed(2, "10.0.0.1:40000", "10.0.0.2:80", 100),
            closed(5, "10.0.0.1:8080", "10.0.0.9:6000", 200),
            closed(6, "10.0.0.1:40001", "10.0.0.3:443", 300),
            closed(7, "10.0.0.1:40002", "10.0.0.4:443", 400),
        ]);
    }
    c.collect().unwrap();
    // The client exits; its socket's bytes still belong to it.
    std::fs::remove_dir_all(root.path().join("200")).unwrap();
    let s = c.collect().unwrap();
    let owners: Vec<Vec<ProcKey>> = s.closed.iter().map(|c| c.owners.clone()).collect();
    assert_eq!(
        owners,
        vec![vec![key(200, 8)], vec![key(100, 7)], vec![key(300, 0)]]
    );
    let quick = s.processes.iter().find(|p| p.key.pid == 300).unwrap();
    assert_eq!((quick.name.as_str(), quick.alive), ("quick", false));
    let client = s.processes.iter().find(|p| p.key.pid == 200).unwrap();
    assert_eq!((client.name.as_str(), client.alive), ("client", false));
}

#[test]
fn a_socket_proc_cannot_name_falls_back_to_its_listener() {
    let (root, fake, mut c) = setup();
    add_pid(root.path(), 100, "server", 7, &[11]);
    fake.0.lock().unwrap().dumps.push_back(vec![
        tcp(1, "0.0.0.0:8080", None, TcpState::Listen, 11, 0),
        // Accepted, bytes moved, the holder already gone from /proc.
        tcp(
            2,
            "10.0.0.1:8080",
            Some("10.0.0.2:5000"),
            TcpState::Established,
            99,
            10,
        ),
    ]);
    let s = c.collect().unwrap();
    assert_eq!(s.sockets[1].owners, vec![key(100, 7)]);
}

#[test]
fn unnamed_closed_sockets_wait_for_a_late_connect_then_go_unattributed() {
    let (_root, fake, mut c) = setup();
    {
        let mut k = fake.0.lock().unwrap();
        k.closed.push_back(vec![
            closed(7, "10.0.0.1:40002", "10.0.0.4:443", 400),
            closed(8, "10.0.0.1:40003", "10.0.0.5:443", 500),
        ]);
        // First drain (before the dump) empty, second (after the destroy events) empty,
        // then the record for socket 7 shows up one cycle late.
        k.connects.push_back(vec![]);
        k.connects.push_back(vec![]);
        k.connects.push_back(vec![ConnectRecord {
            pid: 400,
            comm: b"late".to_vec(),
            local: sa("10.0.0.1:40002"),
            remote: sa("10.0.0.4:443"),
        }]);
    }
    let s = c.collect().unwrap();
    assert!(s.closed.is_empty(), "held back: {:?}", s.closed);
    let s = c.collect().unwrap();
    assert_eq!(s.closed.len(), 1);
    assert_eq!(
        (s.closed[0].id, s.closed[0].owners.clone()),
        (7, vec![key(400, 0)])
    );
    let s = c.collect().unwrap();
    assert!(s.closed.is_empty(), "8 still waits: {:?}", s.closed);
    let s = c.collect().unwrap();
    assert_eq!(s.closed.len(), 1);
    assert_eq!((s.closed[0].id, s.closed[0].sent), (8, 500));
    assert!(s.closed[0].owners.is_empty());
}

#[test]
fn full_dumps_back_off_while_marks_explain_every_moved_byte() {
    let pair =
        |l: &str, r: &str| -> (SocketAddr, SocketAddr) { (l.parse().unwrap(), r.parse().unwrap()) };
    let (a, b) = (
        pair("10.0.0.1:5000", "10.0.0.2:80"),
        pair("10.0.0.1:5001", "10.0.0.2:80"),
    );
    let marks: FastSet<(SocketAddr, SocketAddr)> = [a].into_iter().collect();
    // Only the marked socket moved (and a listener, which has no remote, did not count).
    let moved_a = [(a.0, Some(a.1))];
    assert!(still_unmarked(&marks, &moved_a).is_empty());
    let every = next_full_every(FULL_DUMP_EVERY, Some(0));
    assert_eq!(every, FULL_DUMP_EVERY * 2);
    assert_eq!(next_full_every(every, Some(0)), FULL_DUMP_EVERY * 4);
    assert_eq!(next_full_every(FULL_DUMP_MAX, Some(0)), FULL_DUMP_MAX);
    // Bytes moved on a socket the tap never marked (NAT, IPsec): back to the base interval.
    let moved_b = [(b.0, Some(b.1)), (a.0, Some(a.1))];
    assert_eq!(still_unmarked(&marks, &moved_b), [moved_b[0]]);
    assert_eq!(next_full_every(FULL_DUMP_MAX, Some(1)), FULL_DUMP_EVERY);
    // No marks to judge by (forced or unscheduled dump): the base interval.
    assert_eq!(next_full_every(FULL_DUMP_MAX, None), FULL_DUMP_EVERY);
}
