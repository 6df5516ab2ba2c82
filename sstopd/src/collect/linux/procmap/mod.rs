//! /proc/<pid>/fd → socket inode → owners; /proc/<pid>/stat, status, cmdline for who they are.
//!
//! Incremental: the inode → owners map is kept between cycles. A cycle that finds every
//! socket it cares about already mapped lists /proc and reads only new pids' fds.
//! Otherwise it rescans pids that are new, whose fd count changed (the size of `/proc/<pid>/fd` is its fd
//! count on Linux ≥ 6.2) or that were hinted (connect-time tracing, listener owners),
//! then, if inodes are still unknown, every pid of the sockets' uids. A full rescan
//! runs at a low rate regardless, and resets the "tried and not found" set.

pub mod parse;
pub mod pid;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use proto::Note;

use self::pid::PidError;
use crate::collect::{ProcKey, ProcessInfo};
use crate::fasthash::FastMap;

/// How often every pid is rescanned whatever the hints say. New sockets are found without
/// it (new pids, changed fd counts, hints, the uid search); it only catches a known
/// socket changing hands with no fd count changing, and costs a readlink per fd on the
/// host, so it runs rarely.
pub const FULL_RESCAN: Duration = Duration::from_secs(60);
/// At most this often, a search through every pid of a uid for sockets still unknown
/// after the cheap steps (on a host full of short-lived connections it would otherwise
/// run every cycle; connect-time tracing and listeners name those anyway). As costly as a
/// full scan (a uid-0 search reads nearly every fd on the host), so no more often than one.
pub const UID_RESCAN: Duration = Duration::from_secs(10);

/// Owner changes remembered between two [`ProcMap::take_recent_changes`].
pub const MAX_RECENT: usize = 4096;

#[derive(Debug, Default)]
struct PidEntry {
    /// Size of `/proc/<pid>/fd` at the last fd scan (fd count, or 0 on older kernels).
    fd_count: u64,
    /// Owner uid of `/proc/<pid>` (the process's effective uid).
    uid: u32,
    /// Socket inodes at the last fd scan, sorted.
    inodes: Vec<u64>,
    /// Known once the pid held a socket.
    info: Option<ProcessInfo>,
    scanned: bool,
}

/// What a cycle wants resolved.
#[derive(Debug, Default)]
pub struct Wanted {
    /// Inodes (with the socket's uid) that matter this cycle and have no owner yet.
    pub unknown: Vec<(u64, u32)>,
    /// Pids worth rescanning first (named by connect-time tracing, owners of a listener).
    pub hint_pids: Vec<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub pids_listed: usize,
    pub pids_scanned: usize,
    pub full: bool,
}

pub struct ProcMap {
    root: PathBuf,
    pids: HashMap<u32, PidEntry>,
    owners: FastMap<u64, Vec<ProcKey>>,
    /// Unknown inodes a uid-wide scan did not find (kernel-held, in flight over a unix
    /// socket, another namespace's /proc): not worth another scan until the next full one.
    unresolvable: HashSet<u64>,
    last_full: Option<Duration>,
    last_uid_scan: Option<Duration>,
    denied: bool,
    out_of_fds: bool,
    /// Inode → when (a [`ProcMap::change_seq`] value) its owner list last changed, since
    /// [`ProcMap::clear_changed_before`].
    changed: FastMap<u64, u64>,
    change_seq: u64,
    /// Inodes whose owners changed since [`ProcMap::take_recent_changes`] (bounded: past
    /// [`MAX_RECENT`], the next re-sync catches the rest).
    recent: Vec<u64>,
}

impl ProcMap {
    /// `root` is normally `/proc`; tests pass a fixture tree.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ProcMap {
            root: root.into(),
            pids: HashMap::new(),
            owners: FastMap::default(),
            unresolvable: HashSet::new(),
            last_full: None,
            last_uid_scan: None,
            denied: false,
            out_of_fds: false,
            changed: FastMap::default(),
            change_seq: 0,
            recent: Vec::new(),
        }
    }

    /// Owners of a socket inode; empty when unknown.
    pub fn owners(&self, inode: u64) -> &[ProcKey] {
        self.owners
            .get(&inode)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// A live (as of its last scan) process by pid.
    pub fn process(&self, pid: u32) -> Option<&ProcessInfo> {
        self.pids.get(&pid).and_then(|e| e.info.as_ref())
    }

    /// When the owners of `inode` last changed (a fork, an exit, a descriptor passed),
    /// as a [`ProcMap::change_seq`] value; 0 when not since [`ProcMap::clear_changed_before`].
    pub fn last_change(&self, inode: u64) -> u64 {
        if self.changed.is_empty() {
            return 0;
        }
        self.changed.get(&inode).copied().unwrap_or(0)
    }

    /// A counter that grows with every owner change.
    pub fn change_seq(&self) -> u64 {
        self.change_seq
    }

    /// Forget owner changes up to `seq` (every socket has been compared since).
    pub fn clear_changed_before(&mut self, seq: u64) {
        self.changed.retain(|_, at| *at > seq);
        if self.changed.is_empty() {
            // Give the memory back after a burst of changes.
            self.changed = FastMap::default();
        }
    }

    fn mark_changed(&mut self, inode: u64) {
        self.change_seq += 1;
        self.changed.insert(inode, self.change_seq);
        if self.recent.len() < MAX_RECENT {
            self.recent.push(inode);
        }
    }

    /// Inodes whose owners changed since the last call (with repeats).
    pub fn take_recent_changes(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.recent)
    }

    /// True when `inode` is mapped or a search for it already failed since the last full scan.
    pub fn is_settled(&self, inode: u64) -> bool {
        self.owners.contains_key(&inode) || self.unresolvable.contains(&inode)
    }

    /// Another user's fd directory was unreadable in the latest full scan.
    pub fn denied(&self) -> bool {
        self.denied
    }

    /// Degradations seen in the latest scans, one note each.
    pub fn notes(&self) -> Vec<Note> {
        let mut notes = Vec::new();
        if self.denied {
            notes.push(Note::warning(
                "missing CAP_SYS_PTRACE/CAP_DAC_READ_SEARCH: other users' sockets unattributed",
            ));
        }
        if self.out_of_fds {
            notes.push(Note::warning(
                "out of file descriptors (EMFILE): /proc scan was partial, some sockets unattributed",
            ));
        }
        notes
    }

    /// One cycle's owner resolution, at monotonic time `now`.
    pub fn refresh(&mut self, wanted: &Wanted, now: Duration) -> ScanStats {
        let full_due = self
            .last_full
            .is_none_or(|t| now.saturating_sub(t) >= FULL_RESCAN);
        let pending: Vec<(u64, u32)> = wanted
            .unknown
            .iter()
            .copied()
            .filter(|(inode, _)| !self.is_settled(*inode))
            .collect();
        let mut stats = ScanStats::default();
        // Listing /proc is cheap (one readdir); new pids are scanned every cycle so a
        // fork that inherits sockets shows as shared within one interval.
        let listed = match self.list_pids() {
            Ok(l) => l,
            Err(_) => return stats,
        };
        stats.pids_listed = listed.len();
        self.forget_missing(&listed);
        self.out_of_fds = false;
        if !full_due && pending.is_empty() {
            let fresh: Vec<u32> = listed
                .iter()
                .copied()
                .filter(|p| !self.pids.contains_key(p))
                .collect();
            for pid in fresh {
                if !self.scan_pid(pid, &mut stats) {
                    break;
                }
            }
            return stats;
        }
        if full_due {
            self.last_full = Some(now);
            self.unresolvable.clear();
            self.denied = false;
            stats.full = true;
            for pid in &listed {
                if !self.scan_pid(*pid, &mut stats) {
                    return stats;
                }
            }
            // Every pid was just read: what is still unknown is not worth the uid-wide
            // search the next cycle would otherwise start (as costly as this scan).
            for (inode, _) in pending {
                if !self.owners.contains_key(&inode) {
                    self.unresolvable.insert(inode);
                }
            }
            return stats;
        }
        // New pids, changed fd counts, hints.
        let mut candidates: Vec<u32> = Vec::new();
        for &pid in &listed {
            let changed = match self.pids.get(&pid) {
                None => true,
                Some(e) => {
                    !e.scanned || self.fd_count(pid).is_none_or(|n| n != e.fd_count || n == 0)
                }
            };
            if changed {
                candidates.push(pid);
            }
        }
        candidates.extend(
            wanted
                .hint_pids
                .iter()
                .copied()
                .filter(|p| listed.contains(p)),
        );
        candidates.sort_unstable();
        candidates.dedup();
        for pid in candidates {
            if !self.scan_pid(pid, &mut stats) {
                return stats;
            }
        }
        // Still unknown: every pid of those sockets' uids.
        let missing: Vec<(u64, u32)> = pending
            .into_iter()
            .filter(|(inode, _)| !self.owners.contains_key(inode))
            .collect();
        let uid_due = self
            .last_uid_scan
            .is_none_or(|t| now.saturating_sub(t) >= UID_RESCAN);
        if missing.is_empty() || !uid_due {
            return stats;
        }
        self.last_uid_scan = Some(now);
        let uids: HashSet<u32> = missing.iter().map(|(_, uid)| *uid).collect();
        let by_uid: Vec<u32> = self
            .pids
            .iter()
            .filter(|(_, e)| uids.contains(&e.uid))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in by_uid {
            if !self.scan_pid(pid, &mut stats) {
                return stats;
            }
        }
        for (inode, _) in missing {
            if !self.owners.contains_key(&inode) {
                self.unresolvable.insert(inode);
            }
        }
        stats
    }

    fn list_pids(&mut self) -> Result<HashSet<u32>, PidError> {
        let dir = std::fs::read_dir(&self.root).map_err(|e| {
            let err = PidError::from_io(&e);
            if err == PidError::NoFds {
                self.out_of_fds = true;
            }
            err
        })?;
        Ok(dir
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .collect())
    }

    fn forget_missing(&mut self, listed: &HashSet<u32>) {
        let gone: Vec<u32> = self
            .pids
            .keys()
            .copied()
            .filter(|p| !listed.contains(p))
            .collect();
        for pid in gone {
            self.drop_pid(pid);
        }
    }

    fn drop_pid(&mut self, pid: u32) {
        if let Some(entry) = self.pids.remove(&pid) {
            let inodes = entry.inodes;
            if let Some(info) = entry.info {
                self.unlink(info.key, &inodes);
            }
        }
    }

    fn unlink(&mut self, key: ProcKey, inodes: &[u64]) {
        for inode in inodes {
            if let Some(list) = self.owners.get_mut(inode) {
                let before = list.len();
                list.retain(|k| *k != key);
                let changed = list.len() != before;
                if list.is_empty() {
                    self.owners.remove(inode);
                }
                if changed {
                    self.mark_changed(*inode);
                }
            }
        }
    }

    fn link(&mut self, key: ProcKey, inodes: &[u64]) {
        for inode in inodes {
            let list = self.owners.entry(*inode).or_default();
            if !list.contains(&key) {
                list.push(key);
                self.mark_changed(*inode);
            }
        }
    }

    fn fd_count(&self, pid: u32) -> Option<u64> {
        std::fs::metadata(self.root.join(pid.to_string()).join("fd"))
            .ok()
            .map(|m| m.size())
    }

    /// Rescan one pid. Returns false when the scan must stop (out of descriptors).
    fn scan_pid(&mut self, pid: u32, stats: &mut ScanStats) -> bool {
        stats.pids_scanned += 1;
        let dir = self.root.join(pid.to_string());
        let meta = std::fs::metadata(dir.join("fd"));
        let (fd_count, uid) = match &meta {
            Ok(m) => (m.size(), m.uid()),
            Err(e) => return self.note_error(pid, PidError::from_io(e)),
        };
        let inodes = match pid::socket_inodes(&dir) {
            Ok(i) => i,
            Err(e) => return self.note_error(pid, e),
        };
        let old = self.pids.remove(&pid).unwrap_or_default();
        let old_key = old.info.as_ref().map(|i| i.key);
        // A read that fails from here on leaves no entry: its old links go with it.
        let fail = |map: &mut Self, e: PidError| {
            if let Some(key) = old_key {
                map.unlink(key, &old.inodes);
            }
            map.note_error(pid, e)
        };
        let mut entry = PidEntry {
            fd_count,
            uid,
            inodes,
            info: None,
            scanned: true,
        };
        if !entry.inodes.is_empty() {
            match pid::read_stat(&dir) {
                Ok(stat) => {
                    // Same pid and start time: keep what we know; else a (new) process to read.
                    let same = old
                        .info
                        .as_ref()
                        .is_some_and(|i| i.key.start_time == stat.start_time);
                    entry.info = if same {
                        old.info.clone()
                    } else {
                        match pid::read_info(&dir, stat) {
                            Ok(info) => Some(info),
                            Err(e) => return fail(self, e),
                        }
                    };
                }
                Err(e) => return fail(self, e),
            }
        }
        let new_key = entry.info.as_ref().map(|i| i.key);
        if let Some(key) = new_key.filter(|k| old_key == Some(*k)) {
            // The same process again (a busy server is rescanned whenever its fd count
            // moves): relink only the difference, not every socket it holds.
            let (gone, added) = sorted_difference(&old.inodes, &entry.inodes);
            self.unlink(key, &gone);
            self.link(key, &added);
        } else {
            if let Some(key) = old_key {
                self.unlink(key, &old.inodes);
            }
            if let Some(key) = new_key {
                self.link(key, &entry.inodes);
            }
        }
        self.pids.insert(pid, entry);
        true
    }

    fn note_error(&mut self, pid: u32, err: PidError) -> bool {
        match err {
            PidError::Gone => {
                self.drop_pid(pid);
                true
            }
            PidError::Denied => {
                self.denied = true;
                // Remember it (no sockets known) so it is not retried every cycle.
                let entry = self.pids.entry(pid).or_default();
                entry.scanned = true;
                true
            }
            PidError::NoFds => {
                self.out_of_fds = true;
                false
            }
            PidError::Other => true,
        }
    }
}

/// (in `old` only, in `new` only) of two sorted, de-duplicated lists.
fn sorted_difference(old: &[u64], new: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let (mut gone, mut added) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                gone.push(*a);
                i += 1;
            }
            (Some(_), Some(b)) => {
                added.push(*b);
                j += 1;
            }
            (Some(a), None) => {
                gone.push(*a);
                i += 1;
            }
            (None, Some(b)) => {
                added.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (gone, added)
}

#[cfg(test)]
mod tests;
