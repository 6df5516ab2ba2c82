//! Socket mode and group as configured, checked with a real unprivileged connect.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::harness::*;

/// A group made for this test, removed on drop.
struct TestGroup {
    name: String,
    gid: u32,
}

impl TestGroup {
    fn create() -> TestGroup {
        let name = format!("sstt{}", std::process::id());
        // A leftover from a crashed run with the same pid.
        let _ = std::process::Command::new("groupdel")
            .arg(&name)
            .stderr(std::process::Stdio::null())
            .status();
        let st = std::process::Command::new("groupadd")
            .arg(&name)
            .status()
            .expect("groupadd");
        assert!(st.success(), "groupadd {name}");
        let gid = nix::unistd::Group::from_name(&name)
            .expect("group database")
            .expect("group exists")
            .gid
            .as_raw();
        TestGroup { name, gid }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("groupdel")
            .arg(&self.name)
            .status();
    }
}

/// Connect as uid 65534 with the given gid (no supplementary groups), in a
/// child process; true if the kernel let it connect.
fn connect_as_nobody(path: &Path, gid: u32) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    // Built before fork: the child only makes raw syscalls.
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let mut cmd = std::process::Command::new("/bin/true");
    // SAFETY: the closure runs between fork and exec and makes only
    // async-signal-safe syscalls (setgroups, setresgid, setresuid, socket,
    // connect) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(gid, gid, gid) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return fail();
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                return fail();
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if libc::connect(fd, (&raw const addr).cast(), len) != 0 {
                return fail();
            }
            Ok(())
        });
    }
    match cmd.status() {
        Ok(st) => st.success(),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => false,
        Err(e) => panic!("connect as nobody: unexpected {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_and_group_as_configured() {
    let group = TestGroup::create();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("run/sstop/sstopd.sock");
    let d = Daemon::start(|c| {
        c.socket_path = path.clone();
        c.socket_gid = Some(group.gid);
        c.socket_mode = 0o660;
    })
    .await;
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), group.gid);
    assert_eq!(meta.uid(), 0);
    let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
    assert_eq!(
        parent.permissions().mode() & 0o777,
        0o755,
        "parent dir created 0755"
    );

    // Group members may connect, others may not.
    assert!(connect_as_nobody(&path, group.gid), "group member refused");
    assert!(!connect_as_nobody(&path, 65534), "outsider admitted");
    d.stop().await;

    // Mode 0666 opens viewing to everyone.
    let d = Daemon::start(|c| {
        c.socket_path = path.clone();
        c.socket_mode = 0o666;
    })
    .await;
    assert_eq!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o666
    );
    assert!(connect_as_nobody(&path, 65534));
    d.stop().await;
}
