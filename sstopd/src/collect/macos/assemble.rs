//! Parsed tool output → the sockets and processes of a [`Sample`]: netstat
//! rows carry the bytes, lsof records say which processes hold each socket;
//! they are joined by protocol + local + remote endpoint.
//!
//! [`Sample`]: crate::collect::Sample

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use proto::Proto;
use tracing::debug;

use super::addr::{Endpoint, Scope};
use super::lsof::{LsofOutput, LsofProcess};
use super::netstat::NetstatRow;
use super::process::{ProcFacts, ProcessSource};
use crate::collect::{ProcKey, ProcessInfo, SocketId, SocketSample};

/// What identifies a socket in both tools' output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JoinKey {
    proto: Proto,
    local: (Option<IpAddr>, u16),
    /// Interface index of a scoped local address (0: none or unknown). netstat
    /// prints `%lo0`, lsof `%lo0` or the KAME index: compared as indexes.
    scope: u32,
    remote: (Option<IpAddr>, u16),
}

impl JoinKey {
    pub fn new(
        proto: Proto,
        local: &Endpoint,
        remote: Option<&Endpoint>,
        resolve: &ScopeResolver,
    ) -> Self {
        let scope = match &local.scope {
            Some(Scope::Index(i)) => *i,
            Some(Scope::Name(n)) => resolve(n).unwrap_or(0),
            None => 0,
        };
        JoinKey {
            proto,
            local: local.join_key(),
            scope,
            remote: remote.map_or((None, 0), Endpoint::join_key),
        }
    }

    /// The key without the scope, for a tool that printed none.
    fn loose(&self) -> JoinKey {
        JoinKey {
            scope: 0,
            ..self.clone()
        }
    }
}

/// Interface-name → index lookup for `%lo0` scopes.
pub type ScopeResolver = dyn Fn(&str) -> Option<u32> + Send;

/// pid ↔ socket knowledge from one lsof run.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    holders: HashMap<JoinKey, BTreeSet<u32>>,
    /// The same, keyed without scope.
    loose: HashMap<JoinKey, BTreeSet<u32>>,
    processes: HashMap<u32, LsofProcess>,
}

impl Ownership {
    pub fn from_lsof(out: &LsofOutput, resolve: &ScopeResolver) -> Self {
        let mut holders: HashMap<JoinKey, BTreeSet<u32>> = HashMap::new();
        let mut loose: HashMap<JoinKey, BTreeSet<u32>> = HashMap::new();
        for s in &out.sockets {
            let key = JoinKey::new(s.proto, &s.local, s.remote.as_ref(), resolve);
            loose.entry(key.loose()).or_default().insert(s.pid);
            holders.entry(key).or_default().insert(s.pid);
        }
        let processes = out.processes.iter().map(|p| (p.pid, p.clone())).collect();
        Ownership {
            holders,
            loose,
            processes,
        }
    }

    fn holders_of(&self, key: &JoinKey) -> Option<&BTreeSet<u32>> {
        self.holders
            .get(key)
            .or_else(|| self.loose.get(&key.loose()))
    }

    pub fn process(&self, pid: u32) -> Option<&LsofProcess> {
        self.processes.get(&pid)
    }
}

/// Sockets of one sample with their owners' pids (process info comes after).
#[derive(Debug, Default)]
pub struct Joined {
    pub sockets: Vec<(SocketSample, Vec<u32>)>,
    /// Process names netstat printed (`process:pid`), for pids lsof did not list.
    pub netstat_names: HashMap<u32, String>,
}

/// Join netstat rows with lsof ownership. A key held by several lsof pids is
/// one shared socket (fork, pre-fork servers) unless netstat lists that key
/// more than once (e.g. several `*.5353` sockets with SO_REUSEPORT): then the
/// row's own pid column decides.
pub fn join(rows: &[NetstatRow], owners: &Ownership, resolve: &ScopeResolver) -> Joined {
    let keys: Vec<JoinKey> = rows
        .iter()
        .map(|r| JoinKey::new(r.proto, &r.local, remote_of(&r.remote), resolve))
        .collect();
    let mut per_key: HashMap<&JoinKey, usize> = HashMap::new();
    for k in &keys {
        *per_key.entry(k).or_default() += 1;
    }
    let mut seen: HashMap<&JoinKey, u64> = HashMap::new();
    let mut joined = Joined::default();
    for (row, key) in rows.iter().zip(&keys) {
        if row.local.is_unbound() {
            continue; // `*.*`: bound to nothing, no traffic to show
        }
        let candidates = owners.holders_of(key);
        let ambiguous = per_key.get(key).copied().unwrap_or(0) > 1;
        let pids: Vec<u32> = match (candidates, row.pid) {
            (Some(c), Some(pid)) if ambiguous && c.contains(&pid) => vec![pid],
            (Some(c), _) => c.iter().copied().collect(),
            (None, Some(pid)) => vec![pid],
            (None, None) => Vec::new(),
        };
        if let (Some(pid), Some(name)) = (row.pid, &row.process_name) {
            joined.netstat_names.insert(pid, name.clone());
        }
        let occurrence = seen.entry(key).or_default();
        let id = row
            .socket_id
            .unwrap_or_else(|| tuple_id(key, row.is_v6(), *occurrence));
        *occurrence += 1;
        let v6 = row.is_v6();
        let remote = remote_of(&row.remote).map(|e| e.to_socket_addr(v6, resolve));
        joined.sockets.push((
            SocketSample {
                id,
                proto: row.proto,
                local: row.local.to_socket_addr(v6, resolve),
                remote,
                state: row.state,
                uid: 0,
                inode: 0,
                owners: Vec::new(),
                sent: row.tx_bytes,
                received: row.rx_bytes,
            },
            pids,
        ));
    }
    joined
}

/// Sockets from lsof alone (netstat unavailable): no byte counters.
pub fn from_lsof_only(out: &LsofOutput, resolve: &ScopeResolver) -> Joined {
    let mut by_key: HashMap<JoinKey, usize> = HashMap::new();
    let mut joined = Joined::default();
    for s in &out.sockets {
        let key = JoinKey::new(s.proto, &s.local, s.remote.as_ref(), resolve);
        // The same socket appears once per holder: one socket, several owners.
        if let Some(idx) = by_key.get(&key) {
            let owners = &mut joined.sockets[*idx].1;
            if !owners.contains(&s.pid) {
                owners.push(s.pid);
            }
            continue;
        }
        let remote = s
            .remote
            .as_ref()
            .filter(|e| !e.is_unbound())
            .map(|e| e.to_socket_addr(s.v6, resolve));
        joined.sockets.push((
            SocketSample {
                id: tuple_id(&key, s.v6, 0),
                proto: s.proto,
                local: s.local.to_socket_addr(s.v6, resolve),
                remote,
                state: s.state,
                uid: 0,
                inode: 0,
                owners: Vec::new(),
                sent: None,
                received: None,
            },
            vec![s.pid],
        ));
        by_key.insert(key, joined.sockets.len() - 1);
    }
    joined
}

/// Finish the join: look every owner up once, fill owners and uids.
pub fn attach_processes(
    joined: Joined,
    owners: &Ownership,
    procs: &mut dyn ProcessSource,
) -> (Vec<SocketSample>, Vec<ProcessInfo>) {
    let mut infos: HashMap<u32, ProcessInfo> = HashMap::new();
    let mut sockets = Vec::with_capacity(joined.sockets.len());
    for (mut sock, pids) in joined.sockets {
        for pid in pids {
            let info = infos.entry(pid).or_insert_with(|| {
                let facts = procs.lookup(pid);
                if facts.is_none() {
                    debug!(pid, "process facts unavailable (exited or not visible)");
                }
                process_info(
                    pid,
                    facts,
                    owners.process(pid),
                    joined.netstat_names.get(&pid),
                )
            });
            if sock.owners.is_empty() {
                sock.uid = info.uid; // the first holder's, like the socket's creator on Linux
            }
            sock.owners.push(info.key);
        }
        sockets.push(sock);
    }
    let mut processes: Vec<ProcessInfo> = infos.into_values().collect();
    processes.sort_by_key(|p| p.key);
    (sockets, processes)
}

fn process_info(
    pid: u32,
    facts: Option<ProcFacts>,
    lsof: Option<&LsofProcess>,
    netstat_name: Option<&String>,
) -> ProcessInfo {
    let tool_name = lsof
        .map(|p| p.command.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| netstat_name.cloned())
        .unwrap_or_default();
    match facts {
        Some(f) => ProcessInfo {
            key: ProcKey {
                pid,
                start_time: f.start_time,
            },
            ppid: f.ppid,
            uid: f.uid,
            name: if f.name.is_empty() { tool_name } else { f.name },
            comm: f.comm,
            cmdline: f.cmdline,
            alive: true,
        },
        // Gone or invisible: what the tools printed, start time unknown (0).
        // Alive only if lsof listed it just now.
        None => ProcessInfo {
            key: ProcKey { pid, start_time: 0 },
            ppid: lsof.and_then(|p| p.ppid).unwrap_or(0),
            uid: lsof.and_then(|p| p.uid).unwrap_or(0),
            comm: tool_name.clone().into_bytes(),
            name: tool_name,
            cmdline: String::new(),
            alive: lsof.is_some(),
        },
    }
}

/// `*.*` as a remote means "not connected".
fn remote_of(e: &Endpoint) -> Option<&Endpoint> {
    (!e.is_unbound()).then_some(e)
}

/// Socket id when the tool printed none: a stable hash of protocol + tuple,
/// with the occurrence index for identical tuples. Bit 63 keeps it apart from
/// kernel generation counts.
fn tuple_id(key: &JoinKey, v6: bool, occurrence: u64) -> SocketId {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    v6.hash(&mut h);
    occurrence.hash(&mut h);
    h.finish() | (1 << 63)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::macos::lsof;
    use crate::collect::macos::netstat::{ParseOptions, parse_sockets};

    const HEADER: &str = "Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)          rxbytes      txbytes  rhiwat  shiwat    pid   epid\n";

    fn no_scopes(_: &str) -> Option<u32> {
        None
    }

    #[test]
    fn reuseport_twins_are_told_apart_by_the_pid_column() {
        let text = format!(
            "{HEADER}udp4 0 0 *.5353 *.* 10 1 786896 9216 301 0\nudp4 0 0 *.5353 *.* 20 2 786896 9216 500 0\n"
        );
        let rows = parse_sockets(&text, ParseOptions::default()).rows;
        let owners = Ownership::from_lsof(
            &lsof::parse(
                "p301\ncmDNSResponder\nf7\ntIPv4\nPUDP\nn*:5353\np500\ncChrome\nf9\ntIPv4\nPUDP\nn*:5353\n",
            ),
            &no_scopes,
        );
        let joined = join(&rows, &owners, &no_scopes);
        let pids: Vec<&Vec<u32>> = joined.sockets.iter().map(|(_, p)| p).collect();
        assert_eq!(pids, [&vec![301], &vec![500]]);
        // No gencnt column: hashed ids, distinct for identical tuples, stable across runs.
        let (a, b) = (joined.sockets[0].0.id, joined.sockets[1].0.id);
        assert_ne!(a, b);
        let again = join(&rows, &owners, &no_scopes);
        assert_eq!((again.sockets[0].0.id, again.sockets[1].0.id), (a, b));
    }

    #[test]
    fn one_listener_many_holders_is_shared() {
        let text = format!("{HEADER}tcp4 0 0 *.80 *.* LISTEN 0 0 1 1 2001 0\n");
        let rows = parse_sockets(&text, ParseOptions::default()).rows;
        let owners = Ownership::from_lsof(
            &lsof::parse(
                "p2001\ncnginx\nf6\ntIPv4\nPTCP\nn*:80\np2002\ncnginx\nf6\ntIPv4\nPTCP\nn*:80\n",
            ),
            &no_scopes,
        );
        let joined = join(&rows, &owners, &no_scopes);
        assert_eq!(joined.sockets[0].1, [2001, 2002]);
    }
}
