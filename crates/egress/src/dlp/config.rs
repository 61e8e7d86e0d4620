//! The rule file as written: gitleaks' TOML format (v8) plus `action`.
//!
//! Keys gitleaks knows but that mean nothing to a proxy (`path`, `tags`,
//! `commits`, `paths`, `[extend]`'s `path`/`useDefault`, …) are accepted and
//! ignored; any other key is an error, so that a misspelt `entropy` or
//! `keywords` does not silently weaken a rule.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::DlpAction;

/// A whole rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default, rename = "title")]
    _title: Option<IgnoredAny>,
    #[serde(default, rename = "description")]
    _description: Option<IgnoredAny>,
    #[serde(default, rename = "minVersion")]
    _min_version: Option<IgnoredAny>,
    #[serde(default)]
    pub extend: RawExtend,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// The older single global allowlist.
    #[serde(default)]
    pub allowlist: Option<RawAllowlist>,
    #[serde(default)]
    pub allowlists: Vec<RawAllowlist>,
}

/// `[extend]`: only `disabledRules` applies here (see [`super::DlpRules::extend`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExtend {
    #[serde(default, rename = "path")]
    _path: Option<IgnoredAny>,
    #[serde(default, rename = "url")]
    _url: Option<IgnoredAny>,
    #[serde(default, rename = "useDefault")]
    _use_default: Option<IgnoredAny>,
    #[serde(default, rename = "disabledRules")]
    pub disabled_rules: Vec<String>,
}

/// One `[[rules]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// A rule without one (gitleaks' path-only rules) is skipped.
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default, rename = "secretGroup")]
    pub secret_group: usize,
    #[serde(default)]
    pub entropy: f64,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// SuperServer's extension; block unless it says otherwise.
    #[serde(default)]
    pub action: DlpAction,
    /// The older single rule allowlist.
    #[serde(default)]
    pub allowlist: Option<RawAllowlist>,
    #[serde(default)]
    pub allowlists: Vec<RawAllowlist>,
    /// A rule that only serves as another's `required` part reports nothing.
    #[serde(default, rename = "skipReport")]
    pub skip_report: bool,
    #[serde(default, rename = "path")]
    _path: Option<IgnoredAny>,
    #[serde(default, rename = "tags")]
    _tags: Option<IgnoredAny>,
    /// Composite rules: the rule is applied on its own.
    #[serde(default, rename = "required")]
    _required: Option<IgnoredAny>,
}

/// An allowlist, of a rule or global.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAllowlist {
    #[serde(default, rename = "description")]
    _description: Option<IgnoredAny>,
    /// `OR` (default) or `AND` of the checks the allowlist has.
    #[serde(default)]
    pub condition: String,
    /// `secret` (default), `match` or `line`: what `regexes` look at.
    #[serde(default, rename = "regexTarget")]
    pub regex_target: String,
    #[serde(default)]
    pub regexes: Vec<String>,
    #[serde(default)]
    pub stopwords: Vec<String>,
    /// Never satisfied here (there is no commit); counted for `AND`.
    #[serde(default)]
    pub commits: Vec<String>,
    /// Never satisfied here (there is no file path); counted for `AND`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Global allowlists only: the rules it applies to (all when empty).
    #[serde(default, rename = "targetRules")]
    pub target_rules: Vec<String>,
}

/// Parses a rule file.
pub(super) fn parse(text: &str) -> Result<RawConfig, toml::de::Error> {
    toml::from_str(text)
}
