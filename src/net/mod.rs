//! Network plumbing below the proxy: where connections may go and how they are made.

pub mod dial;
pub mod guard;

pub use dial::{Alpn, Connector, DialError, Dialer, UpstreamStream, UpstreamTlsConfigs};
pub use guard::{AddressGuard, Refusal};
