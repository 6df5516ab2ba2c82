//! macOS collector: the system tools (`netstat`, `lsof`, `route`) instead of
//! kernel interfaces. Parsers are plain functions over text and everything but
//! the kernel calls in [`process`] is portable, so it compiles and is tested on
//! every OS from captured output.
//!
//! Flow: runner → text → parsers (`netstat`, `lsof`, `ifaces`) → `assemble`
//! (join by protocol + tuple, attach process facts) → `Sample`.

pub mod addr;
pub mod assemble;
pub mod collector;
pub mod ifaces;
pub mod lsof;
pub mod netstat;
pub mod process;
pub mod runner;

pub use collector::{MacosCollector, Tools};
pub use process::{ProcFacts, ProcessSource};
pub use runner::{CommandRunner, RunError, RunOutput, SystemRunner};

#[cfg(target_os = "macos")]
pub use process::start_time;
