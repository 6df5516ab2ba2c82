//! Everything that can happen to the viewer, as one enum: keys (already
//! mapped to intents by `keymap`), the daemon's messages, connection changes,
//! DNS answers and the clock. `App::update` consumes these; nothing else
//! changes the state.

use std::net::IpAddr;

use proto::{Detail, KillResult, Snapshot, Welcome};

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    // Navigation.
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// A click on the row with this index in the current list.
    ClickRow(usize),
    ScrollUp,
    ScrollDown,
    // Views and overlays.
    Enter,
    Back,
    CycleSort,
    OpenFilter,
    FilterChar(char),
    FilterBackspace,
    ShowHosts,
    ShowListen,
    OpenKill,
    ToggleDns,
    ToggleHelp,
    // Global.
    NextInterface,
    Faster,
    Slower,
    TogglePause,
    Quit,
    Resize {
        width: u16,
        height: u16,
    },
    /// Wall clock, milliseconds since the epoch (drives the header clock and banners).
    Tick(u64),
    // From the connection task.
    Connected(Box<Welcome>),
    Snapshot(Box<Snapshot>),
    Detail(Detail),
    KillResult(KillResult),
    /// The daemon went away; the task is retrying.
    Disconnected {
        reason: String,
    },
    // From the resolver.
    Resolved {
        addr: IpAddr,
        name: Option<String>,
    },
}

/// What the state asks the outside world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    Subscribe {
        interval_ms: u32,
        detail_pid: Option<u32>,
    },
    Kill {
        pid: u32,
        start_time: u64,
        signal: proto::Signal,
    },
    Resolve(Vec<IpAddr>),
}
