//! `[audit]`: where audit events go, how long rotated files are kept, and what the proxy does
//! when auditing fails. Every key is optional; defaults are in the README.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

use crate::config::de;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Where events go; several sinks get every event. `[[audit.sink]]` in TOML.
    #[serde(rename = "sink")]
    pub sinks: Vec<SinkConfig>,
    /// Events that may wait for the writer.
    pub queue: usize,
    /// How long a full queue may hold a request before its event is dropped (and counted).
    #[serde(deserialize_with = "de::duration")]
    pub queue_wait: Duration,
    /// While auditing fails, refuse inspected uploads to external hosts.
    pub fail_closed: bool,
    /// Which exchanges get an event: `decisions` (inspected, logged, blocked or failed ones; the
    /// default) or `all` (every request, plain browsing included).
    pub events: AuditScope,
    /// Log the URL query string. Off: queries carry search terms, tokens and personal data.
    pub log_query: bool,
    /// Log the SHA-256 of uploaded file names instead of the names.
    pub hash_file_names: bool,
    /// Secret key for the fingerprints of detected values; created (0600) when missing.
    /// `None` (`fingerprint_key_file = ""`) turns fingerprints off.
    #[serde(deserialize_with = "optional_path")]
    pub fingerprint_key_file: Option<PathBuf>,
}

/// Which exchanges are audited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditScope {
    /// Every decision worth explaining later: inspected bodies, `log` and `block` outcomes,
    /// would-blocks, refused CONNECTs and clients, and exchanges the proxy answered itself.
    /// Plain browsing that no rule looked at stays out of the log (privacy golden rule 2).
    #[default]
    Decisions,
    /// Every exchange.
    All,
}

/// One destination for audit events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    File(FileSinkConfig),
    Stdout,
    Syslog(SyslogSinkConfig),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSinkConfig {
    pub path: PathBuf,
    /// Rotate when the file would grow past this; 0 = never by size.
    #[serde(deserialize_with = "de::size")]
    pub max_size: u64,
    /// Rotate at every multiple of this period since the epoch (UTC): "1d" rotates at midnight.
    #[serde(deserialize_with = "optional_duration")]
    pub rotate_every: Option<Duration>,
    /// Rotated files older than this are deleted (KSP 1.6: logs too have a retention period).
    #[serde(deserialize_with = "optional_duration")]
    pub retention: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogSinkConfig {
    /// `udp://host:port`, `tcp://host:port` (octet-counting framing) or `unix:///dev/log`.
    #[serde(deserialize_with = "syslog_address")]
    pub address: SyslogAddress,
    /// Syslog facility name (`local0`..`local7`, `auth`, `authpriv`, `daemon`, `user`).
    #[serde(deserialize_with = "facility")]
    pub facility: u8,
    pub app_name: String,
    /// HOSTNAME field; empty = this machine's host name.
    pub hostname: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    Udp(String),
    Tcp(String),
    Unix(PathBuf),
}

// === defaults ===

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sinks: vec![SinkConfig::File(FileSinkConfig::default())],
            queue: 10_000,
            queue_wait: Duration::from_millis(100),
            fail_closed: true,
            events: AuditScope::Decisions,
            log_query: false,
            hash_file_names: false,
            fingerprint_key_file: Some(PathBuf::from("secrets/fingerprint.key")),
        }
    }
}

impl Default for FileSinkConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("audit/audit.log"),
            max_size: 100 << 20,
            rotate_every: Some(Duration::from_secs(86_400)),
            retention: Some(Duration::from_secs(90 * 86_400)),
        }
    }
}

impl Default for SyslogSinkConfig {
    fn default() -> Self {
        Self {
            address: SyslogAddress::Unix(PathBuf::from("/dev/log")),
            facility: 16,
            app_name: "sluis".to_owned(),
            hostname: String::new(),
        }
    }
}

// === impl AuditConfig ===

impl AuditConfig {
    /// Cross-field checks; returns the offending key and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.queue == 0 {
            return Err(("audit.queue", "must be at least 1".into()));
        }
        if self.sinks.is_empty() {
            return Err((
                "audit.sink",
                "at least one sink is needed: every decision is audited".into(),
            ));
        }
        for sink in &self.sinks {
            if let SinkConfig::File(f) = sink {
                if f.path.as_os_str().is_empty() {
                    return Err(("audit.sink.path", "a file sink needs a path".into()));
                }
                if f.rotate_every.is_some_and(|d| d.as_secs() == 0) {
                    return Err(("audit.sink.rotate_every", "must be at least 1s".into()));
                }
            }
        }
        Ok(())
    }
}

// === parsers ===

fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let text = String::deserialize(d)?;
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

/// A duration, `"daily"`/`"hourly"`, or `""`/`"never"` for none.
fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    match text.as_str() {
        "" | "never" => Ok(None),
        "daily" => Ok(Some(Duration::from_secs(86_400))),
        "hourly" => Ok(Some(Duration::from_secs(3_600))),
        _ => humantime::parse_duration(&text).map(Some).map_err(|e| {
            D::Error::custom(format!(
                "invalid duration {text:?} ({e}); use e.g. \"1d\", \"90d\", \"daily\" or \"never\""
            ))
        }),
    }
}

fn syslog_address<'de, D: Deserializer<'de>>(d: D) -> Result<SyslogAddress, D::Error> {
    let text = String::deserialize(d)?;
    SyslogAddress::parse(&text).ok_or_else(|| {
        D::Error::custom(format!(
            "invalid syslog address {text:?}; use udp://host:port, tcp://host:port or unix:///path"
        ))
    })
}

fn facility<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let text = String::deserialize(d)?;
    let code = match text.as_str() {
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "authpriv" => 10,
        _ => match text
            .strip_prefix("local")
            .and_then(|n| n.parse::<u8>().ok())
        {
            Some(n) if n <= 7 => 16 + n,
            _ => {
                return Err(D::Error::custom(format!(
                    "unknown syslog facility {text:?}; use local0..local7, auth, authpriv, daemon or user"
                )));
            }
        },
    };
    Ok(code)
}

// === impl SyslogAddress ===

impl SyslogAddress {
    pub fn parse(text: &str) -> Option<Self> {
        let nonempty = |s: &str| (!s.is_empty() && s.contains(':')).then(|| s.to_owned());
        if let Some(rest) = text.strip_prefix("udp://") {
            return nonempty(rest).map(Self::Udp);
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            return nonempty(rest).map(Self::Tcp);
        }
        let path = text.strip_prefix("unix://")?;
        (path.starts_with('/')).then(|| Self::Unix(PathBuf::from(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct W {
        audit: AuditConfig,
    }

    fn parse(text: &str) -> AuditConfig {
        toml::from_str::<W>(text).unwrap().audit
    }

    #[test]
    fn sinks_parse() {
        let c = parse(
            r#"
            [audit]
            queue = 5
            [[audit.sink]]
            type = "file"
            path = "/var/log/sluis/audit.log"
            max_size = "10MiB"
            rotate_every = "daily"
            retention = "30d"
            [[audit.sink]]
            type = "syslog"
            address = "tcp://127.0.0.1:6514"
            facility = "local3"
            [[audit.sink]]
            type = "stdout"
            "#,
        );
        assert_eq!(c.queue, 5);
        assert_eq!(c.sinks.len(), 3);
        let SinkConfig::File(f) = &c.sinks[0] else {
            panic!("{:?}", c.sinks[0])
        };
        assert_eq!(f.max_size, 10 << 20);
        assert_eq!(f.rotate_every, Some(Duration::from_secs(86_400)));
        assert_eq!(f.retention, Some(Duration::from_secs(30 * 86_400)));
        let SinkConfig::Syslog(s) = &c.sinks[1] else {
            panic!("{:?}", c.sinks[1])
        };
        assert_eq!(s.address, SyslogAddress::Tcp("127.0.0.1:6514".into()));
        assert_eq!(s.facility, 19);
        assert_eq!(c.sinks[2], SinkConfig::Stdout);
    }

    #[test]
    fn defaults_are_safe() {
        let c = AuditConfig::default();
        assert!(c.fail_closed && !c.log_query);
        assert!(c.fingerprint_key_file.is_some());
        assert!(matches!(&c.sinks[..], [SinkConfig::File(_)]));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn rejects_bad_values() {
        let bad = |t: &str| toml::from_str::<W>(t).is_err();
        assert!(bad(
            "[[audit.sink]]\ntype = \"syslog\"\naddress = \"http://x:1\"\n"
        ));
        assert!(bad(
            "[[audit.sink]]\ntype = \"syslog\"\nfacility = \"local9\"\n"
        ));
        assert!(bad(
            "[[audit.sink]]\ntype = \"file\"\nretention = \"a while\"\n"
        ));
        assert!(bad("[[audit.sink]]\ntype = \"file\"\npaht = \"x\"\n"));
        assert!(bad("[[audit.sink]]\ntype = \"kafka\"\n"));
        let c = parse("[audit]\nsink = []\n");
        assert_eq!(c.validate().unwrap_err().0, "audit.sink");
    }
}
