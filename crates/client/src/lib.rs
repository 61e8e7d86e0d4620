//! Typed async HTTP client for the SuperServer API (`/v1`).
//!
//! Used by the CLI, the benchmark and the tests. Request and response bodies
//! are the types of [`superserver_wire`]; every call maps a non-2xx answer to
//! a [`ClientError`] with the server's error code and message
//! ([`ClientError::Api`], or a variant that says more, such as
//! [`ClientError::QuotaExceeded`]). [`Client::with_api_key`] makes every
//! request carry `Authorization: Bearer <key>`.
//!
//! ```no_run
//! # async fn demo() -> superserver_client::Result<()> {
//! use superserver_client::Client;
//! use superserver_wire::RunRequest;
//!
//! let client = Client::new("http://127.0.0.1:7070")?.with_api_key("ssk_…");
//! let req = RunRequest { command: vec!["echo".into(), "hi".into()], ..Default::default() };
//! let result = client.run_stream(&req, |event| println!("{event:?}")).await?;
//! assert_eq!(result.exit_code, Some(0));
//! # Ok(())
//! # }
//! ```

mod alerts;
mod auth;
mod client;
mod egress;
mod error;
mod logs;
mod metrics;
mod ndjson;
mod secrets;
mod services;
mod tenancy;

pub use client::{Client, FileContent, DEFAULT_URL};
pub use egress::EgressQuery;
pub use error::{ClientError, QuotaDetails, Result};
pub use logs::LogsQuery;
pub use ndjson::LineSplitter;
pub use tenancy::UsageQuery;
