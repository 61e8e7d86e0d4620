//! The API key a [`crate::Client`] sends, kept out of `Debug` output.

use std::fmt;

use reqwest::header::HeaderValue;

/// What goes into the `Authorization` header of each request.
#[derive(Clone, Default)]
pub(crate) enum Auth {
    /// No header: the server answers 401 where a key is needed.
    #[default]
    None,
    /// `Bearer <key>`, marked sensitive so that HTTP/2 never indexes it.
    Bearer(HeaderValue),
    /// A key that cannot be sent; every call fails with this reason.
    Invalid(&'static str),
}

impl Auth {
    pub(crate) fn bearer(key: String) -> Self {
        let key = key.trim();
        if key.is_empty() {
            // No key to send (e.g. a server with authentication off).
            return Auth::None;
        }
        match HeaderValue::from_str(&format!("Bearer {key}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                Auth::Bearer(value)
            }
            Err(_) => Auth::Invalid("it contains characters that cannot go into an HTTP header (e.g. a line break)"),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Invalid(reason) => f.debug_tuple("Invalid").field(reason).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let auth = Auth::bearer("  ssk_topsecret\n".into());
        assert!(matches!(&auth, Auth::Bearer(v) if v.as_bytes() == b"Bearer ssk_topsecret"));
        assert_eq!(format!("{auth:?}"), "Bearer(<redacted>)");
    }

    #[test]
    fn empty_keys_are_none_and_unusable_ones_are_refused_without_echoing_them() {
        assert!(matches!(Auth::bearer("   ".into()), Auth::None));
        let auth = Auth::bearer("ssk_a\nb".into());
        assert!(matches!(auth, Auth::Invalid(_)));
        assert!(!format!("{auth:?}").contains("ssk_a"));
    }
}
