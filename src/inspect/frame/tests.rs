//! Framing tests.
