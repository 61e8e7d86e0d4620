//! Drain-style template mining (He et al., "Drain: An Online Log Parsing
//! Approach with Fixed Depth Tree", 2017).
//!
//! A line is split on whitespace; tokens that look like values (numbers,
//! hex, ids, IPs, UUIDs, durations, `key=value` with such a value) are masked as
//! `<*>` first. The tree's first level is the token count, the next
//! `depth - 2` levels the leading tokens (a token with a digit, or a level
//! that is full, goes under `<*>`), and each leaf holds templates. A line
//! joins the leaf's most similar template if the share of equal tokens is at
//! least `similarity`; the template's differing tokens become `<*>`.
//! Otherwise it starts a new template.
//!
//! Template ids come from the caller's counter, so they can be made stable
//! across restarts ([`Miner::restore`]).

use std::collections::HashMap;

/// The wildcard a template shows for a variable token.
pub const WILDCARD: &str = "<*>";

/// Tuning of a [`Miner`].
#[derive(Debug, Clone, Copy)]
pub struct MinerOptions {
    /// Depth of the parse tree (≥ 3): token count, `depth - 2` leading tokens, leaf.
    pub depth: usize,
    /// Share of equal tokens (0..=1) for a line to join a template.
    pub similarity: f64,
    /// Children per tree node before further tokens go under `<*>`.
    pub max_children: usize,
    /// Tokens considered; longer lines are mined on their first this many.
    pub max_tokens: usize,
}

impl Default for MinerOptions {
    fn default() -> Self {
        Self { depth: 4, similarity: 0.5, max_children: 100, max_tokens: 64 }
    }
}

/// What [`Miner::add`] made of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mined {
    pub id: u64,
    /// The line started a new template.
    pub new: bool,
    /// An existing template gained a wildcard (its text changed).
    pub changed: bool,
}

#[derive(Debug)]
struct Cluster {
    id: u64,
    tokens: Vec<Box<str>>,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    clusters: Vec<usize>,
}

/// An online template miner. Not thread-safe by itself: one per service.
#[derive(Debug, Default)]
pub struct Miner {
    opts: MinerOptions,
    roots: HashMap<usize, Node>,
    clusters: Vec<Cluster>,
    by_id: HashMap<u64, usize>,
}

impl Miner {
    pub fn new(opts: MinerOptions) -> Self {
        Self { opts, ..Self::default() }
    }

    /// Assigns `line` a template; a new one gets the id `next_id()` returns.
    pub fn add(&mut self, line: &str, next_id: &mut impl FnMut() -> u64) -> Mined {
        let tokens = tokenize(line, self.opts.max_tokens);
        let leaf = path_mut(&mut self.roots, &tokens, self.opts);
        let mut best: Option<(usize, f64, usize)> = None;
        for &ci in &leaf.clusters {
            let (sim, params) = similarity(&self.clusters[ci].tokens, &tokens);
            if best.is_none_or(|(_, s, p)| sim > s || (sim == s && params > p)) {
                best = Some((ci, sim, params));
            }
        }
        if let Some((ci, sim, _)) = best {
            if sim >= self.opts.similarity {
                let c = &mut self.clusters[ci];
                let mut changed = false;
                for (t, new) in c.tokens.iter_mut().zip(&tokens) {
                    if &**t != *new && &**t != WILDCARD {
                        *t = WILDCARD.into();
                        changed = true;
                    }
                }
                return Mined { id: c.id, new: false, changed };
            }
        }
        let id = next_id();
        let tokens: Vec<Box<str>> = tokens.iter().map(|t| Box::<str>::from(*t)).collect();
        self.insert(id, tokens);
        Mined { id, new: true, changed: false }
    }

    /// Puts back a template known from before (its text as [`Miner::template`]
    /// gave it), so lines keep their ids across restarts.
    pub fn restore(&mut self, id: u64, template: &str) {
        if self.by_id.contains_key(&id) {
            return;
        }
        let tokens: Vec<Box<str>> = template.split_ascii_whitespace().map(Box::from).collect();
        self.insert(id, tokens);
    }

    /// The template's text: its tokens joined by single spaces.
    pub fn template(&self, id: u64) -> Option<String> {
        self.by_id.get(&id).map(|&ci| self.clusters[ci].tokens.join(" "))
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    fn insert(&mut self, id: u64, tokens: Vec<Box<str>>) {
        let ci = self.clusters.len();
        let refs: Vec<&str> = tokens.iter().map(|t| &**t).collect();
        // The template's own tokens choose its path, as a matching line's would.
        let opts = self.opts;
        let node = path_mut(&mut self.roots, &refs, opts);
        node.clusters.push(ci);
        self.clusters.push(Cluster { id, tokens });
        self.by_id.insert(id, ci);
    }
}

/// The leaf for `tokens`, creating the path on the way.
fn path_mut<'a>(roots: &'a mut HashMap<usize, Node>, tokens: &[&str], opts: MinerOptions) -> &'a mut Node {
    let mut node = roots.entry(tokens.len()).or_default();
    for t in tokens.iter().take(opts.depth.saturating_sub(2)) {
        let key: &str = if t.bytes().any(|b| b.is_ascii_digit()) { WILDCARD } else { t };
        let key =
            if node.children.contains_key(key) || node.children.len() < opts.max_children { key } else { WILDCARD };
        node = node.children.entry(Box::from(key)).or_default();
    }
    node
}

/// Share of positions where the template equals the line (a wildcard counts
/// as equal), and the template's number of wildcards.
fn similarity(template: &[Box<str>], tokens: &[&str]) -> (f64, usize) {
    if template.is_empty() {
        return (1.0, 0);
    }
    let mut same = 0usize;
    let mut params = 0usize;
    for (t, l) in template.iter().zip(tokens) {
        if &**t == WILDCARD {
            params += 1;
            same += 1;
        } else if &**t == *l {
            same += 1;
        }
    }
    (same as f64 / template.len() as f64, params)
}

/// Whitespace tokens with value-like tokens masked as `<*>` (a whole
/// `key=value` token when its value is one).
pub fn tokenize(line: &str, max_tokens: usize) -> Vec<&str> {
    line.split_ascii_whitespace()
        .take(max_tokens)
        .map(|t| {
            if let Some(eq) = t.find('=') {
                let (key, value) = (&t[..eq], &t[eq + 1..]);
                if !key.is_empty() && (value.is_empty() || is_value(value)) {
                    return WILDCARD;
                }
                return t;
            }
            if is_value(t) {
                WILDCARD
            } else {
                t
            }
        })
        .collect()
}

/// A token that carries a value rather than words: it has a digit, and at
/// most three letters outside hex (units such as `ms`, `MB`, `ns` allowed);
/// or it is a quoted string, an absolute path with a digit, or a UUID.
fn is_value(token: &str) -> bool {
    let t = token.trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')' | '[' | ']' | '"' | '\'' | '{' | '}'));
    if t.is_empty() {
        return false;
    }
    let mut digits = 0usize;
    let mut other_letters = 0usize;
    for b in t.bytes() {
        if b.is_ascii_digit() {
            digits += 1;
        } else if b.is_ascii_alphabetic() && !b.is_ascii_hexdigit() {
            other_letters += 1;
        }
    }
    digits > 0 && (other_letters <= 3 || digits * 2 >= t.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(m: &mut Miner, next: &mut u64, line: &str) -> Mined {
        m.add(line, &mut || {
            *next += 1;
            *next
        })
    }

    #[test]
    fn lines_differing_in_values_share_a_template() {
        let mut m = Miner::default();
        let mut n = 0;
        let a =
            mine(&mut m, &mut n, "2026-01-01T10:00:00Z ERROR connection to 10.0.0.5:5432 failed after 31ms id=0x7f3a");
        let b = mine(
            &mut m,
            &mut n,
            "2026-01-02T11:22:33Z ERROR connection to 192.168.1.9:6432 failed after 2ms id=0xbeef99",
        );
        let c =
            mine(&mut m, &mut n, "2026-01-02T11:22:34Z ERROR connection to 10.0.0.7:5432 failed after 7s id=abc123de");
        assert!(a.new);
        assert_eq!(a.id, b.id);
        assert_eq!(a.id, c.id);
        assert_eq!(m.template(a.id).unwrap(), "<*> ERROR connection to <*> failed after <*> <*>");
        let u = mine(&mut m, &mut n, "user 550e8400-e29b-41d4-a716-446655440000 logged in from 10.1.1.1");
        let v = mine(&mut m, &mut n, "user 6ba7b810-9dad-11d1-80b4-00c04fd430c8 logged in from 10.1.1.2");
        assert_eq!(u.id, v.id);
    }

    #[test]
    fn different_messages_get_different_templates() {
        let mut m = Miner::default();
        let mut n = 0;
        let a = mine(&mut m, &mut n, "INFO request served in 12ms");
        let b = mine(&mut m, &mut n, "ERROR database connection refused by peer");
        let c = mine(&mut m, &mut n, "WARN cache miss ratio high");
        let d = mine(&mut m, &mut n, "ERROR disk quota exceeded for volume");
        assert!(a.new && b.new && c.new && d.new);
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn a_template_generalizes_with_a_wildcard() {
        let mut m = Miner::default();
        let mut n = 0;
        let a = mine(&mut m, &mut n, "session opened for user alice by root");
        let b = mine(&mut m, &mut n, "session opened for user bob by root");
        assert_eq!(a.id, b.id);
        assert!(b.changed);
        assert_eq!(m.template(a.id).unwrap(), "session opened for user <*> by root");
    }

    #[test]
    fn restored_templates_keep_their_ids() {
        let mut m = Miner::default();
        m.restore(42, "<*> ERROR connection to <*> failed after <*> <*>");
        let mut n = 100;
        let r = mine(&mut m, &mut n, "2026-01-01T10:00:00Z ERROR connection to 10.0.0.5:5432 failed after 31ms id=7");
        assert_eq!(r, Mined { id: 42, new: false, changed: false });
    }

    #[test]
    fn value_tokens() {
        for v in ["123", "0x1f", "10.0.0.1:80", "12ms", "3.5MB", "deadbeef12", "2026-01-01T00:00:00Z", "user42"] {
            assert!(is_value(v), "{v}");
        }
        for w in ["error", "http2", "GET", "/index.html", "ipv"] {
            assert!(!is_value(w), "{w}");
        }
    }
}
