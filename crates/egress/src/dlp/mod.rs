//! Data loss prevention: scanning what a sandbox sends out for secrets.
//!
//! Two kinds of secret are looked for in outbound headers and bodies:
//!
//! - **Custody secrets**, the real values the server holds on a sandbox's
//!   behalf ([`CustodySecret`]). Each value is searched raw and in the
//!   encodings a program would put it through on its way out: base64
//!   (standard and URL-safe, at every alignment inside a larger blob),
//!   percent-encoding, hex and JSON string escapes. A hit is always blocked.
//! - **Known secret patterns**, a rule set in the TOML format of gitleaks
//!   ([`DlpRules`]): a regex per rule, gated by case-insensitive keywords,
//!   with an optional minimum entropy of the secret and allowlists. A
//!   default set covering the major providers is embedded
//!   ([`DlpRules::default_rules`]); configuration extends it. Each rule
//!   blocks or only logs ([`DlpAction`]).
//!
//! A scan yields [`Finding`]s that name the rule and never carry the text
//! that matched, so they can go into events and logs as they are.
//!
//! A [`Scanner`] holds both, compiled once; [`Scanner::scan`] looks at a
//! whole buffer and [`Scanner::stream`] at a body arriving in chunks.

mod config;
mod custody;
mod error;
mod rules;
mod scanner;

use std::fmt;

use serde::{Deserialize, Serialize};

pub(crate) use custody::encodings;
pub use custody::CustodySecret;
pub use error::{DlpError, Result};
pub use rules::DlpRules;
pub use scanner::{Scanner, StreamScan};

/// What happens to a request in which a rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DlpAction {
    /// The request is refused.
    #[default]
    Block,
    /// The request goes on; the finding is only recorded.
    Log,
}

impl DlpAction {
    /// The lowercase name, as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            DlpAction::Block => "block",
            DlpAction::Log => "log",
        }
    }
}

impl fmt::Display for DlpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule that matched. It names the rule and never carries the matched
/// text, so it is safe to log and to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's id; `custody:<NAME>` for a custody secret.
    pub rule: String,
    /// What the rule asks for.
    pub action: DlpAction,
    /// The rule's description (for a custody secret, its name and the
    /// encoding it was found in).
    pub description: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.rule, self.action)
    }
}

#[cfg(test)]
mod tests;
