//! Linux collectors: sock_diag netlink (main mode) or /proc/net + AF_PACKET (fallback).

pub mod attribution;
pub mod changes;
pub mod collector;
pub mod destroy;
pub mod fallback;
pub mod ifaces;
pub mod kernel;
pub mod netlink;
pub mod packet;
pub mod procmap;
pub mod procnet;
pub mod tracepoint;
pub mod wake;

pub use collector::LinuxCollector;
