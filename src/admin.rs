//! The admin listener: liveness, readiness, metrics, the PAC file and the active policy.
//! Bound to loopback by default: it is for the operator and the monitoring system, not for
//! clients (except `/proxy.pac`, which clients fetch when the admin makes it reachable).
//!
//! | path         | what                                             | token |
//! |--------------|--------------------------------------------------|-------|
//! | `/healthz`   | the process answers                              | never |
//! | `/readyz`    | policy loaded, CA ready, audit writable (JSON)   | yes   |
//! | `/metrics`   | Prometheus text format                           | yes   |
//! | `/proxy.pac` | proxy auto-config generated from the policy      | `admin.pac_public = false` |
//! | `/policy`    | active policy version and summary (JSON)         | yes   |
//!
//! The policy arrives through [`AdminSource`], so this module does not depend on its types.

mod pac;
mod ready;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::proxy::ProxyBody;

pub use ready::Readiness;

/// What the admin endpoints need to know about the active policy.
pub trait AdminSource: Send + Sync {
    /// The active policy, or `None` while none is loaded.
    fn policy(&self) -> Option<PolicyView>;
}

/// The admin's view of a loaded policy.
#[derive(Debug, Clone, Default)]
pub struct PolicyView {
    pub version: String,
    /// Shown as it is at `/policy` (counts of rules, categories, ...).
    pub summary: serde_json::Value,
    /// Domains the policy calls internal (sent DIRECT by the PAC file).
    pub internal_domains: Vec<String>,
    /// Networks the policy calls internal (IPv4 ones are sent DIRECT by the PAC file).
    pub internal_networks: Vec<IpNet>,
}

/// No policy: what the admin serves before one is wired in.
pub struct NoPolicy;

impl AdminSource for NoPolicy {
    fn policy(&self) -> Option<PolicyView> {
        None
    }
}

/// Settings from `[admin]`, resolved.
#[derive(Debug, Clone, Default)]
pub struct AdminOptions {
    /// Bearer token required on every endpoint but `/healthz` (and `/proxy.pac` when public).
    pub token: Option<Vec<u8>>,
    /// `host:port` the PAC file names.
    pub pac_proxy: String,
    /// Extra domains the PAC file sends DIRECT.
    pub pac_direct: Vec<String>,
    /// Serve `/proxy.pac` without the token (browsers cannot send one).
    pub pac_public: bool,
}

/// What the admin endpoints read.
pub struct Admin {
    options: AdminOptions,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    source: Arc<dyn AdminSource>,
    /// The PAC text for the policy version it was made from.
    pac_cache: Mutex<Option<(Option<String>, Arc<str>)>>,
}

// === impl Admin ===

impl Admin {
    pub fn new(
        options: AdminOptions,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        source: Arc<dyn AdminSource>,
    ) -> Arc<Self> {
        Arc::new(Self {
            options,
            metrics,
            readiness,
            source,
            pac_cache: Mutex::new(None),
        })
    }

    /// Answers one admin request; usable without a socket.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ProxyBody> {
        let path = req.uri().path();
        let public = path == "/healthz" || (path == "/proxy.pac" && self.options.pac_public);
        if !public && !self.authorized(&req) {
            let mut res = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sluis-admin\""),
            );
            return res;
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let known = matches!(
                path,
                "/healthz" | "/readyz" | "/metrics" | "/proxy.pac" | "/policy"
            );
            if known {
                let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "use GET or HEAD\n");
                res.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return res;
            }
        }
        let mut res = match path {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => self.readyz(),
            "/metrics" => self.metrics(),
            "/proxy.pac" => self.pac(),
            "/policy" => self.policy(),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        };
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if req.method() == Method::HEAD {
            let (parts, _) = res.into_parts();
            res = Response::from_parts(parts, crate::proxy::full_body(""));
        }
        res
    }

    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let Some(token) = &self.options.token else {
            return true;
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        given.is_some_and(|g| constant_time_eq(g.as_bytes(), token))
    }

    fn readyz(&self) -> Response<ProxyBody> {
        let checks = self.readiness.checks();
        let ready = checks.iter().all(|(_, ok)| *ok);
        let body = serde_json::json!({
            "ready": ready,
            "checks": checks.iter().map(|(n, ok)| (n.to_string(), serde_json::Value::Bool(*ok))).collect::<serde_json::Map<_, _>>(),
        });
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json(status, &body)
    }

    fn metrics(&self) -> Response<ProxyBody> {
        let mut res = Response::new(crate::proxy::full_body(self.metrics.encode()));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        res
    }

    fn pac(&self) -> Response<ProxyBody> {
        let policy = self.source.policy();
        let version = policy.as_ref().map(|p| p.version.clone());
        let cached = self.pac_cache.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(v, _)| *v == version)
                .map(|(_, text)| text.clone())
        });
        let text = cached.unwrap_or_else(|| {
            let (mut domains, networks) = match &policy {
                Some(p) => (p.internal_domains.clone(), p.internal_networks.clone()),
                None => (Vec::new(), Vec::new()),
            };
            domains.extend(self.options.pac_direct.iter().cloned());
            let text: Arc<str> = pac::render(
                &self.options.pac_proxy,
                version.as_deref(),
                &domains,
                &networks,
            )
            .into();
            if let Ok(mut c) = self.pac_cache.lock() {
                *c = Some((version, text.clone()));
            }
            text
        });
        let mut res = Response::new(crate::proxy::full_body(text.to_string()));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ns-proxy-autoconfig"),
        );
        res
    }

    fn policy(&self) -> Response<ProxyBody> {
        match self.source.policy() {
            Some(p) => json(
                StatusCode::OK,
                &serde_json::json!({"version": p.version, "summary": p.summary}),
            ),
            None => json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"error": "no policy loaded"}),
            ),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut res = Response::new(crate::proxy::full_body(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<ProxyBody> {
    let mut body = value.to_string();
    body.push('\n');
    let mut res = Response::new(crate::proxy::full_body(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Serves the admin endpoints until `shutdown`.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, shutdown: CancellationToken) {
    let tasks = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let admin = admin.clone();
        tasks.spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.handle(req).await) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = served.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}

#[cfg(test)]
#[path = "admin/tests.rs"]
mod tests;
