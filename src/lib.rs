//! sluis: an outbound data-loss-prevention forward proxy.
//!
//! The path of one request, and the module that owns each step:
//!
//! 1. `proxy::listener` accepts a client (allow-list, connection limit) and serves HTTP/1.1 on it.
//! 2. `proxy::service` dispatches: `CONNECT` to `proxy::connect`, absolute-form requests to the
//!    exchange.
//! 3. `proxy::connect` asks the policy: block, tunnel untouched, or intercept; `proxy::intercept`
//!    terminates TLS with a leaf from `tls` and serves the inner HTTP/1.1 or HTTP/2 requests with
//!    the same service.
//! 4. The exchange asks `policy` about the request head, feeds the body to `inspect` while
//!    holding it when the policy needs content, then forwards (`proxy::forward`) or answers with
//!    a block page (`proxy::respond`).
//! 5. Every decision ends in one `audit` event and the `metrics` increments.
//!
//! `inspect` is I/O-free and imports nothing else from this crate; `policy` builds on its report
//! types; `app` composes everything and is the only module that sees all others.

pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod inspect;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod proxy;
pub mod scan;
pub mod spool;
pub mod tls;
