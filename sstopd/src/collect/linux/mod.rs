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

use proto::TcpState;

/// Timer number of a TIME-WAIT minisocket, in sock_diag (`idiag_timer`) and `/proc/net/tcp`
/// (`tr`) alike; never set on a full socket.
const TIMER_TIMEWAIT: u8 = 3;

/// A TCP socket's state from the kernel's state and timer numbers. A TIME-WAIT minisocket
/// reports its substate: one that replaced an orphan in FIN-WAIT-2 says FIN-WAIT-2 (and
/// passes a dump's state mask). Its timer gives it away: no owner, no counters, no destroy
/// event, so it is TIME-WAIT here.
pub fn tcp_state(state: u8, timer: u8) -> TcpState {
    match timer {
        TIMER_TIMEWAIT => TcpState::TimeWait,
        _ => TcpState::from_kernel(state),
    }
}
