//! Generated samples: a host with `processes` processes each moving bytes over
//! a few sockets. For benchmarks and for developing viewers without root.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use proto::{Caps, CollectorMode, Proto, TcpState};

use super::{CollectError, Collector, IfaceSample, ProcKey, ProcessInfo, Sample, SocketSample};

pub struct SyntheticCollector {
    processes: u32,
    sockets_per_process: u32,
    tick: u64,
}

impl SyntheticCollector {
    pub fn new(processes: u32, sockets_per_process: u32) -> Self {
        SyntheticCollector {
            processes,
            sockets_per_process,
            tick: 0,
        }
    }
}

impl Collector for SyntheticCollector {
    fn mode(&self) -> CollectorMode {
        CollectorMode::Synthetic
    }

    fn caps(&self) -> Caps {
        Caps::default()
    }

    fn collect(&mut self) -> Result<Sample, CollectError> {
        self.tick += 1;
        let mut sample = Sample::default();
        for p in 0..self.processes {
            let key = ProcKey {
                pid: 10_000 + p,
                start_time: 1_000 + u64::from(p),
            };
            let name = format!("synth-{p}");
            sample.processes.push(ProcessInfo {
                key,
                ppid: 1,
                uid: 1000 + p % 7,
                comm: name.clone().into_bytes(),
                cmdline: format!("/usr/bin/{name} --worker {p}"),
                name,
                alive: true,
            });
            for s in 0..self.sockets_per_process {
                let id = u64::from(p) * 1_000 + u64::from(s);
                // Deterministic, uneven load: a few heavy processes, many idle ones.
                let weight = if p % 50 == 0 {
                    100_000
                } else {
                    u64::from(p % 3) * 100
                };
                sample.sockets.push(SocketSample {
                    id,
                    proto: if s % 4 == 3 { Proto::Udp } else { Proto::Tcp },
                    local: SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                        20_000 + (id % 40_000) as u16,
                    ),
                    remote: Some(SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::new(192, 0, 2, (p % 250) as u8 + 1)),
                        443,
                    )),
                    state: (s % 4 != 3).then_some(TcpState::Established),
                    uid: 1000 + p % 7,
                    inode: 100_000 + id,
                    owners: vec![key],
                    sent: Some(self.tick * weight),
                    received: Some(self.tick * weight * 3),
                });
            }
        }
        sample.interfaces.push(IfaceSample {
            name: "synth0".into(),
            is_up: true,
            rx_bytes: self.tick * 1_000_000,
            tx_bytes: self.tick * 300_000,
        });
        sample.default_interface = Some("synth0".into());
        Ok(sample)
    }
}
