//! Linux collectors: sock_diag netlink (main mode) or /proc/net + AF_PACKET (fallback).

pub mod destroy;
pub mod ifaces;
pub mod netlink;
pub mod packet;
pub mod procmap;
pub mod procnet;
pub mod tracepoint;
