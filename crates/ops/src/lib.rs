//! Host discovery for SuperServer's monitoring: what runs on this host
//! (Docker containers, systemd service units, processes with listening
//! sockets), how those services connect, and what changed between two looks.
//!
//! [`discover`] takes a [`Snapshot`]; [`diff`] compares two. The lower-level
//! readers ([`procnet`], [`procs`], [`docker`], [`systemd`]) are public so the
//! metrics and log collectors of later slices can reuse them.
#![forbid(unsafe_code)]

pub mod anomaly;
pub mod diff;
pub mod discover;
pub mod docker;
mod edges;
pub mod error;
pub mod log_tail;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod procnet;
pub mod procs;
pub mod sockdiag;
pub mod systemd;

pub use diff::diff;
pub use discover::{discover, look, Look, Options, SocketCache};
pub use error::{Error, Result};
pub use model::*;
