//! Errors of discovery's readers. [`crate::discover`] itself never fails: a
//! source that errors becomes a note in the snapshot.

use std::path::PathBuf;

/// An error reading one discovery source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file under `/proc` (or another host path) could not be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// A line of a kernel table did not have the expected shape.
    #[error("{what}: malformed line {line:?}: {reason}")]
    Malformed { what: String, line: String, reason: String },
    /// The Docker engine could not be reached or answered with an error.
    #[error("docker engine: {0}")]
    Docker(#[from] bollard::errors::Error),
    /// The Docker socket does not exist.
    #[error("docker socket {0} absent; containers not discovered")]
    DockerSocketAbsent(PathBuf),
    /// systemd is not the init system here.
    #[error("systemd not running")]
    SystemdNotRunning,
    /// `systemctl` failed or printed something unparseable.
    #[error("systemctl: {0}")]
    Systemctl(String),
}

/// Result of discovery's readers.
pub type Result<T, E = Error> = std::result::Result<T, E>;
