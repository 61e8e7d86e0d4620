//! Incremental splitting of a newline-delimited byte stream into lines.

use bytes::{Bytes, BytesMut};

/// Splits a byte stream that arrives in arbitrary chunks into lines.
///
/// Feed chunks with [`push`](Self::push), take complete lines with
/// [`next_line`](Self::next_line) (without the `\n`, and without a `\r`
/// before it), and at the end of the stream take what is left with
/// [`finish`](Self::finish). Each byte is scanned once, however the stream is
/// chunked.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: BytesMut,
    /// Bytes at the front of `buf` already known to hold no `\n`.
    scanned: usize,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line, if one has arrived.
    pub fn next_line(&mut self) -> Option<Bytes> {
        let offset = self.buf[self.scanned..].iter().position(|&b| b == b'\n');
        match offset {
            Some(offset) => {
                let end = self.scanned + offset;
                let mut line = self.buf.split_to(end + 1);
                self.scanned = 0;
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                Some(line.freeze())
            }
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// Bytes received after the last complete line (not yet returned).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Ends the stream: the unterminated last line, if it holds anything.
    pub fn finish(self) -> Option<Bytes> {
        let mut rest = self.buf;
        if rest.last() == Some(&b'\r') {
            rest.truncate(rest.len() - 1);
        }
        (!rest.is_empty()).then(|| rest.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut LineSplitter) -> Vec<String> {
        std::iter::from_fn(|| s.next_line()).map(|l| String::from_utf8(l.to_vec()).unwrap()).collect()
    }

    #[test]
    fn splits_whole_lines() {
        let mut s = LineSplitter::new();
        s.push(b"one\ntwo\n");
        assert_eq!(drain(&mut s), ["one", "two"]);
        assert_eq!(s.pending(), 0);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn joins_lines_split_across_chunks() {
        let mut s = LineSplitter::new();
        s.push(b"{\"type\":\"std");
        assert!(s.next_line().is_none());
        s.push(b"out\",\"data\":\"hi\"}\n{\"ty");
        assert_eq!(drain(&mut s), [r#"{"type":"stdout","data":"hi"}"#]);
        s.push(b"pe\":\"stderr\"");
        assert!(s.next_line().is_none());
        s.push(b"}\n");
        assert_eq!(drain(&mut s), [r#"{"type":"stderr"}"#]);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_lines() {
        let input = b"alpha\nbeta\r\n\ngamma\n";
        let mut s = LineSplitter::new();
        let mut lines = Vec::new();
        for b in input {
            s.push(std::slice::from_ref(b));
            lines.extend(drain(&mut s));
        }
        assert_eq!(lines, ["alpha", "beta", "", "gamma"]);
    }

    #[test]
    fn strips_crlf() {
        let mut s = LineSplitter::new();
        s.push(b"a\r\nb\r\n");
        assert_eq!(drain(&mut s), ["a", "b"]);
    }

    #[test]
    fn multibyte_utf8_split_inside_a_character() {
        let text = "héllo ✓\n".as_bytes();
        let mut s = LineSplitter::new();
        s.push(&text[..2]); // splits the two bytes of 'é'
        assert!(s.next_line().is_none());
        s.push(&text[2..]);
        assert_eq!(drain(&mut s), ["héllo ✓"]);
    }

    #[test]
    fn unterminated_last_line_is_returned_by_finish() {
        let mut s = LineSplitter::new();
        s.push(b"first\nlast");
        assert_eq!(drain(&mut s), ["first"]);
        assert_eq!(s.pending(), 4);
        assert_eq!(s.finish().as_deref(), Some(&b"last"[..]));
    }

    #[test]
    fn finish_ignores_lone_carriage_return() {
        let mut s = LineSplitter::new();
        s.push(b"\r");
        assert_eq!(s.next_line(), None);
        assert_eq!(s.finish(), None);
    }
}
