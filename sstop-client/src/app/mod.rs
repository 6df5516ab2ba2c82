//! The viewer's state and the one function that changes it:
//! `update(event) -> Option<Action>`. No drawing, no I/O; the outside world
//! arrives as events and leaves as actions.

pub mod kill;
mod nav;
pub mod rows;
mod views;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use proto::{Detail, Snapshot, Welcome};

use crate::event::{Action, Event};
use crate::keymap::Focus;
pub use kill::KillOverlay;
pub use rows::{RowKey, RowRef, SortKey};

/// Refresh intervals `+`/`-` step through (milliseconds).
pub const INTERVAL_STEPS: [u32; 9] = [100, 200, 250, 500, 1000, 2000, 3000, 5000, 10_000];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Processes,
    /// One process, pinned by identity so a recycled pid never shows someone else.
    Detail {
        pid: u32,
        start_time: u64,
        name: String,
    },
    Hosts,
    Listen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Filter,
    Kill(KillOverlay),
}

/// State of the link to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Live,
    Reconnecting { reason: String, since_ms: u64 },
}

#[derive(Debug, Default)]
pub struct Dns {
    pub enabled: bool,
    /// `None` = looked up, no name.
    pub cache: HashMap<IpAddr, Option<String>>,
    pending: HashSet<IpAddr>,
}

impl Dns {
    /// What to show for `addr`: its name when lookups are on and one is known.
    pub fn name(&self, addr: IpAddr) -> Option<&str> {
        if !self.enabled {
            return None;
        }
        self.cache.get(&addr).and_then(|n| n.as_deref())
    }
}

#[derive(Debug)]
pub struct App {
    pub welcome: Option<Welcome>,
    /// Set when the collector runs inside this process (root, no daemon).
    pub embedded_note: Option<String>,
    pub link: Link,
    /// The frame on screen (frozen while paused).
    pub shown: Option<Box<Snapshot>>,
    /// Newest frame received while paused.
    pending: Option<Box<Snapshot>>,
    pub detail: Option<Detail>,
    pending_detail: Option<Detail>,
    /// Frames received since start (keeps counting while paused).
    pub frames_received: u64,
    pub paused: bool,
    pub interval_ms: u32,
    pub view: View,
    pub overlay: Overlay,
    pub sort: SortKey,
    pub filter: String,
    /// Process-table rows in display order.
    pub rows: Vec<RowRef>,
    pub hosts: Vec<usize>,
    pub listen: Vec<usize>,
    pub conns: Vec<usize>,
    /// Selected index per list (processes, hosts, listen, connections).
    pub selected: [usize; 4],
    /// First row shown per list; kept so the view scrolls only when the selection leaves it.
    pub offset: [usize; 4],
    selected_key: Option<RowKey>,
    /// Selected interface by name; `None` = the default route's interface.
    pub iface: Option<String>,
    iface_history: HashMap<String, VecDeque<f64>>,
    pub dns: Dns,
    pub now_ms: u64,
    pub size: (u16, u16),
    /// A short message for the footer (e.g. why a key did nothing).
    pub status: Option<String>,
}

impl App {
    pub fn new(interval_ms: u32) -> Self {
        App {
            welcome: None,
            embedded_note: None,
            link: Link::Connecting,
            shown: None,
            pending: None,
            detail: None,
            pending_detail: None,
            frames_received: 0,
            paused: false,
            interval_ms: interval_ms.clamp(proto::MIN_INTERVAL_MS, proto::MAX_INTERVAL_MS),
            view: View::Processes,
            overlay: Overlay::None,
            sort: SortKey::default(),
            filter: String::new(),
            rows: Vec::new(),
            hosts: Vec::new(),
            listen: Vec::new(),
            conns: Vec::new(),
            selected: [0; 4],
            offset: [0; 4],
            selected_key: None,
            iface: None,
            iface_history: HashMap::new(),
            dns: Dns::default(),
            now_ms: 0,
            size: (80, 24),
            status: None,
        }
    }

    pub fn focus(&self) -> Focus {
        match self.overlay {
            Overlay::Filter => Focus::Prompt,
            _ => Focus::Normal,
        }
    }

    /// The subscription this viewer wants now.
    pub fn subscription(&self) -> Action {
        Action::Subscribe {
            interval_ms: self.interval_ms,
            detail_pid: self.detail_pid(),
        }
    }

    pub fn detail_pid(&self) -> Option<u32> {
        match self.view {
            View::Detail { pid, .. } => Some(pid),
            _ => None,
        }
    }

    /// The interface the header features: the chosen one, else the default route's, else the first.
    pub fn current_interface(&self) -> Option<&proto::Interface> {
        let ifaces = &self.shown.as_ref()?.interfaces;
        self.iface
            .as_ref()
            .and_then(|n| ifaces.iter().find(|i| &i.name == n))
            .or_else(|| ifaces.iter().find(|i| i.is_default))
            .or_else(|| ifaces.first())
    }

    /// Trend of the featured interface's total rate over its last few frames.
    pub fn interface_trend(&self) -> proto::Trend {
        let Some(iface) = self.current_interface() else {
            return proto::Trend::Steady;
        };
        let Some(hist) = self.iface_history.get(&iface.name) else {
            return proto::Trend::Steady;
        };
        let Some((&last, earlier)) = hist
            .iter()
            .collect::<Vec<_>>()
            .split_last()
            .map(|(l, e)| (*l, e.to_vec()))
        else {
            return proto::Trend::Steady;
        };
        if earlier.is_empty() {
            return proto::Trend::Steady;
        }
        let mean = earlier.iter().copied().sum::<f64>() / earlier.len() as f64;
        if last > mean * 1.1 + 1.0 {
            proto::Trend::Rising
        } else if last < mean * 0.9 - 1.0 {
            proto::Trend::Falling
        } else {
            proto::Trend::Steady
        }
    }

    pub fn update(&mut self, event: Event) -> Option<Action> {
        if !matches!(event, Event::Tick(_)) && !is_data(&event) {
            self.status = None;
        }
        match event {
            Event::Tick(now) => {
                self.now_ms = now;
                None
            }
            Event::Resize { width, height } => {
                self.size = (width, height);
                self.select(self.selection());
                None
            }
            Event::Quit => Some(Action::Quit),
            Event::Connected(welcome) => {
                self.welcome = Some(*welcome);
                self.link = Link::Live;
                None
            }
            Event::Disconnected { reason } => {
                // Keep when the outage began; show the latest reason.
                let since_ms = match self.link {
                    Link::Reconnecting { since_ms, .. } => since_ms,
                    _ => self.now_ms,
                };
                self.link = Link::Reconnecting { reason, since_ms };
                None
            }
            Event::Snapshot(snap) => self.on_snapshot(snap),
            Event::Detail(d) => self.on_detail(d),
            Event::KillResult(r) => {
                if let Overlay::Kill(k) = &mut self.overlay {
                    k.answer(r);
                } else {
                    self.status = Some(r.message);
                }
                None
            }
            Event::Resolved { addr, name } => {
                self.dns.pending.remove(&addr);
                self.dns.cache.insert(addr, name);
                None
            }
            other => self.on_input(other),
        }
    }

    fn on_input(&mut self, event: Event) -> Option<Action> {
        match &mut self.overlay {
            Overlay::Help => {
                if matches!(event, Event::ToggleHelp | Event::Back) {
                    self.overlay = Overlay::None;
                }
                return None;
            }
            Overlay::Kill(k) => {
                let (close, action) = k.on_event(&event);
                if close {
                    self.overlay = Overlay::None;
                }
                return action;
            }
            Overlay::Filter => return self.on_filter_input(event),
            Overlay::None => {}
        }
        match event {
            Event::Up => self.move_by(-1),
            Event::Down => self.move_by(1),
            Event::ScrollUp => self.move_by(-3),
            Event::ScrollDown => self.move_by(3),
            Event::PageUp => self.move_by(-(self.page_rows() as isize)),
            Event::PageDown => self.move_by(self.page_rows() as isize),
            Event::Home => self.move_by(isize::MIN / 2),
            Event::End => self.move_by(isize::MAX / 2),
            Event::ClickRow(i) => {
                if i < self.list_len() {
                    self.select(i);
                }
                None
            }
            Event::Enter => self.enter(),
            Event::Back => self.back(),
            Event::CycleSort => {
                self.sort = self.sort.next();
                self.rebuild();
                None
            }
            Event::OpenFilter => {
                self.overlay = Overlay::Filter;
                None
            }
            Event::ShowHosts => self.switch(View::Hosts),
            Event::ShowListen => self.switch(View::Listen),
            Event::OpenKill => {
                self.open_kill();
                None
            }
            Event::ToggleDns => {
                self.dns.enabled = !self.dns.enabled;
                self.wanted_lookups()
            }
            Event::ToggleHelp => {
                self.overlay = Overlay::Help;
                None
            }
            Event::NextInterface => {
                self.next_interface();
                None
            }
            Event::Faster => self.step_interval(-1),
            Event::Slower => self.step_interval(1),
            Event::TogglePause => {
                self.paused = !self.paused;
                if !self.paused {
                    if let Some(p) = self.pending.take() {
                        self.show(p);
                    }
                    if let Some(d) = self.pending_detail.take() {
                        self.detail = Some(d);
                        self.rebuild();
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn on_filter_input(&mut self, event: Event) -> Option<Action> {
        match event {
            Event::FilterChar(c) => self.filter.push(c),
            Event::FilterBackspace => {
                self.filter.pop();
            }
            Event::Enter => self.overlay = Overlay::None,
            Event::Back => {
                self.filter.clear();
                self.overlay = Overlay::None;
            }
            Event::Up => return self.move_by(-1),
            Event::Down => return self.move_by(1),
            _ => return None,
        }
        self.rebuild();
        None
    }

    fn on_snapshot(&mut self, snap: Box<Snapshot>) -> Option<Action> {
        self.frames_received += 1;
        self.link = Link::Live;
        if self.paused {
            self.pending = Some(snap);
            return None;
        }
        self.show(snap);
        self.wanted_lookups()
    }

    fn show(&mut self, snap: Box<Snapshot>) {
        for iface in &snap.interfaces {
            let h = self.iface_history.entry(iface.name.clone()).or_default();
            h.push_back(iface.rx_bps + iface.tx_bps);
            if h.len() > 5 {
                h.pop_front();
            }
        }
        self.shown = Some(snap);
        self.rebuild();
    }

    fn on_detail(&mut self, d: Detail) -> Option<Action> {
        let View::Detail {
            pid, start_time, ..
        } = self.view
        else {
            return None;
        };
        if d.pid != pid || d.start_time != start_time {
            return None;
        }
        if self.paused {
            self.pending_detail = Some(d);
            return None;
        }
        self.detail = Some(d);
        self.rebuild();
        self.wanted_lookups()
    }
}

fn is_data(e: &Event) -> bool {
    matches!(
        e,
        Event::Snapshot(_)
            | Event::Detail(_)
            | Event::Resolved { .. }
            | Event::Connected(_)
            | Event::Disconnected { .. }
    )
}
