//! Custody secrets and the encoded forms they are searched in.

use std::fmt;

use aho_corasick::{AhoCorasick, Input, MatchKind};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::engine::GeneralPurpose;
use base64::Engine as _;

use super::rules::CUSTODY_PREFIX;
use super::{DlpError, Result};

/// The shortest custody secret the scanner accepts: shorter values (and
/// their encodings) would turn up in ordinary traffic.
pub(super) const MIN_SECRET_LEN: usize = 8;

/// Forms per automaton: up to this many, Aho-Corasick searches with a SIMD
/// (Teddy) prefilter, an order of magnitude faster than walking its
/// automaton byte by byte.
const FORMS_PER_GROUP: usize = 64;

/// A secret the server holds for a sandbox, with its real value. Its
/// `Debug` shows the name only.
#[derive(Clone, PartialEq, Eq)]
pub struct CustodySecret {
    /// The secret's name; findings are reported as `custody:<name>`.
    pub name: String,
    /// The real value.
    pub value: String,
}

impl CustodySecret {
    /// A custody secret named `name` with the value `value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> CustodySecret {
        CustodySecret { name: name.into(), value: value.into() }
    }
}

impl fmt::Debug for CustodySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustodySecret").field("name", &self.name).field("value", &"<redacted>").finish()
    }
}

/// Every encoded form of every custody secret, compiled for search.
pub(super) struct CustodySet {
    /// `custody:<name>` per distinct name.
    pub(super) ids: Vec<String>,
    groups: Vec<FormGroup>,
    /// The length of the longest form.
    pub(super) longest: usize,
}

/// Up to [`FORMS_PER_GROUP`] forms and, per form, the secrets whose
/// presence it proves: its own and those of every form inside it.
struct FormGroup {
    automaton: AhoCorasick,
    owners: Vec<Vec<(usize, Encoding)>>,
}

impl CustodySet {
    /// Compiles the forms of `secrets`; secrets with one name share it.
    pub(super) fn build(secrets: &[CustodySecret]) -> Result<CustodySet> {
        let mut ids: Vec<String> = Vec::new();
        let mut forms: Vec<Vec<u8>> = Vec::new();
        let mut owners: Vec<Vec<(usize, Encoding)>> = Vec::new();
        for secret in secrets {
            if secret.value.len() < MIN_SECRET_LEN {
                return Err(DlpError::SecretTooShort {
                    name: secret.name.clone(),
                    len: secret.value.len(),
                    min: MIN_SECRET_LEN,
                });
            }
            let id = format!("{CUSTODY_PREFIX}{}", secret.name);
            let owner = ids.iter().position(|known| *known == id).unwrap_or(ids.len());
            if owner == ids.len() {
                ids.push(id);
            }
            for (form, encoding) in encodings(&secret.value) {
                match forms.iter().position(|f| *f == form) {
                    Some(i) => owners[i].push((owner, encoding)),
                    None => {
                        forms.push(form);
                        owners.push(vec![(owner, encoding)]);
                    }
                }
            }
        }
        // A search reports only the longest form starting at a position, so
        // each form also stands for the forms it contains.
        let mut closed = owners.clone();
        for (i, form) in forms.iter().enumerate() {
            for (j, inner) in forms.iter().enumerate() {
                if i != j && inner.len() <= form.len() && form.windows(inner.len()).any(|w| w == inner.as_slice()) {
                    closed[i].extend_from_slice(&owners[j]);
                }
            }
        }
        let longest = forms.iter().map(Vec::len).max().unwrap_or(0);
        let mut groups = Vec::new();
        for (chunk, owners) in forms.chunks(FORMS_PER_GROUP).zip(closed.chunks(FORMS_PER_GROUP)) {
            let automaton = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(chunk)?;
            groups.push(FormGroup { automaton, owners: owners.to_vec() });
        }
        Ok(CustodySet { ids, groups, longest })
    }

    /// Calls `hit` once for each secret found in `data` and not yet `done`
    /// (index into `ids`), with the encoding it was found in.
    pub(super) fn search(&self, data: &[u8], done: &mut [bool], mut hit: impl FnMut(usize, Encoding)) {
        let mut left = done.iter().filter(|d| !**d).count();
        for group in &self.groups {
            // Leftmost-longest from every start: with the containment in
            // `owners`, every form present is accounted for.
            let mut at = 0;
            while left > 0 && at < data.len() {
                let Some(m) = group.automaton.find(Input::new(data).range(at..)) else { break };
                for &(owner, encoding) in &group.owners[m.pattern().as_usize()] {
                    if !done[owner] {
                        done[owner] = true;
                        left -= 1;
                        hit(owner, encoding);
                    }
                }
                at = m.start() + 1;
            }
        }
    }
}

/// How a custody secret's value was encoded where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Raw,
    Base64,
    Base64Url,
    Percent,
    Hex,
    Json,
}

impl Encoding {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Base64 => "base64",
            Encoding::Base64Url => "URL-safe base64",
            Encoding::Percent => "percent-encoded",
            Encoding::Hex => "hex",
            Encoding::Json => "JSON-escaped",
        }
    }
}

/// Every byte string whose presence means `value` is in the data, each with
/// the encoding it stands for; without duplicates, raw first.
///
/// Base64 forms are the part of the encoding that depends on the value
/// alone, for each of the three positions the value can start at within a
/// base64 group, so a value inside a larger encoded blob (a JSON document, a
/// basic-auth header) is found too; padding is never part of it, so padded
/// and unpadded encodings both contain it. Percent-encoded forms follow the
/// usual encoders' sets of characters left alone (RFC 3986 unreserved, that
/// plus `/`, HTML forms, JavaScript's `encodeURI`, everything encoded), each
/// with upper- and lower-case hex and a space as `%20` or `+`.
pub(crate) fn encodings(value: &str) -> Vec<(Vec<u8>, Encoding)> {
    let raw = value.as_bytes();
    let mut forms: Vec<(Vec<u8>, Encoding)> = vec![(raw.to_vec(), Encoding::Raw)];
    let mut add = |form: Vec<u8>, encoding: Encoding| {
        if !form.is_empty() && !forms.iter().any(|(known, _)| *known == form) {
            forms.push((form, encoding));
        }
    };
    for (engine, encoding) in [(&STANDARD_NO_PAD, Encoding::Base64), (&URL_SAFE_NO_PAD, Encoding::Base64Url)] {
        for offset in 0..3 {
            add(base64_inner(engine, raw, offset), encoding);
        }
    }
    let sets: [fn(u8) -> bool; 5] = [unreserved, unreserved_or_slash, form_safe, uri_safe, |_| false];
    for keep in sets {
        for plus in [false, true] {
            for upper in [true, false] {
                add(percent_encode(raw, keep, plus, upper), Encoding::Percent);
            }
        }
    }
    add(hex::encode(raw).into_bytes(), Encoding::Hex);
    add(hex::encode_upper(raw).into_bytes(), Encoding::Hex);
    for (ascii, slash) in [(false, false), (true, false), (true, true)] {
        add(json_escape(value, ascii, slash).into_bytes(), Encoding::Json);
    }
    forms
}

/// The characters of the base64 encoding of `value` that depend on `value`
/// alone when it starts `offset` bytes into a 3-byte group.
fn base64_inner(engine: &GeneralPurpose, value: &[u8], offset: usize) -> Vec<u8> {
    let mut shifted = vec![0u8; offset];
    shifted.extend_from_slice(value);
    let encoded = engine.encode(&shifted).into_bytes();
    // Character j holds bits 6j..6j+6; the value's bits are 8*offset..8*(offset+len).
    let start = (8 * offset).div_ceil(6);
    let end = (8 * (offset + value.len()) / 6).min(encoded.len());
    encoded.get(start..end).map(<[u8]>::to_vec).unwrap_or_default()
}

/// RFC 3986 unreserved characters.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// What Python's `quote` leaves alone by default.
fn unreserved_or_slash(b: u8) -> bool {
    unreserved(b) || b == b'/'
}

/// What `application/x-www-form-urlencoded` leaves alone.
fn form_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}

/// What JavaScript's `encodeURI` leaves alone.
fn uri_safe(b: u8) -> bool {
    unreserved(b) || b";,/?:@&=+$!*'()#".contains(&b)
}

fn percent_encode(value: &[u8], keep: fn(u8) -> bool, plus: bool, upper: bool) -> Vec<u8> {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        if b == b' ' && plus {
            out.push(b'+');
        } else if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', digits[usize::from(b >> 4)], digits[usize::from(b & 15)]]);
        }
    }
    out
}

/// `value` as the inside of a JSON string: as most encoders write it, or
/// with non-ASCII as `\uXXXX` (Python's default), and also `/` as `\/`
/// (PHP's default).
fn json_escape(value: &str, ascii: bool, slash: bool) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if slash => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || (ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_inner_parts_are_inside_every_alignment() {
        let value = b"s3cr3t-value-for-tests";
        for prefix_len in 0..6 {
            let mut blob = vec![b'x'; prefix_len];
            blob.extend_from_slice(value);
            blob.extend_from_slice(b" trailing bytes");
            let encoded = STANDARD_NO_PAD.encode(&blob);
            let inner = base64_inner(&STANDARD_NO_PAD, value, prefix_len % 3);
            assert!(inner.len() >= value.len() * 4 / 3 - 3, "inner part too short: {}", inner.len());
            assert!(encoded.as_bytes().windows(inner.len()).any(|w| w == inner), "offset {prefix_len}");
        }
    }

    #[test]
    fn percent_forms_cover_common_encoders() {
        let forms = encodings("a b/c+d~e");
        let has = |s: &str| forms.iter().any(|(f, _)| f == s.as_bytes());
        assert!(has("a%20b%2Fc%2Bd~e"));
        assert!(has("a+b%2fc%2bd~e"));
        assert!(has("a%20b/c%2Bd~e"));
        assert!(has("a+b%2Fc%2Bd%7Ee"));
        assert!(has("a%20b/c+d~e"));
    }

    #[test]
    fn json_forms() {
        assert_eq!(json_escape("a\"b\\c/d\u{e9}", false, false), "a\\\"b\\\\c/d\u{e9}");
        assert_eq!(json_escape("a/d\u{e9}\u{1}", true, true), "a\\/d\\u00e9\\u0001");
    }

    #[test]
    fn debug_hides_the_value() {
        let secret = CustodySecret::new("DB_PASSWORD", "hunter2-but-longer");
        let shown = format!("{secret:?}");
        assert!(shown.contains("DB_PASSWORD"));
        assert!(!shown.contains("hunter2"));
    }
}
