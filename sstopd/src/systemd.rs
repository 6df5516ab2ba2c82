//! Talking to systemd: readiness, status, watchdog and stopping notifications
//! (`NOTIFY_SOCKET`) and socket activation (`LISTEN_FDS`). Everything is a
//! no-op when the daemon is not run by systemd, when [`Notifier::disabled`] is
//! used (in-process daemons), and on other operating systems.

use std::os::fd::OwnedFd;
use std::time::Duration;

/// Sends `sd_notify` messages when enabled and `NOTIFY_SOCKET` is set.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// Notifies only when `enabled` and systemd gave us a `NOTIFY_SOCKET`.
    pub fn new(enabled: bool) -> Self {
        Notifier {
            enabled: enabled && std::env::var_os("NOTIFY_SOCKET").is_some(),
        }
    }

    pub fn disabled() -> Self {
        Notifier { enabled: false }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// `READY=1` with a first status line.
    pub fn ready(&self, status: &str) {
        self.send(&[State::Ready, State::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[State::Status(status)]);
    }

    pub fn watchdog(&self) {
        self.send(&[State::Watchdog]);
    }

    pub fn stopping(&self) {
        self.send(&[State::Stopping, State::Status("stopping")]);
    }

    /// How often to ping the watchdog (half its timeout), when systemd asked for it.
    pub fn watchdog_period(&self) -> Option<Duration> {
        if !self.enabled {
            return None;
        }
        watchdog_timeout().map(|t| (t / 2).max(Duration::from_millis(50)))
    }

    fn send(&self, states: &[State<'_>]) {
        if self.enabled {
            send(states);
        }
    }
}

enum State<'a> {
    Ready,
    Status(&'a str),
    Watchdog,
    Stopping,
}

#[cfg(target_os = "linux")]
fn send(states: &[State<'_>]) {
    use sd_notify::NotifyState;
    let states: Vec<NotifyState<'_>> = states
        .iter()
        .map(|s| match s {
            State::Ready => NotifyState::Ready,
            State::Status(text) => NotifyState::Status(text),
            State::Watchdog => NotifyState::Watchdog,
            State::Stopping => NotifyState::Stopping,
        })
        .collect();
    if let Err(e) = sd_notify::notify(&states) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
fn send(_states: &[State<'_>]) {}

#[cfg(target_os = "linux")]
fn watchdog_timeout() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

#[cfg(not(target_os = "linux"))]
fn watchdog_timeout() -> Option<Duration> {
    None
}

/// The first socket systemd passed us (`LISTEN_FDS`/`LISTEN_PID` for this
/// process), if any. Further sockets are closed: the daemon serves one.
#[cfg(target_os = "linux")]
pub fn activation_socket() -> std::io::Result<Option<OwnedFd>> {
    use std::os::fd::FromRawFd;
    let mut fds = sd_notify::listen_fds()?;
    let first = fds.next().map(|fd| {
        // SAFETY: systemd handed this descriptor to this process (LISTEN_PID
        // matched) and nothing else in the process owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    });
    for extra in fds {
        tracing::warn!("ignoring extra socket-activation descriptor {extra}");
        // SAFETY: as above; taking ownership closes it.
        drop(unsafe { OwnedFd::from_raw_fd(extra) });
    }
    Ok(first)
}

#[cfg(not(target_os = "linux"))]
pub fn activation_socket() -> std::io::Result<Option<OwnedFd>> {
    Ok(None)
}
