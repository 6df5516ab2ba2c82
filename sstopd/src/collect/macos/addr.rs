//! Socket endpoints as the macOS tools print them: `netstat` writes `addr.port`
//! (port after the LAST dot), `lsof` writes `addr:port` with IPv6 in brackets.
//! Both use `*` for a wildcard and may carry an IPv6 scope as `%lo0` or
//! KAME-style inside the address (`fe80:4::1` = `fe80::1` on interface 4).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// Interface an IPv6 link-local address belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Numeric index (`%4`, or KAME-embedded in the address).
    Index(u32),
    /// Interface name (`%lo0`); resolved to an index by the collector.
    Name(String),
}

/// One side of a socket. `addr: None` is the wildcard `*`; `port: None` is `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    pub scope: Option<Scope>,
}

impl Endpoint {
    /// `*.*` / `*:*`: nothing bound.
    pub fn is_unbound(&self) -> bool {
        self.addr.is_none() && self.port.is_none()
    }

    /// A concrete socket address; wildcards become the unspecified address of
    /// `v6` or v4 and port 0. `resolve` maps a scope name to its index.
    pub fn to_socket_addr(&self, v6: bool, resolve: &dyn Fn(&str) -> Option<u32>) -> SocketAddr {
        let port = self.port.unwrap_or(0);
        let ip = self.addr.unwrap_or(if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        });
        match ip {
            IpAddr::V6(v6) => {
                let scope = match &self.scope {
                    Some(Scope::Index(i)) => *i,
                    Some(Scope::Name(n)) => resolve(n).unwrap_or(0),
                    None => 0,
                };
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
            }
            v4 => SocketAddr::new(v4, port),
        }
    }

    /// The part that identifies the endpoint across tools: the address with
    /// v4-mapped IPv6 folded to v4 and without scope (netstat and lsof print
    /// scopes differently), wildcard kept as `None`.
    pub fn join_key(&self) -> (Option<IpAddr>, u16) {
        (self.addr.map(|a| a.to_canonical()), self.port.unwrap_or(0))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            None => f.write_str("*")?,
            Some(IpAddr::V4(a)) => write!(f, "{a}")?,
            Some(IpAddr::V6(a)) => write!(f, "[{a}]")?,
        }
        match self.port {
            None => f.write_str(":*"),
            Some(p) => write!(f, ":{p}"),
        }
    }
}

/// Why an address text was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("no port separator in {0:?}")]
    NoPort(String),
    #[error("port is not numeric in {0:?}")]
    BadPort(String),
    #[error("host is not a numeric address in {0:?}")]
    BadHost(String),
}

/// `netstat` form: `192.0.2.10.52044`, `2001:db8::a.8080`, `fe80::1%lo0.631`,
/// `*.8809`, `*.*`. The port is the text after the last `.`.
pub fn parse_dot_endpoint(text: &str) -> Result<Endpoint, AddrError> {
    let (host, port) = text
        .rsplit_once('.')
        .ok_or_else(|| AddrError::NoPort(text.to_owned()))?;
    endpoint(text, host, port)
}

/// `lsof` form: `192.0.2.10:52044`, `[2001:db8::a]:8080`, `[fe80::1%lo0]:5353`,
/// `*:5353`, `*:*`.
pub fn parse_colon_endpoint(text: &str) -> Result<Endpoint, AddrError> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| AddrError::BadHost(text.to_owned()))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| AddrError::NoPort(text.to_owned()))?;
        (host, port)
    } else {
        text.rsplit_once(':')
            .ok_or_else(|| AddrError::NoPort(text.to_owned()))?
    };
    endpoint(text, host, port)
}

fn endpoint(text: &str, host: &str, port: &str) -> Result<Endpoint, AddrError> {
    let port = match port {
        "*" => None,
        p => Some(
            p.parse::<u16>()
                .map_err(|_| AddrError::BadPort(text.to_owned()))?,
        ),
    };
    let (addr, scope) = parse_host(host).ok_or_else(|| AddrError::BadHost(text.to_owned()))?;
    Ok(Endpoint { addr, port, scope })
}

/// A numeric host: `*`, IPv4, IPv6 with optional `%scope`, KAME scope unfolded.
/// `None` when it is not numeric (a name, a truncated address, garbage).
pub fn parse_host(host: &str) -> Option<(Option<IpAddr>, Option<Scope>)> {
    if host == "*" {
        return Some((None, None));
    }
    let (ip_text, scope_text) = match host.split_once('%') {
        Some((ip, scope)) => (ip, Some(scope)),
        None => (host, None),
    };
    let ip: IpAddr = ip_text.parse().ok()?;
    let mut scope = match scope_text {
        None => None,
        Some("") => return None,
        Some(s) => Some(match s.parse::<u32>() {
            Ok(i) => Scope::Index(i),
            Err(_) => Scope::Name(s.to_owned()),
        }),
    };
    let ip = match ip {
        IpAddr::V6(v6) => {
            let (clean, embedded) = unembed_scope(v6);
            if scope.is_none() {
                scope = embedded.map(Scope::Index);
            }
            IpAddr::V6(clean)
        }
        v4 => v4,
    };
    Some((Some(ip), scope))
}

/// BSD kernels keep the scope of link-local (and link/interface-local
/// multicast) addresses in the second 16-bit word; tools that print the raw
/// address show `fe80:4::1`. Returns the address with that word cleared and the
/// scope it held.
pub fn unembed_scope(ip: Ipv6Addr) -> (Ipv6Addr, Option<u32>) {
    let mut seg = ip.segments();
    let scoped = (seg[0] & 0xffc0) == 0xfe80 || seg[0] == 0xff01 || seg[0] == 0xff02;
    if !scoped || seg[1] == 0 {
        return (ip, None);
    }
    let scope = u32::from(seg[1]);
    seg[1] = 0;
    (Ipv6Addr::from(seg), Some(scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn netstat_port_is_after_the_last_dot() {
        let e = parse_dot_endpoint("192.0.2.10.52044").unwrap();
        assert_eq!(e.addr, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(e.port, Some(52044));
        let e = parse_dot_endpoint("2001:db8::a.8080").unwrap();
        assert_eq!((e.addr, e.port), (v6("2001:db8::a"), Some(8080)));
    }

    #[test]
    fn wildcards_and_scopes() {
        let e = parse_dot_endpoint("*.*").unwrap();
        assert!(e.is_unbound());
        let e = parse_dot_endpoint("*.8809").unwrap();
        assert_eq!((e.addr, e.port), (None, Some(8809)));
        let e = parse_dot_endpoint("fe80::1%lo0.631").unwrap();
        assert_eq!(e.addr, v6("fe80::1"));
        assert_eq!(e.scope, Some(Scope::Name("lo0".into())));
        assert_eq!(e.port, Some(631));
    }

    #[test]
    fn kame_scope_is_unfolded() {
        let e = parse_colon_endpoint("[fe80:4::1]:5353").unwrap();
        assert_eq!(e.addr, v6("fe80::1"));
        assert_eq!(e.scope, Some(Scope::Index(4)));
        // A global address with a non-zero second word is left alone.
        let e = parse_colon_endpoint("[2001:db8::7]:9090").unwrap();
        assert_eq!((e.addr, e.scope), (v6("2001:db8::7"), None));
        // An explicit %scope wins over the embedded one.
        let e = parse_colon_endpoint("[fe80:4::1%en0]:1").unwrap();
        assert_eq!(e.scope, Some(Scope::Name("en0".into())));
    }

    #[test]
    fn lsof_forms() {
        let e = parse_colon_endpoint("*:*").unwrap();
        assert!(e.is_unbound());
        let e = parse_colon_endpoint("127.0.0.1:49152").unwrap();
        assert_eq!(e.to_string(), "127.0.0.1:49152");
        assert!(matches!(
            parse_colon_endpoint("localhost:ipp"),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(
            parse_colon_endpoint("localhost:631"),
            Err(AddrError::BadHost(_))
        ));
        assert!(parse_colon_endpoint("[::1").is_err());
        assert!(parse_colon_endpoint("[::1]").is_err());
        assert!(parse_colon_endpoint("").is_err());
    }

    #[test]
    fn socket_addr_with_resolved_scope() {
        let e = parse_dot_endpoint("fe80::1%lo0.631").unwrap();
        let sa = e.to_socket_addr(true, &|n| (n == "lo0").then_some(1));
        assert_eq!(sa, "[fe80::1%1]:631".parse().unwrap());
        let e = parse_dot_endpoint("*.443").unwrap();
        assert_eq!(
            e.to_socket_addr(true, &|_| None),
            "[::]:443".parse().unwrap()
        );
        assert_eq!(
            e.to_socket_addr(false, &|_| None),
            "0.0.0.0:443".parse().unwrap()
        );
    }

    #[test]
    fn join_key_folds_v4_mapped() {
        let a = parse_colon_endpoint("[::ffff:192.0.2.1]:80").unwrap();
        let b = parse_dot_endpoint("192.0.2.1.80").unwrap();
        assert_eq!(a.join_key(), b.join_key());
    }
}
