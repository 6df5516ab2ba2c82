//! AF_PACKET capture with a classic BPF filter; bytes per 5-tuple, credited to sockets.
//!
//! `frame` parses (pure), `bpf` builds the kernel filter, `ring` owns the TPACKET_V3
//! mmap ring, `flows` counts per 5-tuple on the capture thread and hands the table off
//! once per tick.

pub mod frame;
