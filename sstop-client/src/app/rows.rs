//! Which rows each list shows, in which order: sorting and filtering over the
//! shown snapshot. Rows are indices into that snapshot, so nothing is copied.

use std::cmp::Ordering;

use proto::{Proto, Snapshot, Traffic};

/// Sort modes of the process table, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Up + down, highest first.
    #[default]
    Rate,
    Down,
    Up,
    Pid,
    Name,
    Conns,
}

impl SortKey {
    pub fn next(self) -> Self {
        match self {
            SortKey::Rate => SortKey::Down,
            SortKey::Down => SortKey::Up,
            SortKey::Up => SortKey::Pid,
            SortKey::Pid => SortKey::Name,
            SortKey::Name => SortKey::Conns,
            SortKey::Conns => SortKey::Rate,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Rate => "rate",
            SortKey::Down => "down",
            SortKey::Up => "up",
            SortKey::Pid => "pid",
            SortKey::Name => "name",
            SortKey::Conns => "conns",
        }
    }
}

/// One row of the process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRef {
    /// Index into `snapshot.processes`.
    Process(usize),
    /// Index into `snapshot.unattributed`.
    Unattributed(usize),
}

/// Identity of a row that survives re-sorting and new snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKey {
    Process { pid: u32, start_time: u64 },
    Unattributed(Proto),
}

/// Name shown for traffic no process owns, e.g. `‹unattributed UDP›`.
pub fn unattributed_label(proto: Proto) -> String {
    format!("‹unattributed {proto}›")
}

/// The row fields every view and filter reads, borrowed from the snapshot.
pub struct RowView<'a> {
    pub key: RowKey,
    pub pid: Option<u32>,
    pub name: std::borrow::Cow<'a, str>,
    pub cmdline: &'a str,
    pub user: &'a str,
    pub traffic: &'a Traffic,
    pub connections: u32,
    pub listening: u32,
    pub alive: bool,
    pub history: &'a [proto::RatePoint],
    pub trend: proto::Trend,
}

pub fn view(snap: &Snapshot, row: RowRef) -> Option<RowView<'_>> {
    match row {
        RowRef::Process(i) => snap.processes.get(i).map(|p| RowView {
            key: RowKey::Process {
                pid: p.pid,
                start_time: p.start_time,
            },
            pid: Some(p.pid),
            name: p.name.as_str().into(),
            cmdline: &p.cmdline,
            user: &p.user,
            traffic: &p.traffic,
            connections: p.connections,
            listening: p.listening,
            alive: p.alive,
            history: &p.history,
            trend: p.trend,
        }),
        RowRef::Unattributed(i) => snap.unattributed.get(i).map(|u| RowView {
            key: RowKey::Unattributed(u.proto),
            pid: None,
            name: unattributed_label(u.proto).into(),
            cmdline: "",
            user: "",
            traffic: &u.traffic,
            connections: u.connections,
            listening: 0,
            alive: true,
            history: &[],
            trend: proto::Trend::Steady,
        }),
    }
}

/// Case-insensitive match over name, command line and pid.
fn matches(row: &RowView<'_>, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    row.name.to_lowercase().contains(needle_lower)
        || row.cmdline.to_lowercase().contains(needle_lower)
        || row
            .pid
            .is_some_and(|p| p.to_string().contains(needle_lower))
}

fn desc(a: f64, b: f64) -> Ordering {
    b.partial_cmp(&a).unwrap_or(Ordering::Equal)
}

fn compare(a: &RowView<'_>, b: &RowView<'_>, sort: SortKey) -> Ordering {
    let primary = match sort {
        SortKey::Rate => desc(a.traffic.total_bps(), b.traffic.total_bps()),
        SortKey::Down => desc(a.traffic.down_bps, b.traffic.down_bps),
        SortKey::Up => desc(a.traffic.up_bps, b.traffic.up_bps),
        // Rows without a pid go last.
        SortKey::Pid => a.pid.unwrap_or(u32::MAX).cmp(&b.pid.unwrap_or(u32::MAX)),
        SortKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
        SortKey::Conns => b.connections.cmp(&a.connections),
    };
    primary.then_with(|| a.pid.unwrap_or(u32::MAX).cmp(&b.pid.unwrap_or(u32::MAX)))
}

/// Process-table rows: every process and unattributed bucket that passes the filter, sorted.
pub fn process_rows(snap: &Snapshot, sort: SortKey, filter: &str) -> Vec<RowRef> {
    let needle = filter.to_lowercase();
    let all = (0..snap.processes.len())
        .map(RowRef::Process)
        .chain((0..snap.unattributed.len()).map(RowRef::Unattributed));
    let mut rows: Vec<(RowRef, RowView<'_>)> = all
        .filter_map(|r| view(snap, r).map(|v| (r, v)))
        .filter(|(_, v)| matches(v, &needle))
        .collect();
    rows.sort_by(|(_, a), (_, b)| compare(a, b, sort));
    rows.into_iter().map(|(r, _)| r).collect()
}

/// Remote hosts, busiest first; the filter matches the address or a process name.
pub fn host_rows(snap: &Snapshot, filter: &str) -> Vec<usize> {
    let needle = filter.to_lowercase();
    let mut rows: Vec<usize> = (0..snap.remote_hosts.len())
        .filter(|&i| {
            let h = &snap.remote_hosts[i];
            needle.is_empty()
                || h.addr.to_string().contains(&needle)
                || h.processes
                    .iter()
                    .any(|p| p.to_lowercase().contains(&needle))
        })
        .collect();
    rows.sort_by(|&a, &b| {
        let (a, b) = (&snap.remote_hosts[a], &snap.remote_hosts[b]);
        desc(a.traffic.total_bps(), b.traffic.total_bps())
            .then(b.connections.cmp(&a.connections))
            .then(a.addr.cmp(&b.addr))
    });
    rows
}

/// Listening sockets by port; the filter matches the process name, pid or port.
pub fn listen_rows(snap: &Snapshot, filter: &str) -> Vec<usize> {
    let needle = filter.to_lowercase();
    let mut rows: Vec<usize> = (0..snap.listen_ports.len())
        .filter(|&i| {
            let l = &snap.listen_ports[i];
            needle.is_empty()
                || l.name.to_lowercase().contains(&needle)
                || l.pid.to_string().contains(&needle)
                || l.port.to_string().contains(&needle)
        })
        .collect();
    rows.sort_by_key(|&i| {
        let l = &snap.listen_ports[i];
        (l.port, l.proto, l.addr, l.pid)
    });
    rows
}

/// Connections of the detail process, busiest first.
pub fn connection_rows(detail: &proto::Detail) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..detail.connections.len()).collect();
    rows.sort_by(|&a, &b| {
        let (a, b) = (&detail.connections[a], &detail.connections[b]);
        desc(a.traffic.total_bps(), b.traffic.total_bps()).then(a.local.cmp(&b.local))
    });
    rows
}
