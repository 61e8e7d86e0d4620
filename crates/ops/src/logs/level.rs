//! The level a log line declares: a severity word near its start (`ERROR`,
//! `[warn]`, `E:` is not guessed), `level=…` / `lvl=…` / `severity=…`, or a
//! JSON `"level":` field. A line that declares none is [`Level::Unknown`],
//! whatever stream it came on: stderr is not an error by itself.

use serde::{Deserialize, Serialize};

/// A line's declared severity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
    Unknown,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Fatal => "fatal",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
            Level::Unknown => "unknown",
        }
    }

    /// Parses a level name as users and log formats spell it
    /// (`err`, `warning`, `critical`, `panic` …), any case.
    pub fn parse(word: &str) -> Option<Level> {
        let w = word.trim_matches(|c: char| !c.is_ascii_alphabetic());
        if w.is_empty() || w.len() > 8 {
            return None;
        }
        let mut buf = [0u8; 8];
        for (d, s) in buf.iter_mut().zip(w.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        Some(match &buf[..w.len()] {
            b"fatal" | b"critical" | b"crit" | b"panic" | b"emerg" | b"alert" => Level::Fatal,
            b"error" | b"err" => Level::Error,
            b"warn" | b"warning" => Level::Warn,
            b"info" | b"notice" => Level::Info,
            b"debug" => Level::Debug,
            b"trace" => Level::Trace,
            b"unknown" => Level::Unknown,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many leading words may carry the severity word.
const HEAD_WORDS: usize = 6;

/// The level `line` declares, or [`Level::Unknown`].
pub fn detect_level(line: &str) -> Level {
    let head = &line[..floor_boundary(line, 512)];
    if let Some(l) = keyed(head) {
        return l;
    }
    for (i, word) in head.split_ascii_whitespace().take(HEAD_WORDS).enumerate() {
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphabetic());
        if bare.is_empty() {
            continue;
        }
        let upper = bare.bytes().all(|b| b.is_ascii_uppercase());
        // `ERROR`, `[warn]`, `error:` as the first word; lower-case words
        // elsewhere are prose ("no error found").
        let marked = word.starts_with('[') || word.starts_with('<') || word.ends_with(':') || word.ends_with(']');
        if upper || marked || i == 0 {
            if let Some(l) = Level::parse(bare) {
                if upper || marked {
                    return l;
                }
            }
        }
    }
    Level::Unknown
}

/// `level=…`, `lvl=…`, `severity=…` and JSON `"level":"…"` forms.
fn keyed(head: &str) -> Option<Level> {
    for key in ["level", "lvl", "severity"] {
        let mut from = 0;
        while let Some(pos) = head[from..].find(key) {
            let at = from + pos;
            from = at + key.len();
            let before = head[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &head[from..];
            let rest = rest.strip_prefix('"').unwrap_or(rest);
            let rest = rest.trim_start();
            let Some(rest) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':')) else {
                continue;
            };
            let value = rest.trim_start().trim_start_matches('"');
            let end = value.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(value.len());
            if let Some(l) = Level::parse(&value[..end]) {
                return Some(l);
            }
        }
    }
    None
}

fn floor_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_words() {
        assert_eq!(detect_level("2026-01-01T00:00:00Z ERROR db down seq=1"), Level::Error);
        assert_eq!(detect_level("[warn] disk almost full"), Level::Warn);
        assert_eq!(detect_level("INFO listening on port 80"), Level::Info);
        assert_eq!(detect_level("error: cannot open file"), Level::Error);
        assert_eq!(detect_level("12:00:01 FATAL out of memory"), Level::Fatal);
        assert_eq!(detect_level("DEBUG x=1"), Level::Debug);
        assert_eq!(detect_level("<crit> kernel"), Level::Fatal);
    }

    #[test]
    fn key_value_and_json() {
        assert_eq!(detect_level("ts=1 level=warn msg=\"slow\""), Level::Warn);
        assert_eq!(detect_level("time=1 lvl=error msg=x"), Level::Error);
        assert_eq!(detect_level(r#"{"ts":1,"level":"error","msg":"boom"}"#), Level::Error);
        assert_eq!(detect_level(r#"{"severity": "WARNING", "msg":"x"}"#), Level::Warn);
        assert_eq!(detect_level("loglevel=info"), Level::Unknown, "a key inside another word is not the level");
    }

    #[test]
    fn no_marker_is_unknown_not_error() {
        assert_eq!(detect_level("GET /index.html 200 12ms"), Level::Unknown);
        assert_eq!(detect_level("there was no error in the last run"), Level::Unknown);
        assert_eq!(detect_level(""), Level::Unknown);
        assert_eq!(detect_level("Traceback (most recent call last):"), Level::Unknown);
    }

    #[test]
    fn parse_spellings() {
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse("err"), Some(Level::Error));
        assert_eq!(Level::parse("bogus"), None);
        assert!(Level::Error < Level::Warn, "more severe sorts first");
    }
}
