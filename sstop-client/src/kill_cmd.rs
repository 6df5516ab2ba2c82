//! `sstop kill PID [--signal NAME]`: the same daemon-authorized request the
//! kill overlay sends, pinned to the start time the daemon reports.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use proto::{ClientMsg, ServerMsg, Signal};

use crate::conn::Session;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(session: &mut Session, pid: u32, signal: Signal) -> anyhow::Result<ExitCode> {
    tokio::time::timeout(ANSWER_TIMEOUT, exchange(session, pid, signal))
        .await
        .context("the daemon did not answer in time")?
}

async fn exchange(session: &mut Session, pid: u32, signal: Signal) -> anyhow::Result<ExitCode> {
    session
        .send(&ClientMsg::Subscribe {
            interval_ms: proto::DEFAULT_INTERVAL_MS,
            detail_pid: None,
        })
        .await?;
    let (start_time, name) = loop {
        if let ServerMsg::Snapshot(s) = session.recv().await? {
            match s.processes.iter().find(|p| p.pid == pid && p.alive) {
                Some(p) => break (p.start_time, p.name.clone()),
                // Processes without sockets are not in the snapshot; the kernel's start time
                // pins them just as well, and the daemon checks it again.
                None => match proc_start_time(pid) {
                    Some(t) => break (t, format!("pid {pid}")),
                    None => bail!("no process {pid}"),
                },
            }
        }
    };
    session
        .send(&ClientMsg::Kill {
            pid,
            start_time,
            signal,
        })
        .await?;
    loop {
        match session.recv().await? {
            ServerMsg::KillResult(r) if r.pid == pid => {
                let sig = format!("SIG{}", r.signal.name());
                return if r.outcome.is_success() {
                    println!("sent {sig} to {name} ({pid}): {}", r.message);
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!(
                        "sstop: {sig} not sent to {name} ({pid}): {:?}: {}",
                        r.outcome, r.message
                    );
                    Ok(ExitCode::FAILURE)
                };
            }
            ServerMsg::Error { message, .. } => bail!("the daemon refused: {message}"),
            _ => {}
        }
    }
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks), read after the last `)`.
fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the comm: state is field 3, so starttime (22) is the 20th token.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn start_time_after_the_last_paren() {
        let stat = "13479 (we ird) (x) S 13476 13472 2837 0 -1 4194304 118 0 0 0 0 0 0 0 20 0 1 0 85960 2990080 395";
        assert_eq!(super::parse_start_time(stat), Some(85960));
        assert_eq!(super::parse_start_time("garbage"), None);
    }
}
