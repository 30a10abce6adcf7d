//! Tests of the TLS building blocks, each against real parts: openssl-made CAs, rustls
//! handshakes over in-memory pipes, x509-parser for what a certificate really says.

mod ca;
mod handshake;
mod leaf;
mod support;
mod upstream;
