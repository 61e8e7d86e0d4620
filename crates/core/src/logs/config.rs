//! `[logs]`: what is followed and how long it is kept.

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Follow, mine and store logs at all.
    pub enabled: bool,
    /// Follow every running container discovery finds.
    pub containers: bool,
    /// Lines older than this are removed.
    pub retention_hours: u64,
    /// Estimated disk the stored lines may take (text, indexes, full-text
    /// index); the oldest lines go first beyond it.
    pub max_disk_mb: u64,
    /// Seconds between two retention passes.
    pub prune_interval_seconds: u64,
    /// Milliseconds between two looks at the configured files.
    pub file_poll_ms: u64,
    /// Files to follow: `[[logs.files]] service = "app", paths = ["/var/log/app/*.log"]`.
    pub files: Vec<LogFiles>,
}

/// Files whose lines are the logs of one service. In `paths`, `*` and `?`
/// match within the file name only (the directory is literal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFiles {
    pub service: String,
    pub paths: Vec<String>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            containers: true,
            retention_hours: 72,
            max_disk_mb: 512,
            prune_interval_seconds: 60,
            file_poll_ms: 500,
            files: Vec::new(),
        }
    }
}

impl LogsConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.retention_hours == 0 || self.max_disk_mb == 0 || self.prune_interval_seconds == 0 {
            return Err(CoreError::Config(
                "logs.retention_hours, logs.max_disk_mb and logs.prune_interval_seconds must be at least 1".into(),
            ));
        }
        if self.file_poll_ms < 10 {
            return Err(CoreError::Config("logs.file_poll_ms must be at least 10".into()));
        }
        for f in &self.files {
            if f.service.is_empty() || f.service.len() > 128 || f.service.starts_with("sandbox:") {
                return Err(CoreError::Config(format!(
                    "logs.files: service {:?} must be 1 to 128 characters and not start with `sandbox:`",
                    f.service
                )));
            }
            for p in &f.paths {
                let path = std::path::Path::new(p);
                let dir_has_glob = path.parent().is_some_and(|d| d.to_string_lossy().contains(['*', '?']));
                if !path.is_absolute() || dir_has_glob || path.file_name().is_none() {
                    return Err(CoreError::Config(format!(
                        "logs.files: path {p:?} must be absolute, with `*`/`?` in the file name only"
                    )));
                }
            }
        }
        Ok(())
    }
}
