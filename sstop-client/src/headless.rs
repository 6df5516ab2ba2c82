//! `--json` and `--csv`: frames as lines for scripts. Field names follow the
//! model; `Traffic` is flattened into each row; rates are bytes per second.

use std::io::{self, Write};

use proto::{Snapshot, Traffic};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Serialize)]
struct JsonFrame<'a> {
    time: u64,
    seq: u64,
    interval_ms: u32,
    collector: JsonCollector<'a>,
    totals: &'a Traffic,
    processes: Vec<JsonProcess<'a>>,
    unattributed: Vec<JsonUnattributed<'a>>,
    interfaces: &'a [proto::Interface],
    remote_hosts: Vec<JsonHost<'a>>,
    listen_ports: &'a [proto::ListenPort],
}

#[derive(Serialize)]
struct JsonCollector<'a> {
    mode: &'a str,
    notes: Vec<&'a str>,
    capture_drops: u64,
}

#[derive(Serialize)]
struct JsonProcess<'a> {
    pid: u32,
    ppid: u32,
    start_time: u64,
    name: &'a str,
    cmdline: &'a str,
    uid: u32,
    user: &'a str,
    #[serde(flatten)]
    traffic: &'a Traffic,
    connections: u32,
    listening: u32,
    shared: u32,
    alive: bool,
}

#[derive(Serialize)]
struct JsonUnattributed<'a> {
    proto: String,
    #[serde(flatten)]
    traffic: &'a Traffic,
    connections: u32,
}

#[derive(Serialize)]
struct JsonHost<'a> {
    addr: std::net::IpAddr,
    #[serde(flatten)]
    traffic: &'a Traffic,
    connections: u32,
    ports: &'a [u16],
    processes: &'a [String],
}

/// One snapshot as one line of JSON.
pub fn json_line(s: &Snapshot) -> Result<String, serde_json::Error> {
    let frame = JsonFrame {
        time: s.time_ms,
        seq: s.seq,
        interval_ms: s.interval_ms,
        collector: JsonCollector {
            mode: s.collector.mode.as_str(),
            notes: s
                .collector
                .notes
                .iter()
                .map(|n| n.message.as_str())
                .collect(),
            capture_drops: s.collector.capture_drops,
        },
        totals: &s.totals.traffic,
        processes: s
            .processes
            .iter()
            .map(|p| JsonProcess {
                pid: p.pid,
                ppid: p.ppid,
                start_time: p.start_time,
                name: &p.name,
                cmdline: &p.cmdline,
                uid: p.uid,
                user: &p.user,
                traffic: &p.traffic,
                connections: p.connections,
                listening: p.listening,
                shared: p.shared,
                alive: p.alive,
            })
            .collect(),
        unattributed: s
            .unattributed
            .iter()
            .map(|u| JsonUnattributed {
                proto: u.proto.to_string(),
                traffic: &u.traffic,
                connections: u.connections,
            })
            .collect(),
        interfaces: &s.interfaces,
        remote_hosts: s
            .remote_hosts
            .iter()
            .map(|h| JsonHost {
                addr: h.addr,
                traffic: &h.traffic,
                connections: h.connections,
                ports: &h.ports,
                processes: &h.processes,
            })
            .collect(),
        listen_ports: &s.listen_ports,
    };
    serde_json::to_string(&frame)
}

pub const CSV_HEADER: &str = "time,seq,pid,ppid,name,cmdline,uid,user,up_bps,down_bps,up_bytes,down_bytes,connections,listening,alive";

/// Quote a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per process, then one per unattributed bucket (empty pid, named `unattributed UDP`).
pub fn csv_rows(s: &Snapshot) -> String {
    let mut out = String::new();
    let t = |tr: &Traffic| {
        format!(
            "{:.1},{:.1},{},{}",
            tr.up_bps, tr.down_bps, tr.up_bytes, tr.down_bytes
        )
    };
    for p in &s.processes {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            s.time_ms,
            s.seq,
            p.pid,
            p.ppid,
            csv_field(&p.name),
            csv_field(&p.cmdline),
            p.uid,
            csv_field(&p.user),
            t(&p.traffic),
            p.connections,
            p.listening,
            p.alive
        ));
    }
    for u in &s.unattributed {
        out.push_str(&format!(
            "{},{},,,{},,,,{},{},0,true\n",
            s.time_ms,
            s.seq,
            csv_field(&format!("unattributed {}", u.proto)),
            t(&u.traffic),
            u.connections
        ));
    }
    out
}

/// Writes frames to `out` in `format`, the CSV header once.
pub struct Printer<W: Write> {
    out: W,
    format: Format,
    header_done: bool,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format) -> Self {
        Printer {
            out,
            format,
            header_done: false,
        }
    }

    pub fn frame(&mut self, s: &Snapshot) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let line = json_line(s).map_err(io::Error::other)?;
                writeln!(self.out, "{line}")?;
            }
            Format::Csv => {
                if !self.header_done {
                    writeln!(self.out, "{CSV_HEADER}")?;
                    self.header_done = true;
                }
                self.out.write_all(csv_rows(s).as_bytes())?;
            }
        }
        self.out.flush()
    }
}

/// A closed stdout (`| head -1`) is a normal way for a script to stop us.
pub fn is_closed_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}
