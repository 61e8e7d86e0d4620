//! Tenants, API keys, plans and quotas: who may call, what their plan
//! allows, and how much of it they have used.

mod auth;
mod caller;
pub mod keys;
pub mod plans;
pub mod quota;

pub use auth::{Auth, KeyEntry};
pub use caller::{article, Caller, TenantEntry};
pub use quota::{Crossing, Quotas, Reservation, SandboxSlot, Used};
