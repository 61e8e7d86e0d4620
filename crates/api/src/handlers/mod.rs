//! HTTP handlers: parse and validate, call one core operation, map its error.

pub mod files;
pub mod run;
pub mod sandboxes;
pub mod services;
pub mod system;
pub mod tenancy;
pub mod usage;
