//! sstop, the viewer: connects to sstopd (or runs the collector in-process) and
//! shows per-process network bandwidth.
