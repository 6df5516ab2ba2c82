//! Process facts on macOS: start time (the pid's identity), ppid, uid, name
//! and command line. The kernel calls (`proc_pidinfo`, `sysctl
//! KERN_PROCARGS2`) exist only on macOS; the parsing of what they return and
//! the trait the collector uses are portable so tests can feed facts.

/// What the kernel says about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcFacts {
    /// Microseconds since the epoch (`pbi_start_tvsec/usec`).
    pub start_time: u64,
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
    /// `pbi_comm` bytes (at most 16).
    pub comm: Vec<u8>,
    /// Display name: `pbi_name` (up to 32 bytes) or argv[0]'s file name; may be empty.
    pub name: String,
    /// argv joined with spaces; empty when not readable (zombie, kernel task).
    pub cmdline: String,
}

/// Looks processes up by pid. `None`: gone, or not visible to us.
pub trait ProcessSource: Send {
    fn lookup(&mut self, pid: u32) -> Option<ProcFacts>;
}

/// `sysctl KERN_PROCARGS2` buffer: `argc` (native i32), the exec path, NUL
/// padding, then `argc` NUL-terminated arguments, then the environment.
/// Returns (exec path, argv); `None` when the buffer is too short or garbled.
pub fn parse_procargs2(buf: &[u8]) -> Option<(String, Vec<String>)> {
    let argc = i32::from_ne_bytes(buf.get(..4)?.try_into().ok()?);
    let argc = usize::try_from(argc).ok()?;
    let rest = &buf[4..];
    let path_end = rest.iter().position(|b| *b == 0)?;
    let exec_path = String::from_utf8_lossy(&rest[..path_end]).into_owned();
    let mut pos = path_end;
    while rest.get(pos) == Some(&0) {
        pos += 1;
    }
    let mut argv = Vec::with_capacity(argc.min(256));
    for arg in rest[pos..].split(|b| *b == 0).take(argc) {
        argv.push(String::from_utf8_lossy(arg).into_owned());
    }
    Some((exec_path, argv))
}

/// The name to show: `pbi_name` when set (up to 32 bytes), else the exec
/// path's file name when `comm` looks cut (macOS keeps 16 bytes of it), else comm.
pub fn display_name(comm: &[u8], pbi_name: &[u8], exec_path: Option<&str>) -> String {
    if !pbi_name.is_empty() {
        return String::from_utf8_lossy(pbi_name).into_owned();
    }
    let from_path = exec_path
        .and_then(|p| p.rsplit('/').next())
        .filter(|f| !f.is_empty() && f.as_bytes().starts_with(comm));
    match from_path {
        Some(f) if comm.len() >= MAXCOMLEN - 1 => f.to_owned(),
        _ => String::from_utf8_lossy(comm).into_owned(),
    }
}

/// `MAXCOMLEN` of `<sys/param.h>`: the size of `p_comm` without its NUL.
pub const MAXCOMLEN: usize = 16;

/// NUL-terminated C bytes of a fixed array.
pub fn c_bytes(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    &raw[..end]
}

#[cfg(target_os = "macos")]
mod sys {
    use super::{ProcFacts, ProcessSource, c_bytes, display_name, parse_procargs2};

    fn bsdinfo(pid: u32) -> Option<libc::proc_bsdinfo> {
        let pid = libc::c_int::try_from(pid).ok()?;
        let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
        let size = libc::c_int::try_from(std::mem::size_of::<libc::proc_bsdinfo>()).ok()?;
        // SAFETY: the buffer is a properly sized, zeroed proc_bsdinfo; the kernel
        // writes at most `size` bytes and returns how many it wrote.
        let n = unsafe {
            libc::proc_pidinfo(
                pid,
                libc::PROC_PIDTBSDINFO,
                0,
                info.as_mut_ptr().cast(),
                size,
            )
        };
        if n != size {
            return None;
        }
        // SAFETY: proc_pidinfo filled all `size` bytes (checked above); zeroed also made it valid.
        Some(unsafe { info.assume_init() })
    }

    /// Start time of `pid` in µs since the epoch; `None` when it does not exist
    /// (or is not visible). The kill path compares this with what the viewer saw.
    pub fn start_time(pid: u32) -> Option<u64> {
        let info = bsdinfo(pid)?;
        Some(
            info.pbi_start_tvsec
                .saturating_mul(1_000_000)
                .saturating_add(info.pbi_start_tvusec),
        )
    }

    fn procargs(pid: u32) -> Option<Vec<u8>> {
        let mut mib = [
            libc::CTL_KERN,
            libc::KERN_PROCARGS2,
            libc::c_int::try_from(pid).ok()?,
        ];
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = buf.len();
        // SAFETY: mib has 3 valid entries; buf is writable for `len` bytes and the
        // kernel updates `len` to what it wrote.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                3,
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return None;
        }
        buf.truncate(len);
        Some(buf)
    }

    /// The real source: `proc_pidinfo` + `KERN_PROCARGS2`.
    #[derive(Debug, Default)]
    pub struct LibprocSource;

    impl ProcessSource for LibprocSource {
        fn lookup(&mut self, pid: u32) -> Option<ProcFacts> {
            let info = bsdinfo(pid)?;
            let comm_raw: Vec<u8> = info.pbi_comm.iter().map(|c| *c as u8).collect();
            let name_raw: Vec<u8> = info.pbi_name.iter().map(|c| *c as u8).collect();
            let comm = c_bytes(&comm_raw).to_vec();
            let args = procargs(pid).and_then(|b| parse_procargs2(&b));
            let name = display_name(
                &comm,
                c_bytes(&name_raw),
                args.as_ref().map(|(p, _)| p.as_str()),
            );
            Some(ProcFacts {
                start_time: info
                    .pbi_start_tvsec
                    .saturating_mul(1_000_000)
                    .saturating_add(info.pbi_start_tvusec),
                ppid: info.pbi_ppid,
                uid: info.pbi_ruid,
                comm,
                name,
                cmdline: args.map(|(_, a)| a.join(" ")).unwrap_or_default(),
            })
        }
    }
}

#[cfg(target_os = "macos")]
pub use sys::{LibprocSource, start_time};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procargs2_layout() {
        let mut buf = 2i32.to_ne_bytes().to_vec();
        buf.extend_from_slice(b"/Applications/My App.app/Contents/MacOS/My App\0\0\0\0");
        buf.extend_from_slice(b"/Applications/My App.app/Contents/MacOS/My App\0--flag\0HOME=/x\0");
        let (path, argv) = parse_procargs2(&buf).unwrap();
        assert_eq!(path, "/Applications/My App.app/Contents/MacOS/My App");
        assert_eq!(
            argv,
            ["/Applications/My App.app/Contents/MacOS/My App", "--flag"]
        );
    }

    #[test]
    fn procargs2_garbage() {
        assert_eq!(parse_procargs2(&[]), None);
        assert_eq!(parse_procargs2(&[1, 0]), None);
        assert_eq!(parse_procargs2(&(-1i32).to_ne_bytes()), None);
        // argc larger than what follows: take what is there.
        let mut buf = 9i32.to_ne_bytes().to_vec();
        buf.extend_from_slice(b"/bin/x\0x\0");
        assert_eq!(parse_procargs2(&buf).unwrap().1, ["x", ""]);
    }

    #[test]
    fn display_name_prefers_the_full_name() {
        assert_eq!(
            display_name(b"Google Chrome He", b"Google Chrome Helper", None),
            "Google Chrome Helper"
        );
        // comm cut at 16 bytes, no pbi_name: the executable's file name.
        let path = "/Applications/X.app/Contents/MacOS/process-name-long-enough";
        assert_eq!(
            display_name(b"process-name-lon", b"", Some(path)),
            "process-name-long-enough"
        );
        // Short comm: as is, whatever argv[0] says.
        assert_eq!(
            display_name(b"nginx", b"", Some("/opt/bin/nginx-debug")),
            "nginx"
        );
        // Not valid UTF-8: lossy, no panic.
        assert_eq!(
            display_name(b"ab\xff\xfecd", b"", None),
            "ab\u{fffd}\u{fffd}cd"
        );
    }

    #[test]
    fn c_bytes_stops_at_nul() {
        assert_eq!(c_bytes(b"abc\0def"), b"abc");
        assert_eq!(c_bytes(b"abc"), b"abc");
    }
}
