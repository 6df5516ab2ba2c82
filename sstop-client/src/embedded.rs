//! Embedded mode: as root with no daemon running, run the same collector and
//! server in this process on a private socket (mode 0600 in a 0700 directory)
//! and connect to it like to any daemon.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sstopd::collect::CollectorChoice;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::CollectorArg;
use crate::conn::{self, ConnError, Session};

/// How long the in-process daemon may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub fn choice(arg: CollectorArg) -> CollectorChoice {
    match arg {
        CollectorArg::Auto => CollectorChoice::Auto,
        CollectorArg::Netlink => CollectorChoice::Netlink,
        CollectorArg::Packet => CollectorChoice::Packet,
        CollectorArg::Synthetic => CollectorChoice::Synthetic,
    }
}

/// A running in-process daemon; stopped and cleaned up by [`Embedded::stop`] (or on drop).
pub struct Embedded {
    pub socket: PathBuf,
    dir: PathBuf,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), sstopd::ServiceError>>>,
}

/// A fresh private directory: `$XDG_RUNTIME_DIR` when set, else the temp dir.
fn private_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = base.join(format!("sstop-embedded-{}-{nanos}", std::process::id()));
    // create() (not create_all) fails if the path exists: nobody can pre-plant it.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create private directory {}", dir.display()))?;
    Ok(dir)
}

/// Start the collector in-process and connect to it.
pub async fn start(collector: CollectorArg) -> anyhow::Result<(Embedded, Session)> {
    let dir = private_dir()?;
    let socket = dir.join("sstopd.sock");
    let mut config = sstopd::Config::new(&socket);
    config.socket_mode = 0o600;
    config.collector = choice(collector);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sstopd::run(config, shutdown.clone()));
    let mut emb = Embedded {
        socket,
        dir,
        shutdown,
        task: Some(task),
    };
    match emb.wait_ready().await {
        Ok(s) => Ok((emb, s)),
        Err(e) => {
            emb.stop().await;
            Err(e)
        }
    }
}

impl Embedded {
    async fn wait_ready(&mut self) -> anyhow::Result<Session> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(task) = &self.task
                && task.is_finished()
                && let Some(task) = self.task.take()
            {
                return match task.await {
                    Ok(Ok(())) => bail!("the embedded collector stopped at once"),
                    Ok(Err(e)) => Err(e).context(hint("the embedded collector failed to start")),
                    Err(e) => bail!("the embedded collector crashed: {e}"),
                };
            }
            match conn::connect(&self.socket).await {
                Ok(s) => return Ok(s),
                Err(ConnError::NoDaemon { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("cannot connect to the embedded collector"),
            }
        }
    }

    /// Cancel the in-process daemon, wait briefly for it to remove its socket, remove the directory.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        remove_dir(&self.dir);
    }
}

fn hint(what: &str) -> String {
    format!("{what} (try `--collector synthetic` to check the viewer, or start sstopd)")
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("sstopd.sock"));
    let _ = std::fs::remove_dir(dir);
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.shutdown.cancel();
        remove_dir(&self.dir);
    }
}
