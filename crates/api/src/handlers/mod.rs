//! HTTP handlers: parse and validate, call one core operation, map its error.

pub mod alerts;
pub mod anomalies;
pub mod egress;
pub mod files;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod run;
pub mod sandboxes;
pub mod secrets;
pub mod services;
pub mod system;
pub mod tenancy;
pub mod usage;
