//! Scalar values of the policy files, parsed while deserializing so that a wrong value is an
//! error on its own line: host patterns, networks, regexes, the report's enum names, sizes.
//! Each parses through a serde visitor: errors raised inside the visitor get the value's span.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use strum::IntoEnumIterator;

use crate::inspect::Verdict;
use crate::policy::host::HostPattern;

/// A string or an array of strings, each parsed as `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct List<T>(pub(crate) Vec<T>);

/// An enum of the report, by its stable name (`"pdf"`, `"zip-aes"`, `"confidential"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Name<T>(pub(crate) T);

/// `encrypted = "yes" | "no" | "unknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encrypted(pub(crate) Verdict);

/// A byte count: `1048576`, `"512 KiB"`, `"10 MB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub(crate) u64);

/// A detector threshold, at least 1 (a threshold of 0 would match every body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MinCount(pub(crate) u32);

/// An HTTP method, uppercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Method(pub(crate) String);

/// A path regex that compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathRegex(pub(crate) String);

/// A client address or network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Net(pub(crate) IpNet);

/// `tls.intercept` entry: a host pattern or `"*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterceptPattern {
    All,
    Host(HostPattern),
}

/// A sensitivity-label GUID, lowercase without braces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LabelGuid(pub(crate) String);

impl<T> Default for List<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// Parses a string value with `parse`; the error lands on the value's own span.
fn parse_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.parse)(s).map_err(E::custom)
        }
    }
    d.deserialize_str(V { expecting, parse })
}

macro_rules! from_str_value {
    ($ty:ty, $expecting:literal, $parse:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                parse_str(d, $expecting, $parse)
            }
        }
    };
}

from_str_value!(HostPattern, "a host name, IP address or network", |s| s
    .parse());
from_str_value!(Encrypted, "\"yes\", \"no\" or \"unknown\"", |s| match s {
    "yes" => Ok(Encrypted(Verdict::Encrypted)),
    "no" => Ok(Encrypted(Verdict::NotEncrypted)),
    "unknown" => Ok(Encrypted(Verdict::Unknown)),
    other => Err(format!(
        "{other:?}: expected \"yes\", \"no\" or \"unknown\""
    )),
});
from_str_value!(Method, "an HTTP method", |s| {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        Ok(Method(s.to_ascii_uppercase()))
    } else {
        Err(format!("{s:?} is not an HTTP method"))
    }
});
from_str_value!(PathRegex, "a regular expression", |s| {
    regex::Regex::new(s)
        .map(|_| PathRegex(s.to_owned()))
        .map_err(|e| format!("invalid regex: {e}"))
});
from_str_value!(Net, "an IP address or network", |s| {
    let s = s.trim();
    s.parse::<IpNet>()
        .map(|n| Net(n.trunc()))
        .or_else(|_| {
            s.parse::<std::net::IpAddr>()
                .map(|ip| Net(IpNet::from(ip.to_canonical())))
        })
        .map_err(|_| format!("{s:?} is not an IP address or network (e.g. 10.0.0.0/8)"))
});
from_str_value!(InterceptPattern, "\"*\" or a host pattern", |s| {
    if s.trim() == "*" {
        Ok(InterceptPattern::All)
    } else {
        s.parse().map(InterceptPattern::Host)
    }
});
from_str_value!(LabelGuid, "a label GUID", |s| {
    let g = s
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_lowercase();
    let groups: Vec<&str> = g.split('-').collect();
    let lens = groups.iter().map(|x| x.len()).collect::<Vec<_>>();
    let hex = g.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if hex && lens == [8, 4, 4, 4, 12] {
        Ok(LabelGuid(g))
    } else {
        Err(format!(
            "{s:?} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ))
    }
});

impl<'de, T> Deserialize<'de> for Name<T>
where
    T: FromStr + IntoEnumIterator + 'static,
    &'static str: From<T>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a name", |s| {
            T::from_str(s).map(Name).map_err(|_| {
                let names: Vec<&'static str> = T::iter().map(<&'static str>::from).collect();
                format!("unknown name {s:?}, expected one of: {}", names.join(", "))
            })
        })
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<List<T>, E> {
                let one = T::deserialize(de::value::StrDeserializer::<E>::new(s))?;
                Ok(List(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(List(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes or a string such as \"10 MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                parse_size(s).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for MinCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MinCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a count of at least 1")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MinCount, E> {
                match u32::try_from(v) {
                    Ok(n) if n >= 1 => Ok(MinCount(n)),
                    _ => Err(E::custom(format!(
                        "{v}: a minimum count must be between 1 and {}",
                        u32::MAX
                    ))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MinCount, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

/// `"10 MiB"`, `"10MB"`, `"512"`, `"1.5 GiB"` is not accepted (whole numbers only).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. \"10 MiB\")"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}
