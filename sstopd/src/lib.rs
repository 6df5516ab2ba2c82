//! sstopd: the collector daemon behind `sstop`.
//!
//! Data flows one way: kernel → [`collect::Sample`] → [`aggregate::Aggregator`]
//! → [`proto::Snapshot`] → frames for every viewer ([`server`]).

pub mod aggregate;
pub mod collect;
pub mod config;
pub mod fasthash;
pub mod kill;
pub mod peer;
pub mod server;
pub mod systemd;

pub use config::Config;
pub use server::ServiceError;

/// Run the daemon with `config` until `shutdown` is cancelled: listen, collect,
/// serve viewers; then remove the socket and return. No signal handlers, no
/// global logger: the caller owns those (`main.rs`, tests, the client's
/// embedded mode).
pub async fn run(
    config: Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), ServiceError> {
    server::run(config, shutdown).await
}

/// [`run`] with the caller's collector instead of the one `config` names: for
/// integration tests whose snapshot must contain chosen real processes.
pub async fn run_with(
    config: Config,
    collector: Box<dyn collect::Collector>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), ServiceError> {
    server::run_with(config, collector, shutdown).await
}
