//! [`Kernel`] over sock_diag dumps, the destroy multicast and the connect tracepoint.
//! (Waiting for the netlink branch: until it is merged, opening says so.)

use proto::Note;

use super::collector::{ConnectRecord, Kernel};
use crate::collect::{ClosedSocket, CollectError, SocketSample};

pub struct NetlinkKernel;

impl NetlinkKernel {
    pub fn open() -> Result<Self, CollectError> {
        Err(CollectError::Unavailable(
            "sock_diag netlink (not built yet; use --collector packet)".into(),
        ))
    }
}

impl Kernel for NetlinkKernel {
    fn dump(&mut self, _notes: &mut Vec<Note>) -> Result<Vec<SocketSample>, CollectError> {
        Ok(Vec::new())
    }
    fn drain_closed(&mut self, _notes: &mut Vec<Note>) -> Vec<ClosedSocket> {
        Vec::new()
    }
    fn drain_connects(&mut self, _notes: &mut Vec<Note>) -> Vec<ConnectRecord> {
        Vec::new()
    }
    fn reports_closed(&self) -> bool {
        false
    }
}
