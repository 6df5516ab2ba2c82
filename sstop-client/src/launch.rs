//! Finding a daemon: the socket given, or (as root, none running) an embedded
//! one; otherwise an explanation of what to do. Then dispatch to the TUI,
//! headless output or `sstop kill`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Cli, Command};
use crate::conn::{self, Session};
use crate::embedded::{self, Embedded};

/// A greeted session and where it came from.
pub struct Started {
    pub session: Session,
    pub socket: PathBuf,
    pub embedded: Option<Embedded>,
}

/// What a front end (TUI, headless, kill) needs: the session and how to reconnect.
pub struct Target {
    pub session: Session,
    pub socket: PathBuf,
    /// Shown in the header when the collector runs in this process.
    pub embedded_note: Option<String>,
}

impl Started {
    pub fn into_parts(self) -> (Target, Option<Embedded>) {
        let embedded_note = self.embedded.as_ref().map(|_| {
            format!(
                "embedded collector ({}), no sstopd running",
                self.session.welcome.collector
            )
        });
        let target = Target {
            session: self.session,
            socket: self.socket,
            embedded_note,
        };
        (target, self.embedded)
    }
}

pub async fn start(cli: &Cli) -> anyhow::Result<Started> {
    let err = match conn::connect(&cli.socket).await {
        Ok(session) => {
            return Ok(Started {
                session,
                socket: cli.socket.clone(),
                embedded: None,
            });
        }
        Err(e) => e,
    };
    if !err.is_no_daemon() {
        return Err(err.into());
    }
    if !nix::unistd::geteuid().is_root() || cli.no_embedded {
        anyhow::bail!(
            "{err}.\nStart the daemon with `sudo systemctl enable --now sstopd`, \
             or run `sudo sstop` to collect in-process (embedded mode)."
        );
    }
    let (emb, session) = embedded::start(cli.collector).await?;
    eprintln!(
        "sstop: no daemon on {}; running the {} collector in-process (embedded mode)",
        cli.socket.display(),
        session.welcome.collector
    );
    Ok(Started {
        socket: emb.socket.clone(),
        session,
        embedded: Some(emb),
    })
}

/// Everything after argument parsing; the binary only prints errors.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (mut target, embedded) = rt.block_on(start(&cli))?.into_parts();
    let result = match (&cli.command, cli.headless()) {
        (Some(Command::Kill { pid, signal }), _) => {
            rt.block_on(crate::kill_cmd::run(&mut target.session, *pid, *signal))
        }
        (None, Some(format)) => crate::headless::run(&rt, target, &cli, format),
        (None, None) => crate::tui::run(&rt, target, &cli),
    };
    if let Some(mut emb) = embedded {
        rt.block_on(emb.stop());
    }
    result
}

/// An error and its causes on one line, skipping a cause whose words the
/// line already holds (many error types repeat their source in their message).
pub fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn repeated_causes_are_said_once() {
        let inner = anyhow::anyhow!("collector Auto is not available");
        let e = inner
            .context("cannot start the collector: collector Auto is not available")
            .context("embedded failed");
        assert_eq!(
            super::describe(&e),
            "embedded failed: cannot start the collector: collector Auto is not available"
        );
    }
}
