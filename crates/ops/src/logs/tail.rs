//! Following one log file across rotation.
//!
//! The follower remembers the file's inode and the offset after the last
//! complete line it handed out ([`FileCursor`], persisted by the caller).
//! - rename rotation (`app.log` → `app.log.1`, a new `app.log`): the old
//!   file is read to its end through the handle still open, then the new
//!   file from its start;
//! - copytruncate (the file shrinks below the offset): read again from 0;
//! - after a restart, a saved cursor whose inode still is the path's resumes
//!   at its offset; otherwise the file is new and is read from its start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::MAX_LINE_BYTES;

/// Where a follower is in a file: its inode and the byte after the last
/// complete line read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCursor {
    pub inode: u64,
    pub offset: u64,
}

/// A follower of one path.
#[derive(Debug)]
pub struct FileTail {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    /// Bytes of the file consumed (complete lines and `partial`).
    offset: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    saved: Option<FileCursor>,
}

/// A partial line longer than this is handed out as it is.
const MAX_PARTIAL: usize = 4 * MAX_LINE_BYTES;

impl FileTail {
    /// A follower of `path`, resuming at `saved` if it still describes the file.
    pub fn new(path: impl Into<PathBuf>, saved: Option<FileCursor>) -> Self {
        Self { path: path.into(), file: None, inode: 0, offset: 0, partial: Vec::new(), saved }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where to resume after a restart: after the last complete line.
    pub fn cursor(&self) -> Option<FileCursor> {
        self.file.as_ref().map(|_| FileCursor { inode: self.inode, offset: self.offset - self.partial.len() as u64 })
    }

    /// Complete lines written since the last call, at most about `max_bytes`
    /// of them (call again while it returns lines). A file that does not
    /// exist (yet) gives none.
    pub fn poll(&mut self, max_bytes: usize) -> std::io::Result<Vec<String>> {
        let mut lines = Vec::new();
        let current = std::fs::metadata(&self.path).ok();
        if self.file.is_some() {
            match &current {
                Some(m) if m.ino() != self.inode => {
                    // Renamed away: finish the old file, then switch.
                    self.read(max_bytes, &mut lines)?;
                    if !lines.is_empty() {
                        return Ok(lines);
                    }
                    self.flush_partial(&mut lines);
                    self.file = None;
                }
                Some(m) if m.len() < self.offset => {
                    // Truncated in place.
                    self.offset = 0;
                    self.partial.clear();
                    if let Some(f) = &mut self.file {
                        f.seek(SeekFrom::Start(0))?;
                    }
                }
                _ => {}
            }
        }
        if self.file.is_none() {
            let Some(meta) = current else { return Ok(lines) };
            let Ok(mut f) = File::open(&self.path) else { return Ok(lines) };
            let start = match self.saved.take() {
                Some(c) if c.inode == meta.ino() && c.offset <= meta.len() => c.offset,
                _ => 0,
            };
            f.seek(SeekFrom::Start(start))?;
            self.file = Some(f);
            self.inode = meta.ino();
            self.offset = start;
        }
        self.read(max_bytes, &mut lines)?;
        Ok(lines)
    }

    fn read(&mut self, max_bytes: usize, lines: &mut Vec<String>) -> std::io::Result<()> {
        let Some(f) = &mut self.file else { return Ok(()) };
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        while total < max_bytes {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n;
            self.offset += n as u64;
            let mut rest = &buf[..n];
            while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                self.partial.extend_from_slice(&rest[..nl]);
                lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                self.partial.clear();
                rest = &rest[nl + 1..];
            }
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_PARTIAL {
                lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                self.partial.clear();
            }
        }
        Ok(())
    }

    fn flush_partial(&mut self, lines: &mut Vec<String>) {
        if !self.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&self.partial).into_owned());
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(p: &Path, s: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap().write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn follows_appends_and_holds_partial_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        let mut t = FileTail::new(&p, None);
        assert!(t.poll(1 << 20).unwrap().is_empty(), "absent file");
        append(&p, "one\ntw");
        assert_eq!(t.poll(1 << 20).unwrap(), vec!["one"]);
        assert_eq!(t.cursor().unwrap().offset, 4);
        append(&p, "o\n");
        assert_eq!(t.poll(1 << 20).unwrap(), vec!["two"]);
    }

    #[test]
    fn rename_rotation_finishes_the_old_file_then_reads_the_new() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        append(&p, "1\n");
        let mut t = FileTail::new(&p, None);
        assert_eq!(t.poll(1 << 20).unwrap(), vec!["1"]);
        append(&p, "2\n");
        std::fs::rename(&p, d.path().join("a.log.1")).unwrap();
        append(&p, "3\n");
        let mut got = t.poll(1 << 20).unwrap();
        got.extend(t.poll(1 << 20).unwrap());
        assert_eq!(got, vec!["2", "3"]);
    }

    #[test]
    fn copytruncate_reads_again_from_the_start() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        append(&p, "first line\nsecond line\n");
        let mut t = FileTail::new(&p, None);
        assert_eq!(t.poll(1 << 20).unwrap().len(), 2);
        std::fs::OpenOptions::new().write(true).truncate(true).open(&p).unwrap();
        append(&p, "x\n");
        assert_eq!(t.poll(1 << 20).unwrap(), vec!["x"]);
    }

    #[test]
    fn a_saved_cursor_resumes_only_on_the_same_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        append(&p, "a\nb\n");
        let mut t = FileTail::new(&p, None);
        t.poll(1 << 20).unwrap();
        let c = t.cursor().unwrap();
        append(&p, "c\n");
        assert_eq!(FileTail::new(&p, Some(c)).poll(1 << 20).unwrap(), vec!["c"]);
        let other = FileCursor { inode: c.inode + 1, offset: 2 };
        assert_eq!(FileTail::new(&p, Some(other)).poll(1 << 20).unwrap(), vec!["a", "b", "c"]);
    }
}
