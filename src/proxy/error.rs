//! Why the proxy answered instead of the upstream, by who failed. `respond` turns each into
//! exactly one response; nothing else builds error responses.

use http::StatusCode;

use crate::net::DialError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The client sent an origin-form request to the proxy port.
    #[error(
        "this is a forward proxy: send absolute-form requests (configure it as your HTTP proxy)"
    )]
    NotAProxyRequest,
    /// The client named a target that cannot be reached as written.
    #[error("invalid request target: {0}")]
    BadTarget(String),
    /// The client address is not on the allow-list.
    #[error("client {0} is not allowed to use this proxy")]
    ClientDenied(std::net::IpAddr),
    /// Too many connections.
    #[error("the proxy is at its connection limit; try again shortly")]
    Overloaded,
    /// The policy refuses this CONNECT outright (and it cannot be intercepted to show a page).
    #[error("this destination is blocked by the company policy (rule {})", .0.as_deref().unwrap_or("default"))]
    Blocked(Option<String>),
    /// The client broke off or garbled the request body.
    #[error("the request body could not be read: {0}")]
    ClientBody(String),
    /// The audit log cannot record decisions, so inspected uploads to external hosts wait.
    #[error(
        "uploads to external destinations are paused: the audit log cannot record them right now; try again shortly"
    )]
    AuditUnavailable,
    /// The body could not be held for inspection (spool I/O failed) and policy allows on error;
    /// the body is gone, so it cannot be forwarded either.
    #[error("the request body could not be held for inspection; try again")]
    HoldFailed,
    /// Reaching or talking to the upstream failed, or the SSRF guard refused it.
    #[error("{message}")]
    Upstream {
        kind: &'static str,
        status: StatusCode,
        message: String,
    },
}

impl ProxyError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::NotAProxyRequest | ProxyError::BadTarget(_) | ProxyError::ClientBody(_) => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::ClientDenied(_) | ProxyError::Blocked(_) => StatusCode::FORBIDDEN,
            ProxyError::Overloaded | ProxyError::AuditUnavailable | ProxyError::HoldFailed => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Upstream { status, .. } => *status,
        }
    }

    /// A fixed name for metrics, logs and the `sluis-error` response header.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ProxyError::NotAProxyRequest => "not_a_proxy_request",
            ProxyError::BadTarget(_) => "bad_target",
            ProxyError::ClientDenied(_) => "client_denied",
            ProxyError::Overloaded => "overloaded",
            ProxyError::Blocked(_) => "blocked",
            ProxyError::ClientBody(_) => "client_body",
            ProxyError::AuditUnavailable => "audit_unavailable",
            ProxyError::HoldFailed => "hold_failed",
            ProxyError::Upstream { kind, .. } => kind,
        }
    }

    pub(crate) fn dial(err: &DialError) -> Self {
        let status = match err {
            DialError::Forbidden { .. } => StatusCode::FORBIDDEN,
            DialError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            DialError::BadTarget(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        };
        // A certificate the proxy will not trust: say why, in words an admin can act on.
        // rustls's error sits inside the io::Error (`get_ref`), not in its source chain.
        if let DialError::Tls { host, source } = err
            && let Some(why) = source
                .get_ref()
                .and_then(|inner| crate::tls::find_rustls_error(inner))
                .and_then(crate::tls::describe_verify_error)
        {
            return ProxyError::Upstream {
                kind: "tls_verify",
                status,
                message: format!(
                    "the certificate of {host} could not be verified: {why}. The connection was not made."
                ),
            };
        }
        ProxyError::Upstream {
            kind: err.kind(),
            status,
            message: err.to_string(),
        }
    }

    /// Maps a pooled-client failure to who failed.
    pub(crate) fn from_client(err: &hyper_util::client::legacy::Error) -> Self {
        if let Some(dial) = DialError::find(err) {
            return Self::dial(dial);
        }
        ProxyError::Upstream {
            kind: "upstream",
            status: StatusCode::BAD_GATEWAY,
            message: format!(
                "the upstream server closed or broke the connection: {}",
                root_cause(err)
            ),
        }
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
