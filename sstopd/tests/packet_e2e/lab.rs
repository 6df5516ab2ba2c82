//! A private network for one test: namespace L (where the collector runs, on a thread
//! that entered it) and namespace P (the peer), joined by a veth pair. Names carry the
//! test process pid; everything is deleted on drop.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Lab {
    pub local: String,
    pub peer: String,
    /// IPv4 / IPv6 of L and P on the veth.
    pub local_v4: String,
    pub peer_v4: String,
    pub local_v6: String,
    pub peer_v6: String,
    veth_local: String,
    veth_peer: String,
}

impl Lab {
    pub fn new() -> Lab {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", pid % 10_000_000);
        let (a, b) = ((pid >> 8) & 0xff, pid & 0xff);
        let lab = Lab {
            local: format!("pkL{tag}"),
            peer: format!("pkP{tag}"),
            local_v4: format!("10.{a}.{b}.{}", 4 * n + 1),
            peer_v4: format!("10.{a}.{b}.{}", 4 * n + 2),
            local_v6: format!("fd00:{a:x}:{b:x}:{n:x}::1"),
            peer_v6: format!("fd00:{a:x}:{b:x}:{n:x}::2"),
            veth_local: format!("pk{tag}l"),
            veth_peer: format!("pk{tag}p"),
        };
        ip(&["netns", "add", &lab.local]);
        ip(&["netns", "add", &lab.peer]);
        ip(&["-n", &lab.local, "link", "set", "lo", "up"]);
        ip(&["-n", &lab.peer, "link", "set", "lo", "up"]);
        lab.add_link();
        lab
    }

    fn add_link(&self) {
        let (vl, vp) = (&self.veth_local, &self.veth_peer);
        let (l, p) = (&self.local, &self.peer);
        ip(&[
            "link", "add", vl, "netns", l, "type", "veth", "peer", "name", vp, "netns", p,
        ]);
        for (ns, dev, v4, v6) in [
            (l, vl, &self.local_v4, &self.local_v6),
            (p, vp, &self.peer_v4, &self.peer_v6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/30"), "dev", dev]);
            let v6 = format!("{v6}/64");
            ip(&["-n", ns, "addr", "add", &v6, "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }

    /// Put L's end of the veth under a bridge `br0` that takes over its IPv4 address.
    pub fn bridge_local(&self) {
        let (l, vl) = (&self.local, &self.veth_local);
        let v4 = format!("{}/30", self.local_v4);
        ip(&[
            "-n",
            l,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "forward_delay",
            "0",
        ]);
        ip(&["-n", l, "link", "set", vl, "master", "br0"]);
        ip(&["-n", l, "addr", "del", &v4, "dev", vl]);
        ip(&["-n", l, "addr", "add", &v4, "dev", "br0"]);
        ip(&["-n", l, "link", "set", "br0", "up"]);
    }

    /// Delete the veth pair and create it again (new ifindex, same names and addresses).
    pub fn recreate_link(&self) {
        ip(&["-n", &self.local, "link", "del", &self.veth_local]);
        self.add_link();
    }

    /// Run `f` on a thread inside namespace L (sockets it opens, children it spawns and
    /// `/proc/thread-self/net` all belong to L).
    pub fn in_local<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.local);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on a valid namespace fd; affects this thread only.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }

    pub fn spawn_local(&self, script: &str, args: &[&str]) -> Proc {
        Proc::spawn(&self.local, script, args)
    }

    pub fn spawn_peer(&self, script: &str, args: &[&str]) -> Proc {
        Proc::spawn(&self.peer, script, args)
    }

    /// A handle that starts helpers from inside `in_local` (after the collector opened,
    /// so no traffic predates its first sample).
    pub fn spawner(&self) -> Spawner {
        Spawner {
            local: self.local.clone(),
        }
    }

    /// The same for namespace P (its `local` spawns into P).
    pub fn spawner_peer(&self) -> Spawner {
        Spawner {
            local: self.peer.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Spawner {
    local: String,
}

impl Spawner {
    pub fn local(&self, script: &str, args: &[&str]) -> Proc {
        Proc::spawn(&self.local, script, args)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting the namespaces removes the veth pair and everything in them.
        for ns in [&self.local, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A python3 helper in a namespace; killed and reaped on drop.
pub struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(ns: &str, script: &str, args: &[&str]) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", script])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Proc { child }
    }

    /// `ip netns exec` execs python in place: the pid is the helper's.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Wait for exit; stdout as text (panics with stderr on failure).
    pub fn output(&mut self, limit: Duration) -> String {
        let start = Instant::now();
        while !self.exited() {
            assert!(
                start.elapsed() < limit,
                "helper {} did not finish",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        let mut err = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(self.child.wait().unwrap().success(), "helper failed: {err}");
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
