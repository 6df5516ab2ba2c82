//! Reverse DNS for the detail and hosts views, off the UI thread. The resolver
//! is injectable so tests never touch a real one.

use std::net::IpAddr;
use std::sync::mpsc;

use crate::event::Event;

/// Turns an address into a name, blocking. `None` = no name.
pub trait Resolver: Send + 'static {
    fn reverse(&self, addr: IpAddr) -> Option<String>;
}

/// The system resolver (`getnameinfo` with `NI_NAMEREQD`: /etc/hosts, DNS, ... as configured).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn reverse(&self, addr: IpAddr) -> Option<String> {
        let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
        // SAFETY: zeroed sockaddr_storage is a valid "empty" address; we only write the
        // family-specific prefix that fits inside it.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            IpAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: 0,
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_in is smaller than sockaddr_storage and both are plain data.
                unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            IpAddr::V6(v6) => {
                // SAFETY: an all-zero sockaddr_in6 is valid; fields are set below.
                let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_addr.s6_addr = v6.octets();
                // SAFETY: sockaddr_in6 is smaller than sockaddr_storage and both are plain data.
                unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        // SAFETY: storage holds a valid address of `len` bytes; host is a writable buffer of
        // the length passed; no service buffer is requested.
        let rc = unsafe {
            libc::getnameinfo(
                (&raw const storage).cast::<libc::sockaddr>(),
                len as libc::socklen_t,
                host.as_mut_ptr(),
                host.len() as libc::socklen_t,
                std::ptr::null_mut(),
                0,
                libc::NI_NAMEREQD,
            )
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
        let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
        Some(name.to_string_lossy().into_owned())
    }
}

/// Handle to the lookup thread.
pub struct Lookups {
    tx: mpsc::Sender<Vec<IpAddr>>,
}

impl Lookups {
    /// Start a thread that answers each address with an [`Event::Resolved`] through `sink`.
    pub fn spawn(
        resolver: impl Resolver,
        mut sink: impl FnMut(Event) -> bool + Send + 'static,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Vec<IpAddr>>();
        std::thread::Builder::new()
            .name("sstop-dns".into())
            .spawn(move || {
                for batch in rx {
                    for addr in batch {
                        let name = resolver.reverse(addr);
                        if !sink(Event::Resolved { addr, name }) {
                            return;
                        }
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("sstop: no DNS thread ({e}); names stay addresses"));
        Lookups { tx }
    }

    pub fn resolve(&self, addrs: Vec<IpAddr>) {
        let _ = self.tx.send(addrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Table;
    impl Resolver for Table {
        fn reverse(&self, addr: IpAddr) -> Option<String> {
            (addr == IpAddr::from([192, 0, 2, 10])).then(|| "web.example".to_string())
        }
    }

    #[test]
    fn answers_arrive_as_events() {
        let (tx, rx) = mpsc::channel();
        let l = Lookups::spawn(Table, move |e| tx.send(e).is_ok());
        let a = IpAddr::from([192, 0, 2, 10]);
        let b = IpAddr::from([198, 51, 100, 7]);
        l.resolve(vec![a, b]);
        let got: Vec<Event> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                Event::Resolved {
                    addr: a,
                    name: Some("web.example".into())
                },
                Event::Resolved {
                    addr: b,
                    name: None
                },
            ]
        );
    }
}
