//! The scanner: custody secrets and rules compiled together, applied to a
//! whole buffer or to a body arriving in chunks.

use std::fmt;
use std::sync::Arc;

use super::custody::CustodySet;
use super::rules::{Index, CUSTODY_PREFIX};
use super::{CustodySecret, DlpAction, DlpRules, Finding, Result};

/// How far back a stream scan looks across a chunk boundary for the rules:
/// a pattern match longer than this that straddles two chunks is missed.
const RULE_OVERLAP: usize = 4096;

/// Chunks up to this size are copied behind the kept tail and scanned once;
/// larger ones are scanned in place, with the seam scanned separately.
const JOIN_LIMIT: usize = 64 << 10;

/// A compiled scanner for one set of rules and custody secrets. Cheap to
/// share (`Send + Sync`); scans allocate only their results and small
/// bookkeeping.
pub struct Scanner {
    rules: Arc<DlpRules>,
    index: Index,
    custody: CustodySet,
    /// Bytes a stream scan keeps from one chunk to the next.
    overlap: usize,
}

impl Scanner {
    /// Compiles a scanner. Custody secrets shorter than 8 bytes are
    /// refused: they, and their encodings, would match ordinary traffic.
    pub fn new(rules: Arc<DlpRules>, secrets: &[CustodySecret]) -> Result<Scanner> {
        let index = rules.index()?.clone();
        let custody = CustodySet::build(secrets)?;
        let overlap = custody.longest.max(RULE_OVERLAP);
        Ok(Scanner { rules, index, custody, overlap })
    }

    /// The rules this scanner applies.
    pub fn rules(&self) -> &DlpRules {
        &self.rules
    }

    /// Scans one buffer; at most one finding per rule, custody secrets
    /// first, then rules in their order.
    pub fn scan(&self, data: &[u8]) -> Vec<Finding> {
        let mut found = Vec::new();
        self.scan_into(data, &mut found);
        found
    }

    /// Starts a scan of a body that arrives in chunks.
    pub fn stream(&self) -> StreamScan<'_> {
        StreamScan { scanner: self, tail: Vec::new(), window: Vec::new(), found: Vec::new() }
    }

    /// Appends to `found` the findings in `data` of rules not in it yet.
    fn scan_into(&self, data: &[u8], found: &mut Vec<Finding>) {
        if data.is_empty() {
            return;
        }
        let ids = &self.custody.ids;
        let mut done: Vec<bool> = ids.iter().map(|id| found.iter().any(|f| f.rule == *id)).collect();
        let mut hits = Vec::new();
        self.custody.search(data, &mut done, |owner, encoding| hits.push((owner, encoding)));
        hits.sort_by_key(|&(owner, _)| owner);
        for (owner, encoding) in hits {
            let id = &ids[owner];
            let name = &id[CUSTODY_PREFIX.len()..];
            found.push(Finding {
                rule: id.clone(),
                action: DlpAction::Block,
                description: format!("custody secret {name} ({})", encoding.as_str()),
            });
        }
        let rules = self.rules.rules();
        let skip: Vec<bool> = rules.iter().map(|r| found.iter().any(|f| f.rule == r.id)).collect();
        let mut wanted = vec![false; rules.len()];
        self.index.candidates(data, &skip, &mut wanted);
        for (rule, _) in rules.iter().zip(&wanted).filter(|(_, &w)| w) {
            if self.rules.rule_matches(rule, data) {
                found.push(Finding {
                    rule: rule.id.clone(),
                    action: rule.action,
                    description: rule.description.clone(),
                });
            }
        }
    }
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("rules", &self.rules.len())
            .field("custody", &self.custody.ids)
            .field("overlap", &self.overlap)
            .finish()
    }
}

/// A scan of one body arriving in chunks. It finds matches that straddle
/// chunk boundaries (up to the scanner's overlap: the longest custody
/// encoding, and at least 4 KiB), reports each rule at most once, and keeps
/// at most twice the overlap plus 64 KiB whatever the body's size.
pub struct StreamScan<'a> {
    scanner: &'a Scanner,
    /// The last `overlap` bytes seen.
    tail: Vec<u8>,
    /// Scratch: the tail followed by the new chunk, or by its head.
    window: Vec<u8>,
    /// Everything reported so far.
    found: Vec<Finding>,
}

impl StreamScan<'_> {
    /// Scans the next chunk; returns the findings not reported before.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Finding> {
        let before = self.found.len();
        let overlap = self.scanner.overlap;
        if self.tail.is_empty() {
            self.scanner.scan_into(chunk, &mut self.found);
        } else if chunk.len() <= JOIN_LIMIT {
            // Small chunks are scanned once, behind the tail.
            self.fill_window(chunk);
            self.scanner.scan_into(&self.window, &mut self.found);
        } else {
            // A large chunk is scanned in place; what straddles the
            // boundary lies in the tail and the chunk's head.
            self.fill_window(&chunk[..overlap.min(chunk.len())]);
            self.scanner.scan_into(&self.window, &mut self.found);
            self.scanner.scan_into(chunk, &mut self.found);
        }
        if self.tail.capacity() < overlap {
            self.tail.reserve_exact(overlap - self.tail.len());
        }
        if chunk.len() >= overlap {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - overlap..]);
        } else {
            let excess = (self.tail.len() + chunk.len()).saturating_sub(overlap);
            self.tail.drain(..excess);
            self.tail.extend_from_slice(chunk);
        }
        self.found[before..].to_vec()
    }

    /// Sets the window to the tail followed by `next`.
    fn fill_window(&mut self, next: &[u8]) {
        self.window.clear();
        self.window.reserve_exact(self.tail.len() + next.len());
        self.window.extend_from_slice(&self.tail);
        self.window.extend_from_slice(next);
    }

    /// Bytes held between chunks (for tests of the bound).
    #[cfg(test)]
    pub(super) fn kept_bytes(&self) -> usize {
        self.tail.capacity() + self.window.capacity()
    }

    /// Everything this stream has reported.
    pub fn findings(&self) -> &[Finding] {
        &self.found
    }
}

impl fmt::Debug for StreamScan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamScan").field("kept", &self.tail.len()).field("found", &self.found).finish()
    }
}
