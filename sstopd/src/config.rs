//! Command line ([`Args`]) and the resolved settings the service runs with ([`Config`]).
//!
//! `Args` is what a person types (names, octal strings, durations); `Config` is
//! what the code needs (gids, mode bits, `Duration`s) and can be built in code
//! with [`Config::new`] by tests and by the client's embedded mode.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use thiserror::Error;

use crate::collect::CollectorChoice;

/// Where the daemon listens unless told otherwise.
#[cfg(target_os = "macos")]
pub const DEFAULT_SOCKET: &str = "/var/run/sstopd.sock";
#[cfg(not(target_os = "macos"))]
pub const DEFAULT_SOCKET: &str = "/run/sstop/sstopd.sock";

/// Group given access to the socket when it exists and none is named.
pub const DEFAULT_GROUP: &str = "sstop";
pub const DEFAULT_MODE: u32 = 0o660;
pub const DEFAULT_MAX_VIEWERS: usize = 64;
/// Sampling interval bounds (also what viewers may ask for).
pub const MIN_INTERVAL: Duration = Duration::from_millis(proto::MIN_INTERVAL_MS as u64);
pub const MAX_INTERVAL: Duration = Duration::from_millis(proto::MAX_INTERVAL_MS as u64);

/// sstopd command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sstopd",
    version,
    about = "Per-process network bandwidth collector daemon for sstop",
    long_about = "sstopd watches every socket on the host (bytes and owning process) and streams \
                  snapshots to sstop viewers over a permissioned Unix socket. It runs in the \
                  foreground (systemd style), logs to stderr, supports systemd socket activation \
                  (LISTEN_FDS) and readiness/watchdog notification (NOTIFY_SOCKET), and stops \
                  cleanly on SIGTERM or SIGINT.\n\nViewers in the socket's group (default `sstop`) \
                  may connect; `usermod -aG sstop USER` lets a user view, `--socket-mode 0666` \
                  opens viewing to every local user."
)]
pub struct Args {
    /// Unix socket to listen on (its parent directory is created if missing).
    #[arg(long, value_name = "PATH", env = "SSTOPD_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// Group owning the socket [default: `sstop` if it exists, else root's group].
    #[arg(long, value_name = "NAME")]
    pub socket_group: Option<String>,

    /// Permission bits of the socket, in octal.
    #[arg(long, value_name = "OCTAL", default_value = "0660", value_parser = parse_mode)]
    pub socket_mode: u32,

    /// Sampling interval when no viewer asks for another (100ms to 10s), e.g. `1s`, `250ms`.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// How sockets and bytes are collected.
    #[arg(long, value_enum, default_value_t = CollectorArg::Auto)]
    pub collector: CollectorArg,

    /// Log filter: error, warn, info, debug, trace (or a tracing directive).
    #[arg(long, value_name = "LEVEL", env = "SSTOPD_LOG", default_value = "info")]
    pub log_level: String,

    /// Members of this group may signal any process through a viewer [default: off; root and
    /// a process's own user always may].
    #[arg(long, value_name = "NAME")]
    pub kill_group: Option<String>,

    /// Most viewers connected at once; more are refused with a clear message.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_VIEWERS)]
    pub max_viewers: usize,

    /// Synthetic collector: number of processes.
    #[arg(long, hide = true, default_value_t = 200)]
    pub synthetic_processes: u32,

    /// Synthetic collector: sockets per process.
    #[arg(long, hide = true, default_value_t = 4)]
    pub synthetic_sockets: u32,
}

/// `--collector` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CollectorArg {
    /// sock_diag netlink where it works, else the packet fallback.
    Auto,
    /// sock_diag netlink + AF_PACKET for UDP.
    Netlink,
    /// /proc/net + AF_PACKET for every byte.
    Packet,
    /// Generated data (development, benchmarks).
    Synthetic,
}

impl From<CollectorArg> for CollectorChoice {
    fn from(arg: CollectorArg) -> Self {
        match arg {
            CollectorArg::Auto => CollectorChoice::Auto,
            CollectorArg::Netlink => CollectorChoice::Netlink,
            CollectorArg::Packet => CollectorChoice::Packet,
            CollectorArg::Synthetic => CollectorChoice::Synthetic,
        }
    }
}

/// Size of the generated host for `CollectorChoice::Synthetic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSize {
    pub processes: u32,
    pub sockets_per_process: u32,
}

impl Default for SyntheticSize {
    fn default() -> Self {
        SyntheticSize {
            processes: 200,
            sockets_per_process: 4,
        }
    }
}

/// Resolved settings of one daemon instance.
#[derive(Debug, Clone)]
pub struct Config {
    pub socket_path: PathBuf,
    /// Group the socket is given to; `None` leaves the creating process's group.
    pub socket_gid: Option<u32>,
    pub socket_mode: u32,
    /// Sampling interval when no viewer asks for another.
    pub interval: Duration,
    pub collector: CollectorChoice,
    pub synthetic: SyntheticSize,
    /// Members may signal any process (`--kill-group`).
    pub kill_gid: Option<u32>,
    pub max_viewers: usize,
    /// A viewer must send `Hello` within this time.
    pub handshake_timeout: Duration,
    /// A viewer that does not take a frame within this time is dropped.
    pub write_timeout: Duration,
    /// Talk to systemd: socket activation (`LISTEN_FDS`) and `NOTIFY_SOCKET`.
    /// Off for in-process use (tests, the client's embedded mode).
    pub systemd: bool,
}

impl Config {
    /// Defaults for a daemon on `socket_path`: mode 0660, the caller's group,
    /// 1 s interval, automatic collector, no systemd integration.
    pub fn new(socket_path: impl Into<PathBuf>) -> Self {
        Config {
            socket_path: socket_path.into(),
            socket_gid: None,
            socket_mode: DEFAULT_MODE,
            interval: Duration::from_secs(1),
            collector: CollectorChoice::Auto,
            synthetic: SyntheticSize::default(),
            kill_gid: None,
            max_viewers: DEFAULT_MAX_VIEWERS,
            handshake_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            systemd: false,
        }
    }

    /// Resolve names on the command line (blocking: reads the group database).
    pub fn from_args(args: &Args) -> Result<Self, ConfigError> {
        let socket_gid = match &args.socket_group {
            Some(name) => Some(resolve_group(name, "--socket-group")?),
            None => match lookup_group(DEFAULT_GROUP) {
                Some(gid) => Some(gid),
                None => {
                    tracing::info!(
                        "group `{DEFAULT_GROUP}` does not exist; the socket keeps root's group \
                         (create it with `groupadd --system {DEFAULT_GROUP}` to let users view)"
                    );
                    None
                }
            },
        };
        let kill_gid = args
            .kill_group
            .as_deref()
            .map(|name| resolve_group(name, "--kill-group"))
            .transpose()?;
        if args.max_viewers == 0 {
            return Err(ConfigError::Invalid(
                "--max-viewers must be at least 1".into(),
            ));
        }
        Ok(Config {
            socket_path: args.socket.clone(),
            socket_gid,
            socket_mode: args.socket_mode,
            interval: args.interval,
            collector: args.collector.into(),
            synthetic: SyntheticSize {
                processes: args.synthetic_processes,
                sockets_per_process: args.synthetic_sockets,
            },
            kill_gid,
            max_viewers: args.max_viewers,
            systemd: true,
            ..Config::new(&args.socket)
        })
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{flag}: no group named `{name}` (create it with `groupadd --system {name}`)")]
    UnknownGroup { flag: &'static str, name: String },
    #[error("{0}")]
    Invalid(String),
}

fn lookup_group(name: &str) -> Option<u32> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Some(g.gid.as_raw()),
        _ => None,
    }
}

/// A group name, or a numeric gid when no group has that name.
fn resolve_group(name: &str, flag: &'static str) -> Result<u32, ConfigError> {
    lookup_group(name)
        .or_else(|| name.parse::<u32>().ok())
        .ok_or_else(|| ConfigError::UnknownGroup {
            flag,
            name: name.to_string(),
        })
}

/// `0660`, `660` or `0o660` → 0o660.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim().trim_start_matches("0o");
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("`{s}` is not an octal mode like 0660"))?;
    if mode > 0o777 {
        return Err(format!(
            "`{s}` has bits beyond 0777 (only permission bits are allowed)"
        ));
    }
    Ok(mode)
}

/// `250ms`, `1s`, `1.5s`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 1s or 250ms"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" | "secs" => value,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown unit `{other}` in `{s}` (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is out of range"))
}

/// A duration within the sampling bounds.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < MIN_INTERVAL || d > MAX_INTERVAL {
        return Err(format!("interval `{s}` is outside 100ms..10s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_interval("50ms").is_err());
        assert!(parse_interval("11s").is_err());
        assert_eq!(parse_interval("100ms").unwrap(), MIN_INTERVAL);
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0660").unwrap(), 0o660);
        assert_eq!(parse_mode("666").unwrap(), 0o666);
        assert_eq!(parse_mode("0o600").unwrap(), 0o600);
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("4755").is_err());
        assert!(parse_mode("rw").is_err());
    }

    #[test]
    fn args_resolve_to_config() {
        let args = Args::try_parse_from([
            "sstopd",
            "--socket",
            "/tmp/x.sock",
            "--socket-group",
            "0",
            "--socket-mode",
            "0600",
            "--interval",
            "250ms",
            "--collector",
            "synthetic",
            "--max-viewers",
            "3",
        ])
        .unwrap();
        let cfg = Config::from_args(&args).unwrap();
        assert_eq!(cfg.socket_path, PathBuf::from("/tmp/x.sock"));
        assert_eq!(cfg.socket_gid, Some(0));
        assert_eq!(cfg.socket_mode, 0o600);
        assert_eq!(cfg.interval, Duration::from_millis(250));
        assert_eq!(cfg.collector, CollectorChoice::Synthetic);
        assert_eq!(cfg.max_viewers, 3);
        assert!(cfg.systemd);
    }

    #[test]
    fn unknown_kill_group_is_a_clear_error() {
        let args = Args::try_parse_from(["sstopd", "--kill-group", "no-such-group-xyz"]).unwrap();
        let err = Config::from_args(&args).unwrap_err().to_string();
        assert!(err.contains("--kill-group"), "{err}");
        assert!(err.contains("no-such-group-xyz"), "{err}");
    }
}
