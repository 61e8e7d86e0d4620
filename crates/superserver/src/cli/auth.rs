//! Which API key the client commands send: `--api-key` (or
//! `SUPERSERVER_API_KEY`), else `--api-key-file`, else the admin key the
//! first `superserver serve` wrote to `DATA_DIR/admin.key`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::ClientOpts;

/// The server's default data directory (`data_dir` in its config).
pub(crate) const DEFAULT_DATA_DIR: &str = "superserver-data";
/// The file in the data directory that holds the bootstrap admin key.
pub(crate) const ADMIN_KEY_FILE: &str = "admin.key";

/// An API key given on the command line or in the environment. Its `Debug`
/// form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The clap parser: keeps the key without surrounding white space.
    pub(crate) fn parse(text: &str) -> Result<ApiKey, String> {
        Ok(ApiKey(text.trim().to_owned()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Where the key that is sent came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--api-key` or `SUPERSERVER_API_KEY`.
    Given,
    /// `--api-key-file` or `SUPERSERVER_API_KEY_FILE`.
    File(PathBuf),
    /// `DATA_DIR/admin.key`.
    AdminFile(PathBuf),
}

/// Why no key is sent; each case names `DATA_DIR/admin.key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoKey {
    /// The admin key file does not exist (or is empty).
    Missing(PathBuf),
    /// The admin key file exists but the server is not on loopback: a local
    /// admin key is never sent to another machine.
    NotLoopback(PathBuf),
    /// The admin key file exists but cannot be read (e.g. it is root's).
    Unreadable(PathBuf, String),
}

/// The outcome of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    Key(ApiKey, Source),
    NoKey(NoKey),
}

/// Finds the key to send to a server (`loopback`: whether it is on this
/// machine's loopback). Fails only when `--api-key-file` cannot be used.
pub(crate) fn resolve(opts: &ClientOpts, loopback: bool) -> anyhow::Result<Resolved> {
    if let Some(key) = opts.api_key.as_ref().filter(|k| !k.0.is_empty()) {
        return Ok(Resolved::Key(key.clone(), Source::Given));
    }
    if let Some(path) = &opts.api_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the API key file {} (--api-key-file)", path.display()))?;
        let key = text.trim();
        anyhow::ensure!(!key.is_empty(), "the API key file {} is empty", path.display());
        return Ok(Resolved::Key(ApiKey(key.to_owned()), Source::File(path.clone())));
    }
    Ok(admin_key(&admin_key_path(opts.data_dir.as_deref()), loopback))
}

/// `DATA_DIR/admin.key`, with the server's default data directory.
pub(crate) fn admin_key_path(data_dir: Option<&Path>) -> PathBuf {
    data_dir.unwrap_or(Path::new(DEFAULT_DATA_DIR)).join(ADMIN_KEY_FILE)
}

/// The admin key in `path`, if it exists, can be read and the server is on
/// loopback.
fn admin_key(path: &Path, loopback: bool) -> Resolved {
    if !loopback {
        let missing = matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        let why = if missing { NoKey::Missing(path.to_owned()) } else { NoKey::NotLoopback(path.to_owned()) };
        return Resolved::NoKey(why);
    }
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            Resolved::Key(ApiKey(text.trim().to_owned()), Source::AdminFile(path.to_owned()))
        }
        Ok(_) => Resolved::NoKey(NoKey::Missing(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Resolved::NoKey(NoKey::Missing(path.to_owned())),
        Err(e) => Resolved::NoKey(NoKey::Unreadable(path.to_owned(), e.to_string())),
    }
}

/// What to tell a user whose request the server refused with 401.
pub(crate) fn unauthorized_hint(resolved: &Resolved, url: &str) -> String {
    const SET: &str = "set SUPERSERVER_API_KEY or --api-key";
    match resolved {
        Resolved::NoKey(NoKey::Missing(path)) => format!(
            "{SET}; the first `superserver serve` wrote an admin key to {} \
             (pass --data-dir or set SUPERSERVER_DATA_DIR if the server uses another data directory)",
            path.display()
        ),
        Resolved::NoKey(NoKey::NotLoopback(path)) => format!(
            "{SET}; the admin key in {} is only sent to a server on this machine's loopback, not to {url}",
            path.display()
        ),
        Resolved::NoKey(NoKey::Unreadable(path, error)) => format!(
            "{SET}; the admin key in {} cannot be read ({error}): run as the user that runs the server, \
             or pass the key",
            path.display()
        ),
        Resolved::Key(_, Source::Given) => "the server refused the key from --api-key or SUPERSERVER_API_KEY: \
             check that it is complete and has not been revoked or expired"
            .into(),
        Resolved::Key(_, Source::File(path)) => format!(
            "the server refused the key in {}: check that it is complete and has not been revoked or expired",
            path.display()
        ),
        Resolved::Key(_, Source::AdminFile(path)) => format!(
            "the server refused the admin key in {}: it may belong to another server or have been revoked; {SET}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options built directly, so that no environment variable of the test
    /// run (SUPERSERVER_API_KEY …) can leak in.
    fn opts(api_key: Option<&str>, key_file: Option<&Path>, data_dir: Option<&Path>) -> ClientOpts {
        ClientOpts {
            url: superserver_client::DEFAULT_URL.into(),
            api_key: api_key.map(|k| ApiKey::parse(k).expect("any text is a key")),
            api_key_file: key_file.map(Path::to_owned),
            data_dir: data_dir.map(Path::to_owned),
            json: false,
        }
    }

    #[test]
    fn a_given_key_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(ADMIN_KEY_FILE), "ssk_admin\n").expect("write");
        let o = opts(Some(" ssk_given "), None, Some(dir.path()));
        let resolved = resolve(&o, true).expect("resolved");
        assert_eq!(resolved, Resolved::Key(ApiKey("ssk_given".into()), Source::Given));
        assert!(!format!("{o:?} {resolved:?}").contains("ssk_given"));
    }

    #[test]
    fn admin_key_file_is_the_fallback_on_loopback_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(ADMIN_KEY_FILE);
        std::fs::write(&path, "  ssk_admin\n").expect("write");
        let o = opts(Some(""), None, Some(dir.path()));
        let resolved = resolve(&o, true).expect("resolved");
        assert_eq!(resolved, Resolved::Key(ApiKey("ssk_admin".into()), Source::AdminFile(path.clone())));
        assert_eq!(resolve(&o, false).expect("resolved"), Resolved::NoKey(NoKey::NotLoopback(path.clone())));
        let hint = unauthorized_hint(&resolve(&o, false).expect("resolved"), "http://10.0.0.1:7070");
        assert!(hint.contains("only sent to a server on this machine's loopback"), "{hint}");
    }

    #[test]
    fn missing_or_empty_admin_key_means_no_key_and_a_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(ADMIN_KEY_FILE);
        let o = opts(None, None, Some(dir.path()));
        let resolved = resolve(&o, true).expect("resolved");
        assert_eq!(resolved, Resolved::NoKey(NoKey::Missing(path.clone())));
        let hint = unauthorized_hint(&resolved, "http://127.0.0.1:7070");
        let expected = format!(
            "set SUPERSERVER_API_KEY or --api-key; the first `superserver serve` wrote an admin key to {}",
            path.display()
        );
        assert!(hint.starts_with(&expected), "{hint}");
        std::fs::write(&path, " \n").expect("write");
        assert_eq!(resolve(&o, true).expect("resolved"), Resolved::NoKey(NoKey::Missing(path)));
    }

    #[test]
    fn unreadable_admin_key_is_named() {
        // A directory in place of the file cannot be read, even by root.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(ADMIN_KEY_FILE);
        std::fs::create_dir(&path).expect("mkdir");
        let o = opts(None, None, Some(dir.path()));
        let resolved = resolve(&o, true).expect("resolved");
        assert!(matches!(&resolved, Resolved::NoKey(NoKey::Unreadable(p, _)) if *p == path), "{resolved:?}");
        assert!(unauthorized_hint(&resolved, "").contains("cannot be read"));
    }

    #[test]
    fn key_file_is_read_and_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("key");
        std::fs::write(&file, "ssk_from_file\n").expect("write");
        let o = opts(None, Some(&file), Some(Path::new("/nonexistent")));
        assert_eq!(
            resolve(&o, true).expect("resolved"),
            Resolved::Key(ApiKey("ssk_from_file".into()), Source::File(file))
        );
        let o = opts(None, Some(Path::new("/nonexistent/key")), None);
        let err = resolve(&o, true).expect_err("no such file");
        assert!(err.to_string().contains("/nonexistent/key"), "{err}");
    }

    #[test]
    fn default_data_dir_is_the_servers() {
        assert_eq!(admin_key_path(None), Path::new("superserver-data/admin.key"));
        assert_eq!(admin_key_path(Some(Path::new("/var/lib/ss"))), Path::new("/var/lib/ss/admin.key"));
    }
}
