//! The real `sluis` binary, started with a config written for this run: ephemeral loopback
//! ports, the bench host names resolved to the origin, the origin CA trusted upstream, the
//! bench's interception CA to sign with, the shipped policy. Extra TOML (keys the bench does
//! not know about, such as interception rules) is merged over it from a file.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use toml::{Table, Value};

use crate::Error;

/// What the config is made from.
pub(crate) struct SluisSetup<'a> {
    pub(crate) bin: &'a Path,
    pub(crate) run_dir: &'a Path,
    pub(crate) origin_ca: &'a Path,
    pub(crate) proxy_ca_cert: &'a Path,
    pub(crate) proxy_ca_key: &'a Path,
    /// The host sluis should intercept and the one it should tunnel; both resolve to
    /// 127.0.0.1 (the origin's ports are kept).
    pub(crate) inspect_host: &'a str,
    pub(crate) tunnel_host: &'a str,
    pub(crate) policy_dir: &'a Path,
    /// A TOML file merged over the generated config (its values win), with `@INSPECT_HOST@`
    /// and `@TUNNEL_HOST@` replaced.
    pub(crate) extra: Option<&'a Path>,
}

/// A running proxy.
pub(crate) struct Sluis {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    pub(crate) log: PathBuf,
    pub(crate) config: PathBuf,
}

// === impl Sluis ===

impl Sluis {
    /// Writes the config, starts the binary and waits until it listens.
    pub(crate) fn start(setup: &SluisSetup<'_>) -> Result<Self, Error> {
        let config = setup.run_dir.join("sluis.toml");
        std::fs::write(&config, config_text(setup)?)?;
        let log = setup.run_dir.join("sluis.log");
        let stderr = std::fs::File::create(&log)?;
        let child = Command::new(setup.bin)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .current_dir(setup.run_dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", setup.bin.display()))?;
        let pid = child.id();
        let mut sluis = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            log,
            config,
        };
        sluis.addr = sluis.wait_listening(Duration::from_secs(30))?;
        Ok(sluis)
    }

    /// The proxy listener's address, from the "listening" line of its JSON log.
    fn wait_listening(&mut self, within: Duration) -> Result<SocketAddr, Error> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(addr) = listening_addr(&self.log) {
                return Ok(addr);
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "sluis exited with {status} before listening; see {}",
                    self.log.display()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "sluis did not listen within {within:?}; see {}",
                    self.log.display()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL if it has not stopped within `grace`.
    pub(crate) fn stop(&mut self, grace: Duration) {
        use rustix::process::{Pid, Signal, kill_process};
        if let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sluis {
    fn drop(&mut self) {
        if self.alive() {
            self.stop(Duration::from_secs(5));
        }
    }
}

fn listening_addr(log: &Path) -> Option<SocketAddr> {
    let file = std::fs::File::open(log).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            if v.get("listener")?.as_str()? != "proxy" {
                return None;
            }
            v.get("addr")?.as_str()?.parse().ok()
        })
}

/// The generated config, with `extra` merged over it.
pub(crate) fn config_text(setup: &SluisSetup<'_>) -> Result<String, Error> {
    let path = |p: &Path| Value::String(p.display().to_string());
    let s = |v: &str| Value::String(v.to_owned());
    let mut config = Table::new();
    section(&mut config, "proxy", [("listen", s("127.0.0.1:0"))]);
    section(&mut config, "admin", [("listen", s("127.0.0.1:0"))]);
    section(
        &mut config,
        "upstream",
        [
            ("allow_private", Value::Array(vec![s("127.0.0.0/8")])),
            ("extra_ca", path(setup.origin_ca)),
        ],
    );
    let hosts = [setup.inspect_host, setup.tunnel_host];
    let resolve = hosts.iter().map(|h| ((*h).to_owned(), s("127.0.0.1")));
    config.insert("resolve".into(), Value::Table(resolve.collect()));
    section(
        &mut config,
        "tls",
        [
            ("ca_cert", path(setup.proxy_ca_cert)),
            ("ca_key", path(setup.proxy_ca_key)),
        ],
    );
    let policy = bench_policy(setup)?;
    section(&mut config, "policy", [("dir", path(&policy))]);
    let spool = setup.run_dir.join("spool");
    std::fs::create_dir_all(&spool)?;
    section(&mut config, "inspect", [("spool_dir", path(&spool))]);
    section(
        &mut config,
        "log",
        [("format", s("json")), ("level", s("info"))],
    );
    if let Some(extra) = setup.extra {
        let text =
            std::fs::read_to_string(extra).map_err(|e| format!("{}: {e}", extra.display()))?;
        let extra_table: Table = text
            .parse()
            .map_err(|e| format!("{}: {e}", extra.display()))?;
        merge(&mut config, extra_table);
    }
    Ok(toml::to_string(&config)?)
}

/// The shipped policy as it is, with one addition: the tunnel host on the TLS bypass list, so
/// W3 gets a real tunnel while every other host (the upload host included) is intercepted and
/// inspected per the default rules.
fn bench_policy(setup: &SluisSetup<'_>) -> Result<PathBuf, Error> {
    let dir = setup.run_dir.join("policies");
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(setup.policy_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml")
            && let Some(name) = path.file_name()
        {
            let mut text = std::fs::read_to_string(&path)?;
            if name == "tls.toml" {
                let line = format!("bypass = [\n  \"{}\",", setup.tunnel_host);
                text = text.replacen("bypass = [", &line, 1);
            }
            std::fs::write(dir.join(name), text)?;
        }
    }
    Ok(dir)
}

fn section<const N: usize>(config: &mut Table, name: &str, entries: [(&str, Value); N]) {
    let table = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    config.insert(name.to_owned(), Value::Table(table));
}

/// Tables merge key by key; any other value of `over` replaces the one in `base`.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
