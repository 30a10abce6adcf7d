//! TLS: the interception CA, leaf certificates minted per host, the verified upstream client
//! configuration.
//!
//! The proxy terminates the client's TLS with a leaf certificate signed by our CA ([`Ca`],
//! [`LeafMinter`]) so that it can read the requests inside, and opens its own, fully verified TLS
//! connection to the upstream ([`UpstreamTls`]). The two sides negotiate independently: ALPN,
//! versions and resumption of one never leak into the other.
//!
//! Everything here uses the ring [`CryptoProvider`](rustls::crypto::CryptoProvider) explicitly;
//! nothing depends on a process-wide default provider.

use std::sync::Arc;

mod ca;
mod error;
mod leaf;
mod mint;
mod pem;
mod target;
mod trust;
mod upstream;
mod verify;

#[cfg(test)]
mod tests;

pub use self::{
    ca::{CA_CERT_FILE, CA_KEY_FILE, Ca, CaKeyAlgorithm, CaOptions, Created},
    error::{TlsError, is_client_cert_rejection},
    leaf::{LeafConfigs, LeafMinter, LeafOptions, LeafStats},
    target::ServerTarget,
    trust::{describe_new_ca, init_command, trust_instructions},
    upstream::{Alpn, RootsSource, UpstreamTls, UpstreamTlsOptions},
    verify::{SelfSignedCertificate, describe_verify_error, find_rustls_error},
};

/// The one crypto provider every config in this module is built with.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
