use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

fn stat_line(pid: u32, comm: &[u8], start: u64) -> Vec<u8> {
    let mut line = format!("{pid} (").into_bytes();
    line.extend_from_slice(comm);
    line.extend_from_slice(
        format!(") S 1 {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n").as_bytes(),
    );
    line
}

fn add_pid(root: &Path, pid: u32, comm: &[u8], start: u64, uid: u32, inodes: &[u64]) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(dir.join("fd")).unwrap();
    std::fs::write(dir.join("stat"), stat_line(pid, comm, start)).unwrap();
    std::fs::write(
        dir.join("status"),
        format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
    )
    .unwrap();
    let mut cmd = comm.to_vec();
    cmd.extend_from_slice(b"\0--flag\0");
    std::fs::write(dir.join("cmdline"), cmd).unwrap();
    symlink("/dev/null", dir.join("fd/0")).unwrap();
    for (i, inode) in inodes.iter().enumerate() {
        symlink(
            format!("socket:[{inode}]"),
            dir.join(format!("fd/{}", i + 3)),
        )
        .unwrap();
    }
}

fn set_fds(root: &Path, pid: u32, inodes: &[u64]) {
    let fd = root.join(pid.to_string()).join("fd");
    std::fs::remove_dir_all(&fd).unwrap();
    std::fs::create_dir(&fd).unwrap();
    for (i, inode) in inodes.iter().enumerate() {
        symlink(format!("socket:[{inode}]"), fd.join(format!("{}", i + 3))).unwrap();
    }
}

fn key(pid: u32, start: u64) -> ProcKey {
    ProcKey {
        pid,
        start_time: start,
    }
}

fn want(inodes: &[u64]) -> Wanted {
    Wanted {
        unknown: inodes.iter().map(|i| (*i, 0)).collect(),
        hint_pids: Vec::new(),
    }
}

#[test]
fn first_refresh_maps_every_socket_and_shared_ones_to_both_owners() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 100, b"parent", 5, 0, &[11, 12]);
    add_pid(root.path(), 101, b"child", 6, 0, &[12]);
    add_pid(root.path(), 102, b"no-sockets", 7, 0, &[]);
    let mut map = ProcMap::new(root.path());
    let stats = map.refresh(&Wanted::default(), Duration::ZERO);
    assert!(stats.full);
    assert_eq!(map.owners(11), &[key(100, 5)]);
    let mut shared = map.owners(12).to_vec();
    shared.sort();
    assert_eq!(shared, vec![key(100, 5), key(101, 6)]);
    assert_eq!(map.owners(99), &[] as &[ProcKey]);
    assert_eq!(map.process(100).unwrap().name, "parent");
    assert_eq!(map.process(100).unwrap().cmdline, "parent --flag");
    // A process without sockets is not read beyond its fd dir.
    assert!(map.process(102).is_none());
}

#[test]
fn b03_b04_odd_names_are_read_not_skipped() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 13479, b"we ird) (x", 85960, 0, &[1]);
    add_pid(root.path(), 77, b"ab\xff\xfecd", 9, 0, &[2]);
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    let p = map.process(13479).unwrap();
    assert_eq!(p.key, key(13479, 85960));
    assert_eq!(p.name, "we ird) (x");
    assert_eq!(p.comm, b"we ird) (x");
    assert_eq!(map.owners(2), &[key(77, 9)]);
    assert_eq!(map.process(77).unwrap().name, "ab\u{fffd}\u{fffd}cd");
}

#[test]
fn b05_vanished_and_garbage_pids_are_skipped_for_that_scan() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 10, b"ok", 1, 0, &[1]);
    // Listed but gone: the directory exists without fd/ (ENOENT mid-scan).
    std::fs::create_dir(root.path().join("11")).unwrap();
    // Garbage stat: the pid owns a socket but cannot be identified.
    add_pid(root.path(), 12, b"bad", 1, 0, &[3]);
    std::fs::write(root.path().join("12/stat"), b"garbage").unwrap();
    std::fs::create_dir(root.path().join("self")).unwrap();
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    assert_eq!(map.owners(1), &[key(10, 1)]);
    assert!(map.owners(3).is_empty());
    // The vanished one reappears next time (a new process with that pid): found.
    add_pid(root.path(), 11, b"late", 4, 0, &[2]);
    map.refresh(&want(&[2]), Duration::from_secs(1));
    assert_eq!(map.owners(2), &[key(11, 4)]);
}

#[test]
fn nothing_is_rescanned_while_every_wanted_inode_is_known() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 10, b"a", 1, 0, &[1]);
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    set_fds(root.path(), 10, &[1, 2]);
    let stats = map.refresh(&want(&[1]), Duration::from_secs(1));
    assert_eq!(stats.pids_scanned, 0);
    assert!(map.owners(2).is_empty());
    // A new pid (a fork inheriting a socket) is read even when nothing is wanted.
    add_pid(root.path(), 11, b"child", 3, 0, &[1]);
    let stats = map.refresh(&want(&[1]), Duration::from_secs(1));
    assert_eq!(stats.pids_scanned, 1);
    assert_eq!(map.owners(1).len(), 2);
    // Wanting the new inode triggers a rescan that finds it.
    let stats = map.refresh(&want(&[2]), Duration::from_secs(2));
    assert!(stats.pids_scanned >= 1 && !stats.full);
    assert_eq!(map.owners(2), &[key(10, 1)]);
}

#[test]
fn a_socket_moving_between_owners_follows_them() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 10, b"a", 1, 0, &[7]);
    add_pid(root.path(), 20, b"b", 2, 0, &[]);
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    assert_eq!(map.owners(7), &[key(10, 1)]);
    // fd passed over a unix socket: a has closed it, b holds it.
    set_fds(root.path(), 10, &[]);
    set_fds(root.path(), 20, &[7]);
    let stats = map.refresh(&Wanted::default(), FULL_RESCAN);
    assert!(stats.full);
    assert_eq!(map.owners(7), &[key(20, 2)]);
}

#[test]
fn a_reused_pid_with_a_new_start_time_is_a_new_process() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 10, b"old", 1, 0, &[7]);
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    std::fs::remove_dir_all(root.path().join("10")).unwrap();
    add_pid(root.path(), 10, b"new", 99, 0, &[8]);
    map.refresh(&Wanted::default(), FULL_RESCAN);
    assert!(map.owners(7).is_empty());
    assert_eq!(map.owners(8), &[key(10, 99)]);
    assert_eq!(map.process(10).unwrap().name, "new");
}

#[test]
fn hinted_and_same_uid_pids_are_found_and_failures_are_not_retried() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 10, b"a", 1, 0, &[1]);
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    let stats = map.refresh(&want(&[555]), Duration::from_secs(1));
    assert!(stats.pids_scanned >= 1);
    assert!(map.is_settled(555));
    // Not found last time: no new scan until the next full one.
    let stats = map.refresh(&want(&[555]), Duration::from_secs(2));
    assert_eq!(stats.pids_scanned, 0);
    assert!(!stats.full);
}

#[test]
fn b27c_scans_leak_no_descriptors() {
    let root = tempfile::tempdir().unwrap();
    for pid in 0..50 {
        add_pid(root.path(), 1000 + pid, b"p", 1, 0, &[u64::from(pid) + 1]);
    }
    // Only descriptors into the fixture tree: other tests in this process open and close
    // sockets meanwhile.
    let count = || {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(root.path()))
            .count()
    };
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    let before = count();
    for i in 1..20u64 {
        map.refresh(&want(&[9000 + i]), FULL_RESCAN * i as u32);
    }
    assert_eq!(count(), before, "fds into the tree grew from {before}");
}

#[test]
fn real_proc_finds_our_own_socket() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let me = std::process::id();
    let inode = {
        let fds = std::fs::read_dir("/proc/self/fd").unwrap();
        let mut found = None;
        for e in fds.flatten() {
            if let Ok(t) = std::fs::read_link(e.path())
                && let Some(i) = parse::socket_inode(t.as_os_str().as_encoded_bytes())
            {
                found = Some(i);
            }
        }
        found.unwrap()
    };
    let mut map = ProcMap::new("/proc");
    map.refresh(&Wanted::default(), Duration::ZERO);
    assert!(map.owners(inode).iter().any(|k| k.pid == me));
    drop(listener);
}

#[test]
fn b05_zombies_and_kernel_threads_own_no_sockets() {
    let root = tempfile::tempdir().unwrap();
    // A zombie: state Z, empty cmdline, empty fd dir.
    let dir = root.path().join("99");
    std::fs::create_dir_all(dir.join("fd")).unwrap();
    let zombie = String::from_utf8(stat_line(99, b"python3", 5))
        .unwrap()
        .replace(" S 1 ", " Z 1 ");
    std::fs::write(dir.join("stat"), zombie).unwrap();
    std::fs::write(dir.join("cmdline"), b"").unwrap();
    // A kernel thread: nothing in fd/.
    std::fs::create_dir_all(root.path().join("2/fd")).unwrap();
    std::fs::write(root.path().join("2/stat"), stat_line(2, b"kthreadd", 1)).unwrap();
    add_pid(root.path(), 10, b"live", 1, 0, &[7]);
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    assert!(map.process(99).is_none());
    assert!(map.process(2).is_none());
    assert_eq!(map.owners(7), &[key(10, 1)]);
}

#[test]
fn an_inode_a_full_scan_missed_starts_no_uid_scan_right_after() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 10, b"a", 1, 0, &[1]);
    add_pid(root.path(), 11, b"b", 2, 0, &[2]);
    let mut map = ProcMap::new(root.path());
    // The first refresh is a full one: 777 is nowhere, so it is settled at once ...
    let stats = map.refresh(&want(&[1, 777]), Duration::ZERO);
    assert!(stats.full);
    assert_eq!(map.owners(1), &[key(10, 1)]);
    assert!(map.is_settled(777));
    // ... and the next cycle reads nothing again (it used to read every pid of uid 0).
    let stats = map.refresh(&want(&[1, 777]), Duration::from_secs(1));
    assert_eq!(stats.pids_scanned, 0);
    // A socket that appears later is still searched for.
    set_fds(root.path(), 11, &[2, 3]);
    let stats = map.refresh(&want(&[1, 3]), Duration::from_secs(2));
    assert!(stats.pids_scanned >= 1);
    assert_eq!(map.owners(3), &[key(11, 2)]);
}

#[test]
fn owner_changes_are_reported_per_inode_and_a_rescan_relinks_only_the_difference() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 100, b"server", 5, 0, &[11, 12]);
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    assert!(map.last_change(11) > 0 && map.last_change(12) > 0);
    map.clear_changed_before(map.change_seq());
    assert_eq!(map.last_change(11), 0);

    // A fork: the child shares socket 12.
    let before = map.change_seq();
    add_pid(root.path(), 101, b"worker", 6, 0, &[12]);
    map.refresh(&Wanted::default(), Duration::from_secs(1));
    assert!(map.last_change(12) > before);
    assert_eq!(map.last_change(11), 0);
    map.clear_changed_before(map.change_seq());

    // The server accepts socket 13 and closes 11: only those two change hands.
    set_fds(root.path(), 100, &[12, 13]);
    let hint = Wanted {
        unknown: vec![(13, 0)],
        hint_pids: vec![100],
    };
    map.refresh(&hint, Duration::from_secs(2));
    assert!(map.last_change(11) > 0 && map.last_change(13) > 0);
    assert_eq!(map.last_change(12), 0);
    assert_eq!(map.owners(11), &[] as &[ProcKey]);
    assert_eq!(map.owners(13), &[key(100, 5)]);
    let mut shared = map.owners(12).to_vec();
    shared.sort();
    assert_eq!(shared, vec![key(100, 5), key(101, 6)]);
}

#[test]
fn sorted_difference_splits_gone_and_added() {
    assert_eq!(
        sorted_difference(&[1, 3, 5, 7], &[2, 3, 7, 9]),
        (vec![1, 5], vec![2, 9])
    );
    assert_eq!(sorted_difference(&[], &[4]), (vec![], vec![4]));
    assert_eq!(sorted_difference(&[4], &[]), (vec![4], vec![]));
}

#[test]
fn a_process_that_vanishes_mid_rescan_leaves_no_stale_owner() {
    let root = tempfile::tempdir().unwrap();
    add_pid(root.path(), 100, b"server", 5, 0, &[11]);
    add_pid(root.path(), 101, b"child", 6, 0, &[11]);
    let mut map = ProcMap::new(root.path());
    map.refresh(&Wanted::default(), Duration::ZERO);
    assert_eq!(map.owners(11).len(), 2);
    // Pid 100 exits after its fd list was read but before its stat is: the socket stays
    // with the child alone.
    std::fs::remove_file(root.path().join("100/stat")).unwrap();
    let hint = Wanted {
        unknown: vec![(99, 0)],
        hint_pids: vec![100],
    };
    map.refresh(&hint, Duration::from_secs(1));
    assert_eq!(map.owners(11), &[key(101, 6)]);
    assert!(map.process(100).is_none());
}
