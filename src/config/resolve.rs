//! Static name resolution overrides (`[resolve]`), so labs and tests can point real host names
//! such as `www.dropbox.com` at a local origin.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Deserializer, de::Error as _};

/// `"host" = "ip"` (any port, kept) or `"host:port" = "ip:port"` (that port only, remapped).
/// A value may also be a list of addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOverrides {
    by_host_port: HashMap<(String, u16), Vec<ResolveTarget>>,
    by_host: HashMap<String, Vec<ResolveTarget>>,
}

/// Where an overridden name goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveTarget {
    /// Keep the requested port.
    Ip(IpAddr),
    /// Replace the requested port too.
    Socket(SocketAddr),
}

impl ResolveOverrides {
    /// The addresses for `host:port`, if overridden. `host` must be lowercase.
    pub fn lookup(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        let targets = self
            .by_host_port
            .get(&(host.to_owned(), port))
            .or_else(|| self.by_host.get(host))?;
        Some(
            targets
                .iter()
                .map(|t| match *t {
                    ResolveTarget::Ip(ip) => SocketAddr::new(ip, port),
                    ResolveTarget::Socket(sa) => sa,
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty() && self.by_host_port.is_empty()
    }

    /// Adds an override (used by tests and the config parser).
    pub fn insert(&mut self, host: &str, port: Option<u16>, targets: Vec<ResolveTarget>) {
        let host = normalise(host);
        match port {
            Some(port) => self.by_host_port.insert((host, port), targets),
            None => self.by_host.insert(host, targets),
        };
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_key(key: &str) -> Option<(String, Option<u16>)> {
    if key.is_empty() || key.contains('/') {
        return None;
    }
    match key.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Some((normalise(host), Some(port.parse().ok()?)))
        }
        _ => Some((normalise(key), None)),
    }
}

fn parse_target(text: &str) -> Option<ResolveTarget> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(ResolveTarget::Socket(sa));
    }
    text.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .ok()
        .map(ResolveTarget::Ip)
}

impl<'de> Deserialize<'de> for ResolveOverrides {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Value {
            One(String),
            Many(Vec<String>),
        }
        let table = HashMap::<String, Value>::deserialize(d)?;
        let mut out = ResolveOverrides::default();
        for (key, value) in table {
            let (host, port) = parse_key(&key).ok_or_else(|| {
                D::Error::custom(format!("{key:?}: expected \"host\" or \"host:port\""))
            })?;
            let texts = match value {
                Value::One(t) => vec![t],
                Value::Many(ts) => ts,
            };
            let targets = texts
                .iter()
                .map(|t| {
                    parse_target(t).ok_or_else(|| {
                        D::Error::custom(format!("{key:?}: {t:?} is not an IP address or ip:port"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if targets.is_empty() {
                return Err(D::Error::custom(format!("{key:?}: no address given")));
            }
            out.insert(&host, port, targets);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ResolveOverrides {
        #[derive(Deserialize)]
        struct W {
            resolve: ResolveOverrides,
        }
        toml::from_str::<W>(text).unwrap().resolve
    }

    #[test]
    fn host_and_host_port() {
        let r = parse(
            "[resolve]\n\"Example.ORG\" = \"10.1.2.3\"\n\"www.dropbox.com:443\" = \"127.0.0.1:9443\"\n",
        );
        assert_eq!(
            r.lookup("example.org", 80),
            Some(vec!["10.1.2.3:80".parse().unwrap()])
        );
        assert_eq!(
            r.lookup("www.dropbox.com", 443),
            Some(vec!["127.0.0.1:9443".parse().unwrap()])
        );
        assert_eq!(r.lookup("www.dropbox.com", 80), None);
        assert_eq!(r.lookup("other.org", 80), None);
    }

    #[test]
    fn ipv6_and_lists() {
        let r = parse("[resolve]\n\"a.test\" = [\"::1\", \"[::1]:8443\"]\n");
        assert_eq!(
            r.lookup("a.test", 443),
            Some(vec![
                "[::1]:443".parse().unwrap(),
                "[::1]:8443".parse().unwrap()
            ])
        );
    }

    #[test]
    fn rejects_garbage() {
        #[derive(Debug, Deserialize)]
        struct W {
            #[allow(dead_code)]
            resolve: ResolveOverrides,
        }
        assert!(toml::from_str::<W>("[resolve]\n\"a.test\" = \"nowhere\"\n").is_err());
        assert!(toml::from_str::<W>("[resolve]\n\"a.test:http\" = \"1.2.3.4\"\n").is_err());
    }
}
