//! The results table: one row per figure, with its target and verdict.

use std::fmt::Write as _;

/// How a figure compares with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Miss,
    /// A figure with no target (a peer, a breakdown).
    Info,
    /// Not measured; the note says why.
    Skipped,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Miss => "MISS",
            Self::Info => "info",
            Self::Skipped => "skipped",
        }
    }

    /// PASS when `ok`, else MISS.
    pub fn of(ok: bool) -> Self {
        if ok {
            Self::Pass
        } else {
            Self::Miss
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
    pub note: String,
}

/// Every figure of one run, printed as it is measured and again at the end.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Adds a row and prints it at once, so a long run shows progress.
    pub fn add(&mut self, figure: &str, value: String, target: &str, verdict: Verdict, note: String) {
        let row = Row { figure: figure.into(), value, target: target.into(), verdict, note };
        let tgt = if row.target.is_empty() { String::new() } else { format!(" [target {}]", row.target) };
        let note = if row.note.is_empty() { String::new() } else { format!(" — {}", row.note) };
        println!("  {:<7} {}: {}{tgt}{note}", row.verdict.as_str(), row.figure, row.value);
        self.rows.push(row);
    }

    /// An informational figure with no target.
    pub fn info(&mut self, figure: &str, value: String, note: String) {
        self.add(figure, value, "", Verdict::Info, note);
    }

    pub fn skipped(&mut self, figure: &str, why: String) {
        self.add(figure, "—".into(), "", Verdict::Skipped, why);
    }

    /// Rows whose verdict is MISS.
    pub fn misses(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Miss).collect()
    }

    pub fn passes(&self) -> usize {
        self.rows.iter().filter(|r| r.verdict == Verdict::Pass).count()
    }

    /// The whole table as Markdown (readable in a terminal, pasteable in docs).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| figure | measured | target | verdict | notes |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&r.figure),
                cell(&r.value),
                cell(&r.target),
                r.verdict.as_str(),
                cell(&r.note)
            );
        }
        out
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_pipes_and_counts_misses() {
        let mut r = Report::default();
        r.add("a", "1 ms".into(), "≤ 3 ms", Verdict::Pass, "x | y".into());
        r.add("b", "9 ms".into(), "≤ 3 ms", Verdict::Miss, String::new());
        r.info("c", "2".into(), String::new());
        let md = r.markdown();
        assert!(md.contains("x \\| y"), "{md}");
        assert_eq!(r.misses().len(), 1);
        assert_eq!(r.passes(), 1);
    }
}
