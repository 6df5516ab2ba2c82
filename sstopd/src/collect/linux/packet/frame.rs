//! Frame parsing: captured bytes → one [`Packet`] (protocol, endpoints, payload bytes).
//!
//! Pure functions over `&[u8]`. Sizes always come from the IP header (never from how
//! many bytes were captured): Ethernet padding is not payload (B17), a snaplen-cut
//! frame still counts its full length (marked `truncated`), and an offload
//! super-frame whose length field is 0 falls back to the length on the wire (B16).
//!
//! Byte definition, the same for every protocol as for TCP's kernel counters:
//! UDP → datagram payload (UDP length − 8); TCP → IP payload − TCP header;
//! ICMP, raw and every other protocol → IP payload (IP length − IP header(s)).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::Proto;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;

/// How the bytes of a frame begin, chosen per interface (ARPHRD / `sll_hatype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// 14-byte MAC header (Ethernet, loopback), optionally VLAN tagged.
    Ethernet,
    /// Bare IP packet (tun, WireGuard, PPP, IP-in-IP): the version nibble picks v4/v6.
    RawIp,
    /// `SOCK_DGRAM` capture: the kernel removed the link header and tells the protocol.
    Cooked { protocol: u16 },
}

impl LinkType {
    /// The decoder for an ARPHRD type; `None` for link types whose headers we cannot decode
    /// (monitor-mode Wi-Fi 803, nlmon 824, ...).
    pub fn from_arphrd(hatype: u16) -> Option<LinkType> {
        match hatype {
            // ETHER, LOOPBACK
            1 | 772 => Some(LinkType::Ethernet),
            // NONE (tun), PPP, TUNNEL, SIT, IPGRE, TUNNEL6, IP6GRE, RAWIP
            65534 | 512 | 768 | 776 | 778 | 769 | 823 | 519 => Some(LinkType::RawIp),
            _ => None,
        }
    }
}

/// Why a frame yields no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// A later fragment: its bytes were counted with the first fragment's length.
    LaterFragment,
    /// Headers that contradict themselves or end before the fixed IP header.
    Malformed(&'static str),
}

/// One IP packet as the byte counter needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub proto: Proto,
    /// Port 0 for protocols without ports; ICMP echo carries its identifier as both ports
    /// (ping sockets are keyed by it).
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// IP header(s) + payload, from the IP header.
    pub ip_len: u32,
    /// Payload bytes by the definition above.
    pub payload: u32,
    /// The capture held fewer bytes than the IP packet (sizes still from the header).
    pub truncated: bool,
}

/// Decode a frame. `wire_len` is the frame's full length (`tp_len`), which may exceed
/// `frame.len()` when the capture was cut short.
pub fn decode(link: LinkType, frame: &[u8], wire_len: u32) -> Result<Packet, Skip> {
    match link {
        LinkType::Cooked { protocol } => match protocol {
            ETH_P_IP | ETH_P_IPV6 => parse_ip(frame, wire_len),
            _ => Err(Skip::NotIp),
        },
        LinkType::RawIp => parse_ip(frame, wire_len),
        LinkType::Ethernet => {
            let (ethertype, hdr) = ethernet_header(frame)?;
            if ethertype != ETH_P_IP && ethertype != ETH_P_IPV6 {
                return Err(Skip::NotIp);
            }
            let rest = frame.get(hdr..).ok_or(Skip::Malformed("short ethernet"))?;
            parse_ip(rest, wire_len.saturating_sub(hdr as u32))
        }
    }
}

/// Ethertype and header length of an Ethernet frame (VLAN tags skipped).
fn ethernet_header(frame: &[u8]) -> Result<(u16, usize), Skip> {
    let mut off = 12;
    loop {
        let ty = be16(frame, off).ok_or(Skip::Malformed("short ethernet"))?;
        if ty == ETH_P_8021Q || ty == ETH_P_8021AD {
            off += 4;
            continue;
        }
        return Ok((ty, off + 2));
    }
}

/// Parse an IP packet starting at its first byte. `wire_len` is the packet's length on
/// the wire from this byte on; used only when the header says 0 (offload super-frames).
pub fn parse_ip(data: &[u8], wire_len: u32) -> Result<Packet, Skip> {
    match data.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(data, wire_len),
        Some(6) => parse_ipv6(data, wire_len),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Malformed("empty frame")),
    }
}

fn parse_ipv4(d: &[u8], wire_len: u32) -> Result<Packet, Skip> {
    if d.len() < 20 {
        return Err(Skip::Malformed("short IPv4 header"));
    }
    let ihl = u32::from(d[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed("IPv4 header length < 20"));
    }
    let total = match u32::from(u16::from_be_bytes([d[2], d[3]])) {
        // TSO/GSO and BIG TCP leave it 0: the frame itself is the packet.
        0 => wire_len,
        n => n,
    };
    if total < ihl {
        return Err(Skip::Malformed("IPv4 total length < header"));
    }
    let frag = u16::from_be_bytes([d[6], d[7]]);
    let src = IpAddr::V4(Ipv4Addr::new(d[12], d[13], d[14], d[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(d[16], d[17], d[18], d[19]));
    let l4 = Layer4 {
        proto: d[9],
        hdr_len: ihl,
        ip_len: total,
        captured: d,
        later_fragment: frag & 0x1fff != 0,
        first_fragment: frag & 0x3fff == 0x2000,
    };
    l4.finish(src, dst)
}

fn parse_ipv6(d: &[u8], wire_len: u32) -> Result<Packet, Skip> {
    if d.len() < 40 {
        return Err(Skip::Malformed("short IPv6 header"));
    }
    let total = match u32::from(u16::from_be_bytes([d[4], d[5]])) {
        // Jumbogram / BIG TCP: payload length 0, the captured frame is the packet.
        0 => wire_len,
        n => n + 40,
    };
    let src = IpAddr::V6(Ipv6Addr::from(
        <[u8; 16]>::try_from(&d[8..24]).unwrap_or_default(),
    ));
    let dst = IpAddr::V6(Ipv6Addr::from(
        <[u8; 16]>::try_from(&d[24..40]).unwrap_or_default(),
    ));
    let mut next = d[6];
    let mut off: u32 = 40;
    let mut later_fragment = false;
    let mut first_fragment = false;
    // Walk extension headers while they are captured; an uncapturable chain leaves the
    // last header type as the protocol, still counted by the IP length.
    loop {
        let at = off as usize;
        let len = match next {
            // hop-by-hop, routing, destination options, mobility: (len + 1) * 8
            0 | 43 | 60 | 135 => d.get(at + 1).map(|l| (u32::from(*l) + 1) * 8),
            // fragment: fixed 8 bytes; offset != 0 → no upper-layer header here
            44 => {
                if let Some(fo) = be16(d, at + 2) {
                    later_fragment = fo & 0xfff8 != 0;
                    first_fragment = fo & 0xfff9 == 1;
                }
                d.get(at).map(|_| 8)
            }
            // authentication header: (len + 2) * 4
            51 => d.get(at + 1).map(|l| (u32::from(*l) + 2) * 4),
            _ => break,
        };
        let (Some(len), Some(nh)) = (len, d.get(at)) else {
            break;
        };
        next = *nh;
        off += len;
        if off > total {
            return Err(Skip::Malformed("IPv6 extension headers past payload"));
        }
    }
    let l4 = Layer4 {
        proto: next,
        hdr_len: off,
        ip_len: total,
        captured: d,
        later_fragment,
        first_fragment,
    };
    l4.finish(src, dst)
}

/// The upper-layer part of an IP packet, located but not yet read.
struct Layer4<'a> {
    proto: u8,
    /// IP header(s) length: where the upper-layer header starts.
    hdr_len: u32,
    ip_len: u32,
    captured: &'a [u8],
    later_fragment: bool,
    /// Offset 0 with more fragments to come: the UDP length covers all of them.
    first_fragment: bool,
}

impl Layer4<'_> {
    fn finish(self, src: IpAddr, dst: IpAddr) -> Result<Packet, Skip> {
        if self.later_fragment {
            return Err(Skip::LaterFragment);
        }
        let at = self.hdr_len as usize;
        let ip_payload = self.ip_len - self.hdr_len;
        let ports = || Some((be16(self.captured, at)?, be16(self.captured, at + 2)?));
        let (proto, sport, dport, payload) = match self.proto {
            6 => {
                let doff = self
                    .captured
                    .get(at + 12)
                    .map(|b| u32::from(b >> 4) * 4)
                    .ok_or(Skip::Malformed("TCP header not captured"))?;
                if doff < 20 || doff > ip_payload {
                    return Err(Skip::Malformed("TCP data offset"));
                }
                let (s, d) = ports().ok_or(Skip::Malformed("TCP header not captured"))?;
                (Proto::Tcp, s, d, ip_payload - doff)
            }
            17 => {
                let (s, d) = ports().ok_or(Skip::Malformed("UDP header not captured"))?;
                let udp_len = be16(self.captured, at + 4).map_or(0, u32::from);
                if ip_payload < 8 {
                    return Err(Skip::Malformed("UDP shorter than its header"));
                }
                // UDP length is the definition; a 0 or oversize field (jumbogram, UDP GSO
                // super-frame) falls back to the IP payload.
                let trusted = udp_len >= 8 && (self.first_fragment || udp_len <= ip_payload);
                let payload = if trusted { udp_len - 8 } else { ip_payload - 8 };
                (Proto::Udp, s, d, payload)
            }
            1 | 58 => {
                let icmp_proto = if self.proto == 1 {
                    Proto::Icmp
                } else {
                    Proto::Icmpv6
                };
                let ty = self.captured.get(at).copied();
                // Echo request/reply carry the ping socket's identifier.
                let id = match ty {
                    Some(0 | 8 | 128 | 129) => be16(self.captured, at + 4).unwrap_or(0),
                    _ => 0,
                };
                (icmp_proto, id, id, ip_payload)
            }
            132 => {
                let (s, d) = ports().unwrap_or((0, 0));
                (Proto::Sctp, s, d, ip_payload)
            }
            n => (Proto::Ip(n), 0, 0, ip_payload),
        };
        Ok(Packet {
            proto,
            src: SocketAddr::new(src, sport),
            dst: SocketAddr::new(dst, dport),
            ip_len: self.ip_len,
            payload,
            truncated: (self.captured.len() as u64) < u64::from(self.ip_len),
        })
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
