//! What the target of a kill request is: identity (start time), owner (real uid),
//! name, and whether it is a kernel thread or already exited. The parsers are plain
//! functions over text, compiled and tested on every OS; only the lookup is per OS.

use thiserror::Error;

/// The process a request names, as the kernel describes it right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub pid: u32,
    pub ppid: u32,
    /// Linux: clock ticks since boot (`stat` field 22); macOS: µs since the epoch.
    pub start_time: u64,
    /// Real uid: who started the process, not who it runs as after setuid.
    pub real_uid: u32,
    /// Raw comm bytes (may be cut at 15 bytes, may not be UTF-8).
    pub comm: Vec<u8>,
    pub kernel_thread: bool,
    /// Exited but not yet reaped by its parent: a signal would do nothing.
    pub zombie: bool,
}

impl Target {
    /// The name for people: comm, lossy (B04: bytes that are not UTF-8 become U+FFFD).
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.comm).into_owned()
    }
}

#[derive(Debug, Error)]
pub enum TargetError {
    /// The process exited (ENOENT/ESRCH while reading it).
    #[error("process exited")]
    Gone,
    #[error("cannot read {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {what}: {reason}")]
    Parse { what: String, reason: &'static str },
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    #[error("{0}")]
    Unsupported(&'static str),
}

impl TargetError {
    fn io(what: impl Into<String>, source: std::io::Error) -> TargetError {
        match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => TargetError::Gone,
            _ => TargetError::Io {
                what: what.into(),
                source,
            },
        }
    }
}

/// `PF_KTHREAD` in the `flags` field of `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
const PF_KTHREAD: u64 = 0x0020_0000;
/// kthreadd: parent of every kernel thread.
#[cfg(target_os = "linux")]
const KTHREADD_PID: u32 = 2;

/// The fields of `/proc/<pid>/stat` a kill decision needs.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: Vec<u8>,
    pub state: u8,
    pub ppid: u32,
    pub flags: u64,
    pub start_time: u64,
}

/// Parse `/proc/<pid>/stat` with the collector's parser (one parser for the whole
/// daemon): comm may hold spaces, `(` and `)` (B03), so fields are split only after
/// the **last** `)`; comm stays bytes (B04).
#[cfg(target_os = "linux")]
pub fn parse_stat(raw: &[u8]) -> Result<Stat, &'static str> {
    let st = crate::collect::linux::procmap::parse::parse_stat(raw).ok_or("malformed stat line")?;
    Ok(Stat {
        comm: st.comm,
        state: st.state,
        ppid: st.ppid,
        flags: u64::from(st.flags),
        start_time: st.start_time,
    })
}

#[cfg(target_os = "linux")]
impl Stat {
    pub fn is_kernel_thread(&self, pid: u32) -> bool {
        self.flags & PF_KTHREAD != 0 || pid == KTHREADD_PID || self.ppid == KTHREADD_PID
    }

    /// `Z` zombie, `X` dead: nothing left to signal.
    pub fn has_exited(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Real uid from `/proc/<pid>/status` (the collector's parser): the first number on
/// the `Uid:` line (real, effective, saved, filesystem).
#[cfg(target_os = "linux")]
pub fn parse_status_real_uid(status: &str) -> Result<u32, &'static str> {
    crate::collect::linux::procmap::parse::parse_status_uid(status).ok_or("no readable Uid: line")
}

/// `Tgid:` from `/proc/<pid>/status`: the process a thread id belongs to.
pub fn parse_status_tgid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

/// The process `tid` is a thread of, when `tid` is a thread id and not a process id.
#[cfg(target_os = "linux")]
pub fn owning_process(tid: u32) -> Option<u32> {
    let status = std::fs::read(format!("/proc/{tid}/status")).ok()?;
    parse_status_tgid(&String::from_utf8_lossy(&status)).filter(|&tgid| tgid != tid)
}

#[cfg(not(target_os = "linux"))]
pub fn owning_process(_tid: u32) -> Option<u32> {
    None
}

/// Read the target from `/proc`. Call it only after the pidfd is open: then, if the
/// signal later reaches the process, it is the one these files described.
#[cfg(target_os = "linux")]
pub fn inspect(pid: u32) -> Result<Target, TargetError> {
    let stat_path = format!("/proc/{pid}/stat");
    let raw = std::fs::read(&stat_path).map_err(|e| TargetError::io(&stat_path, e))?;
    let stat = parse_stat(&raw).map_err(|reason| TargetError::Parse {
        what: stat_path,
        reason,
    })?;
    let status_path = format!("/proc/{pid}/status");
    // Bytes, not a String: the `Name:` line carries comm, which need not be UTF-8 (B04).
    let status = std::fs::read(&status_path).map_err(|e| TargetError::io(&status_path, e))?;
    let real_uid = parse_status_real_uid(&String::from_utf8_lossy(&status)).map_err(|reason| {
        TargetError::Parse {
            what: status_path,
            reason,
        }
    })?;
    Ok(Target {
        pid,
        ppid: stat.ppid,
        start_time: stat.start_time,
        real_uid,
        kernel_thread: stat.is_kernel_thread(pid),
        zombie: stat.has_exited(),
        comm: stat.comm,
    })
}

/// Read the target from the kernel (`proc_pidinfo`). Start time is µs since the epoch,
/// the same unit the macOS collector puts in `ProcKey::start_time`.
#[cfg(target_os = "macos")]
pub fn inspect(pid: u32) -> Result<Target, TargetError> {
    let info = macos_bsdinfo(pid)?;
    let comm: Vec<u8> = info
        .pbi_comm
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(Target {
        pid,
        ppid: info.pbi_ppid,
        start_time: macos_start_time(&info),
        real_uid: info.pbi_ruid,
        comm,
        // pid 0 (kernel_task) is the only kernel process; it is refused by pid.
        kernel_thread: pid == 0,
        // SZOMB = 5 in <sys/proc.h>.
        zombie: info.pbi_status == 5,
    })
}

/// Process start time on macOS in µs since the epoch. Must agree with the macOS
/// collector's `ProcKey::start_time` (`collect::macos::start_time`, same fields, same
/// formula); this is the only place kill reads it.
#[cfg(target_os = "macos")]
pub fn macos_start_time(info: &libc::proc_bsdinfo) -> u64 {
    info.pbi_start_tvsec
        .saturating_mul(1_000_000)
        .saturating_add(info.pbi_start_tvusec)
}

#[cfg(target_os = "macos")]
fn macos_bsdinfo(pid: u32) -> Result<libc::proc_bsdinfo, TargetError> {
    let what = format!("proc_pidinfo({pid})");
    let cpid = libc::c_int::try_from(pid).map_err(|_| TargetError::Gone)?;
    // SAFETY: proc_bsdinfo is plain old data; all-zero is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: the buffer is a valid, writable proc_bsdinfo of `size` bytes.
    let n = unsafe {
        libc::proc_pidinfo(
            cpid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    if n == size {
        return Ok(info);
    }
    let err = std::io::Error::last_os_error();
    if n <= 0 {
        return Err(TargetError::io(what, err));
    }
    Err(TargetError::Parse {
        what,
        reason: "short proc_bsdinfo",
    })
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn inspect(_pid: u32) -> Result<Target, TargetError> {
    Err(TargetError::Unsupported(
        "this daemon cannot inspect processes on this OS",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    // B03, captured: comm `we ird) (x` with a space and a ')' inside.
    const WEIRD: &[u8] = b"13479 (we ird) (x) S 13476 13472 2837 0 -1 4194304 118 0 0 0 0 0 0 0 20 0 1 0 85960 2990080 395 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_fields_come_after_the_last_paren() {
        let st = parse_stat(WEIRD).unwrap();
        assert_eq!(st.comm, b"we ird) (x");
        assert_eq!(st.state, b'S');
        assert_eq!(st.ppid, 13476);
        assert_eq!(st.flags, 4_194_304);
        assert_eq!(st.start_time, 85_960);
        assert!(!st.is_kernel_thread(13479));
        assert!(!st.has_exited());
    }

    // B04: comm bytes that are not UTF-8 stay bytes; the name renders lossily.
    #[test]
    fn non_utf8_comm_is_kept_as_bytes() {
        let line =
            b"4242 (ab\xff\xfecd) S 1 4242 4242 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.comm, b"ab\xff\xfecd");
        assert_eq!(st.start_time, 777);
        let t = Target {
            pid: 4242,
            ppid: 1,
            start_time: 777,
            real_uid: 0,
            comm: st.comm,
            kernel_thread: false,
            zombie: false,
        };
        assert_eq!(t.name(), "ab\u{fffd}\u{fffd}cd");
    }

    // A comm cut inside a UTF-8 character (B04): `process-name-t` + lone 0xC3.
    #[test]
    fn comm_cut_mid_character_renders_lossily() {
        let line = b"9 (process-name-t\xc3) R 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        let st = parse_stat(line).unwrap();
        assert_eq!(String::from_utf8_lossy(&st.comm), "process-name-t\u{fffd}");
        assert_eq!(st.state, b'R');
    }

    #[test]
    fn kernel_threads_are_recognised() {
        // kthreadd itself: pid 2, ppid 0, PF_KTHREAD set.
        let kthreadd =
            parse_stat(b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0")
                .unwrap();
        assert!(kthreadd.is_kernel_thread(2));
        // A worker: ppid 2 and PF_KTHREAD.
        let worker =
            parse_stat(b"57 (kworker/0:1H) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 0 -20 1 0 31 0 0")
                .unwrap();
        assert!(worker.is_kernel_thread(57));
        // The flag alone is enough (a kernel thread reparented elsewhere).
        let flag_only =
            parse_stat(b"99 (x) S 5 0 0 0 -1 2097152 0 0 0 0 0 0 0 0 0 0 1 0 9 0 0").unwrap();
        assert!(flag_only.is_kernel_thread(99));
    }

    #[test]
    fn zombies_have_exited() {
        let z = parse_stat(b"77 (python3) Z 70 70 70 0 -1 4227140 0 0 0 0 0 0 0 0 20 0 1 0 88 0 0")
            .unwrap();
        assert!(z.has_exited());
    }

    #[test]
    fn bad_stat_lines_are_errors_not_panics() {
        for raw in [
            &b""[..],
            b"12 sleep S 1",
            b"12 (sleep",
            b"12 )sleep( S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"12 (sleep) S 1 1",
            b"12 (sleep) S x 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"12 (sleep) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5",
            b"12 (sleep) \xff 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
        ] {
            assert!(
                parse_stat(raw).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn real_uid_is_the_first_uid_field() {
        let status = "Name:\tpasswd\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_status_real_uid(status), Ok(1000));
        assert!(parse_status_real_uid("Name:\tx\n").is_err());
        assert!(parse_status_real_uid("Uid:\t\n").is_err());
        assert!(parse_status_real_uid("Uid:\tabc\t0\n").is_err());
    }

    // B04: the Name: line of status is raw comm bytes; the uid must still be found.
    #[test]
    fn real_uid_when_the_name_is_not_utf8() {
        let raw = b"Name:\tab\xff\xfecd\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t64102\t64102\t64102\t64102\n";
        assert_eq!(
            parse_status_real_uid(&String::from_utf8_lossy(raw)),
            Ok(64_102)
        );
    }

    #[test]
    fn tgid_from_status() {
        assert_eq!(
            parse_status_tgid("Name:\tx\nTgid:\t812\nPid:\t813\n"),
            Some(812)
        );
        assert_eq!(parse_status_tgid("Name:\tx\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn threads_know_their_process() {
        let me = std::process::id();
        assert_eq!(owning_process(me), None);
        let tid = std::thread::spawn(|| rustix::thread::gettid().as_raw_nonzero().get() as u32)
            .join()
            .unwrap();
        // The thread has ended; only a live thread shows its process.
        assert!(owning_process(tid).is_none_or(|p| p == me));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn inspect_reads_this_process() {
        let me = inspect(std::process::id()).unwrap();
        assert_eq!(me.real_uid, rustix::process::getuid().as_raw());
        assert!(!me.kernel_thread && !me.zombie);
        assert!(me.start_time > 0);
        // pid 2 is kthreadd on every Linux with a visible init pid namespace.
        let kthreadd = inspect(2).unwrap();
        assert!(kthreadd.kernel_thread);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn inspect_of_a_missing_pid_is_gone() {
        // pid_max is at most 2^22; this pid cannot exist.
        assert!(matches!(inspect(u32::MAX - 1), Err(TargetError::Gone)));
    }
}
