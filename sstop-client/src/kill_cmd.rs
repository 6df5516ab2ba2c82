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
                // The daemon signals only what it shows (processes with sockets); the
                // viewer never reads /proc itself.
                None => bail!(
                    "process {pid} is not among the processes sstopd shows \
                     (only processes with sockets are listed)"
                ),
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
                // The daemon's message already says what happened and why; the outcome
                // name only when it says nothing.
                let why = if r.message.is_empty() {
                    format!("{:?}", r.outcome)
                } else {
                    r.message
                };
                return if r.outcome.is_success() {
                    println!("sent {sig} to {name} ({pid})");
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("sstop: {sig} not sent to {name} ({pid}): {why}");
                    Ok(ExitCode::FAILURE)
                };
            }
            ServerMsg::Error { message, .. } => bail!("the daemon refused: {message}"),
            _ => {}
        }
    }
}
