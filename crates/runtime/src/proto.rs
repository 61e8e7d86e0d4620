//! The control protocol between the server and a sandbox's init.
//!
//! One stream socket per sandbox. Each frame is
//! `[u32 meta_len LE][u32 data_len LE][meta: JSON][data: raw bytes]`: the JSON
//! part carries the message, the raw part carries bulk bytes (stdin, output
//! chunks, file contents) without encoding.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use superserver_wire::FileEntry;

/// Largest JSON part accepted in a frame.
pub const MAX_META: usize = 1 << 20;
/// Largest raw part accepted in a frame.
pub const MAX_DATA: usize = 256 << 20;
const HEADER: usize = 8;

/// A command to start inside the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecSpec {
    pub id: u32,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub root: bool,
    pub timeout_ms: Option<u64>,
    pub max_output: u64,
}

/// Server → init.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToInit {
    /// Start a command; the frame's data is its stdin.
    Exec(ExecSpec),
    /// Kill a running command's processes.
    Kill {
        id: u32,
    },
    /// Write a file; the frame's data is the content.
    WriteFile {
        req: u32,
        path: String,
        mode: u32,
    },
    ReadFile {
        req: u32,
        path: String,
        max_bytes: u64,
    },
    ListDir {
        req: u32,
        path: String,
    },
}

/// How a command ended, as the init saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExitReport {
    pub id: u32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_us: u64,
    pub cpu_us: u64,
    pub max_rss_bytes: u64,
    pub stdout_total: u64,
    pub stderr_total: u64,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// OOM kills in the command's own cgroup (persistent sandboxes).
    pub oom_kills: u64,
    /// Set when the command could not be started.
    pub error: Option<String>,
}

/// Why a file operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileErrorKind {
    NotFound,
    /// The path leaves the allowed area (`..`, symlink out, absolute elsewhere).
    Outside,
    IsDirectory,
    NotDirectory,
    TooLarge,
    NoSpace,
    Other,
}

/// Init → server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromInit {
    Ready {
        landlock: String,
    },
    SetupFailed {
        message: String,
    },
    /// Output chunk of command `id`; stream 1 = stdout, 2 = stderr; data = bytes.
    Output {
        id: u32,
        stream: u8,
    },
    Exited(ExitReport),
    FileWritten {
        req: u32,
        size: u64,
    },
    /// Content of a file; data = bytes.
    FileData {
        req: u32,
    },
    Listing {
        req: u32,
        path: String,
        entries: Vec<FileEntry>,
    },
    FileError {
        req: u32,
        kind: FileErrorKind,
        message: String,
    },
}

/// Encodes one frame.
pub fn encode<T: Serialize>(msg: &T, data: &[u8]) -> Vec<u8> {
    let meta = serde_json::to_vec(msg).expect("protocol messages always serialize");
    let mut out = Vec::with_capacity(HEADER + meta.len() + data.len());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(data);
    out
}

/// A protocol violation.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("frame too large ({meta} + {data} bytes)")]
    TooLarge { meta: usize, data: usize },
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Parses the lengths of a frame header.
pub fn header_lengths(h: &[u8; HEADER]) -> Result<(usize, usize), ProtoError> {
    let meta = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let data = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if meta > MAX_META || data > MAX_DATA {
        return Err(ProtoError::TooLarge { meta, data });
    }
    Ok((meta, data))
}

/// Accumulates bytes from a non-blocking socket and yields complete frames.
#[derive(Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<(T, Vec<u8>)>, ProtoError> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let mut h = [0u8; HEADER];
        h.copy_from_slice(&self.buf[..HEADER]);
        let (meta, data) = header_lengths(&h)?;
        if self.buf.len() < HEADER + meta + data {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&self.buf[HEADER..HEADER + meta])?;
        let payload = self.buf[HEADER + meta..HEADER + meta + data].to_vec();
        self.buf.drain(..HEADER + meta + data);
        Ok(Some((msg, payload)))
    }
}

/// Reads one frame from an async stream; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R, T>(r: &mut R) -> std::io::Result<Option<(T, Vec<u8>)>>
where
    R: tokio::io::AsyncRead + Unpin,
    T: DeserializeOwned,
{
    use tokio::io::AsyncReadExt;
    let mut h = [0u8; HEADER];
    match r.read_exact(&mut h).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (meta, data) = header_lengths(&h).map_err(std::io::Error::other)?;
    let mut body = vec![0u8; meta + data];
    r.read_exact(&mut body).await?;
    let msg = serde_json::from_slice(&body[..meta]).map_err(std::io::Error::other)?;
    body.drain(..meta);
    Ok(Some((msg, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_split_reads() {
        let a = encode(&ToInit::Kill { id: 7 }, b"");
        let b = encode(&ToInit::WriteFile { req: 1, path: "x".into(), mode: 0o644 }, b"hello");
        let all: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        let mut fb = FrameBuf::default();
        let mut got = Vec::new();
        for chunk in all.chunks(3) {
            fb.extend(chunk);
            while let Some((m, d)) = fb.next_frame::<ToInit>().unwrap() {
                got.push((m, d));
            }
        }
        assert_eq!(got.len(), 2);
        assert!(matches!(got[0].0, ToInit::Kill { id: 7 }));
        assert_eq!(got[1].1, b"hello");
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut fb = FrameBuf::default();
        let mut h = Vec::new();
        h.extend_from_slice(&(u32::MAX).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        fb.extend(&h);
        assert!(fb.next_frame::<ToInit>().is_err());
    }
}
