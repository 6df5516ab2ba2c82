//! macOS collector from captured tool output: parsers (CASES B20, B21, B22 and
//! the netstat layouts of recent and older releases), the whole collector
//! (fixture runner → `Sample`), the aggregator (`Sample` → `Snapshot`), the
//! real runner against scripts and missing tools, and the launchd plist.

// clippy.toml allows unwrap inside #[test] fns; the fixture helpers here are test code too.
#![allow(clippy::unwrap_used)]

#[path = "macos/collector.rs"]
mod collector;
#[path = "macos/launchd.rs"]
mod launchd;
#[path = "macos/parsers.rs"]
mod parsers;
#[path = "macos/support.rs"]
mod support;
