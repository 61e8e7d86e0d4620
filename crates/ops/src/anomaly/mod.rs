//! Anomaly detectors: small, pure state machines fed with what the
//! collectors see (log lines, metric samples, health changes) and answering
//! with a [`Finding`] when something departs from its baseline. No I/O and no
//! clock of their own — every input carries its time — so each rule is tested
//! on synthetic series.
//!
//! - [`rate::RateSpike`]: counts per bucket against a rolling robust baseline
//!   (median and MAD), with an absolute floor so quiet services do not page.
//! - [`trend::Trend`]: least-squares slope over a window, for "disk full
//!   within N hours" and "memory grows steadily".
//! - [`flap::Flapping`]: too many state changes within a window.
//! - [`templates::NewTemplates`]: error templates never seen before, after a
//!   warm-up.

pub mod flap;
pub mod rate;
pub mod templates;
pub mod trend;

/// A point of a metric window: time (ms since the epoch) and value.
pub type Point = (i64, f64);
