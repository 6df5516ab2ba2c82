//! The command line. Public so packaging can generate man pages and shell
//! completions from it (`clap::CommandFactory`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Shown by `--help` and in the man page.
const KEYS_HELP: &str = "\
Keys: j/k or arrows move, PgUp/Ctrl+U and PgDn/Ctrl+D page, g/Home and G/End jump, Enter opens a \
process, s cycles the sort (rate, down, up, pid, name, conns), / filters (name, command line, pid), \
h remote hosts, l listening ports, K signals the selected process, d toggles DNS names in the detail \
view, Esc goes back, i/Tab picks the interface, +/- change the refresh interval, Space pauses the \
display, ? shows help, q or Ctrl+C quits. Mouse: click selects, the wheel scrolls.

Figures: process, host and connection rates are payload bytes per second; interface rates are wire \
bytes (headers included).

Without a daemon, root runs the collector in-process (embedded mode); other users are told how to \
start sstopd. Viewing needs membership in the socket's group (`sudo usermod -aG sstop $USER`).";

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/sstop/sstopd.sock";

/// sstop: htop for the network: live upload/download per process, connection,
/// remote host and listening port.
#[derive(Debug, Parser)]
#[command(name = "sstop", version, about, after_long_help = KEYS_HELP)]
pub struct Cli {
    /// Socket of the sstopd daemon.
    #[arg(long, value_name = "PATH", env = "SSTOP_SOCKET", default_value = DEFAULT_SOCKET, global = true)]
    pub socket: PathBuf,

    /// Print one JSON object per frame instead of the TUI.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print one CSV row per process per frame (header once) instead of the TUI.
    #[arg(long)]
    pub csv: bool,

    /// With --json/--csv: print one frame and exit.
    #[arg(long, conflicts_with = "count")]
    pub once: bool,

    /// With --json/--csv: print N frames and exit.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Refresh interval, 100ms to 10s (e.g. `500ms`, `2s`, `1.5`).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval_ms, default_value = "1s")]
    pub interval: u32,

    /// Collector for embedded mode (root, no daemon running).
    #[arg(long, value_enum, default_value_t = CollectorArg::Auto)]
    pub collector: CollectorArg,

    /// Never start the collector in-process, even as root.
    #[arg(long)]
    pub no_embedded: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask the daemon to signal a process (policy: your own processes, or any as root).
    Kill {
        /// Process id as shown by sstop.
        pid: u32,
        /// TERM, KILL, INT, HUP, QUIT, STOP, CONT, USR1 or USR2 (with or without SIG).
        #[arg(long, short, default_value = "TERM", value_parser = parse_signal)]
        signal: proto::Signal,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CollectorArg {
    Auto,
    Netlink,
    Packet,
    Synthetic,
}

impl Cli {
    /// Frames to print in headless mode; `None` = until stdout closes.
    pub fn frame_limit(&self) -> Option<u64> {
        if self.once { Some(1) } else { self.count }
    }

    pub fn headless(&self) -> Option<crate::headless::Format> {
        match (self.json, self.csv) {
            (true, _) => Some(crate::headless::Format::Json),
            (_, true) => Some(crate::headless::Format::Csv),
            _ => None,
        }
    }
}

fn parse_signal(s: &str) -> Result<proto::Signal, String> {
    match proto::Signal::parse(s) {
        Some(sig) if proto::Signal::LISTED.contains(&sig) => Ok(sig),
        _ => Err(format!(
            "unknown signal {s:?}; use one of {}",
            proto::Signal::LISTED.map(|s| s.name()).join(", ")
        )),
    }
}

/// `500ms`, `2s`, `1.5s`, `1.5` (seconds), `1m` → milliseconds within the daemon's bounds.
pub fn parse_interval_ms(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, 1000.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 500ms or 2s)"))?;
    let ms = (v * scale).round();
    let (lo, hi) = (proto::MIN_INTERVAL_MS, proto::MAX_INTERVAL_MS);
    if !ms.is_finite() || ms < f64::from(lo) || ms > f64::from(hi) {
        return Err(format!(
            "interval must be between {lo}ms and {}s",
            hi / 1000
        ));
    }
    Ok(ms as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn intervals_parse_within_bounds() {
        assert_eq!(parse_interval_ms("500ms"), Ok(500));
        assert_eq!(parse_interval_ms("2s"), Ok(2000));
        assert_eq!(parse_interval_ms("1.5"), Ok(1500));
        assert!(parse_interval_ms("50ms").is_err());
        assert!(parse_interval_ms("11s").is_err());
        assert!(parse_interval_ms("fast").is_err());
        assert!(parse_interval_ms("NaN").is_err());
    }

    #[test]
    fn kill_subcommand_parses_signal_names() {
        let cli = Cli::try_parse_from(["sstop", "kill", "42", "--signal", "sigkill"]).unwrap();
        match cli.command {
            Some(Command::Kill { pid, signal }) => {
                assert_eq!(pid, 42);
                assert_eq!(signal, proto::Signal::Kill);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["sstop", "kill", "42", "-s", "SEGV"]).is_err());
    }
}
