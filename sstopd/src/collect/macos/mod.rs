//! macOS collectors: parsers over command output (portable, tested on every OS);
//! only the command runs are `cfg(target_os = "macos")`.

pub mod ifaces;
pub mod lsof;
pub mod netstat;
