//! The tracer's bookkeeping on literal records: connect deferral, naming, fork/exit.

use std::time::{Duration, Instant};

use proto::{Proto, TcpState};

use super::format::{StateChange, parse_format};
use super::reader::{DEFER_TIMEOUT, Pending, Reader};

fn tracer() -> Reader {
    let layout = parse_format(
        "\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;",
    )
    .unwrap();
    Reader::new(Vec::new(), layout)
}

fn change(skaddr: u64, local: &str, old: TcpState, new: TcpState) -> Pending {
    Pending::Change {
        // pid/tid of whatever task ran; the tests set them per call below.
        pid: 0,
        tid: 0,
        change: StateChange {
            skaddr,
            proto: Proto::Tcp,
            local: local.parse().unwrap(),
            remote: "127.0.0.1:8080".parse().unwrap(),
            old_state: old,
            new_state: new,
        },
    }
}

fn by(pid: u32, item: Pending) -> Pending {
    match item {
        Pending::Change { change, .. } => Pending::Change {
            pid,
            tid: pid,
            change,
        },
        other => other,
    }
}

fn comm(tid: u32, name: &[u8]) -> Pending {
    Pending::Comm {
        tid,
        comm: name.to_vec(),
    }
}

#[test]
fn connect_waits_for_its_port_and_names_later_events() {
    let mut t = tracer();
    let mut out = Vec::new();
    // Names come from the ring, so no /proc lookup happens for these fake pids.
    t.apply(1, comm(4_000_001, b"nlshort"), &mut out);
    t.apply(1, comm(4_000_002, b"bystander"), &mut out);
    let syn = change(7, "127.0.0.1:0", TcpState::Close, TcpState::SynSent);
    t.apply(2, by(4_000_001, syn), &mut out);
    assert!(out.is_empty(), "held until the port is known");
    let est = change(
        7,
        "127.0.0.1:40000",
        TcpState::SynSent,
        TcpState::Established,
    );
    t.apply(3, by(4_000_002, est), &mut out);
    assert_eq!(out.len(), 2);
    assert!(out[0].is_connect());
    assert_eq!(out[0].local.port(), 40000);
    assert_eq!(
        (out[0].pid, out[0].comm.as_slice()),
        (4_000_001, &b"nlshort"[..])
    );
    assert_eq!(out[0].time_ns, 2);
    // The softirq event is credited to the connecting process, not the bystander.
    assert_eq!(
        (out[1].pid, out[1].comm.as_slice()),
        (4_000_001, &b"nlshort"[..])
    );
    // After CLOSE the socket address may be reused by someone else.
    let close = change(7, "127.0.0.1:40000", TcpState::Established, TcpState::Close);
    t.apply(4, by(4_000_001, close), &mut out);
    assert!(t.connectors.is_empty());
}

#[test]
fn a_connect_without_follow_up_is_released_after_a_few_drains() {
    let mut t = tracer();
    let mut out = Vec::new();
    t.apply(1, comm(4_000_003, b"quick"), &mut out);
    let syn = change(9, "127.0.0.1:0", TcpState::Close, TcpState::SynSent);
    t.apply(2, by(4_000_003, syn), &mut out);
    assert!(out.is_empty());
    assert!(
        t.pump(Instant::now()).is_empty(),
        "still waiting for the port"
    );
    let released = t.pump(Instant::now() + DEFER_TIMEOUT + Duration::from_millis(1));
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].local.port(), 0);
    assert_eq!(released[0].comm, b"quick");
}

#[test]
fn fork_inherits_and_exit_forgets_names() {
    let mut t = tracer();
    let mut out = Vec::new();
    t.apply(1, comm(4_000_010, b"parent"), &mut out);
    t.apply(1, comm(4_000_011, b"stale"), &mut out);
    let fork = |tid, ptid| Pending::Fork {
        tid,
        ptid,
        ppid: ptid,
    };
    t.apply(2, fork(4_000_012, 4_000_010), &mut out);
    assert_eq!(
        t.comms.get(&4_000_012).map(Vec::as_slice),
        Some(&b"parent"[..])
    );
    // A recycled tid whose parent we never saw must not keep the old name.
    t.apply(3, fork(4_000_011, 4_000_099), &mut out);
    assert!(!t.comms.contains_key(&4_000_011));
    t.apply(4, Pending::Exit { tid: 4_000_012 }, &mut out);
    assert!(!t.comms.contains_key(&4_000_012));
    assert!(out.is_empty());
}
