//! The service: listener, collection loop, hub and one session per viewer,
//! wired together by [`run`]. Shutdown is one cancellation token every task
//! selects on; the top waits, tells systemd, and removes the socket.

pub mod hub;
pub mod listener;
pub mod ratelimit;
pub mod sampler;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use proto::{Caps, PROTOCOL_VERSION, Welcome};
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::collect::{CollectError, Collector};
use crate::config::Config;
use crate::kill::KillPolicy;
use crate::systemd::Notifier;
use hub::Hub;
use listener::{ListenError, Listener, SocketSpec};
use sampler::Sampler;
use session::SessionCtx;

/// How long to pause accepting after running out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long shutdown waits for sessions and the collection loop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("cannot start the collector: {0}")]
    Collector(#[from] CollectError),
    #[error("systemd socket activation: {0}")]
    Activation(std::io::Error),
    #[error("the collection loop stopped unexpectedly")]
    CollectorStopped,
}

/// Run the daemon until `shutdown` is cancelled. Installs no signal handler
/// and no logger; removes its socket before returning.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), ServiceError> {
    serve(config, None, shutdown).await
}

/// [`run`] with a collector supplied by the caller instead of `config.collector`
/// (integration tests whose view must hold chosen real processes).
pub async fn run_with(
    config: Config,
    collector: Box<dyn Collector>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    serve(config, Some(collector), shutdown).await
}

async fn serve(
    config: Config,
    injected: Option<Box<dyn Collector>>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let notifier = Notifier::new(config.systemd);
    let listener = open_listener(&config)?;
    let (hub, wake_rx) = Hub::new();
    // Everything below stops on `stop`: the caller's shutdown or our own failure.
    let stop = shutdown.child_token();
    let mut sampler = Sampler::start(
        &config,
        injected,
        Arc::clone(&hub),
        wake_rx,
        notifier,
        stop.clone(),
    )
    .await?;

    let result = async {
        if !first_tick(&hub, &stop, &mut sampler.ended).await? {
            return Ok(());
        }
        notifier.ready(&format!("0 viewers, listening on {}", listener.description()));
        tracing::info!(
            "sstopd {} listening on {} ({} collector, protocol {PROTOCOL_VERSION}, up to {} viewers)",
            env!("CARGO_PKG_VERSION"),
            listener.description(),
            sampler.mode,
            config.max_viewers,
        );
        let ctx = Arc::new(SessionCtx {
            hub: Arc::clone(&hub),
            welcome: welcome(&sampler, sampler.caps),
            policy: KillPolicy {
                admin_gid: config.kill_gid,
                daemon_pid: std::process::id(),
            },
            handshake_timeout: config.handshake_timeout,
            write_timeout: config.write_timeout,
        });
        accept_loop(&listener, ctx, config.max_viewers, &stop, &mut sampler.ended).await
    }
    .await;

    notifier.stopping();
    tracing::info!("sstopd stopping");
    stop.cancel();
    hub.wake();
    drop(listener);
    let joined = tokio::task::spawn_blocking(move || sampler.join());
    if tokio::time::timeout(DRAIN_TIMEOUT, joined).await.is_err() {
        tracing::warn!("the collection loop did not stop in time; leaving it behind");
    }
    result
}

fn open_listener(config: &Config) -> Result<Listener, ServiceError> {
    let activated = if config.systemd {
        crate::systemd::activation_socket().map_err(ServiceError::Activation)?
    } else {
        None
    };
    if let Some(fd) = activated {
        let l = Listener::from_activation(fd)?;
        tracing::info!("using the socket systemd passed ({})", l.description());
        return Ok(l);
    }
    Ok(Listener::bind(&SocketSpec {
        path: config.socket_path.clone(),
        gid: config.socket_gid,
        mode: config.socket_mode,
    })?)
}

/// Wait for the first snapshot. `Ok(false)` when shut down before it came.
async fn first_tick(
    hub: &Hub,
    stop: &CancellationToken,
    ended: &mut tokio::sync::oneshot::Receiver<()>,
) -> Result<bool, ServiceError> {
    let mut ticks = hub.subscribe_ticks();
    loop {
        if ticks.borrow_and_update().is_some() {
            return Ok(true);
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(false),
            _ = &mut *ended => return if stop.is_cancelled() {
                Ok(false)
            } else {
                Err(ServiceError::CollectorStopped)
            },
            r = ticks.changed() => if r.is_err() { return Err(ServiceError::CollectorStopped) },
        }
    }
}

fn welcome(sampler: &Sampler, caps: Caps) -> Welcome {
    Welcome {
        protocol: PROTOCOL_VERSION,
        daemon: env!("CARGO_PKG_VERSION").into(),
        host: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        os: std::env::consts::OS.into(),
        collector: sampler.mode,
        caps: Caps {
            // Policy still applies per request; the kill module decides.
            kill: cfg!(target_os = "linux"),
            ..caps
        },
        viewer_uid: 0,
    }
}

async fn accept_loop(
    listener: &Listener,
    ctx: Arc<SessionCtx>,
    max_viewers: usize,
    stop: &CancellationToken,
    sampler_ended: &mut tokio::sync::oneshot::Receiver<()>,
) -> Result<(), ServiceError> {
    let slots = Arc::new(Semaphore::new(max_viewers));
    let mut sessions = JoinSet::new();
    let mut fd_warned = false;
    let result = loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break Ok(()),
            // Ends on our own stop too; only an unasked-for end is an error.
            _ = &mut *sampler_ended => break if stop.is_cancelled() {
                Ok(())
            } else {
                Err(ServiceError::CollectorStopped)
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok(stream) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(permit) => {
                        let ctx = Arc::clone(&ctx);
                        let stop = stop.clone();
                        sessions.spawn(async move {
                            session::serve(stream, ctx, stop).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!("refusing a viewer: {max_viewers} already connected");
                        sessions.spawn(session::refuse(stream, max_viewers, ctx.write_timeout));
                    }
                },
                Err(e) if is_fd_exhaustion(&e) => {
                    if !fd_warned {
                        tracing::error!("cannot accept viewers: out of file descriptors ({e}); retrying");
                        fd_warned = true;
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    };
    stop.cancel();
    let drained = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        sessions.abort_all();
    }
    result
}

fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}
