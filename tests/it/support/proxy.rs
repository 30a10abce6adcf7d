//! Starts the real `sluis` binary with a config written for the test, on ephemeral loopback
//! ports, and reads its JSON logs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct TestProxyBuilder {
    sections: BTreeMap<String, Vec<(String, String)>>,
    workdir: Option<tempfile::TempDir>,
}

pub struct TestProxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
    pub workdir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl TestProxy {
    pub fn builder() -> TestProxyBuilder {
        let mut b = TestProxyBuilder {
            sections: BTreeMap::new(),
            workdir: None,
        };
        b.set("proxy", "listen", "\"127.0.0.1:0\"")
            .set("admin", "listen", "\"127.0.0.1:0\"")
            .set(
                "upstream",
                "allow_private",
                "[\"127.0.0.0/8\", \"::1/128\"]",
            )
            .set("log", "format", "\"json\"")
            .set("log", "level", "\"info,sluis=debug\"")
            .policy_dir(&repo_path("tests/fixtures/policy/pass-through"));
        b
    }

    /// The default test proxy.
    pub async fn start() -> Self {
        Self::builder().spawn().await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// One scrape of the admin endpoint's `/metrics`.
    pub async fn metrics(&self) -> String {
        crate::support::client::direct()
            .get(format!("{}/metrics", self.admin_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Log lines so far, parsed.
    pub fn logs(&self) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Raw stderr lines so far.
    pub fn raw_logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until a log line satisfies `pred`.
    pub async fn wait_for_log(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = self.logs().into_iter().find(|v| pred(v)) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "no log line for {what}; logs:\n{}",
                    self.raw_logs().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Peak resident memory of the proxy process so far (VmHWM).
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit (at most `within`).
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                panic!("proxy did not exit within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestProxyBuilder {
    /// Sets `key = value` (value in TOML syntax) in `[section]`; replaces an earlier value.
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> &mut Self {
        let entries = self.sections.entry(section.to_owned()).or_default();
        entries.retain(|(k, _)| k != key);
        entries.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Points `host` (or `host:port`) at `addr`, like curl's --resolve.
    pub fn resolve(&mut self, host: &str, addr: SocketAddr) -> &mut Self {
        self.set("resolve", &format!("\"{host}\""), &format!("\"{addr}\""))
    }

    /// Runs with the policy in `dir`.
    pub fn policy_dir(&mut self, dir: &Path) -> &mut Self {
        self.set("policy", "dir", &toml_string(&dir.display().to_string()))
    }

    /// Runs with the shipped KSP policy (`policies/`).
    pub fn shipped_policy(&mut self) -> &mut Self {
        self.policy_dir(&repo_path("policies"))
    }

    /// A working directory prepared by the test (certs/, policies/ ...).
    pub fn workdir(&mut self, dir: tempfile::TempDir) -> &mut Self {
        self.workdir = Some(dir);
        self
    }

    pub fn config_text(&self) -> String {
        let mut out = String::new();
        for (section, entries) in &self.sections {
            out.push_str(&format!("[{section}]\n"));
            for (k, v) in entries {
                out.push_str(&format!("{k} = {v}\n"));
            }
            out.push('\n');
        }
        out
    }

    pub async fn spawn(&mut self) -> TestProxy {
        let workdir = self
            .workdir
            .take()
            .unwrap_or_else(|| tempfile::tempdir().unwrap());
        let config_path = workdir.path().join("sluis.toml");
        std::fs::write(&config_path, self.config_text()).unwrap();
        spawn_binary(workdir, config_path).await
    }
}

async fn spawn_binary(workdir: tempfile::TempDir, config_path: PathBuf) -> TestProxy {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluis"))
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .current_dir(workdir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    let mut proxy = TestProxy {
        addr: "0.0.0.0:0".parse().unwrap(),
        admin: "0.0.0.0:0".parse().unwrap(),
        child: Some(child),
        logs,
        workdir,
        config_path,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listening: Vec<(String, SocketAddr)> = proxy
            .logs()
            .iter()
            .filter(|v| v["message"] == "listening")
            .filter_map(|v| {
                Some((
                    v["listener"].as_str()?.to_owned(),
                    v["addr"].as_str()?.parse().ok()?,
                ))
            })
            .collect();
        let find = |name: &str| listening.iter().find(|(l, _)| l == name).map(|(_, a)| *a);
        if let (Some(p), Some(a)) = (find("proxy"), find("admin")) {
            proxy.addr = p;
            proxy.admin = a;
            return proxy;
        }
        if let Some(status) = proxy.child.as_mut().unwrap().try_wait().unwrap() {
            panic!(
                "proxy exited with {status}:\n{}",
                proxy.raw_logs().join("\n")
            );
        }
        if Instant::now() > deadline {
            panic!("proxy did not start:\n{}", proxy.raw_logs().join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `s` as a TOML basic string.
pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Runs `sluis` with arguments to completion (for CLI tests).
pub fn run_cli(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluis"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}
