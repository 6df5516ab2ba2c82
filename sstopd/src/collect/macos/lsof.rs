//! `lsof -nP -i -F pcuRftPnT` parser: which process holds which Internet socket.
//!
//! Field output puts one field per line, the first character naming it:
//! `p` starts a process set (`c` command, `u` uid, `R` ppid follow), `f`
//! starts a file set (`t` type, `P` protocol, `n` name, `T` TCP info). Unknown
//! or malformed lines are skipped; a bad line never takes the rest down, and a
//! bad `p` line never lends its files to the previous process.

use proto::{Proto, TcpState};
use tracing::debug;

use super::addr::{Endpoint, parse_colon_endpoint};
use super::netstat::{Skipped, tcp_state};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsofProcess {
    /// Above 65535 on busy hosts: kept as u32.
    pub pid: u32,
    /// Command name, spaces and parentheses intact.
    pub command: String,
    pub uid: Option<u32>,
    pub ppid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsofSocket {
    pub pid: u32,
    pub fd: String,
    pub proto: Proto,
    /// `t` was `IPv6`.
    pub v6: bool,
    pub local: Endpoint,
    /// `None` when the name has no `->` (listening or unconnected).
    pub remote: Option<Endpoint>,
    pub state: Option<TcpState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LsofOutput {
    pub processes: Vec<LsofProcess>,
    /// Sockets with a usable local (and maybe remote) address.
    pub sockets: Vec<LsofSocket>,
    /// Sockets bound to nothing (`*:*`): no traffic to attribute.
    pub unbound: Vec<LsofSocket>,
    pub skipped: Vec<Skipped>,
}

#[derive(Default)]
struct FileAcc {
    fd: String,
    kind: Option<String>,
    proto: Option<String>,
    name: Option<(usize, String)>,
    state: Option<TcpState>,
}

/// Parse the whole `lsof -F` output (newline or NUL terminated fields).
pub fn parse(text: &str) -> LsofOutput {
    let mut out = LsofOutput::default();
    let mut proc_idx: Option<usize> = None;
    let mut file: Option<FileAcc> = None;
    let fields = text
        .split('\n')
        .enumerate()
        .flat_map(|(i, line)| line.split('\0').map(move |f| (i + 1, f)));
    for (line_no, field) in fields {
        let field = field.strip_suffix('\r').unwrap_or(field);
        let mut chars = field.chars();
        let Some(id) = chars.next() else { continue };
        let value = chars.as_str();
        match id {
            'p' => {
                finish_file(&mut out, proc_idx, file.take());
                match value.parse::<u32>() {
                    Ok(pid) => {
                        out.processes.push(LsofProcess {
                            pid,
                            command: String::new(),
                            uid: None,
                            ppid: None,
                        });
                        proc_idx = Some(out.processes.len() - 1);
                    }
                    Err(_) => {
                        proc_idx = None;
                        skip(&mut out, line_no, format!("bad pid {value:?}"));
                    }
                }
            }
            'f' => {
                finish_file(&mut out, proc_idx, file.take());
                file = Some(FileAcc {
                    fd: value.to_owned(),
                    ..FileAcc::default()
                });
            }
            'c' | 'u' | 'R' if file.is_none() => {
                if let Some(p) = proc_idx.and_then(|i| out.processes.get_mut(i)) {
                    match id {
                        'c' => p.command = value.to_owned(),
                        'u' => p.uid = value.parse().ok(),
                        _ => p.ppid = value.parse().ok(),
                    }
                }
            }
            't' | 'P' | 'n' | 'T' => {
                let Some(f) = file.as_mut() else { continue };
                match id {
                    't' => f.kind = Some(value.to_owned()),
                    'P' => f.proto = Some(value.to_owned()),
                    'n' => f.name = Some((line_no, value.to_owned())),
                    _ => {
                        if let Some(st) = value.strip_prefix("ST=") {
                            f.state = tcp_state(st);
                        }
                    }
                }
            }
            // Fields we did not ask for, or garbage: ignored.
            _ => {}
        }
    }
    finish_file(&mut out, proc_idx, file.take());
    out
}

fn skip(out: &mut LsofOutput, line: usize, reason: String) {
    debug!(line, %reason, "lsof: line skipped");
    out.skipped.push(Skipped { line, reason });
}

fn finish_file(out: &mut LsofOutput, proc_idx: Option<usize>, file: Option<FileAcc>) {
    let Some(f) = file else { return };
    let Some(pid) = proc_idx.and_then(|i| out.processes.get(i)).map(|p| p.pid) else {
        return; // a file of a process whose `p` line was bad
    };
    let v6 = match f.kind.as_deref() {
        Some("IPv4") => false,
        Some("IPv6") => true,
        _ => return, // not an Internet socket
    };
    let proto = match f.proto.as_deref() {
        Some("TCP") => Proto::Tcp,
        Some("UDP") => Proto::Udp,
        _ => return,
    };
    let Some((line, name)) = f.name else { return };
    // Plain (non -F) output appends " (STATE)"; tolerate it.
    let name = name.split(' ').next().unwrap_or_default();
    let (local_txt, remote_txt) = match name.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (name, None),
    };
    let parsed = parse_colon_endpoint(local_txt).and_then(|local| {
        let remote = remote_txt.map(parse_colon_endpoint).transpose()?;
        Ok((local, remote))
    });
    let (local, remote) = match parsed {
        Ok(p) => p,
        Err(e) => return skip(out, line, format!("pid {pid} fd {}: {e}", f.fd)),
    };
    let sock = LsofSocket {
        pid,
        fd: f.fd,
        proto,
        v6,
        local,
        remote,
        state: f.state,
    };
    if sock.local.is_unbound() && sock.remote.is_none() {
        out.unbound.push(sock);
    } else {
        out.sockets.push(sock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pid_does_not_lend_files_to_the_previous_process() {
        let text = "p10\ncone\nf3\ntIPv4\nPTCP\nn127.0.0.1:1->127.0.0.1:2\npxyz\nf4\ntIPv4\nPTCP\nn127.0.0.1:3->127.0.0.1:4\n";
        let out = parse(text);
        assert_eq!(out.sockets.len(), 1);
        assert_eq!(out.sockets[0].pid, 10);
        assert_eq!(out.skipped.len(), 1);
        assert_eq!(out.skipped[0].line, 7);
    }

    #[test]
    fn nul_terminated_fields_and_unknown_ids() {
        let text = "p7\0cnc\0u501\0\nf5\0tIPv4\0PUDP\0n*:5353\0Zjunk\0\n";
        let out = parse(text);
        assert_eq!(out.processes[0].uid, Some(501));
        assert_eq!(out.sockets[0].local.port, Some(5353));
        assert_eq!(out.sockets[0].remote, None);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "\n\n",
            "f1\nn1.2.3.4:5",
            "p\nf\nt\nP\nn\nT",
            "p1\nf1\ntIPv4\nPTCP\nn->",
            "p1\nf1\ntIPv6\nPTCP\nn[::1",
            "é\u{0}ü",
        ] {
            let _ = parse(text);
        }
    }
}
