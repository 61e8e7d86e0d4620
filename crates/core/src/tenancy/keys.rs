//! API keys: `ssk_` followed by 43 base62 characters (256 random bits).
//!
//! The first 12 characters after `ssk_` are the key's visible prefix: they
//! find its row and identify it in lists. The store keeps only the SHA-256
//! of the whole key (a key has far more entropy than a password, so a slow
//! hash buys nothing), and a presented key is compared to it in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "ssk_";
/// Characters of the random part shown in lists and used for lookup.
const VISIBLE: usize = 12;
/// Length of the random part: 43 base62 characters ≥ 256 bits.
const SECRET_LEN: usize = 43;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A newly generated key.
pub struct NewKey {
    /// The whole key, shown once.
    pub key: String,
    /// `ssk_` and the first characters: stored, shown in lists.
    pub prefix: String,
    pub hash: [u8; 32],
}

/// Generates a key from the kernel's random source.
pub fn generate() -> NewKey {
    let mut secret = String::with_capacity(SECRET_LEN);
    let mut buf = [0u8; 64];
    while secret.len() < SECRET_LEN {
        getrandom::getrandom(&mut buf).expect("the kernel's random source is available");
        // Rejection sampling: bytes ≥ 248 would bias the alphabet.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if secret.len() == SECRET_LEN {
                break;
            }
            secret.push(ALPHABET[usize::from(b % 62)] as char);
        }
    }
    let key = format!("{KEY_PREFIX}{secret}");
    NewKey { prefix: key[..KEY_PREFIX.len() + VISIBLE].to_string(), hash: hash(&key), key }
}

/// SHA-256 of a key.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Why a presented string is not even shaped like a key.
pub fn check_shape(key: &str) -> Result<(), &'static str> {
    let Some(secret) = key.strip_prefix(KEY_PREFIX) else {
        return Err("API keys start with `ssk_`");
    };
    if secret.len() != SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("the key is malformed (wrong length or characters)");
    }
    Ok(())
}

/// The lookup prefix of a well-shaped key.
pub fn prefix_of(key: &str) -> &str {
    &key[..KEY_PREFIX.len() + VISIBLE]
}

/// Whether `key` hashes to `stored`, compared in constant time.
pub fn matches(key: &str, stored: &[u8; 32]) -> bool {
    hash(key).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_shaped_and_distinct() {
        let a = generate();
        let b = generate();
        assert_ne!(a.key, b.key);
        for k in [&a, &b] {
            check_shape(&k.key).unwrap();
            assert_eq!(prefix_of(&k.key), k.prefix);
            assert!(matches(&k.key, &k.hash));
            assert_eq!(k.key.len(), KEY_PREFIX.len() + SECRET_LEN);
        }
        assert!(!matches(&a.key, &b.hash));
    }

    #[test]
    fn malformed_keys_are_named() {
        assert!(check_shape("Bearer abc").unwrap_err().contains("ssk_"));
        assert!(check_shape("ssk_short").unwrap_err().contains("malformed"));
        let bad = format!("ssk_{}", "!".repeat(SECRET_LEN));
        assert!(check_shape(&bad).is_err());
    }

    #[test]
    fn a_changed_character_does_not_match() {
        let k = generate();
        let mut other = k.key.clone().into_bytes();
        let last = other.len() - 1;
        other[last] = if other[last] == b'a' { b'b' } else { b'a' };
        assert!(!matches(std::str::from_utf8(&other).unwrap(), &k.hash));
    }
}
