//! Lists and selection: which rows each view shows and which one is selected.
//! The process selection follows its row (by pid + start time) across re-sorts.

use super::rows;
use super::{App, View};
use crate::event::Action;

impl App {
    /// Index of the list the current view shows (into `selected`).
    pub fn list_slot(&self) -> usize {
        match self.view {
            View::Processes => 0,
            View::Hosts => 1,
            View::Listen => 2,
            View::Detail { .. } => 3,
        }
    }

    pub fn list_len(&self) -> usize {
        match self.view {
            View::Processes => self.rows.len(),
            View::Hosts => self.hosts.len(),
            View::Listen => self.listen.len(),
            View::Detail { .. } => self.conns.len(),
        }
    }

    pub fn selection(&self) -> usize {
        self.selected[self.list_slot()]
    }

    /// Rows a page key moves by: what fits on screen.
    pub fn page_rows(&self) -> usize {
        crate::ui::visible_rows(self)
    }

    /// Recompute every list from the shown frame, keeping selections where they were.
    pub(super) fn rebuild(&mut self) {
        let Some(snap) = self.shown.as_deref() else {
            return;
        };
        self.rows = rows::process_rows(snap, self.sort, &self.filter);
        self.hosts = rows::host_rows(snap, &self.filter);
        self.listen = rows::listen_rows(snap, &self.filter);
        self.conns = self
            .detail
            .as_ref()
            .map(rows::connection_rows)
            .unwrap_or_default();
        // The process selection follows its row; if the row is gone, stay at the same place.
        let found = self.selected_key.and_then(|key| {
            self.rows
                .iter()
                .position(|&r| rows::view(snap, r).is_some_and(|v| v.key == key))
        });
        match found {
            Some(i) => self.selected[0] = i,
            None => self.select_in(0, self.selected[0]),
        }
        for slot in 1..4 {
            let idx = self.selected[slot];
            self.select_in(slot, idx);
        }
    }

    pub(super) fn len_of(&self, slot: usize) -> usize {
        match slot {
            0 => self.rows.len(),
            1 => self.hosts.len(),
            2 => self.listen.len(),
            _ => self.conns.len(),
        }
    }

    /// Set list `slot` to `index`, clamped; for processes remember the row's identity.
    pub(super) fn select_in(&mut self, slot: usize, index: usize) {
        let len = self.len_of(slot);
        let i = index.min(len.saturating_sub(1));
        self.selected[slot] = i;
        if slot == self.list_slot() {
            // Scroll only as far as needed to keep the selection on screen.
            self.offset[slot] = crate::ui::scroll_offset(self, slot, crate::ui::visible_rows(self));
        }
        if slot == 0 {
            self.selected_key = self.selected_row().map(|v| v.key);
        }
    }

    pub(super) fn select(&mut self, index: usize) {
        self.select_in(self.list_slot(), index);
    }

    pub(super) fn move_by(&mut self, delta: isize) -> Option<Action> {
        let cur = self.selection() as isize;
        let next = cur.saturating_add(delta).max(0) as usize;
        self.select(next);
        None
    }

    /// The selected process-table row.
    pub fn selected_row(&self) -> Option<rows::RowView<'_>> {
        let snap = self.shown.as_deref()?;
        let r = *self.rows.get(self.selected[0])?;
        rows::view(snap, r)
    }
}
