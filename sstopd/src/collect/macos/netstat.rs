//! `netstat -anvbW -p tcp|udp` parser: one row per socket with its cumulative
//! rx/tx bytes and (on recent releases) the owning `process:pid`.
//!
//! The layout drifts between macOS releases (extra columns, `pid epid` vs
//! `process:pid` whose name may contain spaces, UDP rows without a state), so
//! columns are located from the header, never by a fixed token index: the
//! columns before a `process:pid` cell are counted from the front, the ones
//! after it from the back.

use proto::{Proto, TcpState};
use tracing::debug;

use super::addr::{Endpoint, parse_dot_endpoint};

/// Address family of a row, from the `tcp4`/`tcp6`/`tcp46` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
    /// `tcp46`/`udp46`: one IPv6 socket that also serves IPv4.
    Dual,
    /// No suffix: decided by the addresses.
    Unknown,
}

/// One socket row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetstatRow {
    pub proto: Proto,
    pub family: Family,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub state: Option<TcpState>,
    /// Cumulative bytes received / sent; `None` when the layout has no byte columns.
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    /// Last process that used the socket (`pid` or `process:pid` column).
    pub pid: Option<u32>,
    /// Process name from `process:pid` (short, may contain spaces).
    pub process_name: Option<String>,
    /// Kernel identity of the socket: `gencnt` (-v) or the `Socket` PCB address (-A).
    pub socket_id: Option<u64>,
}

impl NetstatRow {
    /// Whether addresses of this row are IPv6 (wildcards included).
    pub fn is_v6(&self) -> bool {
        match self.family {
            Family::V6 | Family::Dual => true,
            Family::V4 => false,
            Family::Unknown => self.local.addr.is_some_and(|a| a.is_ipv6()),
        }
    }
}

/// A line that looked like a socket row but could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number in the command output.
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetstatSockets {
    pub rows: Vec<NetstatRow>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// `-W` was passed. Without it netstat cuts long addresses; then an IPv6
    /// host of 16 characters or more may be truncated and is not trusted.
    pub wide: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { wide: true }
    }
}

/// Column positions learnt from a `Proto ...` header.
#[derive(Debug, Clone, Default)]
struct Layout {
    /// Index of `Proto` (2 with `-A`: `Socket Flowhash` come first).
    proto: usize,
    socket_col: Option<usize>,
    has_state: bool,
    /// Header names after `(state)`, in order.
    rest: Vec<String>,
}

impl Layout {
    fn from_header(tokens: &[&str]) -> Option<Layout> {
        // "Local Address" / "Foreign Address" are two header words for one column.
        let mut cols: Vec<&str> = Vec::with_capacity(tokens.len());
        for t in tokens {
            if *t == "Address" && matches!(cols.last(), Some(&"Local") | Some(&"Foreign")) {
                continue;
            }
            cols.push(t);
        }
        let proto = cols.iter().position(|c| *c == "Proto")?;
        let socket_col = cols[..proto].iter().position(|c| *c == "Socket");
        let state = cols.iter().position(|c| *c == "(state)");
        let rest_from = state.map_or(proto + 5, |s| s + 1);
        Some(Layout {
            proto,
            socket_col,
            has_state: state.is_some(),
            rest: cols
                .get(rest_from..)
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        })
    }
}

/// Parse the whole output of `netstat -an[v][b][W] -p tcp` or `-p udp` (or
/// both concatenated). Never fails: unusable lines are listed in `skipped`.
pub fn parse_sockets(text: &str, opts: ParseOptions) -> NetstatSockets {
    let mut out = NetstatSockets::default();
    let mut layout: Option<Layout> = None;
    for (i, line) in text.lines().enumerate() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.contains(&"Proto") && tokens.contains(&"Recv-Q") {
            layout = Layout::from_header(&tokens);
            continue;
        }
        let lead = layout.as_ref().map_or(0, |l| l.proto);
        let Some(proto_tok) = tokens.get(lead) else {
            continue;
        };
        if !(proto_tok.starts_with("tcp") || proto_tok.starts_with("udp")) {
            continue; // titles, "Some tcp sockets may have been deleted.", other sections
        }
        match parse_row(&tokens, layout.as_ref(), opts) {
            Ok(row) => out.rows.push(row),
            Err(reason) => {
                debug!(line = i + 1, %reason, "netstat: row skipped");
                out.skipped.push(Skipped {
                    line: i + 1,
                    reason,
                });
            }
        }
    }
    out
}

fn parse_row(
    tokens: &[&str],
    layout: Option<&Layout>,
    opts: ParseOptions,
) -> Result<NetstatRow, String> {
    let lead = layout.map_or(0, |l| l.proto);
    let proto_tok = tokens[lead];
    let (proto, suffix) = if let Some(s) = proto_tok.strip_prefix("tcp") {
        (Proto::Tcp, s)
    } else if let Some(s) = proto_tok.strip_prefix("udp") {
        (Proto::Udp, s)
    } else {
        return Err(format!("unknown protocol {proto_tok:?}"));
    };
    let family = match suffix {
        "4" => Family::V4,
        "6" => Family::V6,
        "46" => Family::Dual,
        "" => Family::Unknown,
        other => return Err(format!("unknown family suffix {other:?}")),
    };
    let local_tok = tokens.get(lead + 3).ok_or("no local address")?;
    let remote_tok = tokens.get(lead + 4).ok_or("no foreign address")?;
    for t in [local_tok, remote_tok] {
        if !opts.wide && family != Family::V4 && host_len(t) >= 16 {
            return Err(format!("{t:?} may be truncated (netstat without -W)"));
        }
    }
    let local = parse_dot_endpoint(local_tok).map_err(|e| e.to_string())?;
    let remote = parse_dot_endpoint(remote_tok).map_err(|e| e.to_string())?;

    let mut pos = lead + 5;
    let mut state = None;
    // TCP rows carry a state word; UDP rows leave the column blank.
    if proto == Proto::Tcp && layout.is_none_or(|l| l.has_state) {
        let tok = tokens.get(pos).ok_or("no TCP state")?;
        state = Some(tcp_state(tok).ok_or_else(|| format!("unknown TCP state {tok:?}"))?);
        pos += 1;
    }
    let rest = tokens.get(pos..).unwrap_or_default();

    let mut row = NetstatRow {
        proto,
        family,
        local,
        remote,
        state,
        rx_bytes: None,
        tx_bytes: None,
        pid: None,
        process_name: None,
        socket_id: None,
    };
    match layout {
        Some(l) => {
            if let Some(c) = l.socket_col {
                row.socket_id = tokens.get(c).and_then(|t| u64::from_str_radix(t, 16).ok());
            }
            fill_named_columns(&mut row, &l.rest, rest)?;
        }
        None => fill_from_numeric_tail(&mut row, rest),
    }
    Ok(row)
}

/// Length of the host part of `addr.port`.
fn host_len(tok: &str) -> usize {
    tok.rsplit_once('.').map_or(tok.len(), |(h, _)| h.len())
}

fn fill_named_columns(
    row: &mut NetstatRow,
    names: &[String],
    cells: &[&str],
) -> Result<(), String> {
    let mut assign = |name: &str, cell: &str| set_column(row, name, cell);
    match names.iter().position(|n| n == "process:pid") {
        Some(k) => {
            let tail = names.len() - k - 1;
            if cells.len() < k + 1 + tail {
                return Err(format!(
                    "{} columns after the addresses, layout needs {}",
                    cells.len(),
                    names.len()
                ));
            }
            for (name, cell) in names[..k].iter().zip(cells) {
                assign(name, cell);
            }
            for (name, cell) in names[k + 1..].iter().zip(&cells[cells.len() - tail..]) {
                assign(name, cell);
            }
            // The process name may contain spaces: everything between belongs to it.
            let process = cells[k..cells.len() - tail].join(" ");
            assign("process:pid", &process);
        }
        None => {
            for (name, cell) in names.iter().zip(cells) {
                assign(name, cell);
            }
        }
    }
    Ok(())
}

fn set_column(row: &mut NetstatRow, name: &str, cell: &str) {
    match name {
        "rxbytes" => row.rx_bytes = cell.parse().ok(),
        "txbytes" => row.tx_bytes = cell.parse().ok(),
        "pid" => row.pid = cell.parse().ok().filter(|p| *p != 0),
        "gencnt" => row.socket_id = u64::from_str_radix(cell, 16).ok(),
        "process:pid" => {
            if let Some((name, pid)) = cell.rsplit_once(':') {
                row.pid = pid.parse().ok().filter(|p| *p != 0);
                row.process_name = (!name.is_empty()).then(|| name.to_owned());
            }
        }
        _ => {}
    }
}

/// No header seen: the byte counters are the last two numbers of the row.
fn fill_from_numeric_tail(row: &mut NetstatRow, cells: &[&str]) {
    if let [.., rx, tx] = cells
        && let (Ok(rx), Ok(tx)) = (rx.parse(), tx.parse())
    {
        row.rx_bytes = Some(rx);
        row.tx_bytes = Some(tx);
    }
}

/// BSD TCP state names as netstat (`tcpstates[]`) and lsof (`TST=`) print them.
pub fn tcp_state(word: &str) -> Option<TcpState> {
    Some(match word {
        "CLOSED" => TcpState::Close,
        "LISTEN" => TcpState::Listen,
        "SYN_SENT" => TcpState::SynSent,
        "SYN_RCVD" | "SYN_RECEIVED" => TcpState::SynRecv,
        "ESTABLISHED" => TcpState::Established,
        "CLOSE_WAIT" => TcpState::CloseWait,
        "FIN_WAIT_1" => TcpState::FinWait1,
        "CLOSING" => TcpState::Closing,
        "LAST_ACK" => TcpState::LastAck,
        "FIN_WAIT_2" => TcpState::FinWait2,
        "TIME_WAIT" => TcpState::TimeWait,
        // netstat prints an out-of-range state as a number.
        n => TcpState::Unknown(n.parse::<u8>().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const B22: &str = "\
Active Internet connections (including servers)
Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)          rxbytes      txbytes
tcp4       0      0  192.0.2.10.52044       198.51.100.7.443       ESTABLISHED       5242880       104857
udp4       0      0  *.5353                 *.*                                         8840         1200
";

    #[test]
    fn header_driven_bytes_for_tcp_and_udp() {
        let out = parse_sockets(B22, ParseOptions::default());
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
        assert_eq!(out.rows.len(), 2);
        assert_eq!(out.rows[0].state, Some(TcpState::Established));
        assert_eq!(
            (out.rows[0].rx_bytes, out.rows[0].tx_bytes),
            (Some(5_242_880), Some(104_857))
        );
        assert_eq!(out.rows[1].state, None);
        assert_eq!(
            (out.rows[1].rx_bytes, out.rows[1].tx_bytes),
            (Some(8840), Some(1200))
        );
    }

    #[test]
    fn without_header_the_last_two_numbers_are_bytes() {
        let text = "udp46      0      0  *.443                  *.*                                     14400000     12000000\n";
        let out = parse_sockets(text, ParseOptions::default());
        assert_eq!(out.rows[0].rx_bytes, Some(14_400_000));
        assert_eq!(out.rows[0].tx_bytes, Some(12_000_000));
        assert_eq!(out.rows[0].family, Family::Dual);
    }

    #[test]
    fn process_name_with_spaces() {
        let text = "\
Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)          rxbytes      txbytes  rhiwat  shiwat    process:pid    state  options           gencnt    flags   flags1 usscnt rtncnt fltrs
tcp4       0      0  127.0.0.1.49152        127.0.0.1.8080         ESTABLISHED          10           20  131072  131072 Google Chrome H:412 00102 00000000 00000000000a1b2c 00000080 00000900      1      0 000001
";
        let out = parse_sockets(text, ParseOptions::default());
        let r = &out.rows[0];
        assert_eq!(r.pid, Some(412));
        assert_eq!(r.process_name.as_deref(), Some("Google Chrome H"));
        assert_eq!(r.socket_id, Some(0xa1b2c));
        assert_eq!((r.rx_bytes, r.tx_bytes), (Some(10), Some(20)));
    }

    #[test]
    fn pcb_address_column_with_a() {
        // `-A` puts the PCB address and flow hash before Proto (and narrows the
        // address columns; with -W they stay whole).
        let text = "\
Active Internet connections (including servers)
Socket           Flowhash Proto Recv-Q Send-Q  Local Address      Foreign Address    (state)
ffffff8012345678 1a2b3c4d tcp4       0      0  192.0.2.10.52044   198.51.100.7.443   ESTABLISHED
ffffff80123456a0        0 udp4       0      0  *.5353             *.*
";
        let out = parse_sockets(text, ParseOptions::default());
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
        assert_eq!(out.rows[0].socket_id, Some(0xffff_ff80_1234_5678));
        assert_eq!(out.rows[0].local.port, Some(52044));
        assert_eq!(out.rows[1].socket_id, Some(0xffff_ff80_1234_56a0));
        assert_eq!((out.rows[1].proto, out.rows[1].state), (Proto::Udp, None));
    }

    #[test]
    fn numeric_state_is_unknown_not_an_error() {
        let text = "tcp4 0 0 127.0.0.1.1 127.0.0.1.2 12 5 6\n";
        let out = parse_sockets(text, ParseOptions::default());
        assert_eq!(out.rows[0].state, Some(TcpState::Unknown(12)));
        assert_eq!(
            (out.rows[0].rx_bytes, out.rows[0].tx_bytes),
            (Some(5), Some(6))
        );
    }

    #[test]
    fn truncated_ipv6_is_not_trusted_without_w() {
        let text = "\
Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)
tcp6       0      0  2001:db8:1234:56.22    2001:db8::7.51000      ESTABLISHED
";
        let narrow = parse_sockets(text, ParseOptions { wide: false });
        assert!(narrow.rows.is_empty());
        assert_eq!(narrow.skipped.len(), 1);
        assert_eq!(narrow.skipped[0].line, 2);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "tcp4",
            "tcp4 0 0",
            "tcp4 0 0 x y",
            "udp9 0 0 *.1 *.*",
            "Proto Recv-Q\ntcp4 0 0 1.2.3.4.5 *.* BOGUS",
            "\u{0}\u{ffff}",
        ] {
            let _ = parse_sockets(text, ParseOptions::default());
        }
        let out = parse_sockets("tcp4 0 0 1.2.3.4.5 *.* BOGUS\n", ParseOptions::default());
        assert_eq!(out.skipped.len(), 1);
    }
}
