//! Interfaces enslaved to a bridge, bond or team (`IFLA_MASTER` set): a frame crosses
//! both the port and its master, and the tap sees it on each. The capture keeps the
//! master's copy and skips the ports'. Read with an rtnetlink link dump in the calling
//! thread's network namespace (sysfs may show another namespace).

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IFLA_MASTER: u16 = 10;
/// nlmsghdr (16) + ifinfomsg (16).
const HDRS: usize = 32;

/// Ifindexes of every enslaved interface in this thread's network namespace.
pub fn enslaved() -> io::Result<HashSet<i32>> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = [0u8; HDRS];
    req[0..4].copy_from_slice(&(HDRS as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = libc::AF_UNSPEC as u8;
    // SAFETY: sends `req`, a live buffer of the given length, to the kernel (default address).
    let rc = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = HashSet::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // SAFETY: receives into `buf`, a live writable buffer of the given length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n == 0 || parse(&buf[..n], &mut out)? {
            return Ok(out);
        }
    }
}

/// Walk one datagram of the dump; `Ok(true)` at its end (NLMSG_DONE).
pub fn parse(mut buf: &[u8], out: &mut HashSet<i32>) -> io::Result<bool> {
    let u16_at = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]));
    let u32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
    };
    while buf.len() >= 16 {
        let (Some(len), Some(ty)) = (u32_at(buf, 0), u16_at(buf, 4)) else {
            break;
        };
        let len = len as usize;
        if len < 16 || len > buf.len() {
            return Err(io::Error::other("truncated netlink message"));
        }
        let msg = &buf[..len];
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(msg, 16).map_or(0, |e| e as i32);
                return Err(io::Error::from_raw_os_error(-errno));
            }
            RTM_NEWLINK if len >= HDRS => {
                let index = u32_at(msg, 20).unwrap_or(0) as i32;
                let mut at = HDRS;
                while let (Some(alen), Some(aty)) = (u16_at(msg, at), u16_at(msg, at + 2)) {
                    let alen = alen as usize;
                    if alen < 4 {
                        break;
                    }
                    if aty & 0x3fff == IFLA_MASTER && u32_at(msg, at + 4).is_some_and(|m| m != 0) {
                        out.insert(index);
                    }
                    at += (alen + 3) & !3;
                }
            }
            _ => {}
        }
        buf = buf.get((len + 3) & !3..).unwrap_or_default();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, master: Option<u32>) -> Vec<u8> {
        let mut attrs = Vec::new();
        // IFLA_IFNAME "x\0" padded to 4
        attrs.extend_from_slice(&6u16.to_ne_bytes());
        attrs.extend_from_slice(&3u16.to_ne_bytes());
        attrs.extend_from_slice(b"x\0\0\0");
        if let Some(m) = master {
            attrs.extend_from_slice(&8u16.to_ne_bytes());
            attrs.extend_from_slice(&IFLA_MASTER.to_ne_bytes());
            attrs.extend_from_slice(&m.to_ne_bytes());
        }
        let len = (HDRS + attrs.len()) as u32;
        let mut m = Vec::new();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[0; 4]); // family, pad, type
        m.extend_from_slice(&index.to_ne_bytes());
        m.extend_from_slice(&[0; 8]); // flags, change
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn ports_with_a_master_are_listed() {
        let mut buf = link(2, None);
        buf.extend(link(3, Some(5)));
        buf.extend(link(4, Some(0)));
        let mut out = HashSet::new();
        assert!(!parse(&buf, &mut out).unwrap());
        assert_eq!(out, HashSet::from([3]));
        let mut done = vec![0u8; 20];
        done[0] = 20;
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        assert!(parse(&done, &mut out).unwrap());
        // Garbage: an error, never a panic.
        assert!(parse(&[0xff; 40], &mut out).is_err());
    }

    #[test]
    fn live_dump_works() {
        // Whatever this host has; it must answer and end.
        enslaved().unwrap();
    }
}
