//! The egress proxy of `policy`-mode sandboxes.
//!
//! A governed sandbox's network namespace has no route out: every TCP
//! connection it opens is redirected to a listener the server holds inside
//! that namespace, and every DNS query to a resolver socket there. This crate
//! decides what each connection and query may reach and carries the allowed
//! ones to their destination from the host.
#![forbid(unsafe_code)]

pub mod error;
pub mod policy;

pub use error::{EgressError, Result};
pub use policy::{Policy, Target, Verdict};
pub mod dns;
pub mod sni;
