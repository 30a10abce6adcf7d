//! The SSRF guard: which upstream addresses the proxy may connect to.
//!
//! A forward proxy on the company network can reach things the internet cannot: the admin
//! listener, cloud metadata endpoints, internal services. By default it refuses loopback,
//! private, link-local and similar ranges, and always its own listeners; an admin lists the
//! exceptions (`upstream.allow_private`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    allow: Vec<IpNet>,
    own: Vec<SocketAddr>,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The proxy's own listener: a request loop.
    OwnListener,
    /// A special-purpose range (the string names it).
    Range(&'static str),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OwnListener => f.write_str("the proxy's own listener"),
            Refusal::Range(name) => write!(f, "a {name} address"),
        }
    }
}

impl AddressGuard {
    pub fn new(allow: Vec<IpNet>, own: Vec<SocketAddr>) -> Self {
        Self { allow, own }
    }

    /// `Ok` if the proxy may connect to `addr`.
    pub fn check(&self, addr: SocketAddr) -> Result<(), Refusal> {
        let ip = addr.ip().to_canonical();
        if self.is_own(ip, addr.port()) {
            return Err(Refusal::OwnListener);
        }
        match special_range(ip) {
            Some(name) if !self.allow.iter().any(|net| net.contains(&ip)) => {
                Err(Refusal::Range(name))
            }
            _ => Ok(()),
        }
    }

    fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        self.own.iter().any(|own| {
            own.port() == port
                && (own.ip().to_canonical() == ip
                    || (own.ip().is_unspecified() && (ip.is_loopback() || is_local_candidate(ip))))
        })
    }
}

/// An unspecified listener answers on every local address; without enumerating interfaces we
/// treat private and loopback targets on its port as our own.
fn is_local_candidate(ip: IpAddr) -> bool {
    special_range(ip).is_some()
}

/// Names the special-purpose range `ip` belongs to, if any.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        _ if ip.is_unspecified() || o[0] == 0 => "unspecified",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast",
        [100, b, ..] if (64..128).contains(&b) => "shared (carrier-grade NAT)",
        [192, 0, 0, _] => "IETF protocol assignment",
        [198, 18 | 19, ..] => "benchmarking",
        [240..=255, ..] => "reserved",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_multicast() => "multicast",
        x if x & 0xfe00 == 0xfc00 => "private (unique local)",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        // NAT64 well-known prefix: the embedded IPv4 address decides.
        0x64 if s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] => {
            let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            return special_v4(v4);
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_special_ranges_by_default() {
        let g = AddressGuard::default();
        for a in [
            "127.0.0.1:80",
            "10.1.2.3:80",
            "172.16.0.1:80",
            "192.168.1.1:80",
            "169.254.169.254:80",
            "100.64.0.1:80",
            "0.0.0.0:80",
            "[::1]:80",
            "[fe80::1]:80",
            "[fd00::1]:80",
            "[::ffff:127.0.0.1]:80",
            "[64:ff9b::a9fe:a9fe]:80",
        ] {
            assert!(g.check(sa(a)).is_err(), "{a} should be refused");
        }
        for a in [
            "93.184.216.34:443",
            "[2606:4700::1111]:443",
            "[64:ff9b::808:808]:53",
        ] {
            assert_eq!(g.check(sa(a)), Ok(()), "{a} should be allowed");
        }
    }

    #[test]
    fn allow_list_opens_a_range_but_never_our_own_listener() {
        let g = AddressGuard::new(
            vec!["127.0.0.0/8".parse().unwrap()],
            vec![sa("127.0.0.1:3128")],
        );
        assert_eq!(g.check(sa("127.0.0.1:8080")), Ok(()));
        assert_eq!(g.check(sa("127.0.0.1:3128")), Err(Refusal::OwnListener));
        assert_eq!(
            g.check(sa("[::ffff:127.0.0.1]:3128")),
            Err(Refusal::OwnListener)
        );
        assert!(g.check(sa("10.0.0.1:80")).is_err());
    }

    #[test]
    fn unspecified_listener_covers_local_addresses_on_its_port() {
        let g = AddressGuard::new(vec!["0.0.0.0/0".parse().unwrap()], vec![sa("0.0.0.0:3128")]);
        assert_eq!(g.check(sa("127.0.0.1:3128")), Err(Refusal::OwnListener));
        assert_eq!(g.check(sa("10.0.0.5:3128")), Err(Refusal::OwnListener));
        assert_eq!(g.check(sa("10.0.0.5:80")), Ok(()));
    }
}
