//! Running the system tools: a small trait so tests can feed captured output,
//! and the real runner (`std::process::Command` with a deadline). Blocking:
//! the collector runs on its own thread, never on the async reactor.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use thiserror::Error;

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Exit code; `None` when killed by a signal.
    pub status: Option<i32>,
    /// Lossy UTF-8 (names from the system may be any bytes).
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error("`{0}` not found")]
    NotFound(String),
    #[error("`{program}` could not start: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` did not finish within {timeout:?} and was stopped")]
    Timeout { program: String, timeout: Duration },
    #[error("`{program}`: {source}")]
    Io {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs one external command to completion.
pub trait CommandRunner: Send {
    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<RunOutput, RunError>;
}

/// The real thing. Output above `max_output` bytes is cut (a runaway tool
/// must not eat the daemon's memory).
#[derive(Debug, Clone)]
pub struct SystemRunner {
    pub max_output: usize,
}

impl Default for SystemRunner {
    fn default() -> Self {
        SystemRunner {
            max_output: 64 << 20,
        }
    }
}

impl CommandRunner for SystemRunner {
    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<RunOutput, RunError> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Numbers and names as the parsers expect them, whatever the daemon's locale.
            .env("LC_ALL", "C")
            // Its own process group, so a timeout stops helpers it started too.
            .process_group(0)
            .spawn()
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => RunError::NotFound(program.to_owned()),
                _ => RunError::Spawn {
                    program: program.to_owned(),
                    source,
                },
            })?;
        // Drain both pipes on their own threads so a chatty tool never blocks on
        // a full pipe. Results come back over channels with the same deadline: a
        // grandchild holding a pipe open must not hang the collector.
        let deadline = Instant::now() + timeout;
        let out = spawn_drain(child.stdout.take(), self.max_output as u64);
        let err = spawn_drain(child.stderr.take(), 64 << 10);
        let status = wait_with_deadline(&mut child, deadline).map_err(|source| RunError::Io {
            program: program.to_owned(),
            source,
        })?;
        let Some(status) = status else {
            return Err(RunError::Timeout {
                program: program.to_owned(),
                timeout,
            });
        };
        let left = || deadline.saturating_duration_since(Instant::now());
        let stdout = out.recv_timeout(left()).unwrap_or_default();
        let stderr = err.recv_timeout(left()).unwrap_or_default();
        Ok(RunOutput {
            status: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

fn spawn_drain(src: Option<impl Read + Send + 'static>, limit: u64) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(src) = src {
        thread::spawn(move || {
            let _ = tx.send(drain(src, limit));
        });
    }
    rx
}

/// Wait for `child` until `deadline`; past it, kill and reap it and return `None`.
fn wait_with_deadline(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // Our own child's group (created at spawn), then reap so no zombie is left.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Read everything, keeping at most `limit` bytes (the rest is read and dropped
/// so the writer never blocks).
fn drain(mut src: impl Read, limit: u64) -> Vec<u8> {
    let mut kept = Vec::new();
    let _ = (&mut src).take(limit).read_to_end(&mut kept);
    let _ = std::io::copy(&mut src, &mut std::io::sink());
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    // These spawn real processes (sh, printf): the runner is portable code.

    #[test]
    fn captures_output_and_status() {
        let r = SystemRunner::default();
        let out = r
            .run(
                "sh",
                &["-c", "printf 'a b\\n'; printf err >&2; exit 3"],
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(out.stdout, "a b\n");
        assert_eq!(out.stderr, "err");
        assert_eq!(out.status, Some(3));
    }

    #[test]
    fn missing_tool_is_not_found() {
        let r = SystemRunner::default();
        let err = r
            .run(
                "/nonexistent/sstop-no-such-tool",
                &[],
                Duration::from_secs(1),
            )
            .unwrap_err();
        assert!(matches!(err, RunError::NotFound(_)), "{err}");
    }

    #[test]
    fn slow_tool_is_stopped_at_the_deadline() {
        let r = SystemRunner::default();
        let start = Instant::now();
        let err = r
            .run(
                "sh",
                &["-c", "sleep 30; echo late"],
                Duration::from_millis(200),
            )
            .unwrap_err();
        assert!(matches!(err, RunError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn output_is_capped() {
        let r = SystemRunner { max_output: 1000 };
        let out = r
            .run(
                "sh",
                &["-c", "head -c 100000 /dev/zero | tr '\\0' x"],
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(out.stdout.len(), 1000);
        assert_eq!(out.status, Some(0));
    }
}
