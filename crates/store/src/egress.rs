//! Egress audit events.

use std::collections::HashMap;

use rusqlite::params;
use rusqlite::types::{Value, ValueRef};
use superserver_wire::{EgressDecision, EgressEvent};

use crate::error::Result;
use crate::records::query_all;
use crate::store::Store;

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressFilter {
    pub tenant_id: Option<String>,
    pub sandbox_id: Option<String>,
    pub execution_id: Option<String>,
    pub decision: Option<EgressDecision>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only events with a larger id (to page or to follow).
    pub after_id: Option<i64>,
    pub limit: usize,
    /// The most recent `limit` events (still returned oldest first).
    pub newest: bool,
}

/// What one sandbox did with one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressHostRow {
    pub sandbox_id: String,
    /// The name, or the address when there was none.
    pub host: String,
    pub decision: EgressDecision,
    pub events: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub last_at_ms: i64,
}

const COLUMNS: &str = "id, at_ms, tenant_id, sandbox_id, execution_id, protocol, name, address, port, method, path, \
                       decision, rule, bytes_out, bytes_in, duration_ms";

fn row(r: &rusqlite::Row<'_>) -> Result<EgressEvent> {
    let decision: String = r.get(11)?;
    Ok(EgressEvent {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        tenant: r.get(2)?,
        sandbox_id: r.get(3)?,
        execution_id: r.get(4)?,
        protocol: r.get(5)?,
        name: r.get(6)?,
        address: r.get(7)?,
        port: r.get::<_, Option<i64>>(8)?.and_then(|p| u16::try_from(p).ok()),
        method: r.get(9)?,
        path: r.get(10)?,
        decision: EgressDecision::parse(&decision).unwrap_or(EgressDecision::Deny),
        rule: r.get(12)?,
        bytes_out: r.get::<_, i64>(13)?.max(0) as u64,
        bytes_in: r.get::<_, i64>(14)?.max(0) as u64,
        duration_ms: r.get(15)?,
    })
}

/// The `SELECT` of the events matching `f` and its arguments. Only the
/// filters given are in the `WHERE`, so SQLite walks the primary key (or the
/// sandbox's or the tenant's `(…, id)` index) in `id` order and stops at the
/// `LIMIT`; with every filter written as `(? IS NULL OR …)` it chose the
/// time index instead and sorted every row in range (50 ms for 10,000
/// events, for the dashboard's 200 newest).
fn events_query(f: &EgressFilter) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {COLUMNS} FROM egress_events WHERE id > ?1");
    let mut args = vec![Value::Integer(f.after_id.unwrap_or(0))];
    let mut and = |condition: &str, v: Value| {
        args.push(v);
        sql.push_str(&format!(" AND {condition} ?{}", args.len()));
    };
    let text = |s: &Option<String>| s.clone().map(Value::Text);
    for (condition, v) in [
        ("tenant_id =", text(&f.tenant_id)),
        ("sandbox_id =", text(&f.sandbox_id)),
        ("execution_id =", text(&f.execution_id)),
        ("decision =", f.decision.map(|d| Value::Text(d.as_str().into()))),
        ("at_ms >=", f.from_ms.map(Value::Integer)),
        ("at_ms <=", f.to_ms.map(Value::Integer)),
    ] {
        if let Some(v) = v {
            and(condition, v);
        }
    }
    args.push(Value::Integer(i64::try_from(f.limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(" ORDER BY id {} LIMIT ?{}", if f.newest { "DESC" } else { "ASC" }, args.len()));
    (sql, args)
}

impl Store {
    /// Stores events (in the writer's shared transaction); returns them
    /// with their ids.
    pub async fn insert_egress_events(&self, events: Vec<EgressEvent>) -> Result<Vec<EgressEvent>> {
        self.write(move |c| {
            let mut st = c.prepare_cached(
                "INSERT INTO egress_events (at_ms, tenant_id, sandbox_id, execution_id, protocol, name, address,
                   port, method, path, decision, rule, bytes_out, bytes_in, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            let mut stored = events.clone();
            for e in &mut stored {
                st.execute(params![
                    e.at_ms,
                    e.tenant,
                    e.sandbox_id,
                    e.execution_id,
                    e.protocol,
                    e.name,
                    e.address,
                    e.port,
                    e.method,
                    e.path,
                    e.decision.as_str(),
                    e.rule,
                    e.bytes_out as i64,
                    e.bytes_in as i64,
                    e.duration_ms,
                ])?;
                e.id = c.last_insert_rowid();
            }
            Ok(stored)
        })
        .await
    }

    /// Events matching `f`, oldest first.
    pub async fn list_egress_events(&self, f: EgressFilter) -> Result<Vec<EgressEvent>> {
        let (sql, args) = events_query(&f);
        let newest = f.newest;
        self.read(move |c| {
            query_all(c, &sql, rusqlite::params_from_iter(args), row).map(|mut v| {
                if newest {
                    v.reverse();
                }
                v
            })
        })
        .await
    }

    /// Hosts reached and refused per sandbox since `from_ms` (of `tenant`,
    /// or every tenant), most recent first. The events of the window are
    /// summed here, in one pass: SQLite's `GROUP BY` sorted every one of
    /// them first (10,000 events: p50 14.7 ms that way, 9.3 ms this way).
    pub async fn egress_hosts(&self, tenant: Option<String>, from_ms: i64, limit: usize) -> Result<Vec<EgressHostRow>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT sandbox_id, coalesce(name, address, '?'), decision, bytes_out, bytes_in, at_ms
                 FROM egress_events
                 WHERE (?1 IS NULL OR tenant_id = ?1) AND at_ms >= ?2 AND protocol != 'dns'",
            )?;
            let mut rows = st.query(params![tenant, from_ms])?;
            let mut hosts: HashMap<(String, String, EgressDecision), EgressHostRow> = HashMap::new();
            while let Some(r) = rows.next()? {
                let decision = match r.get_ref(2)? {
                    ValueRef::Text(b"allow") => EgressDecision::Allow,
                    _ => EgressDecision::Deny,
                };
                let key = (r.get::<_, String>(0)?, r.get::<_, String>(1)?, decision);
                let h = hosts.entry(key).or_insert_with_key(|(sandbox_id, host, decision)| EgressHostRow {
                    sandbox_id: sandbox_id.clone(),
                    host: host.clone(),
                    decision: *decision,
                    events: 0,
                    bytes_out: 0,
                    bytes_in: 0,
                    last_at_ms: i64::MIN,
                });
                h.events += 1;
                h.bytes_out = h.bytes_out.saturating_add(r.get::<_, i64>(3)?.max(0) as u64);
                h.bytes_in = h.bytes_in.saturating_add(r.get::<_, i64>(4)?.max(0) as u64);
                h.last_at_ms = h.last_at_ms.max(r.get(5)?);
            }
            let mut out: Vec<EgressHostRow> = hosts.into_values().collect();
            out.sort_by(|a, b| {
                (b.last_at_ms, &a.sandbox_id, &a.host, a.decision.as_str()).cmp(&(
                    a.last_at_ms,
                    &b.sandbox_id,
                    &b.host,
                    b.decision.as_str(),
                ))
            });
            out.truncate(limit);
            Ok(out)
        })
        .await
    }

    /// Forgets events older than `before_ms` (retention).
    pub async fn prune_egress_events(&self, before_ms: i64) -> Result<usize> {
        self.write(move |c| Ok(c.execute("DELETE FROM egress_events WHERE at_ms < ?1", params![before_ms])?)).await
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn plan(f: &EgressFilter) -> Vec<String> {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate::migrate(&mut conn, 0).unwrap();
        crate::records::tests::query_plan(&conn, &events_query(f).0)
    }

    #[test]
    fn events_walk_an_id_ordered_index_without_sorting() {
        let all = EgressFilter { limit: 200, newest: true, ..Default::default() };
        let sandbox = EgressFilter { sandbox_id: Some("sb_1".into()), ..all.clone() };
        let tenant =
            EgressFilter { tenant_id: Some("tn_1".into()), decision: Some(EgressDecision::Deny), ..all.clone() };
        let page = EgressFilter { after_id: Some(7), newest: false, ..all.clone() };
        for (f, index) in [
            (&all, "PRIMARY KEY"),
            (&sandbox, "egress_events_sandbox"),
            (&tenant, "egress_events_tenant"),
            (&page, "PRIMARY KEY"),
        ] {
            let p = plan(f);
            assert!(p.iter().any(|l| l.contains(index)), "{f:?}: {p:?}");
            assert!(!p.iter().any(|l| l.contains("TEMP B-TREE")), "{f:?}: {p:?}");
        }
    }

    #[test]
    fn only_the_filters_given_are_in_the_query() {
        let (sql, args) = events_query(&EgressFilter { limit: 5, ..Default::default() });
        assert!(sql.ends_with("WHERE id > ?1 ORDER BY id ASC LIMIT ?2"), "{sql}");
        assert_eq!(args, [Value::Integer(0), Value::Integer(5)]);
        let f = EgressFilter {
            tenant_id: Some("tn_1".into()),
            decision: Some(EgressDecision::Allow),
            to_ms: Some(9),
            after_id: Some(3),
            limit: 10,
            newest: true,
            ..Default::default()
        };
        let (sql, args) = events_query(&f);
        assert!(
            sql.ends_with(
                "WHERE id > ?1 AND tenant_id = ?2 AND decision = ?3 AND at_ms <= ?4 ORDER BY id DESC LIMIT ?5"
            ),
            "{sql}"
        );
        assert_eq!(
            args,
            [
                Value::Integer(3),
                Value::Text("tn_1".into()),
                Value::Text("allow".into()),
                Value::Integer(9),
                Value::Integer(10)
            ]
        );
    }
}
