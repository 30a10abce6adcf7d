//! TLS: the interception CA, leaf certificates minted per host, the verified upstream client configuration.
