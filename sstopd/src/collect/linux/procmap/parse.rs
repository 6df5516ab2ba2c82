//! Pure parsers for `/proc/<pid>/{stat,status,cmdline,fd/*}` contents.
//! Everything is bytes in, plain values out; odd content gives `None`, never a panic.

/// The fields of `/proc/<pid>/stat` the collector needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// Raw comm bytes (at most 15, may contain spaces, `)` and non-UTF-8 bytes).
    pub comm: Vec<u8>,
    pub state: u8,
    pub ppid: u32,
    /// Field 9: per-process flags (PF_*).
    pub flags: u32,
    /// Field 22: start time in clock ticks since boot.
    pub start_time: u64,
}

/// Parse a stat line. The comm sits between the first `(` and the LAST `)`;
/// everything after that `)` is split on spaces (B03).
pub fn parse_stat(line: &[u8]) -> Option<Stat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = std::str::from_utf8(&line[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = line[open + 1..close].to_vec();
    let rest = std::str::from_utf8(&line[close + 1..]).ok()?;
    // rest starts at field 3 (state); field n is rest[n - 3].
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let state = *fields.first()?.as_bytes().first()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let flags = fields.get(6)?.parse().ok()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        flags,
        start_time,
    })
}

/// Real uid from `/proc/<pid>/status` (`Uid:\treal\teffective\tsaved\tfs`).
pub fn parse_status_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// Display limit for command lines: an 8000-character argv must not bloat every frame (B05).
pub const CMDLINE_MAX: usize = 4096;

/// Command line for display: NUL-separated args joined with spaces, lossy UTF-8,
/// cut to [`CMDLINE_MAX`] bytes on a character boundary with a trailing `…`.
pub fn display_cmdline(raw: &[u8]) -> String {
    let trimmed = raw.strip_suffix(b"\0").unwrap_or(raw);
    let joined: Vec<u8> = trimmed
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    let text = String::from_utf8_lossy(&joined);
    if text.len() <= CMDLINE_MAX {
        return text.into_owned();
    }
    let mut cut = CMDLINE_MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = text[..cut].to_string();
    out.push('…');
    out
}

/// argv[0] as raw bytes (up to the first NUL).
pub fn argv0(raw: &[u8]) -> &[u8] {
    raw.split(|&b| b == 0).next().unwrap_or_default()
}

/// The part of a path after its last `/`.
pub fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Longest comm the kernel keeps (TASK_COMM_LEN - 1): a comm this long was probably cut.
pub const COMM_MAX: usize = 15;

/// PF_KTHREAD in the stat flags.
pub const PF_KTHREAD: u32 = 0x0020_0000;

impl Stat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// The name shown for a process (B04, B05):
/// - kernel thread → `[comm]` (an exiting process or a zombie also has an empty
///   cmdline but keeps its plain comm);
/// - comm of exactly 15 bytes (cut by the kernel) → argv[0]'s or the exe's basename when it
///   starts with those bytes, so `process-name-töööö` is not shown as `process-name-t�`;
/// - otherwise comm, lossy UTF-8.
pub fn display_name(comm: &[u8], cmdline: &[u8], exe: Option<&[u8]>, kthread: bool) -> String {
    if kthread {
        return format!("[{}]", String::from_utf8_lossy(comm));
    }
    if comm.len() == COMM_MAX {
        let arg = basename(argv0(cmdline));
        let candidates = [Some(arg), exe.map(basename)];
        for name in candidates.into_iter().flatten() {
            if name.len() > comm.len() && name.starts_with(comm) {
                return String::from_utf8_lossy(name).into_owned();
            }
        }
    }
    String::from_utf8_lossy(comm).into_owned()
}

/// Inode of an fd link target `socket:[12345]`; `None` for anything else.
pub fn socket_inode(target: &[u8]) -> Option<u64> {
    let inner = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b03_stat_with_spaces_and_parens_in_comm() {
        let line = b"13479 (we ird) (x) S 13476 13472 2837 0 -1 4194304 118 0 0 0 0 0 0 0 20 0 1 0 85960 2990080 395 18446744073709551615 1 1 0\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.pid, 13479);
        assert_eq!(st.comm, b"we ird) (x");
        assert_eq!(st.state, b'S');
        assert_eq!(st.ppid, 13476);
        assert_eq!(st.start_time, 85960);
    }

    #[test]
    fn b04_stat_with_non_utf8_comm() {
        let line = b"77 (ab\xff\xfecd) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.comm, b"ab\xff\xfecd");
        assert_eq!(st.start_time, 123456);
        assert_eq!(
            display_name(&st.comm, b"python3\0-c\0", None, false),
            "ab\u{fffd}\u{fffd}cd"
        );
    }

    #[test]
    fn b04_cut_comm_takes_the_full_name_from_argv0_or_exe() {
        let comm = b"process-name-t\xc3";
        assert_eq!(comm.len(), 15);
        let full = "process-name-töööö";
        let argv = format!("/tmp/{full}\x0030\0");
        assert_eq!(display_name(comm, argv.as_bytes(), None, false), full);
        let exe = format!("/tmp/{full}");
        assert_eq!(
            display_name(comm, b"./something-else\0", Some(exe.as_bytes()), false),
            full
        );
        // Neither fits: the cut comm, rendered lossily, not a panic.
        assert_eq!(
            display_name(comm, b"x\0", None, false),
            "process-name-t\u{fffd}"
        );
    }

    #[test]
    fn b04_two_byte_names_that_render_alike_stay_distinct_as_bytes() {
        let a = parse_stat(b"1 (a\xff) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0").unwrap();
        let b = parse_stat(b"2 (a\xfe) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0").unwrap();
        assert_ne!(a.comm, b.comm);
    }

    #[test]
    fn truncated_or_garbage_stat_is_none() {
        assert_eq!(parse_stat(b""), None);
        assert_eq!(parse_stat(b"12 (x) S 1 2"), None);
        assert_eq!(parse_stat(b"12 x) S (1"), None);
        assert_eq!(
            parse_stat(b"abc (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"),
            None
        );
    }

    #[test]
    fn b05_kernel_thread_and_zombie_have_bracketed_names() {
        let kthreadd =
            parse_stat(b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0")
                .unwrap();
        assert!(kthreadd.is_kernel_thread());
        assert_eq!(display_name(&kthreadd.comm, b"", None, true), "[kthreadd]");
        // A zombie or an exiting process: empty cmdline, plain name.
        let zombie =
            parse_stat(b"99 (python3) Z 98 98 1 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0")
                .unwrap();
        assert!(!zombie.is_kernel_thread());
        assert_eq!(zombie.state, b'Z');
        assert_eq!(display_name(&zombie.comm, b"", None, false), "python3");
        assert_eq!(display_cmdline(b""), "");
    }

    #[test]
    fn b05_rewritten_argv_stays_one_name() {
        let raw = b"nginx: worker process\x0020\0";
        assert_eq!(display_cmdline(raw), "nginx: worker process 20");
        assert_eq!(display_name(b"sleep", raw, None, false), "sleep");
    }

    #[test]
    fn b05_long_argv_is_truncated_for_display() {
        let mut raw = b"python3\0-c\0import time; time.sleep(30)\0".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 8000));
        raw.push(0);
        let shown = display_cmdline(&raw);
        assert!(shown.len() <= CMDLINE_MAX + '…'.len_utf8());
        assert!(shown.starts_with("python3 -c import time"));
        assert!(shown.ends_with('…'));
        // A cut inside a multi-byte character stays valid UTF-8.
        let wide = "ö".repeat(3000);
        let shown = display_cmdline(wide.as_bytes());
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn status_uid_is_the_real_uid() {
        let status = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(parse_status_uid(status), Some(1000));
        assert_eq!(parse_status_uid("Name:\tx\n"), None);
        assert_eq!(parse_status_uid("Uid:\tgarbage\n"), None);
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(b"socket:[4026531993]"), Some(4026531993));
        assert_eq!(socket_inode(b"pipe:[123]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"socket:[12"), None);
    }
}
