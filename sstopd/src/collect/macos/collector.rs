//! `MacosCollector`: runs `netstat` (sockets + bytes, interfaces), `lsof`
//! (owners) and `route` (default interface) through a [`CommandRunner`] and
//! turns their output into a [`Sample`]. A missing, failing or slow tool
//! becomes a [`Note`], never an error that stops collection.

use std::collections::HashSet;
use std::time::Duration;

use proto::{Caps, CollectorMode, Note};
use tracing::debug;

use super::assemble::{self, JoinKey, Ownership, ScopeResolver};
use super::ifaces::{parse_ibn, parse_route_default};
use super::lsof;
use super::netstat::{self, NetstatSockets, ParseOptions};
use super::process::ProcessSource;
use super::runner::{CommandRunner, RunError, RunOutput};
use crate::collect::{CollectError, Collector, Sample};

/// Where the tools live and how long each may take.
#[derive(Debug, Clone)]
pub struct Tools {
    pub netstat: String,
    pub lsof: String,
    pub route: String,
    pub timeout: Duration,
    /// Re-run lsof at least every this many samples even when no socket is new.
    pub lsof_every: u32,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            netstat: "/usr/sbin/netstat".into(),
            lsof: "/usr/sbin/lsof".into(),
            route: "/sbin/route".into(),
            timeout: Duration::from_secs(5),
            lsof_every: 5,
        }
    }
}

/// Arguments of each run. netstat: `-W` keeps IPv6 addresses whole, `-b` adds
/// the byte columns on releases where `-v` alone does not, `-v` the pid and
/// gencnt columns. lsof: `-w` keeps warnings about unrelated files quiet,
/// `+c 0` prints whole command names, `R` adds the ppid.
pub const NETSTAT_TCP: &[&str] = &["-anvbW", "-p", "tcp"];
pub const NETSTAT_UDP: &[&str] = &["-anvbW", "-p", "udp"];
pub const NETSTAT_IFACES: &[&str] = &["-ibn"];
pub const LSOF_ARGS: &[&str] = &["-nP", "-w", "-i", "+c", "0", "-F", "pcuRftPnT"];
pub const ROUTE_DEFAULT: &[&str] = &["-n", "get", "default"];

pub struct MacosCollector<R, P> {
    runner: R,
    procs: P,
    tools: Tools,
    resolve: Box<ScopeResolver>,
    owners: Ownership,
    /// Samples since lsof last ran; `None` before the first run.
    since_lsof: Option<u32>,
    /// netstat's sockets at the last lsof run.
    checked: HashSet<JoinKey>,
    /// Samples to skip lsof after it failed, and why it failed.
    lsof_retry_in: u32,
    lsof_error: Option<Note>,
}

impl<R: CommandRunner, P: ProcessSource> MacosCollector<R, P> {
    pub fn new(runner: R, procs: P, tools: Tools, resolve: Box<ScopeResolver>) -> Self {
        MacosCollector {
            runner,
            procs,
            tools,
            resolve,
            owners: Ownership::default(),
            since_lsof: None,
            checked: HashSet::new(),
            lsof_retry_in: 0,
            lsof_error: None,
        }
    }

    /// Run one tool; failures become a note and `None`.
    fn run(&self, program: &str, args: &[&str], notes: &mut Vec<Note>) -> Option<RunOutput> {
        let shown = format!("{} {}", short(program), args.join(" "));
        match self.runner.run(program, args, self.tools.timeout) {
            // lsof exits 1 when some file could not be examined: keep what it printed.
            Ok(out) if out.status == Some(0) || !out.stdout.trim().is_empty() => Some(out),
            Ok(out) => {
                let why = out
                    .stderr
                    .lines()
                    .next()
                    .unwrap_or("no output")
                    .trim()
                    .to_owned();
                notes.push(Note::warning(format!(
                    "`{shown}` failed (exit {}): {why}",
                    out.status.map_or("by signal".into(), |c| c.to_string())
                )));
                None
            }
            Err(e @ RunError::NotFound(_)) => {
                notes.push(Note::warning(format!(
                    "`{shown}`: {e}; that part of the view is empty"
                )));
                None
            }
            Err(e) => {
                notes.push(Note::warning(format!("`{shown}`: {e}")));
                None
            }
        }
    }

    fn netstat_sockets(&self, notes: &mut Vec<Note>) -> Option<NetstatSockets> {
        let mut all: Option<NetstatSockets> = None;
        for args in [NETSTAT_TCP, NETSTAT_UDP] {
            let Some(out) = self.run(&self.tools.netstat, args, notes) else {
                continue;
            };
            let parsed = netstat::parse_sockets(&out.stdout, ParseOptions { wide: true });
            let acc = all.get_or_insert_with(NetstatSockets::default);
            acc.rows.extend(parsed.rows);
            acc.skipped.extend(parsed.skipped);
        }
        if let Some(n) = all.as_ref().map(|a| a.skipped.len()).filter(|n| *n > 0) {
            notes.push(Note::info(format!(
                "netstat: {n} socket rows not understood (see debug log)"
            )));
        }
        all
    }

    /// lsof is the slow tool: run it when netstat shows a socket that was not
    /// there at the last lsof run, and every `lsof_every` samples regardless.
    /// (Sockets lsof never lists, like TIME_WAIT, must not force a run each time.)
    fn refresh_owners(
        &mut self,
        sockets: Option<&NetstatSockets>,
        notes: &mut Vec<Note>,
    ) -> Option<lsof::LsofOutput> {
        if self.lsof_retry_in > 0 {
            // A failing (or hanging) lsof is not retried every sample: each try may cost the timeout.
            self.lsof_retry_in -= 1;
            notes.extend(self.lsof_error.clone());
            return None;
        }
        let keys: HashSet<JoinKey> = sockets
            .map(|s| {
                s.rows
                    .iter()
                    .filter(|r| !r.local.is_unbound())
                    .map(|r| {
                        let remote = (!r.remote.is_unbound()).then_some(&r.remote);
                        JoinKey::new(r.proto, &r.local, remote, &*self.resolve)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let due = match self.since_lsof {
            None => true,
            Some(n) => {
                sockets.is_none()
                    || !keys.is_subset(&self.checked)
                    || n + 1 >= self.tools.lsof_every.max(1)
            }
        };
        if !due {
            self.since_lsof = self.since_lsof.map(|n| n + 1);
            return None;
        }
        let mut run_notes = Vec::new();
        let out = self.run(&self.tools.lsof, LSOF_ARGS, &mut run_notes);
        notes.extend(run_notes.iter().cloned());
        let Some(out) = out else {
            self.lsof_error = run_notes.pop();
            self.lsof_retry_in = self.tools.lsof_every.saturating_sub(1);
            return None;
        };
        self.lsof_error = None;
        let parsed = lsof::parse(&out.stdout);
        if !parsed.skipped.is_empty() {
            debug!(skipped = parsed.skipped.len(), "lsof: records skipped");
        }
        self.owners = Ownership::from_lsof(&parsed, &*self.resolve);
        self.checked = keys;
        self.since_lsof = Some(0);
        Some(parsed)
    }
}

impl<R: CommandRunner + 'static, P: ProcessSource + 'static> Collector for MacosCollector<R, P> {
    fn mode(&self) -> CollectorMode {
        CollectorMode::Macos
    }

    fn caps(&self) -> Caps {
        Caps {
            kill: true,
            // netstat counts UDP bytes per socket too.
            packet_bytes: true,
            closed_connections: false,
            all_users: rustix::process::geteuid().is_root(),
        }
    }

    fn collect(&mut self) -> Result<Sample, CollectError> {
        let mut notes = Vec::new();
        let sockets = self.netstat_sockets(&mut notes);
        let fresh = self.refresh_owners(sockets.as_ref(), &mut notes);
        let joined = match (&sockets, &fresh) {
            (Some(s), _) => assemble::join(&s.rows, &self.owners, &*self.resolve),
            (None, Some(l)) => {
                notes.push(Note::warning(
                    "no byte counters: sockets listed from lsof only",
                ));
                assemble::from_lsof_only(l, &*self.resolve)
            }
            (None, None) => assemble::Joined::default(),
        };
        let (sockets, processes) =
            assemble::attach_processes(joined, &self.owners, &mut self.procs);

        let interfaces = self
            .run(&self.tools.netstat, NETSTAT_IFACES, &mut notes)
            .map(|o| parse_ibn(&o.stdout))
            .unwrap_or_default();
        // No default route is normal (offline): route exits 1, no note.
        let default_interface = self
            .runner
            .run(&self.tools.route, ROUTE_DEFAULT, self.tools.timeout)
            .ok()
            .and_then(|o| parse_route_default(&o.stdout));

        Ok(Sample {
            sockets,
            tcp_partial: false,
            tcp_gone: Vec::new(),
            closed: Vec::new(),
            processes,
            unexplained: Vec::new(),
            interfaces,
            default_interface,
            notes,
            capture_drops: 0,
            peer_flows: Vec::new(),
        })
    }
}

fn short(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Interface index of `name` (`%lo0` scopes), from the system.
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

#[cfg(target_os = "macos")]
impl MacosCollector<super::runner::SystemRunner, super::process::LibprocSource> {
    /// The collector with the real tools and kernel calls.
    pub fn system() -> Self {
        MacosCollector::new(
            super::runner::SystemRunner::default(),
            super::process::LibprocSource,
            Tools::default(),
            Box::new(if_index),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_index_of_loopback() {
        // Portable libc call: Linux names its loopback `lo`.
        #[cfg(target_os = "linux")]
        assert_eq!(if_index("lo"), Some(1));
        assert_eq!(if_index("sstop-no-such-if"), None);
        assert_eq!(if_index("bad\0name"), None);
    }
}
