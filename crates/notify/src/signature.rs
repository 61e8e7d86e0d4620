//! Webhook signatures: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! See the crate documentation for the scheme a receiver implements.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signature: `t=<unix seconds>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "SuperServer-Signature";
/// Header carrying the event's unique id.
pub const EVENT_ID_HEADER: &str = "SuperServer-Event-Id";
/// Header carrying the event type, e.g. `quota.warning`.
pub const EVENT_TYPE_HEADER: &str = "SuperServer-Event-Type";
/// Header carrying the idempotency key: the event id, the same on every retry.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Header carrying the attempt number, 1 for the first try.
pub const ATTEMPT_HEADER: &str = "SuperServer-Delivery-Attempt";

/// Tolerance receivers should use for the signature's timestamp: 5 minutes.
pub const DEFAULT_TOLERANCE_S: i64 = 300;

/// Length of an HMAC-SHA256 in bytes.
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp_s: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for `body` sent at `timestamp_s`:
/// `t=<timestamp_s>,v1=<lower-case hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp_s, body).finalize().into_bytes();
    format!("t={timestamp_s},v1={}", hex::encode(tag))
}

/// Verifies a signature header value produced by [`sign`]: one of its `v1`
/// values must equal the HMAC of `"<t>.<body>"` (compared in constant time),
/// and `t` must be within `tolerance_s` seconds of `now_s` (either way).
/// Unknown keys in the header are ignored.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_s: i64, tolerance_s: i64) -> Result<(), String> {
    let (timestamp, candidates) = parse(header)?;
    let expected = mac(secret, timestamp, body);
    // `verify_slice` compares in constant time.
    if !candidates.iter().any(|tag| expected.clone().verify_slice(tag).is_ok()) {
        return Err("signature does not match the body (wrong secret or altered body)".to_owned());
    }
    let age = now_s.abs_diff(timestamp);
    if age > tolerance_s.max(0).unsigned_abs() {
        return Err(format!(
            "signature timestamp {timestamp} is {age} s away from now ({now_s}); limit {tolerance_s} s"
        ));
    }
    Ok(())
}

/// Splits `t=<t>,v1=<hex>[,v1=<hex>…]` into the timestamp and decoded tags.
fn parse(header: &str) -> Result<(i64, Vec<[u8; MAC_LEN]>), String> {
    let malformed = |why: &str| format!("malformed signature header ({why}); expected t=<unix seconds>,v1=<hex>");
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or_else(|| malformed("a part has no '='"))?;
        match key {
            "t" if timestamp.is_some() => return Err(malformed("t given twice")),
            "t" => timestamp = Some(value.parse::<i64>().map_err(|_| malformed("t is not an integer"))?),
            "v1" => {
                let mut tag = [0u8; MAC_LEN];
                hex::decode_to_slice(value, &mut tag).map_err(|_| malformed("v1 is not 64 hex digits"))?;
                tags.push(tag);
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("no t"))?;
    if tags.is_empty() {
        return Err(malformed("no v1"));
    }
    Ok((timestamp, tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_0123456789";
    const BODY: &[u8] = br#"{"type":"quota.warning","tenant":"t1","used":91}"#;
    const T: i64 = 1_700_000_000;

    #[test]
    fn sign_known_answer() {
        // Computed independently: HMAC-SHA256 over the literal message bytes.
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(br#"1700000000.{"type":"quota.warning","tenant":"t1","used":91}"#);
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(sign(SECRET, T, BODY), format!("t=1700000000,v1={expected}"));
    }

    #[test]
    fn sign_matches_a_value_computed_elsewhere() {
        // From Python: hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
        let expected = "9eb8ed9433b834182941c30952b67b1292af44d151245903bf5b9f04577f6adc";
        assert_eq!(sign(SECRET, T, BODY), format!("t=1700000000,v1={expected}"));
    }

    #[test]
    fn verify_accepts_own_signature() {
        let header = sign(SECRET, T, BODY);
        verify(SECRET, &header, BODY, T, DEFAULT_TOLERANCE_S).unwrap();
        verify(SECRET, &header, BODY, T + 300, DEFAULT_TOLERANCE_S).unwrap();
        verify(SECRET, &header, BODY, T - 300, DEFAULT_TOLERANCE_S).unwrap();
        // Spaces after commas, unknown schemes and a second (rotated-secret) v1 are fine.
        let other = sign(b"old secret", T, BODY);
        let v1_other = other.split_once(",v1=").unwrap().1;
        let v1 = header.split_once(",v1=").unwrap().1;
        let multi = format!("t={T}, v0=abc, v1={v1_other}, v1={v1}");
        verify(SECRET, &multi, BODY, T, DEFAULT_TOLERANCE_S).unwrap();
    }

    #[test]
    fn verify_rejects_changed_body_and_wrong_secret() {
        let header = sign(SECRET, T, BODY);
        let e = verify(SECRET, &header, br#"{"type":"quota.warning","tenant":"t1","used":19}"#, T, 300).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = verify(b"another secret", &header, BODY, T, 300).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        // Changing t without re-signing breaks the signature too.
        let moved = header.replace("t=1700000000", "t=1700000100");
        assert!(verify(SECRET, &moved, BODY, T, 300).unwrap_err().contains("does not match"));
    }

    #[test]
    fn verify_rejects_malformed_headers() {
        let v1 = sign(SECRET, T, BODY).split_once(",v1=").unwrap().1.to_owned();
        for header in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={v1}"),
            format!("t={T}"),
            format!("t=soon,v1={v1}"),
            format!("t={T},v1={}", &v1[..62]),
            format!("t={T},v1={}zz", &v1[..62]),
            format!("t={T},t={T},v1={v1}"),
        ] {
            let e = verify(SECRET, &header, BODY, T, 300).expect_err(&header);
            assert!(e.contains("malformed"), "{header:?}: {e}");
        }
    }

    #[test]
    fn verify_rejects_stale_and_future_timestamps() {
        let header = sign(SECRET, T, BODY);
        let e = verify(SECRET, &header, BODY, T + 301, 300).unwrap_err();
        assert!(e.contains("301 s away"), "{e}");
        assert!(verify(SECRET, &header, BODY, T - 301, 300).is_err());
        assert!(verify(SECRET, &header, BODY, i64::MAX, 300).is_err());
        assert!(verify(SECRET, &sign(SECRET, i64::MIN, BODY), BODY, i64::MAX, i64::MAX).is_err());
    }
}
