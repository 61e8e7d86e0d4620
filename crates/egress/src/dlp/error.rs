//! Errors of the DLP scanner.

/// What can go wrong compiling a rule set or a scanner. No variant carries
/// a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum DlpError {
    /// The rule file is not valid TOML or does not have gitleaks' shape.
    #[error("DLP rules: {0}")]
    Parse(#[from] toml::de::Error),
    /// A rule's regex (or one of its allowlist's) does not compile.
    #[error("DLP rule `{rule}`: invalid {what}: {source}")]
    InvalidRegex {
        /// The rule's id, or `[allowlist]` for a global allowlist.
        rule: String,
        /// Which regex: `regex` or `allowlist regex`.
        what: &'static str,
        source: Box<regex::Error>,
    },
    /// A rule that is malformed in some other way; the message says how.
    #[error("DLP rule `{rule}`: {reason}")]
    InvalidRule { rule: String, reason: String },
    /// A custody secret too short to be searched for without matching
    /// ordinary traffic.
    #[error("custody secret `{name}` is {len} bytes long; at least {min} are needed to scan for it")]
    SecretTooShort { name: String, len: usize, min: usize },
    /// The search automaton could not be built (far too many patterns).
    #[error("DLP automaton: {0}")]
    Automaton(#[from] aho_corasick::BuildError),
}

pub type Result<T, E = DlpError> = std::result::Result<T, E>;
