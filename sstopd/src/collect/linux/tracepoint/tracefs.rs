//! Finding (or mounting) tracefs and the CPUs to open rings on.

use std::path::{Path, PathBuf};

use super::TraceError;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";
const EVENT_DIR: &str = "events/sock/inet_sock_set_state";

/// The tracepoint's directory, mounting tracefs if nothing provides it yet.
pub fn event_dir() -> Result<PathBuf, TraceError> {
    for root in [TRACEFS, DEBUGFS_TRACING] {
        let dir = Path::new(root).join(EVENT_DIR);
        match std::fs::metadata(dir.join("id")) {
            Ok(_) => return Ok(dir),
            // Mounted but closed to us (tracefs is root-only by default): mounting again
            // would fail with a misleading EPERM.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(TraceError::NoTracefs(format!(
                    "{}: permission denied (needs root)",
                    dir.display()
                )));
            }
            Err(_) => {}
        }
        if Path::new(root).join("events").is_dir() {
            return Err(TraceError::NoTracefs(format!(
                "{root} has no sock/inet_sock_set_state tracepoint (kernel older than 4.16?)"
            )));
        }
    }
    mount_tracefs()?;
    let dir = Path::new(TRACEFS).join(EVENT_DIR);
    if dir.join("id").exists() {
        Ok(dir)
    } else {
        Err(TraceError::NoTracefs(format!(
            "tracefs mounted but {} is missing (kernel without the sock tracepoints?)",
            dir.display()
        )))
    }
}

fn mount_tracefs() -> Result<(), TraceError> {
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are NUL-terminated C strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(TraceError::NoTracefs(format!(
            "mounting tracefs at {TRACEFS}: {}",
            std::io::Error::last_os_error()
        )))
    }
}

/// CPUs from /sys/devices/system/cpu/online ("0-3,5"), else 0..available_parallelism.
pub fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(&s))
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n as u32).collect()
        })
}

fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
