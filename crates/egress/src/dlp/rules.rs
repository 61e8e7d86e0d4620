//! Compiled secret-pattern rules and the keyword index that decides which
//! of them a buffer needs.

use std::fmt;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use super::config::{self, RawAllowlist, RawRule};
use super::{DlpAction, DlpError, Result};

/// The default rule set, in gitleaks' format.
const DEFAULT_RULES: &str = include_str!("default.toml");

/// Rule ids starting with this are the scanner's own (custody secrets).
pub(super) const CUSTODY_PREFIX: &str = "custody:";

/// Upper bound of a compiled regex's program, per regex.
const REGEX_SIZE_LIMIT: usize = 16 << 20;

/// A compiled rule set: gitleaks-format rules plus global allowlists.
///
/// Rules keep the order of their file; [`DlpRules::extend`] replaces rules
/// by id and appends new ones.
#[derive(Clone, Default)]
pub struct DlpRules {
    rules: Vec<Rule>,
    allowlists: Vec<Allowlist>,
    /// `[extend] disabledRules`: ids this set removes from the one it extends.
    disabled: Vec<String>,
    /// The keyword index, built by the first scanner over this set.
    index: OnceLock<Index>,
}

impl DlpRules {
    /// Compiles a rule file in gitleaks' TOML format.
    ///
    /// Each `[[rules]]` table takes `id`, `description`, `regex`,
    /// `secretGroup`, `entropy`, `keywords`, `[rules.allowlist]` or
    /// `[[rules.allowlists]]`, and SuperServer's `action` (`block`, the
    /// default, or `log`). The top level takes `[allowlist]` or
    /// `[[allowlists]]` (with `targetRules`) and `[extend] disabledRules`.
    /// Other keys gitleaks knows (`path`, `tags`, `required`, `paths`,
    /// `commits`, …) are accepted and ignored; rules without a `regex` and
    /// rules with `skipReport = true` are left out. Unknown keys, duplicate
    /// ids and regexes that do not compile are errors naming the rule.
    pub fn from_toml(text: &str) -> Result<DlpRules> {
        let raw = config::parse(text)?;
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
        for r in raw.rules {
            if rules.iter().any(|known| known.id == r.id) {
                return Err(invalid(&r.id, "the id is defined twice"));
            }
            if let Some(rule) = Rule::compile(r)? {
                rules.push(rule);
            }
        }
        let mut allowlists = Vec::new();
        for a in raw.allowlist.into_iter().chain(raw.allowlists) {
            allowlists.push(Allowlist::compile("[allowlist]", a, true)?);
        }
        Ok(DlpRules { rules, allowlists, disabled: raw.extend.disabled_rules, index: OnceLock::new() })
    }

    /// The built-in rule set (`dlp/default.toml`): cloud keys, forge,
    /// chat, payment, mail, package registry and AI provider tokens,
    /// private keys, JWTs and generic key assignments. JWTs and generic
    /// assignments only log; the rest block.
    pub fn default_rules() -> DlpRules {
        static DEFAULT: OnceLock<DlpRules> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                // The file is part of the source and a unit test compiles
                // it, so this cannot fail in a tested build.
                DlpRules::from_toml(DEFAULT_RULES).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "the built-in DLP rules do not compile; none are applied");
                    DlpRules::default()
                })
            })
            .clone()
    }

    /// Adds `other`'s rules to this set. A rule whose id is already here
    /// replaces the one here (in its place); the ids in `other`'s
    /// `[extend] disabledRules` are removed first; global allowlists are
    /// appended.
    pub fn extend(&mut self, other: DlpRules) {
        if !other.disabled.is_empty() {
            self.rules.retain(|r| !other.disabled.contains(&r.id));
        }
        for rule in other.rules {
            match self.rules.iter_mut().find(|r| r.id == rule.id) {
                Some(slot) => *slot = rule,
                None => self.rules.push(rule),
            }
        }
        self.allowlists.extend(other.allowlists);
        self.index = OnceLock::new();
    }

    /// Changes the action of the rule `id`; false when there is none.
    pub fn set_action(&mut self, id: &str, action: DlpAction) -> bool {
        match self.rules.iter_mut().find(|r| r.id == id) {
            Some(rule) => {
                rule.action = action;
                true
            }
            None => false,
        }
    }

    /// How many rules the set has.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the set has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// The action of the rule `id`.
    pub fn action(&self, id: &str) -> Option<DlpAction> {
        self.rules.iter().find(|r| r.id == id).map(|r| r.action)
    }

    pub(super) fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The keyword index, built once per rule set.
    pub(super) fn index(&self) -> Result<&Index> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let built = Index::build(&self.rules)?;
        Ok(self.index.get_or_init(|| built))
    }

    /// Whether `rule` matches somewhere in `data` with a secret that passes
    /// its entropy and no allowlist (its own or a global one) excuses.
    pub(super) fn rule_matches(&self, rule: &Rule, data: &[u8]) -> bool {
        for caps in rule.regex.captures_iter(data) {
            let Some(whole) = caps.get(0) else { continue };
            let secret = if rule.secret_group > 0 {
                caps.get(rule.secret_group).map_or(&[][..], |g| g.as_bytes())
            } else {
                // As gitleaks: the first non-empty group, else the match.
                caps.iter().skip(1).flatten().map(|g| g.as_bytes()).find(|g| !g.is_empty()).unwrap_or(whole.as_bytes())
            };
            if rule.entropy > 0.0 && shannon_entropy(secret) <= rule.entropy {
                continue;
            }
            let hit = Hit { data, start: whole.start(), end: whole.end(), secret };
            let global = self.allowlists.iter().filter(|a| a.targets(&rule.id));
            if rule.allowlists.iter().chain(global).any(|a| a.allows(&hit)) {
                continue;
            }
            return true;
        }
        false
    }
}

impl fmt::Debug for DlpRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DlpRules")
            .field("rules", &self.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
            .field("allowlists", &self.allowlists.len())
            .finish()
    }
}

/// One compiled rule.
#[derive(Clone)]
pub(super) struct Rule {
    pub(super) id: String,
    pub(super) description: String,
    pub(super) action: DlpAction,
    regex: Regex,
    /// 0: the first non-empty group, else the whole match.
    secret_group: usize,
    /// 0: no minimum.
    entropy: f64,
    /// Lower case; empty: the rule is tried on everything.
    keywords: Vec<String>,
    allowlists: Vec<Allowlist>,
}

impl Rule {
    /// Compiles a rule; `None` for one that never reports here.
    fn compile(raw: RawRule) -> Result<Option<Rule>> {
        let id = raw.id.trim().to_owned();
        if id.is_empty() {
            return Err(invalid("", "a rule has no id"));
        }
        if id.starts_with(CUSTODY_PREFIX) {
            return Err(invalid(&id, "ids starting with `custody:` are reserved for custody secrets"));
        }
        if raw.skip_report {
            return Ok(None);
        }
        let Some(pattern) = raw.regex.filter(|p| !p.is_empty()) else { return Ok(None) };
        let regex = compile_regex(&id, "regex", &pattern)?;
        if raw.secret_group >= regex.captures_len() {
            let groups = regex.captures_len() - 1;
            return Err(invalid(&id, &format!("secretGroup {} but the regex has {groups} groups", raw.secret_group)));
        }
        if !raw.entropy.is_finite() || raw.entropy < 0.0 {
            return Err(invalid(&id, "entropy must be a non-negative number"));
        }
        let mut keywords: Vec<String> =
            raw.keywords.iter().map(|k| k.to_lowercase()).filter(|k| !k.is_empty()).collect();
        keywords.sort();
        keywords.dedup();
        let mut allowlists = Vec::new();
        for a in raw.allowlist.into_iter().chain(raw.allowlists) {
            allowlists.push(Allowlist::compile(&id, a, false)?);
        }
        Ok(Some(Rule {
            description: if raw.description.is_empty() { id.clone() } else { raw.description },
            id,
            action: raw.action,
            regex,
            secret_group: raw.secret_group,
            entropy: raw.entropy,
            keywords,
            allowlists,
        }))
    }
}

/// What an allowlist's regexes look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegexTarget {
    Secret,
    Match,
    Line,
}

/// A compiled allowlist.
#[derive(Clone)]
struct Allowlist {
    /// All configured checks must hold (`AND`), rather than one (`OR`).
    all: bool,
    target: RegexTarget,
    regexes: Vec<Regex>,
    /// Case-insensitive substrings of the secret.
    stopwords: Option<AhoCorasick>,
    /// It has `commits` or `paths`, which nothing here can satisfy.
    location_checks: bool,
    /// Global allowlists: the rules it applies to (all when empty).
    target_rules: Vec<String>,
}

/// A candidate match, for allowlist checks.
struct Hit<'a> {
    data: &'a [u8],
    start: usize,
    end: usize,
    secret: &'a [u8],
}

impl Allowlist {
    fn compile(owner: &str, raw: RawAllowlist, global: bool) -> Result<Allowlist> {
        let all = match raw.condition.to_ascii_uppercase().as_str() {
            "" | "OR" | "||" => false,
            "AND" | "&&" => true,
            other => return Err(invalid(owner, &format!("allowlist condition `{other}` (expected AND or OR)"))),
        };
        let target = match raw.regex_target.as_str() {
            "" | "secret" => RegexTarget::Secret,
            "match" => RegexTarget::Match,
            "line" => RegexTarget::Line,
            other => {
                return Err(invalid(
                    owner,
                    &format!("allowlist regexTarget `{other}` (expected secret, match or line)"),
                ))
            }
        };
        if !global && !raw.target_rules.is_empty() {
            return Err(invalid(owner, "targetRules belongs in a global [[allowlists]]"));
        }
        let location_checks = !raw.commits.is_empty() || !raw.paths.is_empty();
        if raw.regexes.is_empty() && raw.stopwords.is_empty() && !location_checks {
            return Err(invalid(owner, "an allowlist needs regexes, stopwords, paths or commits"));
        }
        let regexes =
            raw.regexes.iter().map(|p| compile_regex(owner, "allowlist regex", p)).collect::<Result<Vec<_>>>()?;
        let stopwords: Vec<&str> = raw.stopwords.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
        let stopwords = if stopwords.is_empty() {
            None
        } else {
            Some(AhoCorasick::builder().ascii_case_insensitive(true).build(&stopwords)?)
        };
        Ok(Allowlist { all, target, regexes, stopwords, location_checks, target_rules: raw.target_rules })
    }

    /// Whether this (global) allowlist applies to the rule `id`.
    fn targets(&self, id: &str) -> bool {
        self.target_rules.is_empty() || self.target_rules.iter().any(|t| t == id)
    }

    /// Whether the allowlist excuses `hit`.
    fn allows(&self, hit: &Hit<'_>) -> bool {
        let regex_allows = || {
            let text = match self.target {
                RegexTarget::Secret => hit.secret,
                RegexTarget::Match => &hit.data[hit.start..hit.end],
                RegexTarget::Line => line_around(hit.data, hit.start, hit.end),
            };
            self.regexes.iter().any(|r| r.is_match(text))
        };
        let stopword_allows = || self.stopwords.as_ref().is_some_and(|s| s.is_match(hit.secret));
        if self.all {
            // Commits and paths never match here, so an AND with them never holds.
            !self.location_checks
                && (self.regexes.is_empty() || regex_allows())
                && (self.stopwords.is_none() || stopword_allows())
        } else {
            (!self.regexes.is_empty() && regex_allows()) || stopword_allows()
        }
    }
}

/// Which rules a buffer needs: an Aho-Corasick automaton over every rule's
/// keywords (ASCII case-insensitive), and the rules that have none.
#[derive(Clone)]
pub(super) struct Index {
    keywords: Option<AhoCorasick>,
    /// Per keyword pattern, the rules that list it.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords: always tried.
    always: Vec<usize>,
    /// Rules with keywords.
    keyworded: Vec<usize>,
}

impl Index {
    fn build(rules: &[Rule]) -> Result<Index> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        let mut keyworded = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                always.push(i);
            } else {
                keyworded.push(i);
            }
            for k in &rule.keywords {
                match patterns.iter().position(|p| p == k) {
                    Some(p) => keyword_rules[p].push(i),
                    None => {
                        patterns.push(k);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
        }
        let keywords = if patterns.is_empty() {
            None
        } else {
            // A full DFA: case-insensitive keywords get no SIMD prefilter,
            // so the automaton walks every byte and had better be the
            // fastest kind; the default choice (an NFA past 100 patterns)
            // remains if the DFA cannot be built.
            let mut builder = AhoCorasick::builder();
            builder.ascii_case_insensitive(true).match_kind(MatchKind::Standard).prefilter(false);
            match builder.kind(Some(AhoCorasickKind::DFA)).build(&patterns) {
                Ok(dfa) => Some(dfa),
                Err(_) => Some(builder.kind(None).build(&patterns)?),
            }
        };
        Ok(Index { keywords, keyword_rules, always, keyworded })
    }

    /// Marks in `wanted` the rules `data` needs, leaving out those marked in
    /// `skip` (already reported).
    pub(super) fn candidates(&self, data: &[u8], skip: &[bool], wanted: &mut [bool]) {
        for &i in &self.always {
            wanted[i] = !skip[i];
        }
        let Some(ac) = &self.keywords else { return };
        let mut seen: Vec<bool> = skip.to_vec();
        let mut left = self.keyworded.iter().filter(|&&i| !seen[i]).count();
        if left == 0 {
            return;
        }
        // Overlapping, so that a keyword inside another (`key` in `key-`)
        // is still seen.
        for m in ac.find_overlapping_iter(data) {
            for &i in &self.keyword_rules[m.pattern().as_usize()] {
                if !seen[i] {
                    seen[i] = true;
                    wanted[i] = true;
                    left = left.saturating_sub(1);
                }
            }
            if left == 0 {
                break;
            }
        }
    }
}

/// Compiles a rule's regex for bytes: ASCII classes first (smaller and
/// faster automata), Unicode classes when the pattern needs them.
fn compile_regex(rule: &str, what: &'static str, pattern: &str) -> Result<Regex> {
    let build = |unicode: bool| RegexBuilder::new(pattern).unicode(unicode).size_limit(REGEX_SIZE_LIMIT).build();
    build(false).or_else(|_| build(true)).map_err(|source| DlpError::InvalidRegex {
        rule: rule.to_owned(),
        what,
        source: Box::new(source),
    })
}

fn invalid(rule: &str, reason: &str) -> DlpError {
    DlpError::InvalidRule { rule: rule.to_owned(), reason: reason.to_owned() }
}

/// The line of `data` holding `start..end` (without its line breaks).
fn line_around(data: &[u8], start: usize, end: usize) -> &[u8] {
    let from = data[..start].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let to = data[end..].iter().position(|&b| b == b'\n').map_or(data.len(), |p| end + p);
    &data[from..to]
}

/// Shannon entropy of `data` in bits per byte, as gitleaks computes it.
pub(super) fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let len = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum()
}
