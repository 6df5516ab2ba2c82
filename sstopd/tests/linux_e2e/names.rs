//! CASES B03, B04, B05 live: processes with odd names and command lines are listed, named
//! as a user would recognise them, and own their sockets' bytes.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::*;

/// Bytes each helper moves over its own loopback pair: up N and down N for the process.
const N: u64 = 300_000;

/// Start `exe odd.py N COMM_HEX [zombie]`, with an optional argv[0] and extra arguments.
fn odd(
    exe: &Path,
    comm: &[u8],
    zombie: bool,
    argv0: Option<&str>,
    extra: &[String],
) -> (Proc, u32) {
    let hex: String = comm.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = Command::new(exe);
    if let Some(a) = argv0 {
        cmd.arg0(a);
    }
    cmd.arg(script("odd.py"))
        .arg(N.to_string())
        .arg(hex)
        .arg(if zombie { "zombie" } else { "-" })
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = spawn_retrying(&mut cmd);
    let stdin = child.stdin.take();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut p = Proc { child, stdin, out };
    let line = p.line();
    let zpid = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    (p, zpid)
}

/// Lets `p` move its bytes while the monitor ticks, then ticks until `p` is listed with
/// both its ends' bytes; returns its row.
fn listed(m: &mut Monitor, p: &mut Proc) -> proto::Process {
    use std::io::Write;
    let pid = p.pid();
    m.tick();
    writeln!(p.stdin.as_mut().unwrap(), "go").unwrap();
    m.during(|| p.line());
    let ok = m.until(Duration::from_secs(5), |s| {
        s.processes.iter().any(|p| {
            p.pid == pid
                && within(p.traffic.up_bytes, N, 3.0)
                && within(p.traffic.down_bytes, N, 3.0)
        })
    });
    let row = m.last.processes.iter().find(|p| p.pid == pid).cloned();
    assert!(ok, "pid {pid} not listed with {N} B each way: {row:?}");
    row.unwrap()
}

#[test]
fn b03_comm_with_spaces_and_parens_is_listed_whole() {
    let _slot = shared_slot();
    let bin = Bin::new();
    // `) (` inside comm: a whitespace-splitting stat parser shifts every later field.
    let name = format!("w ird) (x{}", std::process::id() % 100_000);
    let (mut p, _) = odd(&bin.python(&name), b"", false, None, &[]);
    let mut m = Monitor::new();
    let row = listed(&mut m, &mut p);
    assert_eq!(row.name, name);
    assert_eq!(
        row.ppid,
        std::process::id(),
        "fields after the last ')' parsed"
    );
    assert_eq!((row.connections, row.listening), (2, 1));
}

#[test]
fn b04_cut_utf8_comm_is_named_from_the_exe() {
    let _slot = shared_slot();
    let bin = Bin::new();
    // 6 + 12 bytes: the kernel cuts comm at byte 15, inside the fifth 'ö' (lone 0xC3).
    let full = format!("{:05}-öööööö", std::process::id() % 100_000);
    let exe = bin.dir.path().join(&full);
    std::fs::copy("/usr/bin/python3", &exe).unwrap();
    let (mut p, _) = odd(&exe, b"", false, None, &[]);
    let comm = std::fs::read(format!("/proc/{}/comm", p.pid())).unwrap();
    assert_eq!(comm.len(), 16, "comm is 15 bytes + newline: {comm:?}");
    assert_eq!(comm[14], 0xC3, "cut inside a character");
    let mut m = Monitor::new();
    assert_eq!(listed(&mut m, &mut p).name, full);
}

#[test]
fn b04_non_utf8_comm_is_listed_lossily_without_collisions() {
    let _slot = shared_slot();
    let bin = Bin::new();
    let exe = bin.python(&name("nu8"));
    let tag = (std::process::id() % 100_000).to_string();
    // Two byte names that render the same: two rows, one per process, bytes not merged.
    let a = [b"ab\xff\xfe".as_slice(), tag.as_bytes()].concat();
    let b = [b"ab\xfe\xff".as_slice(), tag.as_bytes()].concat();
    let (mut pa, _) = odd(&exe, &a, false, None, &[]);
    let (mut pb, _) = odd(&exe, &b, false, None, &[]);
    let mut m = Monitor::new();
    let want = format!("ab\u{FFFD}\u{FFFD}{tag}");
    assert_eq!(listed(&mut m, &mut pa).name, want);
    assert_eq!(listed(&mut m, &mut pb).name, want);
}

#[test]
fn b05_rewritten_argv0_long_argv_and_zombie() {
    let _slot = shared_slot();
    let bin = Bin::new();
    let name = name("b05");
    let exe = bin.python(&name);
    // argv[0] with spaces, as pre-fork servers set it; a child left unreaped (zombie).
    let (mut nginx, zombie) = odd(&exe, b"", true, Some("nginx: worker process"), &[]);
    // One 8000-character argument.
    let long = vec!["a".repeat(8000)];
    let (mut longp, _) = odd(&exe, b"", false, None, &long);
    let mut m = Monitor::new();
    let row = listed(&mut m, &mut nginx);
    assert_eq!(row.name, name, "comm names the process");
    assert!(
        row.cmdline.starts_with("nginx: worker process "),
        "argv0 kept whole: {:?}",
        row.cmdline
    );
    let row = listed(&mut m, &mut longp);
    assert_eq!(row.name, name);
    assert!(row.cmdline.contains("aaaa"), "{:?}", row.cmdline);
    assert!(
        row.cmdline.len() < 8000,
        "a huge argv is cut for display: {} chars",
        row.cmdline.len()
    );
    // The zombie (state Z, empty fd dir) owns no sockets.
    let stat = std::fs::read_to_string(format!("/proc/{zombie}/stat")).unwrap();
    assert!(stat.contains(") Z "), "{stat}");
    assert!(
        m.last
            .processes
            .iter()
            .all(|p| p.pid != zombie || (p.connections, p.listening) == (0, 0)),
        "zombie owns sockets"
    );
}
