//! The egress proxy of `policy`-mode sandboxes.
//!
//! A governed sandbox's network namespace has no route out: every TCP
//! connection it opens is redirected to a listener the server holds inside
//! that namespace, and every DNS query to a resolver socket there. This crate
//! decides what each connection and query may reach and carries the allowed
//! ones to their destination from the host. [`dlp`] scans what goes out for
//! secrets.
#![forbid(unsafe_code)]

pub mod error;
pub mod policy;

pub use error::{EgressError, Result};
pub use policy::{Policy, Target, Verdict};
mod conn;
pub mod custody;
pub mod dlp;
pub mod dns;
pub mod http;
pub mod proxy;
mod resolver;
pub mod session;
pub mod sni;
pub mod upstream;

pub use dlp::{CustodySecret, DlpAction, DlpError, DlpRules, Finding, Scanner, StreamScan};
pub use proxy::{AlertKind, ApprovalAnswer, ApprovalAsk, Approver, EgressAlert, EventSink, Proxy, ProxyConfig};
pub use session::{Session, SessionSpec};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
pub mod tls;
