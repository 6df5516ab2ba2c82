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
    listen_ports: Vec<JsonListen<'a>>,
}

#[derive(Serialize)]
struct JsonListen<'a> {
    /// "TCP", "UDP", ... as everywhere else in the output.
    proto: String,
    addr: std::net::IpAddr,
    port: u16,
    pid: u32,
    name: &'a str,
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
        listen_ports: s
            .listen_ports
            .iter()
            .map(|l| JsonListen {
                proto: l.proto.to_string(),
                addr: l.addr,
                port: l.port,
                pid: l.pid,
                name: &l.name,
            })
            .collect(),
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

/// Stream frames to stdout until the count is reached or stdout closes.
/// Losing the daemon is reported on stderr; the stream resumes when it returns.
pub fn run(
    rt: &tokio::runtime::Runtime,
    target: crate::launch::Target,
    cli: &crate::cli::Cli,
    format: Format,
) -> anyhow::Result<std::process::ExitCode> {
    use crate::conn::{self, Request};
    use crate::event::Event;

    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _link = {
        let _rt = rt.enter();
        conn::spawn(
            target.socket,
            target.session,
            Request::Subscribe {
                interval_ms: cli.interval,
                detail_pid: None,
            },
            Box::new(move |e| tx.send(e).is_ok()),
            shutdown.clone(),
        )
    };
    let _stop = shutdown.clone().drop_guard();
    let stdout = io::stdout();
    let mut printer = Printer::new(stdout.lock(), format);
    let limit = cli.frame_limit();
    let mut printed = 0u64;
    let mut lost = false;
    // Connected is sent for the first session too; only a return after a loss is news.
    for event in rx {
        match event {
            Event::Snapshot(s) => {
                match printer.frame(&s) {
                    Ok(()) => {}
                    Err(e) if is_closed_pipe(&e) => return Ok(std::process::ExitCode::SUCCESS),
                    Err(e) => return Err(e.into()),
                }
                printed += 1;
                if limit.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            Event::Disconnected { reason } if !lost => {
                lost = true;
                eprintln!("sstop: daemon lost ({reason}); reconnecting…");
            }
            Event::Connected(_) if lost => {
                lost = false;
                eprintln!("sstop: reconnected");
            }
            _ => {}
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{CollectorMode, Process, Proto, Trend, Unattributed};

    fn snap() -> Snapshot {
        let mut s = Snapshot::empty(CollectorMode::Netlink);
        s.seq = 7;
        s.time_ms = 1_700_000_000_000;
        let traffic = Traffic {
            up_bps: 5e9,
            down_bps: 1.5,
            up_bytes: u64::MAX,
            down_bytes: 3,
        };
        s.processes.push(Process {
            pid: 42,
            ppid: 1,
            start_time: 99,
            uid: 1000,
            user: "alice".into(),
            name: "we, \"odd\" 名".into(),
            cmdline: "a\nb".into(),
            traffic,
            connections: 2,
            listening: 1,
            shared: 0,
            alive: true,
            trend: Trend::Steady,
            history: vec![],
        });
        s.unattributed.push(Unattributed {
            proto: Proto::Udp,
            traffic,
            connections: 1,
        });
        s.listen_ports.push(proto::ListenPort {
            proto: Proto::Tcp,
            addr: std::net::IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            pid: 42,
            name: "srv".into(),
        });
        s
    }

    #[test]
    fn json_rows_flatten_traffic_and_keep_u64() {
        let v: serde_json::Value = serde_json::from_str(&json_line(&snap()).unwrap()).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["time"], 1_700_000_000_000_u64);
        assert_eq!(v["collector"]["mode"], "netlink");
        let p = &v["processes"][0];
        assert_eq!(p["pid"], 42);
        assert_eq!(p["name"], "we, \"odd\" 名");
        assert_eq!(p["up_bps"], 5e9);
        assert_eq!(p["up_bytes"], u64::MAX);
        assert_eq!(p["listening"], 1);
        assert_eq!(v["unattributed"][0]["proto"], "UDP");
        assert_eq!(v["unattributed"][0]["down_bytes"], 3);
        assert!(v["totals"]["up_bps"].is_number());
        let l = &v["listen_ports"][0];
        assert_eq!(
            (l["proto"].as_str(), l["addr"].as_str(), l["port"].as_u64()),
            (Some("TCP"), Some("127.0.0.1"), Some(8080))
        );
    }

    #[test]
    fn csv_quotes_and_prints_the_header_once() {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, Format::Csv);
        p.frame(&snap()).unwrap();
        p.frame(&snap()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches(CSV_HEADER).count(), 1);
        assert!(text.contains("42,1,\"we, \"\"odd\"\" 名\",\"a\nb\",1000,alice,5000000000.0,1.5,18446744073709551615,3,2,1,true"), "{text}");
        assert!(text.contains(",,,unattributed UDP,,,,"), "{text}");
    }
}
