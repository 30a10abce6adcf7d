//! The only place that builds responses the proxy itself sends: errors now, block pages once
//! the policy exists. Everything else passes upstream responses through.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::proxy::body::{self, ProxyBody};
use crate::proxy::error::ProxyError;

/// A short, clear plain-text answer for a failure.
pub(crate) fn error(err: &ProxyError) -> Response<ProxyBody> {
    let text = format!(
        "sluis: {} {}\n{err}\n",
        err.status().as_u16(),
        reason(err.status())
    );
    let mut res = Response::new(body::full(text));
    *res.status_mut() = err.status();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("sluis-error", HeaderValue::from_static(err.kind()));
    res
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("")
}
