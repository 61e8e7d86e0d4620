//! The forms a secret (or a placeholder) takes on the wire: raw, base64
//! (standard and URL-safe, wherever it sits inside a longer base64 text),
//! percent-encoded and hex. Searching for every form finds a value that a
//! client encoded on its way out.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

/// Every form of `value`, each at least a few bytes long, without
/// duplicates. The base64 forms are the part of the encoding that depends
/// on `value` alone, for each of the three positions it can start at in a
/// longer base64 text; they are substrings of any encoding that contains
/// it, padded or not.
pub fn variants(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![value.to_vec()];
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            if let Some(core) = base64_core(engine, value, offset) {
                out.push(core);
            }
        }
    }
    out.push(percent(value, true, false));
    out.push(percent(value, false, false));
    out.push(percent(value, true, true));
    out.push(hex::encode(value).into_bytes());
    out.push(hex::encode_upper(value).into_bytes());
    out.retain(|v| v.len() >= 4);
    out.sort();
    out.dedup();
    out
}

/// The characters of the base64 encoding of `value`, starting `offset`
/// bytes into a 3-byte group, that no neighbouring byte influences.
fn base64_core(engine: &impl Engine, value: &[u8], offset: usize) -> Option<Vec<u8>> {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(value);
    // Only whole groups: the last partial one mixes with what follows.
    let whole = padded.len() / 3 * 3;
    let text = engine.encode(&padded[..whole]).into_bytes();
    // Characters covering the leading filler: 2 for offset 1, 3 for offset 2.
    let skip = match offset {
        0 => 0,
        1 => 2,
        _ => 3,
    };
    (text.len() > skip + 4).then(|| text[skip..].to_vec())
}

/// Percent-encoding of everything but the unreserved characters, with
/// upper- or lower-case hex digits; `form` writes spaces as `+`.
fn percent(value: &[u8], upper: bool, form: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else if form && b == b' ' {
            out.push(b'+');
        } else if upper {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.extend_from_slice(format!("%{b:02x}").as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn base64_inside_longer_text_is_found_at_every_alignment() {
        let value = b"s3cr3t-VALUE/with+chars";
        let forms = variants(value);
        for prefix in ["", "a", "ab", "abc", "user:"] {
            for suffix in ["", "x", "xy", "\n"] {
                let mut text = prefix.as_bytes().to_vec();
                text.extend_from_slice(value);
                text.extend_from_slice(suffix.as_bytes());
                for enc in [STANDARD.encode(&text), URL_SAFE_NO_PAD.encode(&text)] {
                    assert!(
                        forms.iter().any(|f| contains(enc.as_bytes(), f)),
                        "not found in {enc} ({prefix:?} + value + {suffix:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn percent_and_hex_forms() {
        let forms = variants(b"a b/c");
        for f in ["a%20b%2Fc", "a%20b%2fc", "a+b%2Fc", "6120622f63", "6120622F63", "a b/c"] {
            assert!(forms.contains(&f.as_bytes().to_vec()), "{f} missing from {forms:?}");
        }
    }
}
