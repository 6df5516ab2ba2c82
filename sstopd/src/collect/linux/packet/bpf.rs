//! The classic BPF program attached with `SO_ATTACH_FILTER`: only IPv4/IPv6 reach user
//! space; in main mode only arriving TCP reaches it (its bytes come from tcp_info; an
//! arriving segment is what moves a socket's counters, so it marks the socket as worth
//! a lookup this tick), and
//! every accepted frame is cut to [`SNAPLEN`] bytes: headers are all we read, sizes
//! come from the IP header and `tp_len`, so copying payload would only cost CPU.
//!
//! The socket is `SOCK_DGRAM` ("cooked"): offset 0 is the network header on every link
//! type, and the ethertype is read from the skb (`SKF_AD_PROTOCOL`), not from a MAC header.
//! On loopback every packet passes the tap twice (outgoing, then host); the host copy is
//! dropped here (`SKF_AD_PKTTYPE`, `SKF_AD_HATYPE`), halving loopback capture cost.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::sock_filter;

use super::frame::{ETH_P_IP, ETH_P_IPV6};

/// Bytes copied per frame: IPv6 + a generous extension-header chain + the L4 header.
pub const SNAPLEN: u32 = 256;

/// Which frames the kernel hands to user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Main mode: everything IP except TCP leaving through a non-loopback interface.
    NonTcp,
    /// Fallback mode: all IP traffic.
    AllIp,
}

const IPPROTO_TCP: u32 = 6;
const PACKET_OUTGOING: u32 = 4;
const ARPHRD_LOOPBACK: u32 = 772;
const SKF_AD_PKTTYPE: i32 = 4;
const SKF_AD_HATYPE: i32 = 28;

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The filter program for `keep`.
pub fn program(keep: Keep) -> Vec<sock_filter> {
    program_with(keep, true)
}

/// Main mode with `tcp_activity` off: TCP is dropped in the kernel too (for traffic so
/// dense that copying a header per segment costs more than dumping every socket).
pub fn program_with(keep: Keep, tcp_activity: bool) -> Vec<sock_filter> {
    use libc::{BPF_ABS, BPF_B, BPF_JA, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ld_anc = |anc: i32| stmt(BPF_LD | BPF_W | BPF_ABS, (libc::SKF_AD_OFF + anc) as u32);
    let jeq = |k: u32, jt: u8, jf: u8| jump(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf);
    let ret = |k| stmt(BPF_RET | BPF_K, k);
    let body = match keep {
        Keep::AllIp => vec![
            /* 0 */ ld_anc(libc::SKF_AD_PROTOCOL),
            /* 1 */ jeq(u32::from(ETH_P_IP), 1, 0),
            /* 2 */ jeq(u32::from(ETH_P_IPV6), 0, 1),
            /* 3 */ ret(SNAPLEN),
            /* 4 */ ret(0),
        ],
        Keep::NonTcp if !tcp_activity => vec![
            /* 0 */ ld_anc(libc::SKF_AD_PROTOCOL),
            /* 1 */ jeq(u32::from(ETH_P_IP), 0, 2),
            /* 2 */ stmt(BPF_LD | BPF_B | BPF_ABS, 9), // IPv4 protocol
            /* 3 */ stmt(BPF_JMP | BPF_JA, 2),
            /* 4 */ jeq(u32::from(ETH_P_IPV6), 0, 3),
            /* 5 */ stmt(BPF_LD | BPF_B | BPF_ABS, 6), // IPv6 next header
            /* 6 */ jeq(IPPROTO_TCP, 1, 0),
            /* 7 */ ret(SNAPLEN),
            /* 8 */ ret(0),
        ],
        Keep::NonTcp => vec![
            /* 0 */ ld_anc(libc::SKF_AD_PROTOCOL),
            /* 1 */ jeq(u32::from(ETH_P_IP), 0, 2),
            /* 2 */ stmt(BPF_LD | BPF_B | BPF_ABS, 9), // IPv4 protocol
            /* 3 */ stmt(BPF_JMP | BPF_JA, 2),
            /* 4 */ jeq(u32::from(ETH_P_IPV6), 0, 7),
            /* 5 */ stmt(BPF_LD | BPF_B | BPF_ABS, 6), // IPv6 next header
            /* 6 */ jeq(IPPROTO_TCP, 0, 4),
            // TCP: arriving, or loopback's one copy (outgoing, also arriving).
            /* 7 */
            ld_anc(SKF_AD_PKTTYPE),
            /* 8 */ jeq(PACKET_OUTGOING, 0, 2),
            /* 9 */ ld_anc(SKF_AD_HATYPE),
            /* 10 */ jeq(ARPHRD_LOOPBACK, 0, 1),
            /* 11 */ ret(SNAPLEN),
            /* 12 */ ret(0),
        ],
    };
    // Prefix: not outgoing and on loopback → the last instruction (drop).
    let drop_from_3 = (body.len() - 1) as u8;
    let mut prog = vec![
        /* 0 */ ld_anc(SKF_AD_PKTTYPE),
        /* 1 */ jeq(PACKET_OUTGOING, 2, 0),
        /* 2 */ ld_anc(SKF_AD_HATYPE),
        /* 3 */ jeq(ARPHRD_LOOPBACK, drop_from_3, 0),
    ];
    prog.extend(body);
    prog
}

/// Attach `prog` to the socket.
pub fn attach(fd: BorrowedFd<'_>, prog: &[sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies the program.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions used above, to check the jump targets.
    fn run_on(prog: &[sock_filter], pkttype: u32, hatype: u32, protocol: u16, pkt: &[u8]) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let code = u32::from(i.code);
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    a = match i.k.wrapping_sub(libc::SKF_AD_OFF as u32) as i32 {
                        libc::SKF_AD_PROTOCOL => u32::from(protocol),
                        SKF_AD_PKTTYPE => pkttype,
                        SKF_AD_HATYPE => hatype,
                        other => panic!("unexpected ancillary load {other}"),
                    }
                }
                c if c == libc::BPF_LD | libc::BPF_B | libc::BPF_ABS => {
                    a = u32::from(pkt[i.k as usize])
                }
                c if c == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += if a == i.k { i.jt } else { i.jf } as usize
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
        }
    }

    /// An incoming frame on Ethernet.
    fn run(prog: &[sock_filter], protocol: u16, pkt: &[u8]) -> u32 {
        run_on(prog, 0, 1, protocol, pkt)
    }

    #[test]
    fn loopback_keeps_only_the_outgoing_copy() {
        let mut v4 = [0u8; 40];
        v4[9] = 17;
        for keep in [Keep::NonTcp, Keep::AllIp] {
            let p = program(keep);
            assert_eq!(run_on(&p, PACKET_OUTGOING, 772, ETH_P_IP, &v4), SNAPLEN);
            assert_eq!(run_on(&p, 0, 772, ETH_P_IP, &v4), 0);
            assert_eq!(run_on(&p, PACKET_OUTGOING, 1, ETH_P_IP, &v4), SNAPLEN);
            assert_eq!(run_on(&p, 0, 65534, ETH_P_IP, &v4), SNAPLEN);
        }
    }

    #[test]
    fn main_mode_keeps_only_arriving_tcp_and_drops_non_ip() {
        let p = program(Keep::NonTcp);
        let mut v4 = [0u8; 40];
        v4[9] = 17;
        assert_eq!(run(&p, ETH_P_IP, &v4), SNAPLEN);
        assert_eq!(run_on(&p, PACKET_OUTGOING, 1, ETH_P_IP, &v4), SNAPLEN);
        let mut v6 = [0u8; 40];
        v6[6] = 58;
        assert_eq!(run(&p, ETH_P_IPV6, &v6), SNAPLEN);
        assert_eq!(run(&p, 0x0806, &v4), 0);
        // TCP: arriving on Ethernet and loopback's outgoing copy are kept; TCP leaving
        // through Ethernet moves no counter of ours and is dropped.
        v4[9] = 6;
        v6[6] = 6;
        for (proto, pkt) in [(ETH_P_IP, &v4), (ETH_P_IPV6, &v6)] {
            assert_eq!(run(&p, proto, pkt), SNAPLEN);
            assert_eq!(run_on(&p, PACKET_OUTGOING, 772, proto, pkt), SNAPLEN);
            assert_eq!(run_on(&p, 0, 772, proto, pkt), 0);
            assert_eq!(run_on(&p, PACKET_OUTGOING, 1, proto, pkt), 0);
            assert_eq!(run_on(&p, PACKET_OUTGOING, 65534, proto, pkt), 0);
        }
    }

    #[test]
    fn main_mode_without_tcp_activity_drops_all_tcp() {
        let p = program_with(Keep::NonTcp, false);
        let mut v4 = [0u8; 40];
        v4[9] = 17;
        assert_eq!(run(&p, ETH_P_IP, &v4), SNAPLEN);
        assert_eq!(run_on(&p, PACKET_OUTGOING, 772, ETH_P_IP, &v4), SNAPLEN);
        assert_eq!(run_on(&p, 0, 772, ETH_P_IP, &v4), 0);
        v4[9] = 6;
        let mut v6 = [0u8; 40];
        v6[6] = 6;
        for (proto, pkt) in [(ETH_P_IP, &v4), (ETH_P_IPV6, &v6)] {
            assert_eq!(run(&p, proto, pkt), 0);
            assert_eq!(run_on(&p, PACKET_OUTGOING, 772, proto, pkt), 0);
        }
        assert_eq!(program_with(Keep::AllIp, false), program(Keep::AllIp));
    }

    #[test]
    fn fallback_keeps_all_ip() {
        let p = program(Keep::AllIp);
        assert_eq!(run(&p, ETH_P_IP, &[]), SNAPLEN);
        assert_eq!(run(&p, ETH_P_IPV6, &[]), SNAPLEN);
        assert_eq!(run(&p, 0x0806, &[]), 0);
    }
}
