//! Network plumbing below the proxy: where connections may go and how they are made.

pub mod dial;
pub mod guard;

pub use dial::{Connector, DialError, Dialer, UpstreamStream};
pub use guard::{AddressGuard, Refusal};
