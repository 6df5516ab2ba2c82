//! The service for real: `sstopd::run` (and the `sstopd` binary) on a
//! temporary socket with the synthetic collector, talked to by real viewers
//! over the real socket. One test binary; one module per concern.

mod harness;

mod binary;
mod fanout;
mod lifecycle;
mod permissions;
mod requests;
