//! /proc/net/dev counters and the default route from /proc/net/route, /proc/net/ipv6_route.
//! Parsers are pure functions over text; [`read`] reads them under an injectable root.

use std::path::Path;

use crate::collect::IfaceSample;

/// One row of `/proc/net/dev`: name, rx bytes, tx bytes (wire bytes, u64).
pub fn parse_net_dev(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .filter_map(|line| {
            // "  eth0: 123 4 ..." — the name ends at the first ':'; the header lines have '|'.
            let (name, rest) = line.split_once(':')?;
            let name = name.trim();
            if name.is_empty() || name.contains('|') {
                return None;
            }
            let nums: Vec<&str> = rest.split_ascii_whitespace().collect();
            // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
            let rx = nums.first()?.parse().ok()?;
            let tx = nums.get(8)?.parse().ok()?;
            Some((name.to_string(), rx, tx))
        })
        .collect()
}

/// Interface of the IPv4 default route with the lowest metric from `/proc/net/route`.
pub fn parse_default_v4(text: &str) -> Option<(String, u32)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let metric: u32 = f.get(6)?.parse().ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // RTF_UP = 0x1
            (dest == 0 && mask == 0 && flags & 1 == 1).then(|| (f[0].to_string(), metric))
        })
        .min_by_key(|(_, metric)| *metric)
}

/// Interface of the IPv6 default route (`::/0`) with the lowest metric from `/proc/net/ipv6_route`.
pub fn parse_default_v6(text: &str) -> Option<(String, u32)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            // dest dest_plen src src_plen next_hop metric refcnt use flags iface
            if f.len() < 10 || f[0] != "00000000000000000000000000000000" || f[1] != "00" {
                return None;
            }
            let metric = u32::from_str_radix(f[5], 16).ok()?;
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            // RTF_UP, and not the "unreachable" placeholder bound to lo (RTF_REJECT = 0x200).
            let usable = flags & 1 == 1 && flags & 0x200 == 0 && f[9] != "lo";
            usable.then(|| (f[9].to_string(), metric))
        })
        .min_by_key(|(_, metric)| *metric)
}

/// Up/down from `/sys/class/net/<if>/operstate`; `unknown` (lo, tun) counts as up when the
/// IFF_UP flag is set.
pub fn is_up(operstate: &str, flags: Option<u32>) -> bool {
    match operstate.trim() {
        "up" => true,
        "unknown" | "" => flags.is_some_and(|f| f & 1 == 1),
        _ => false,
    }
}

/// Where to read from: `/proc` and `/sys` normally, fixture trees in tests.
#[derive(Debug, Clone)]
pub struct IfaceSource {
    pub proc_root: std::path::PathBuf,
    pub sys_root: std::path::PathBuf,
}

impl Default for IfaceSource {
    fn default() -> Self {
        IfaceSource {
            proc_root: "/proc".into(),
            sys_root: "/sys".into(),
        }
    }
}

impl IfaceSource {
    /// Interfaces as they are now (they come and go at runtime: each call reads afresh)
    /// and the default interface. Unreadable files give an empty list / `None`.
    pub fn read(&self) -> (Vec<IfaceSample>, Option<String>) {
        let dev = std::fs::read_to_string(self.proc_root.join("net/dev")).unwrap_or_default();
        let interfaces = parse_net_dev(&dev)
            .into_iter()
            .map(|(name, rx_bytes, tx_bytes)| IfaceSample {
                is_up: self.read_up(&name),
                name,
                rx_bytes,
                tx_bytes,
            })
            .collect();
        (interfaces, self.default_interface())
    }

    fn read_up(&self, name: &str) -> bool {
        let dir = self.sys_root.join("class/net").join(name);
        let oper = std::fs::read_to_string(dir.join("operstate")).unwrap_or_default();
        let flags = read_hex(&dir.join("flags"));
        is_up(&oper, flags)
    }

    fn default_interface(&self) -> Option<String> {
        let read = |p: &str| std::fs::read_to_string(self.proc_root.join(p)).unwrap_or_default();
        let v4 = parse_default_v4(&read("net/route"));
        let v6 = parse_default_v6(&read("net/ipv6_route"));
        // IPv4 first: its metric scale is not comparable with IPv6's.
        v4.or(v6).map(|(name, _)| name)
    }
}

fn read_hex(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  3540480   13426    0    0    0     0          0         0  3540480   13426    0    0    0     0       0          0
  eth0: 13309516362 20328868 0 0 0 0 0 0 11363839527 14810885 0 0 0 0 0 0
vethA12345678901:0 0 0 0 0 0 0 0 5 1 0 0 0 0 0 0
 wg0: garbage here
";

    #[test]
    fn net_dev_rows_with_u64_counters_and_glued_names() {
        let rows = parse_net_dev(NET_DEV);
        assert_eq!(
            rows,
            vec![
                ("lo".to_string(), 3_540_480, 3_540_480),
                ("eth0".to_string(), 13_309_516_362, 11_363_839_527),
                ("vethA12345678901".to_string(), 0, 5),
            ]
        );
    }

    #[test]
    fn default_v4_route_lowest_metric() {
        let route = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t010011AC\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
";
        assert_eq!(parse_default_v4(route), Some(("eth0".to_string(), 100)));
        assert_eq!(parse_default_v4("Iface\tDestination\n"), None);
    }

    #[test]
    fn default_v6_route_skips_the_unreachable_placeholder() {
        let route = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
";
        assert_eq!(parse_default_v6(route), Some(("eth0".to_string(), 0x400)));
    }

    #[test]
    fn operstate() {
        assert!(is_up("up\n", None));
        assert!(!is_up("down\n", Some(0x1003)));
        assert!(is_up("unknown\n", Some(0x9)));
        assert!(!is_up("unknown\n", Some(0x8)));
        assert!(!is_up("dormant", None));
    }

    #[test]
    fn interfaces_appear_and_disappear_between_reads() {
        let proc_root = tempfile::tempdir().unwrap();
        let sys_root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(proc_root.path().join("net")).unwrap();
        let src = IfaceSource {
            proc_root: proc_root.path().into(),
            sys_root: sys_root.path().into(),
        };
        // Nothing readable: empty, no panic.
        assert_eq!(src.read(), (Vec::new(), None));
        std::fs::write(proc_root.path().join("net/dev"), NET_DEV).unwrap();
        std::fs::create_dir_all(sys_root.path().join("class/net/eth0")).unwrap();
        std::fs::write(sys_root.path().join("class/net/eth0/operstate"), "up\n").unwrap();
        let (ifs, _) = src.read();
        assert_eq!(ifs.len(), 3);
        assert!(ifs.iter().find(|i| i.name == "eth0").unwrap().is_up);
        assert!(!ifs.iter().find(|i| i.name == "lo").unwrap().is_up);
        std::fs::write(
            proc_root.path().join("net/dev"),
            &NET_DEV[..NET_DEV.find("  eth0").unwrap()],
        )
        .unwrap();
        let (ifs, _) = src.read();
        assert_eq!(
            ifs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            vec!["lo"]
        );
    }

    #[test]
    fn real_host_lists_loopback() {
        let (ifs, _) = IfaceSource::default().read();
        let lo = ifs
            .iter()
            .find(|i| i.name == "lo")
            .expect("lo in /proc/net/dev");
        assert!(lo.is_up);
    }
}
