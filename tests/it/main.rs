//! End-to-end tests: the real proxy binary, a real origin, real clients, all on loopback.

#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

mod support;

/// The admin listener: metrics (checked by promtool), health, readiness, token, PAC file
/// (evaluated by pactester).
mod admin;
/// The audit trail of the running proxy: one event per exchange, tunnel and refused client;
/// chain verification; syslog.
mod audit;
/// A real browser behind the proxy: block pages as employees see them.
mod browser;
/// Forwarding on the plain proxy path: methods, bodies, headers, keep-alive.
mod forward;
/// Who may use the proxy and where it may connect: client allow-list, SSRF guard, resolve
/// overrides.
mod guard;
/// Inspected uploads end to end: encrypted files pass, clear ones and labels and BSNs are held
/// back, encodings, monitor mode, the audit trail of files, spilling large bodies.
mod inspect;
/// TLS interception: leaves, ALPN on both sides, bypass, upstream verification, the CA key.
mod intercept;
/// Start-up and shutdown: config errors, graceful shutdown.
mod lifecycle;
/// Limits and malformed input: bad requests, slow clients, connection limit.
mod limits;
/// Parking idle keep-alive connections: served again after, closed by the idle timeout and
/// shutdown, still counted.
mod park;
/// The shipped KSP policy end to end: blocks with pages, logged browsing, check and explain.
mod policy;
/// CONNECT tunnels and WebSocket upgrades.
mod tunnel;
/// WebSocket messages inspected like uploads: blocks close the socket, nothing leaves.
mod websocket;
