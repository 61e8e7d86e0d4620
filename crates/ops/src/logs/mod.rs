//! Log lines as data: the level a line declares ([`level`]), the template
//! it belongs to ([`miner`], Drain-style), and a file follower that survives
//! rotation ([`tail`]). No I/O beyond the followed files; storage and the
//! followers' scheduling live in the store and the core.

pub mod container;
pub mod level;
pub mod miner;
pub mod tail;

pub use level::{detect_level, Level};
pub use miner::{Mined, Miner, MinerOptions};
pub use tail::{FileCursor, FileTail};

/// Longest stored line, in bytes; longer lines are cut (at a char boundary)
/// and marked with a trailing `…`.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// `line` cut to at most [`MAX_LINE_BYTES`] bytes, on a char boundary, with
/// trailing newline characters removed.
pub fn bound_line(line: &str) -> String {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES - '…'.len_utf8();
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = String::with_capacity(end + 3);
    s.push_str(&line[..end]);
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_LINE_BYTES);
        let b = bound_line(&long);
        assert!(b.len() <= MAX_LINE_BYTES);
        assert!(b.ends_with('…'));
        assert_eq!(bound_line("short\r\n"), "short");
    }
}
