//! sstopd: the collector daemon behind `sstop`.
//!
//! Data flows one way: kernel → [`collect::Sample`] → [`aggregate::Aggregator`]
//! → [`proto::Snapshot`] → frames for every viewer ([`server`]).

pub mod aggregate;
pub mod collect;
pub mod config;
pub mod kill;
pub mod peer;
pub mod server;
pub mod systemd;
