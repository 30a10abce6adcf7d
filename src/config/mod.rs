//! The proxy's configuration: one TOML file, every key optional, every default documented in
//! the README. Values are validated while they are parsed, so an error names the file, the line
//! and the key.

pub(crate) mod de;
mod error;
mod resolve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

pub use error::{ConfigError, line_of, parse_toml};
pub use resolve::{ResolveOverrides, ResolveTarget};

/// Exit status of `sluis run` when the configuration or policy is invalid (sysexits EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

/// More serving threads than this is a typo, not a machine.
const MAX_WORKERS: usize = 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub proxy: ProxyConfig,
    pub admin: AdminConfig,
    pub upstream: UpstreamConfig,
    /// Static name resolution, like curl's `--resolve`: `"host" = "addr"` or
    /// `"host:port" = "addr:port"`.
    pub resolve: ResolveOverrides,
    pub tls: TlsConfig,
    pub policy: PolicyConfig,
    pub inspect: InspectConfig,
    pub log: LogConfig,
    pub audit: crate::audit::AuditConfig,
    /// Where the config was read from (`None` = built-in default). Relative paths in the config
    /// are resolved against the working directory, like every path an admin types.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    #[serde(deserialize_with = "de::one_or_many")]
    pub listen: Vec<SocketAddr>,
    /// Client allow-list. Everyone else gets 403.
    #[serde(deserialize_with = "de::one_or_many")]
    pub clients: Vec<IpNet>,
    /// Pseudonym in the `Via` header; empty = no `Via`.
    pub via: String,
    /// Send `X-Forwarded-For` upstream. Off: it tells every website an employee's address.
    pub forwarded_for: bool,
    pub max_connections: usize,
    /// Threads serving client connections, each with its own upstream pool; 0 = one per core.
    pub workers: usize,
    /// Bind each serving thread to a CPU of its own, when there is one per CPU the process may
    /// run on.
    pub pin_workers: bool,
    #[serde(deserialize_with = "de::size_usize")]
    pub max_header_bytes: usize,
    #[serde(deserialize_with = "de::duration")]
    pub header_read_timeout: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub idle_timeout: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub tunnel_idle_timeout: Duration,
    #[serde(deserialize_with = "de::duration")]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(deserialize_with = "de::one_or_many")]
    pub listen: Vec<SocketAddr>,
    /// A file holding the bearer token that every admin endpoint but `/healthz` requires
    /// (mode 0600). `None`: no token (keep the listener on loopback then).
    pub token_file: Option<PathBuf>,
    /// `host:port` that `/proxy.pac` tells clients to use; empty = the first proxy listener.
    pub pac_proxy: String,
    /// Domains the PAC file sends DIRECT besides the policy's internal domains.
    pub pac_direct: Vec<String>,
    /// Serve `/proxy.pac` without the token: browsers and OS proxy settings cannot send one.
    pub pac_public: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    #[serde(deserialize_with = "de::duration")]
    pub connect_timeout: Duration,
    /// Private, loopback and link-local ranges the proxy may connect to (SSRF guard exceptions).
    #[serde(deserialize_with = "de::one_or_many")]
    pub allow_private: Vec<IpNet>,
    #[serde(deserialize_with = "de::duration")]
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_host: usize,
    /// Extra CA certificates (PEM) trusted for upstream TLS, besides the system roots.
    pub extra_ca: Option<PathBuf>,
    /// Trust the operating system's root store (falls back to the bundled Mozilla roots).
    pub system_roots: bool,
    /// Lab only: host names whose upstream certificate is not verified. Logged on every use.
    pub danger_accept_invalid_certs_for: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Directory of the interception CA (`ca.pem`, `ca.key`), created on first start.
    pub ca_dir: PathBuf,
    /// An existing (corporate) CA certificate instead of `ca_dir`; needs `ca_key`.
    pub ca_cert: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
    pub leaf_cache_size: usize,
    #[serde(deserialize_with = "de::duration")]
    pub leaf_validity: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    pub dir: PathBuf,
    /// Reload when a policy file changes (SIGHUP always reloads).
    pub watch: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InspectConfig {
    /// Held body bytes one request may keep in memory before spilling to an encrypted temp file.
    #[serde(deserialize_with = "de::size")]
    pub request_memory: u64,
    /// Held body bytes all requests together may keep in memory.
    #[serde(deserialize_with = "de::size")]
    pub total_memory: u64,
    /// Where spilled bodies go (encrypted with a per-request key that never leaves memory).
    pub spool_dir: Option<PathBuf>,
    /// Bytes of idle spill files kept for the next large bodies, whose pages the page cache
    /// still holds; 0 keeps none.
    #[serde(deserialize_with = "de::size")]
    pub spool_keep: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. "info" or "sluis=debug,hyper=warn". `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

// === impl Config ===

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, &e))?;
        Self::parse(Some(path), &text)
    }

    /// Parses config text; `file` only names the source in errors.
    pub fn parse(file: Option<&Path>, text: &str) -> Result<Self, ConfigError> {
        let mut config: Config = parse_toml(file, text)?;
        config.source = file.map(Path::to_owned);
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks that a single value's parser cannot make.
    fn validate(&self) -> Result<(), ConfigError> {
        let file = self.source.as_deref();
        let err = |key: &str, msg: &str| Err(ConfigError::at_key(file, key, msg));
        if self.proxy.listen.is_empty() {
            return err("proxy.listen", "at least one address is needed");
        }
        if self.proxy.max_header_bytes < 8192 {
            return err("proxy.max_header_bytes", "must be at least 8KiB");
        }
        if self.proxy.max_connections == 0 {
            return err("proxy.max_connections", "must be at least 1");
        }
        if self.proxy.workers > MAX_WORKERS {
            return err(
                "proxy.workers",
                &format!("at most {MAX_WORKERS} (0 = one per core)"),
            );
        }
        if self.tls.ca_cert.is_some() != self.tls.ca_key.is_some() {
            return err("tls.ca_cert", "ca_cert and ca_key must be given together");
        }
        if self.tls.leaf_cache_size == 0 {
            return err("tls.leaf_cache_size", "must be at least 1");
        }
        if let Err((key, msg)) = self.audit.validate() {
            return err(key, &msg);
        }
        if !self.admin.pac_proxy.is_empty() && !valid_host_port(&self.admin.pac_proxy) {
            return err("admin.pac_proxy", "expected host:port");
        }
        if let Some(bad) = self.admin.pac_direct.iter().find(|d| !valid_domain(d)) {
            return err("admin.pac_direct", &format!("{bad:?} is not a domain name"));
        }
        if self.inspect.request_memory > self.inspect.total_memory {
            return err(
                "inspect.request_memory",
                "must not exceed inspect.total_memory",
            );
        }
        Ok(())
    }
}

// === impl ProxyConfig ===

impl ProxyConfig {
    /// `workers` resolved: one per core the process may use when 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }
}

// === defaults ===

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 3128))],
            clients: vec![loopback_v4(), loopback_v6()],
            via: "sluis".to_owned(),
            forwarded_for: false,
            max_connections: 16_384,
            workers: 0,
            pin_workers: true,
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tunnel_idle_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 9090))],
            token_file: None,
            pac_proxy: String::new(),
            pac_direct: Vec::new(),
            pac_public: true,
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            allow_private: Vec::new(),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 64,
            extra_ca: None,
            system_roots: true,
            danger_accept_invalid_certs_for: Vec::new(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            ca_dir: PathBuf::from("certs"),
            ca_cert: None,
            ca_key: None,
            leaf_cache_size: 10_000,
            leaf_validity: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("policies"),
            watch: true,
        }
    }
}

impl Default for InspectConfig {
    fn default() -> Self {
        Self {
            request_memory: 4 << 20,
            total_memory: 256 << 20,
            spool_dir: None,
            spool_keep: 1 << 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".to_owned(),
        }
    }
}

/// `host:port` with a non-empty host of plain characters (it is written into JavaScript).
fn valid_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// A domain name (letters, digits, dots, hyphens; a leading `.` or `*.` allowed).
fn valid_domain(text: &str) -> bool {
    let name = text.trim_start_matches("*.").trim_start_matches('.');
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn loopback_v4() -> IpNet {
    IpNet::from(ipnet::Ipv4Net::new_assert(std::net::Ipv4Addr::LOCALHOST, 8))
}

fn loopback_v6() -> IpNet {
    IpNet::from(ipnet::Ipv6Net::new_assert(
        std::net::Ipv6Addr::LOCALHOST,
        128,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::parse(None, "").unwrap();
        assert_eq!(c.proxy.listen, vec!["127.0.0.1:3128".parse().unwrap()]);
        assert_eq!(c.admin.listen, vec!["127.0.0.1:9090".parse().unwrap()]);
        assert!(
            c.proxy
                .clients
                .iter()
                .any(|n| n.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()))
        );
        assert!(!c.proxy.forwarded_for);
        assert_eq!(c.policy.dir, PathBuf::from("policies"));
        assert_eq!(c.tls.ca_dir, PathBuf::from("certs"));
    }

    #[test]
    fn values_parse() {
        let c = Config::parse(
            None,
            r#"
            [proxy]
            listen = "0.0.0.0:8080"
            clients = ["10.0.0.0/8", "192.168.1.0/24"]
            header_read_timeout = "2s"
            max_header_bytes = "32KiB"
            [resolve]
            "www.dropbox.com:443" = "127.0.0.1:9443"
            "#,
        )
        .unwrap();
        assert_eq!(c.proxy.listen, vec!["0.0.0.0:8080".parse().unwrap()]);
        assert_eq!(c.proxy.clients.len(), 2);
        assert_eq!(c.proxy.header_read_timeout, Duration::from_secs(2));
        assert_eq!(c.proxy.max_header_bytes, 32 << 10);
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let text = "[proxy]\nclients = [\"10.0.0.0/8\", \"not-a-net\"]\n";
        let err = Config::parse(Some(Path::new("sluis.toml")), text).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert_eq!(err.key.as_deref(), Some("proxy.clients"));

        let err = Config::parse(None, "[proxy]\nidle_timeout = \"soon\"\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("invalid duration"), "{err}");

        let err = Config::parse(None, "[upstream]\nconect_timeout = \"1s\"\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("conect_timeout"), "{err}");
    }

    #[test]
    fn admin_and_audit_keys_are_checked() {
        let c = Config::parse(
            None,
            "[admin]\npac_proxy = \"proxy.corp.example:3128\"\npac_direct = [\"*.corp.example\"]\n",
        )
        .unwrap();
        assert_eq!(c.admin.pac_proxy, "proxy.corp.example:3128");
        assert!(c.admin.pac_public && c.admin.token_file.is_none());
        assert!(c.audit.fail_closed);
        for (text, key) in [
            ("[admin]\npac_proxy = \"no-port\"\n", "admin.pac_proxy"),
            (
                "[admin]\npac_proxy = \"x\\\";alert(1)//:80\"\n",
                "admin.pac_proxy",
            ),
            ("[admin]\npac_direct = [\"a b\"]\n", "admin.pac_direct"),
            ("[audit]\nqueue = 0\n", "audit.queue"),
        ] {
            let err = Config::parse(None, text).unwrap_err();
            assert_eq!(err.key.as_deref(), Some(key), "{text}: {err}");
        }
    }

    #[test]
    fn cross_field_checks_name_the_key() {
        let err = Config::parse(None, "[proxy]\nmax_header_bytes = 100\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("proxy.max_header_bytes"));
        let err = Config::parse(None, "[tls]\nca_cert = \"x.pem\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("tls.ca_cert"));
        let err = Config::parse(None, "[proxy]\nworkers = 5000\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("proxy.workers"));
    }

    #[test]
    fn workers_default_to_one_per_core() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let c = Config::parse(None, "").unwrap();
        assert_eq!(c.proxy.worker_count(), cores);
        assert!(c.proxy.pin_workers);
        let c = Config::parse(None, "[proxy]\nworkers = 3\npin_workers = false\n").unwrap();
        assert_eq!(c.proxy.worker_count(), 3);
        assert!(!c.proxy.pin_workers);
    }
}
