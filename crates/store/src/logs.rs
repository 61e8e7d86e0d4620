//! Log lines, their templates, full-text search (FTS5) and the followers'
//! cursors. A batch of lines, its template counts and the cursors that
//! follow it commit together, so a follower resumes exactly after what is
//! stored.

use rusqlite::{params, params_from_iter, types::Value};

use crate::error::Result;
use crate::records::query_all;
use crate::store::Store;

/// One stored line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLineRecord {
    /// Assigned by the store (0 on insert).
    pub id: i64,
    pub at_ms: i64,
    pub service: String,
    pub tenant_id: Option<String>,
    /// `stdout`, `stderr` or `file`.
    pub stream: String,
    pub level: String,
    pub template_id: i64,
    pub line: String,
}

/// A template's new state: inserted, or its text, last sighting and count
/// (by `count`) updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUpdate {
    pub id: i64,
    pub service: String,
    pub text: String,
    pub level: String,
    pub seen_ms: i64,
    pub count: i64,
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub id: i64,
    pub service: String,
    pub text: String,
    pub level: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub count: i64,
}

/// Where a follower is (see the `log_cursors` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    pub source: String,
    pub inode: i64,
    pub offset: i64,
}

/// Which lines a search wants.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub service: Option<String>,
    /// Only lines of this tenant (a non-admin caller).
    pub tenant_id: Option<String>,
    /// Full-text words, all required (each matched as a phrase).
    pub q: Option<String>,
    /// Only these levels.
    pub levels: Vec<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only lines with ids above this (a live tail's next page).
    pub after_id: Option<i64>,
    pub limit: usize,
}

/// What retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub by_age: u64,
    pub by_size: u64,
}

/// Estimated bytes a stored line takes beyond its text (row, indexes, FTS).
pub const LINE_OVERHEAD_BYTES: i64 = 96;
/// Estimated bytes per byte of line text (table plus FTS index).
pub const TEXT_FACTOR: i64 = 2;

const COLUMNS: &str = "l.id, l.at_ms, l.service, l.tenant_id, l.stream, l.level, l.template_id, l.line";

/// An FTS5 query requiring every alphanumeric token of `q`, each quoted:
/// the user's text is never FTS syntax. `None` when `q` has no such token.
pub fn fts_query(q: &str) -> Option<String> {
    let tokens: Vec<String> =
        q.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(|t| format!("\"{t}\"")).collect();
    (!tokens.is_empty()).then(|| tokens.join(" "))
}

/// A LIKE pattern matching `word` anywhere (ASCII case-insensitive), with
/// `%`, `_` and `\` escaped.
fn like_pattern(word: &str) -> String {
    let mut p = String::with_capacity(word.len() + 2);
    p.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Store {
    /// Stores lines, template changes and cursors in one commit; returns
    /// the lines' ids, in order.
    pub async fn insert_logs(
        &self,
        lines: Vec<LogLineRecord>,
        templates: Vec<TemplateUpdate>,
        cursors: Vec<LogCursor>,
        now_ms: i64,
    ) -> Result<Vec<i64>> {
        self.write(move |c| {
            let mut t = c.prepare_cached(
                "INSERT INTO log_templates (id, service, text, level, first_seen_ms, last_seen_ms, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET text = excluded.text,
                     last_seen_ms = max(last_seen_ms, excluded.last_seen_ms), count = count + excluded.count",
            )?;
            for u in &templates {
                t.execute(params![u.id, u.service, u.text, u.level, u.seen_ms, u.count])?;
            }
            let mut l = c.prepare_cached(
                "INSERT INTO log_lines (at_ms, service, tenant_id, stream, level, template_id, line)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut ids = Vec::with_capacity(lines.len());
            for r in &lines {
                l.execute(params![r.at_ms, r.service, r.tenant_id, r.stream, r.level, r.template_id, r.line])?;
                ids.push(c.last_insert_rowid());
            }
            let mut k = c.prepare_cached(
                "INSERT INTO log_cursors (source, inode, offset, at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source) DO UPDATE SET inode = excluded.inode, offset = excluded.offset, at_ms = excluded.at_ms",
            )?;
            for cur in &cursors {
                k.execute(params![cur.source, cur.inode, cur.offset, now_ms])?;
            }
            Ok(ids)
        })
        .await
    }

    /// Lines matching `f`, newest first (oldest first with `after_id`), with
    /// their template's text.
    pub async fn search_logs(&self, f: LogFilter) -> Result<Vec<(LogLineRecord, String)>> {
        self.read(move |c| {
            let mut sql = format!(
                "SELECT {COLUMNS}, coalesce(t.text, '') FROM log_lines l LEFT JOIN log_templates t ON t.id = l.template_id WHERE 1"
            );
            let mut args: Vec<Value> = Vec::new();
            let mut push = |sql: &mut String, clause: &str, v: Value| {
                args.push(v);
                sql.push_str(&format!(" AND {clause} ?{}", args.len()));
            };
            if let Some(s) = &f.service {
                push(&mut sql, "l.service =", Value::Text(s.clone()));
            }
            if let Some(t) = &f.tenant_id {
                push(&mut sql, "l.tenant_id =", Value::Text(t.clone()));
            }
            if let Some(q) = f.q.as_deref() {
                // The index narrows to lines with every token; LIKE keeps
                // those with every word as typed.
                if let Some(m) = fts_query(q) {
                    push(&mut sql, "l.id IN (SELECT rowid FROM log_fts WHERE log_fts MATCH", Value::Text(m));
                    sql.push(')');
                }
                for w in q.split_whitespace() {
                    push(&mut sql, "l.line LIKE", Value::Text(like_pattern(w)));
                    sql.push_str(" ESCAPE '\\'");
                }
            }
            if let Some(from) = f.from_ms {
                push(&mut sql, "l.at_ms >=", Value::Integer(from));
            }
            if let Some(to) = f.to_ms {
                push(&mut sql, "l.at_ms <", Value::Integer(to));
            }
            if let Some(after) = f.after_id {
                push(&mut sql, "l.id >", Value::Integer(after));
            }
            if !f.levels.is_empty() {
                let marks: Vec<String> = f
                    .levels
                    .iter()
                    .map(|lv| {
                        args.push(Value::Text(lv.clone()));
                        format!("?{}", args.len())
                    })
                    .collect();
                sql.push_str(&format!(" AND l.level IN ({})", marks.join(", ")));
            }
            let order = if f.after_id.is_some() { "l.id ASC" } else { "l.at_ms DESC, l.id DESC" };
            args.push(Value::Integer(i64::try_from(f.limit).unwrap_or(i64::MAX)));
            sql.push_str(&format!(" ORDER BY {order} LIMIT ?{}", args.len()));
            query_all(c, &sql, params_from_iter(args), |r| {
                Ok((
                    LogLineRecord {
                        id: r.get(0)?,
                        at_ms: r.get(1)?,
                        service: r.get(2)?,
                        tenant_id: r.get(3)?,
                        stream: r.get(4)?,
                        level: r.get(5)?,
                        template_id: r.get(6)?,
                        line: r.get(7)?,
                    },
                    r.get(8)?,
                ))
            })
        })
        .await
    }

    /// Templates of one service or all, most frequent first.
    pub async fn log_templates(&self, service: Option<String>, limit: usize) -> Result<Vec<TemplateRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            query_all(
                c,
                "SELECT id, service, text, level, first_seen_ms, last_seen_ms, count FROM log_templates
                 WHERE ?1 IS NULL OR service = ?1 ORDER BY count DESC, id LIMIT ?2",
                params![service, limit],
                |r| {
                    Ok(TemplateRecord {
                        id: r.get(0)?,
                        service: r.get(1)?,
                        text: r.get(2)?,
                        level: r.get(3)?,
                        first_seen_ms: r.get(4)?,
                        last_seen_ms: r.get(5)?,
                        count: r.get(6)?,
                    })
                },
            )
        })
        .await
    }

    /// The highest template id given out (0 with none).
    pub async fn max_template_id(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT coalesce(max(id), 0) FROM log_templates", [], |r| r.get(0))?)).await
    }

    /// Every follower's cursor.
    pub async fn log_cursors(&self) -> Result<Vec<LogCursor>> {
        self.read(|c| {
            query_all(c, "SELECT source, inode, offset FROM log_cursors", [], |r| {
                Ok(LogCursor { source: r.get(0)?, inode: r.get(1)?, offset: r.get(2)? })
            })
        })
        .await
    }

    /// Estimated bytes the stored lines take (text, rows, indexes, FTS).
    pub async fn logs_size_bytes(&self) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT coalesce(sum(length(line)), 0) * {TEXT_FACTOR} + count(*) * {LINE_OVERHEAD_BYTES} FROM log_lines"),
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Removes lines older than `before_ms`, then the oldest lines until the
    /// estimate is under `max_bytes`.
    pub async fn prune_logs(&self, before_ms: i64, max_bytes: i64) -> Result<Pruned> {
        let by_age = self
            .write(move |c| {
                // Service by service through the (service, at_ms) index; the
                // services themselves by skipping along it, one seek each.
                Ok(c.execute(
                    "WITH RECURSIVE s(service) AS (
                         SELECT min(service) FROM log_lines
                         UNION ALL
                         SELECT (SELECT min(service) FROM log_lines WHERE service > s.service)
                         FROM s WHERE s.service IS NOT NULL
                     )
                     DELETE FROM log_lines
                     WHERE service IN (SELECT service FROM s WHERE service IS NOT NULL) AND at_ms < ?1",
                    [before_ms],
                )? as u64)
            })
            .await?;
        let mut by_size = 0u64;
        loop {
            let size = self.logs_size_bytes().await?;
            if size <= max_bytes {
                break;
            }
            let (rows, bytes): (i64, i64) = self
                .read(|c| {
                    Ok(c.query_row(
                        &format!("SELECT count(*), coalesce(sum(length(line)), 0) * {TEXT_FACTOR} + count(*) * {LINE_OVERHEAD_BYTES} FROM log_lines"),
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?)
                })
                .await?;
            if rows == 0 {
                break;
            }
            let per_row = (bytes / rows).max(1);
            // Remove the excess, plus a tenth of the cap, so this does not run on every tick.
            let n = ((size - max_bytes + max_bytes / 10) / per_row).clamp(1, rows);
            let removed = self
                .write(move |c| {
                    Ok(c.execute(
                        // Ids follow arrival order: the first stored go first.
                        "DELETE FROM log_lines WHERE id IN (SELECT id FROM log_lines ORDER BY id LIMIT ?1)",
                        [n],
                    )? as u64)
                })
                .await?;
            by_size += removed;
            if removed == 0 {
                break;
            }
        }
        Ok(Pruned { by_age, by_size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at_ms: i64, service: &str, level: &str, text: &str) -> LogLineRecord {
        LogLineRecord {
            id: 0,
            at_ms,
            service: service.into(),
            tenant_id: None,
            stream: "stdout".into(),
            level: level.into(),
            template_id: 1,
            line: text.into(),
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        (d, s)
    }

    #[tokio::test]
    async fn logs_search_filters_and_counts_templates() {
        let (_d, s) = store().await;
        let t = TemplateUpdate {
            id: 1,
            service: "a".into(),
            text: "ERROR db <*>".into(),
            level: "error".into(),
            seen_ms: 10,
            count: 2,
        };
        s.insert_logs(
            vec![
                line(10, "a", "error", "ERROR db down"),
                line(20, "a", "info", "INFO ok"),
                line(30, "b", "error", "x"),
            ],
            vec![t.clone()],
            vec![LogCursor { source: "file:/x".into(), inode: 5, offset: 9 }],
            1,
        )
        .await
        .unwrap();
        s.insert_logs(vec![], vec![TemplateUpdate { seen_ms: 40, count: 3, ..t }], vec![], 2).await.unwrap();
        let all = s.search_logs(LogFilter { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(all.iter().map(|(l, _)| l.at_ms).collect::<Vec<_>>(), vec![30, 20, 10], "newest first");
        let q = s
            .search_logs(LogFilter {
                q: Some("db \"down".into()),
                service: Some("a".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(q.len(), 0, "a stray quote is text, never FTS syntax (and no line has it)");
        let q = s.search_logs(LogFilter { q: Some("db dow".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(q.len(), 0, "FTS finds whole tokens");
        let q = s.search_logs(LogFilter { q: Some("100%_".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert!(q.is_empty(), "LIKE wildcards in the text are literal");
        let q = s.search_logs(LogFilter { q: Some("DB".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].1, "ERROR db <*>");
        let e = s
            .search_logs(LogFilter { levels: vec!["error".into()], from_ms: Some(15), limit: 10, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0.service, "b");
        let tpl = s.log_templates(Some("a".into()), 10).await.unwrap();
        assert_eq!((tpl[0].count, tpl[0].first_seen_ms, tpl[0].last_seen_ms), (5, 10, 40));
        assert_eq!(s.log_cursors().await.unwrap()[0].offset, 9);
    }

    #[tokio::test]
    async fn logs_retention_removes_old_then_oldest_until_under_the_cap() {
        let (_d, s) = store().await;
        let lines: Vec<_> = (0..1000).map(|i| line(i, "a", "info", &"x".repeat(100))).collect();
        s.insert_logs(lines, vec![], vec![], 0).await.unwrap();
        let p = s.prune_logs(100, i64::MAX).await.unwrap();
        assert_eq!(p, Pruned { by_age: 100, by_size: 0 });
        let cap = 50_000;
        let p = s.prune_logs(0, cap).await.unwrap();
        assert!(p.by_size > 0);
        assert!(s.logs_size_bytes().await.unwrap() <= cap);
        let left = s.search_logs(LogFilter { limit: 10_000, ..Default::default() }).await.unwrap();
        let oldest = left.iter().map(|(l, _)| l.at_ms).min().unwrap();
        assert_eq!(oldest, 999 - left.len() as i64 + 1, "the oldest went first");
        let fts = s.search_logs(LogFilter { q: Some("x".into()), limit: 1, ..Default::default() }).await;
        assert!(fts.is_ok());
    }
}
