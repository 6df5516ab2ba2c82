//! The tracepoint's `format` file → field offsets, and one raw record → a state change.
//! Offsets are read from the kernel rather than hard-coded: they moved between releases.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::{Proto, TcpState};

use super::TraceError;

/// Offset and size of one field inside the raw record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: usize,
    pub size: usize,
}

/// The fields of `sock:inet_sock_set_state` this reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub skaddr: Field,
    pub oldstate: Field,
    pub newstate: Field,
    pub sport: Field,
    pub dport: Field,
    pub family: Field,
    pub protocol: Field,
    pub saddr: Field,
    pub daddr: Field,
    pub saddr_v6: Field,
    pub daddr_v6: Field,
}

/// Parse a tracefs `format` file.
pub fn parse_format(text: &str) -> Result<Layout, TraceError> {
    let fields: Vec<(&str, Field)> = text.lines().filter_map(parse_field_line).collect();
    let find = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| TraceError::Format(format!("field `{name}` missing from format")))
    };
    let layout = Layout {
        skaddr: find("skaddr")?,
        oldstate: find("oldstate")?,
        newstate: find("newstate")?,
        sport: find("sport")?,
        dport: find("dport")?,
        family: find("family")?,
        protocol: find("protocol")?,
        saddr: find("saddr")?,
        daddr: find("daddr")?,
        saddr_v6: find("saddr_v6")?,
        daddr_v6: find("daddr_v6")?,
    };
    let sized = [
        (layout.saddr, 4),
        (layout.daddr, 4),
        (layout.saddr_v6, 16),
        (layout.daddr_v6, 16),
    ];
    if sized.iter().any(|(f, want)| f.size != *want) {
        return Err(TraceError::Format("unexpected address field sizes".into()));
    }
    Ok(layout)
}

/// `\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;` → ("saddr", 32, 4).
fn parse_field_line(line: &str) -> Option<(&str, Field)> {
    let mut parts = line.trim().split(';').map(str::trim);
    let decl = parts.next()?.strip_prefix("field:")?;
    let name = decl.rsplit([' ', '*']).next()?;
    let name = name.split('[').next()?;
    let mut offset = None;
    let mut size = None;
    for part in parts {
        if let Some(v) = part.strip_prefix("offset:") {
            offset = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.parse().ok();
        }
    }
    Some((
        name,
        Field {
            offset: offset?,
            size: size?,
        },
    ))
}

/// A decoded record, before the task is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub skaddr: u64,
    pub proto: Proto,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub old_state: TcpState,
    pub new_state: TcpState,
}

const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;

impl Layout {
    /// Decode one raw record; `None` for a record too short, another family, or a protocol
    /// other than TCP/SCTP (MPTCP's own socket, 262, is skipped: its subflows are TCP).
    pub fn decode(&self, raw: &[u8]) -> Option<StateChange> {
        let proto = match self.uint(raw, self.protocol)? {
            6 => Proto::Tcp,
            132 => Proto::Sctp,
            _ => return None,
        };
        let family = self.uint(raw, self.family)?;
        // Ports are stored in host order by the tracepoint (ntohs in TP_fast_assign).
        let sport = u16::try_from(self.uint(raw, self.sport)?).ok()?;
        let dport = u16::try_from(self.uint(raw, self.dport)?).ok()?;
        let (src, dst) = match family {
            AF_INET => (
                IpAddr::V4(Ipv4Addr::from(self.array::<4>(raw, self.saddr)?)),
                IpAddr::V4(Ipv4Addr::from(self.array::<4>(raw, self.daddr)?)),
            ),
            AF_INET6 => (
                IpAddr::V6(Ipv6Addr::from(self.array::<16>(raw, self.saddr_v6)?)),
                IpAddr::V6(Ipv6Addr::from(self.array::<16>(raw, self.daddr_v6)?)),
            ),
            _ => return None,
        };
        Some(StateChange {
            skaddr: self.uint(raw, self.skaddr)?,
            proto,
            local: SocketAddr::new(src, sport),
            remote: SocketAddr::new(dst, dport),
            old_state: state(self.uint(raw, self.oldstate)?),
            new_state: state(self.uint(raw, self.newstate)?),
        })
    }

    /// An unsigned host-order integer of 1, 2, 4 or 8 bytes.
    fn uint(&self, raw: &[u8], f: Field) -> Option<u64> {
        let b = raw.get(f.offset..f.offset.checked_add(f.size)?)?;
        Some(match f.size {
            1 => u64::from(b[0]),
            2 => u64::from(u16::from_ne_bytes(b.try_into().ok()?)),
            4 => u64::from(u32::from_ne_bytes(b.try_into().ok()?)),
            8 => u64::from_ne_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }

    fn array<const N: usize>(&self, raw: &[u8], f: Field) -> Option<[u8; N]> {
        raw.get(f.offset..f.offset.checked_add(N)?)?.try_into().ok()
    }
}

fn state(n: u64) -> TcpState {
    TcpState::from_kernel(u8::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from Linux 6.18 (/sys/kernel/tracing/events/sock/inet_sock_set_state/format).
    pub const FORMAT_6_18: &str = "name: inet_sock_set_state
ID: 2287
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;

print fmt: \"family=%s ...\"
";

    #[test]
    fn parses_the_6_18_format() {
        let l = parse_format(FORMAT_6_18).unwrap();
        assert_eq!(l.skaddr, Field { offset: 8, size: 8 });
        assert_eq!(
            l.newstate,
            Field {
                offset: 20,
                size: 4
            }
        );
        assert_eq!(
            l.daddr_v6,
            Field {
                offset: 56,
                size: 16
            }
        );
    }

    #[test]
    fn a_format_without_a_field_is_an_error() {
        let cut: String = FORMAT_6_18
            .lines()
            .filter(|l| !l.contains("daddr_v6"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(matches!(parse_format(&cut), Err(TraceError::Format(_))));
        assert!(parse_format("").is_err());
    }

    fn record(family: u16, protocol: u16, old: u32, new: u32) -> Vec<u8> {
        let mut r = vec![0u8; 72];
        r[8..16].copy_from_slice(&0xffff_8880_1234_5678u64.to_ne_bytes());
        r[16..20].copy_from_slice(&old.to_ne_bytes());
        r[20..24].copy_from_slice(&new.to_ne_bytes());
        r[24..26].copy_from_slice(&45678u16.to_ne_bytes());
        r[26..28].copy_from_slice(&8080u16.to_ne_bytes());
        r[28..30].copy_from_slice(&family.to_ne_bytes());
        r[30..32].copy_from_slice(&protocol.to_ne_bytes());
        r[32..36].copy_from_slice(&[127, 0, 0, 1]);
        r[36..40].copy_from_slice(&[127, 0, 0, 2]);
        r[40..56].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        r[56..72].copy_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        r
    }

    #[test]
    fn decodes_v4_and_v6_connects() {
        let l = parse_format(FORMAT_6_18).unwrap();
        let c = l.decode(&record(2, 6, 7, 2)).unwrap();
        assert_eq!(c.local, "127.0.0.1:45678".parse().unwrap());
        assert_eq!(c.remote, "127.0.0.2:8080".parse().unwrap());
        assert_eq!(
            (c.old_state, c.new_state),
            (TcpState::Close, TcpState::SynSent)
        );
        assert_eq!(c.skaddr, 0xffff_8880_1234_5678);
        let c6 = l.decode(&record(10, 6, 1, 4)).unwrap();
        assert_eq!(c6.local, "[::1]:45678".parse().unwrap());
        assert_eq!(c6.remote, "[2001:db8::7]:8080".parse().unwrap());
        assert_eq!(c6.new_state, TcpState::FinWait1);
    }

    #[test]
    fn skips_other_protocols_families_and_short_records() {
        let l = parse_format(FORMAT_6_18).unwrap();
        assert_eq!(l.decode(&record(2, 262, 7, 2)), None);
        assert_eq!(l.decode(&record(1, 6, 7, 2)), None);
        assert_eq!(l.decode(&record(2, 6, 7, 2)[..38]), None);
        assert_eq!(l.decode(&record(10, 6, 7, 2)[..60]), None);
        assert_eq!(l.decode(&[]), None);
    }
}
