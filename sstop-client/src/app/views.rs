//! Moving between views and overlays, and the settings keys change.

use std::net::IpAddr;

use super::{App, INTERVAL_STEPS, KillOverlay, Overlay, RowKey, View};
use crate::event::Action;

impl App {
    pub(super) fn enter(&mut self) -> Option<Action> {
        match self.view {
            View::Processes => {
                let row = self.selected_row()?;
                let RowKey::Process { pid, start_time } = row.key else {
                    self.status = Some("traffic without an owning process has no detail".into());
                    return None;
                };
                let name = row.name.into_owned();
                self.open_detail(pid, start_time, name)
            }
            View::Listen => {
                let (pid, start_time, name) = self.listen_owner()?;
                self.open_detail(pid, start_time, name)
            }
            _ => None,
        }
    }

    pub(super) fn open_detail(
        &mut self,
        pid: u32,
        start_time: u64,
        name: String,
    ) -> Option<Action> {
        self.view = View::Detail {
            pid,
            start_time,
            name,
        };
        self.detail = None;
        self.pending_detail = None;
        self.conns.clear();
        self.selected[3] = 0;
        Some(self.subscription())
    }

    pub(super) fn back(&mut self) -> Option<Action> {
        if self.view == View::Processes {
            if !self.filter.is_empty() {
                self.filter.clear();
                self.rebuild();
            }
            return None;
        }
        self.switch(View::Processes)
    }

    /// Change view; `h`/`l` pressed twice return to the table. Leaving detail unsubscribes it.
    pub(super) fn switch(&mut self, target: View) -> Option<Action> {
        let was_detail = self.detail_pid().is_some();
        self.view = if self.view == target {
            View::Processes
        } else {
            target
        };
        if was_detail {
            self.detail = None;
            self.pending_detail = None;
            return Some(self.subscription());
        }
        None
    }

    pub(super) fn open_kill(&mut self) {
        let target = match &self.view {
            View::Detail {
                pid,
                start_time,
                name,
            } => Some((*pid, *start_time, name.clone())),
            View::Processes => match self.selected_row() {
                Some(row) => match row.key {
                    RowKey::Process { pid, start_time } => {
                        Some((pid, start_time, row.name.into_owned()))
                    }
                    RowKey::Unattributed(_) => {
                        self.status = Some("no process to signal for unattributed traffic".into());
                        return;
                    }
                },
                None => None,
            },
            View::Listen => self.listen_owner(),
            View::Hosts => {
                self.status = Some("select a process (table or listen ports) to signal it".into());
                return;
            }
        };
        match target {
            Some((pid, start_time, name)) => {
                self.overlay = Overlay::Kill(KillOverlay::new(pid, start_time, name));
            }
            None => self.status = Some("no process selected".into()),
        }
    }

    /// The process owning the selected listening socket, if known.
    fn listen_owner(&self) -> Option<(u32, u64, String)> {
        let snap = self.shown.as_deref()?;
        let l = snap.listen_ports.get(*self.listen.get(self.selected[2])?)?;
        let p = snap
            .processes
            .iter()
            .find(|p| p.pid == l.pid && l.pid != 0)?;
        Some((p.pid, p.start_time, p.name.clone()))
    }

    pub(super) fn next_interface(&mut self) {
        let Some(snap) = self.shown.as_deref() else {
            return;
        };
        if snap.interfaces.is_empty() {
            return;
        }
        let cur = self
            .current_interface()
            .and_then(|c| snap.interfaces.iter().position(|i| i.name == c.name))
            .unwrap_or(0);
        let next = (cur + 1) % snap.interfaces.len();
        self.iface = Some(snap.interfaces[next].name.clone());
    }

    pub(super) fn step_interval(&mut self, dir: i32) -> Option<Action> {
        let cur = self.interval_ms;
        let next = if dir < 0 {
            INTERVAL_STEPS.iter().rev().find(|&&s| s < cur).copied()
        } else {
            INTERVAL_STEPS.iter().find(|&&s| s > cur).copied()
        };
        match next {
            Some(ms) => {
                self.interval_ms = ms;
                Some(self.subscription())
            }
            None => {
                self.status = Some(format!(
                    "refresh interval is already {}",
                    crate::format::interval(cur)
                ));
                None
            }
        }
    }

    /// Addresses that want a reverse lookup now (DNS on, not cached, not in flight).
    pub(super) fn wanted_lookups(&mut self) -> Option<Action> {
        if !self.dns.enabled {
            return None;
        }
        let mut addrs: Vec<IpAddr> = Vec::new();
        if let Some(d) = &self.detail {
            addrs.extend(
                d.connections
                    .iter()
                    .filter_map(|c| c.remote.map(|r| r.ip())),
            );
        }
        if self.view == View::Hosts
            && let Some(s) = self.shown.as_deref()
        {
            addrs.extend(
                self.hosts
                    .iter()
                    .filter_map(|&i| s.remote_hosts.get(i))
                    .map(|h| h.addr),
            );
        }
        addrs.retain(|a| !a.is_unspecified());
        addrs.sort();
        addrs.dedup();
        addrs.retain(|a| !self.dns.cache.contains_key(a) && !self.dns.pending.contains(a));
        if addrs.is_empty() {
            return None;
        }
        self.dns.pending.extend(addrs.iter().copied());
        Some(Action::Resolve(addrs))
    }
}
