//! Shared by the macOS tests: fixture files, a runner that serves captured
//! output, process facts as the captured host had them, builders.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::{Proto, TcpState};
use sstopd::collect::macos::assemble::ScopeResolver;
use sstopd::collect::macos::collector::{
    LSOF_ARGS, NETSTAT_IFACES, NETSTAT_TCP, NETSTAT_UDP, ROUTE_DEFAULT,
};
use sstopd::collect::macos::{CommandRunner, ProcFacts, ProcessSource, RunError, RunOutput};
use sstopd::collect::{IfaceSample, ProcKey, SocketSample};

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/macos")
        .join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn iface(name: &str, is_up: bool, rx: u64, tx: u64) -> IfaceSample {
    IfaceSample {
        name: name.into(),
        is_up,
        rx_bytes: rx,
        tx_bytes: tx,
    }
}

pub type Served = HashMap<String, VecDeque<RunOutput>>;

/// Captured outputs per command line, served in order (the last one repeats).
#[derive(Clone, Default)]
pub struct FixtureRunner {
    outputs: Arc<Mutex<Served>>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl FixtureRunner {
    fn key(program: &str, args: &[&str]) -> String {
        format!("{} {}", program.rsplit('/').next().unwrap(), args.join(" "))
    }
    pub fn serve(self, program: &str, args: &[&str], files: &[&str]) -> Self {
        let outs = files
            .iter()
            .map(|f| RunOutput {
                status: Some(0),
                stdout: fixture(f),
                stderr: String::new(),
            })
            .collect();
        self.outputs
            .lock()
            .unwrap()
            .insert(Self::key(program, args), outs);
        self
    }
    pub fn fail(self, program: &str, args: &[&str], status: i32, stderr: &str) -> Self {
        let out = RunOutput {
            status: Some(status),
            stdout: String::new(),
            stderr: stderr.into(),
        };
        self.outputs
            .lock()
            .unwrap()
            .insert(Self::key(program, args), VecDeque::from([out]));
        self
    }
    pub fn calls(&self, program: &str, args: &[&str]) -> usize {
        self.calls
            .lock()
            .unwrap()
            .get(&Self::key(program, args))
            .copied()
            .unwrap_or(0)
    }
}

impl CommandRunner for FixtureRunner {
    fn run(&self, program: &str, args: &[&str], _timeout: Duration) -> Result<RunOutput, RunError> {
        let key = Self::key(program, args);
        *self.calls.lock().unwrap().entry(key.clone()).or_default() += 1;
        let mut outputs = self.outputs.lock().unwrap();
        let Some(queue) = outputs.get_mut(&key) else {
            return Err(RunError::NotFound(program.into()));
        };
        let next = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        };
        Ok(next.unwrap())
    }
}

/// Process facts as `proc_pidinfo` would give them on the captured host.
pub struct FixtureProcs(pub HashMap<u32, ProcFacts>);

impl ProcessSource for FixtureProcs {
    fn lookup(&mut self, pid: u32) -> Option<ProcFacts> {
        self.0.get(&pid).cloned()
    }
}

pub fn facts(
    pid: u32,
    ppid: u32,
    uid: u32,
    comm: &str,
    name: &str,
    cmdline: &str,
) -> (u32, ProcFacts) {
    (
        pid,
        ProcFacts {
            start_time: 1_700_000_000_000_000 + u64::from(pid) * 1_000,
            ppid,
            uid,
            comm: comm.as_bytes().to_vec(),
            name: name.into(),
            cmdline: cmdline.into(),
        },
    )
}

pub fn sequoia_procs() -> FixtureProcs {
    FixtureProcs(HashMap::from([
        facts(180, 1, 0, "cupsd", "cupsd", "/usr/sbin/cupsd -l"),
        facts(
            301,
            1,
            65,
            "mDNSResponder",
            "mDNSResponder",
            "/usr/sbin/mDNSResponder",
        ),
        facts(
            412,
            400,
            501,
            "Google Chrome He",
            "Google Chrome Helper",
            "/Applications/Google Chrome.app/Contents/Frameworks/Google Chrome Framework.framework/Helpers/Google Chrome Helper.app/Contents/MacOS/Google Chrome Helper --type=utility",
        ),
        facts(
            2001,
            1,
            0,
            "nginx",
            "nginx",
            "nginx: master process /opt/homebrew/bin/nginx",
        ),
        facts(2002, 2001, 70, "nginx", "nginx", "nginx: worker process"),
        facts(
            5100,
            1,
            501,
            "quicd",
            "quicd",
            "/usr/local/bin/quicd --listen [::]:443",
        ),
        facts(
            99871,
            1,
            501,
            "my app (x)",
            "my app (x)",
            "/Users/me/bin/my app (x) --serve",
        ),
        // 3001 (curl) has exited: only its TIME_WAIT socket is left.
    ]))
}

pub fn resolver() -> Box<ScopeResolver> {
    Box::new(|n: &str| match n {
        "lo0" => Some(1),
        "en0" => Some(4),
        _ => None,
    })
}

pub fn sequoia_runner() -> FixtureRunner {
    FixtureRunner::default()
        .serve(
            "netstat",
            NETSTAT_TCP,
            &["netstat_tcp_sequoia_1.txt", "netstat_tcp_sequoia_2.txt"],
        )
        .serve(
            "netstat",
            NETSTAT_UDP,
            &["netstat_udp_sequoia_1.txt", "netstat_udp_sequoia_2.txt"],
        )
        .serve("netstat", NETSTAT_IFACES, &["netstat_ibn_b21.txt"])
        .serve("lsof", LSOF_ARGS, &["lsof_sequoia.txt"])
        .serve("route", ROUTE_DEFAULT, &["route_default.txt"])
}

pub fn key(pid: u32) -> ProcKey {
    ProcKey {
        pid,
        start_time: 1_700_000_000_000_000 + u64::from(pid) * 1_000,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn sock(
    id: u64,
    proto: Proto,
    local: &str,
    remote: Option<&str>,
    state: Option<TcpState>,
    uid: u32,
    owners: Vec<ProcKey>,
    sent: u64,
    received: u64,
) -> SocketSample {
    SocketSample {
        id,
        proto,
        local: sa(local),
        remote: remote.map(sa),
        state,
        uid,
        inode: 0,
        owners,
        sent: Some(sent),
        received: Some(received),
    }
}
