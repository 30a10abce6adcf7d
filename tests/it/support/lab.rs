//! A lab: an HTTPS origin with a certificate from a test-only CA (which the proxy trusts as its
//! extra upstream bundle and clients never see) reached under real host names through the
//! proxy's `[resolve]`, plus a plain HTTP origin, and a proxy with a given policy.

use std::path::{Path, PathBuf};

use super::proxy::{TestProxyBuilder, repo_path, toml_string};
use super::{Origin, TestCa, TestProxy};

pub struct Lab {
    /// The HTTPS origin, for every name given.
    pub origin: Origin,
    /// A plain HTTP origin, for the same names.
    pub http: Origin,
    pub proxy: TestProxy,
    /// The proxy's interception CA: what clients trust.
    pub sluis_ca: PathBuf,
    /// The HTTPS origin's CA: trusted by the proxy only.
    pub origin_ca: PathBuf,
}

/// A change to the proxy's config before it starts.
type Tweak = Box<dyn FnOnce(&mut TestProxyBuilder)>;

pub struct LabBuilder {
    names: Vec<String>,
    alpn: Vec<Vec<u8>>,
    policy: PathBuf,
    tweaks: Vec<Tweak>,
}

impl Lab {
    pub fn builder(names: &[&str]) -> LabBuilder {
        LabBuilder {
            names: names.iter().map(|s| s.to_string()).collect(),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            policy: repo_path("policies"),
            tweaks: Vec::new(),
        }
    }

    pub fn sluis_ca_str(&self) -> &str {
        self.sluis_ca.to_str().unwrap()
    }

    /// The first audit event that meets `pred`, waiting up to 10 s for it to be written.
    pub async fn wait_for_event(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut found = None;
        super::eventually(what, std::time::Duration::from_secs(10), || {
            found = self.audit_events().into_iter().find(&pred);
            found.is_some()
        })
        .await;
        found.unwrap()
    }

    /// The audit log of the running proxy.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        let path = self.proxy.workdir.path().join("audit/audit.log");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A copy of the shipped policy with every rule in monitor mode.
pub fn monitor_policy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_path("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace("mode = \"enforce\"", "mode = \"monitor\"");
            std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    dir
}

impl LabBuilder {
    pub fn alpn(mut self, alpn: &[&[u8]]) -> Self {
        self.alpn = alpn.iter().map(|p| p.to_vec()).collect();
        self
    }

    pub fn policy(mut self, dir: &Path) -> Self {
        self.policy = dir.to_owned();
        self
    }

    pub fn tweak(mut self, f: impl FnOnce(&mut TestProxyBuilder) + 'static) -> Self {
        self.tweaks.push(Box::new(f));
        self
    }

    pub async fn start(self) -> Lab {
        let ca = TestCa::new("Origin Test CA");
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let alpn: Vec<&[u8]> = self.alpn.iter().map(Vec::as_slice).collect();
        let origin = Origin::https(&ca.server_cert(&names), &alpn).await;
        let http = Origin::http().await;
        let dir = tempfile::tempdir().unwrap();
        let origin_ca = ca.write_pem(dir.path(), "origin-ca.pem");
        let mut b = TestProxy::builder();
        b.policy_dir(&self.policy).set(
            "upstream",
            "extra_ca",
            &toml_string(origin_ca.to_str().unwrap()),
        );
        for name in &names {
            b.resolve(&format!("{name}:443"), origin.addr);
            b.resolve(&format!("{name}:80"), http.addr);
        }
        for tweak in self.tweaks {
            tweak(&mut b);
        }
        let proxy = b.workdir(dir).spawn().await;
        let sluis_ca = proxy.workdir.path().join("certs/ca.pem");
        Lab {
            origin,
            http,
            proxy,
            sluis_ca,
            origin_ca,
        }
    }
}
