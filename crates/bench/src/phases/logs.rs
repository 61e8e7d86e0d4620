//! Log ingestion: lines per second per core with level detection and
//! template mining, on a mixed corpus generated here (web access lines,
//! key=value application lines, JSON lines, errors with ids and IPs, stack
//! frames, free text; 200,000 lines over ~60 templates with random values).
//!
//! Method: (1) the miner alone — bound, level, mine — on one thread, timed
//! by the thread's own CPU clock; (2) miner + store — the same, then batched
//! inserts of 4096 lines (lines, template counts, FTS5 index) through the
//! store's writer into a fresh database on the data disk, timed by the
//! process's CPU time (this thread plus the writer thread), so the figure is
//! lines per CPU-second whatever the disk's latency.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use superserver_ops::logs::{bound_line, detect_level, Miner, MinerOptions};
use superserver_store::{LogLineRecord, Store, TemplateUpdate};

use crate::report::{Report, Verdict};

/// Issue target: ingestion with template mining, lines/s per core.
pub const INGEST_TARGET: f64 = 50_000.0;

const SERVICES: [&str; 5] = ["container:web", "container:api", "container:db", "app", "container:worker"];

/// A small xorshift generator: the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` lines of mixed formats with random values.
pub fn corpus(n: usize) -> Vec<(usize, String)> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let paths = ["/", "/api/orders", "/api/users", "/static/app.js", "/health", "/login", "/cart/items"];
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let words = ["cache", "queue", "session", "order", "payment", "invoice", "token", "upload"];
    (0..n)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", r.below(256), r.below(256), r.below(256));
            let w = words[r.below(words.len() as u64) as usize];
            let line = match r.below(10) {
                0..=2 => format!(
                    "{ip} - - [23/Nov/2026:22:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} {} \"-\" \"curl/8.5.0\"",
                    r.below(60),
                    r.below(60),
                    methods[r.below(4) as usize],
                    paths[r.below(paths.len() as u64) as usize],
                    [200, 201, 304, 404, 500][r.below(5) as usize],
                    r.below(100_000)
                ),
                3 | 4 => format!(
                    "ts=2026-11-23T22:00:{:02}.{:03}Z level={} msg=\"{w} processed\" id={} duration={}ms",
                    r.below(60),
                    r.below(1000),
                    ["info", "debug", "warn"][r.below(3) as usize],
                    r.next() % 1_000_000,
                    r.below(5000)
                ),
                5 => format!(
                    r#"{{"time":"2026-11-23T22:00:00Z","level":"{}","msg":"{w} {} completed","user":"u{}","bytes":{}}}"#,
                    ["info", "error"][r.below(2) as usize],
                    ["job", "request", "sync"][r.below(3) as usize],
                    r.below(10_000),
                    r.below(1 << 20)
                ),
                6 => format!(
                    "2026-11-23 22:00:{:02},{:03} ERROR [{w}-worker-{}] connection to {ip}:{} failed after {} retries: {}",
                    r.below(60),
                    r.below(1000),
                    r.below(16),
                    r.below(65_536),
                    r.below(10),
                    ["timeout", "connection refused", "reset by peer"][r.below(3) as usize]
                ),
                7 => format!(
                    "    at com.example.{w}.Service.handle(Service.java:{})",
                    r.below(900) + 10
                ),
                8 => format!(
                    "WARN {w} backlog at {}% (request {:016x}, shard {})",
                    r.below(100),
                    r.next(),
                    r.below(64)
                ),
                _ => format!(
                    "INFO user {} logged in from {ip} session={:08x}-{:04x}",
                    ["alice", "bob", "carol", "dave"][r.below(4) as usize],
                    r.next() as u32,
                    r.below(1 << 16)
                ),
            };
            (i % SERVICES.len(), line)
        })
        .collect()
}

fn thread_cpu_seconds() -> f64 {
    proc_cpu("/proc/thread-self/stat")
}

fn process_cpu_seconds() -> f64 {
    proc_cpu("/proc/self/stat")
}

/// utime + stime of a `/proc/*/stat` file, in seconds (USER_HZ = 100).
fn proc_cpu(path: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(path) else { return 0.0 };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the `)`: state is field 0; utime and stime are 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

struct Mining {
    miners: Vec<Miner>,
    next: u64,
}

impl Mining {
    fn new() -> Self {
        Self { miners: (0..SERVICES.len()).map(|_| Miner::new(MinerOptions::default())).collect(), next: 0 }
    }

    fn mine(&mut self, svc: usize, line: &str) -> (String, &'static str, u64, bool) {
        let line = bound_line(line);
        let level = detect_level(&line).as_str();
        let next = &mut self.next;
        let m = self.miners[svc].add(&line, &mut || {
            *next += 1;
            *next
        });
        (line, level, m.id, m.new)
    }
}

pub async fn run(quick: bool, report: &mut Report) -> Result<()> {
    let n = if quick { 50_000 } else { 200_000 };
    let lines = corpus(n);

    // (1) The miner alone, on this thread.
    let mut m = Mining::new();
    let (cpu0, wall0) = (thread_cpu_seconds(), Instant::now());
    for (svc, l) in &lines {
        std::hint::black_box(m.mine(*svc, l));
    }
    let cpu = (thread_cpu_seconds() - cpu0).max(wall0.elapsed().as_secs_f64().min(0.01));
    let templates: usize = m.miners.iter().map(Miner::len).sum();
    let rate = n as f64 / cpu;
    report.add(
        "log mining (bound + level + template), lines/s per core",
        format!("{rate:.0}"),
        &format!("≥ {INGEST_TARGET:.0}"),
        Verdict::of(rate >= INGEST_TARGET),
        format!("{n} mixed lines, {templates} templates, {:.2} s CPU on one thread", cpu),
    );

    // (2) Miner + store: batches of 4096 through the writer, FTS5 included.
    let dir = tempfile::Builder::new().prefix("ss-bench-logs-").tempdir_in(".")?;
    let store = Store::open(dir.path())?;
    let mut m = Mining::new();
    let (cpu0, wall0) = (process_cpu_seconds(), Instant::now());
    for chunk in lines.chunks(4096) {
        let mut records = Vec::with_capacity(chunk.len());
        let mut tpl: HashMap<u64, TemplateUpdate> = HashMap::new();
        for (svc, l) in chunk {
            let (line, level, id, _) = m.mine(*svc, l);
            let text = m.miners[*svc].template(id).unwrap_or_default();
            let u = tpl.entry(id).or_insert_with(|| TemplateUpdate {
                id: id as i64,
                service: SERVICES[*svc].into(),
                text: String::new(),
                level: level.into(),
                seen_ms: 0,
                count: 0,
            });
            u.text = text;
            u.count += 1;
            records.push(LogLineRecord {
                id: 0,
                at_ms: 1_790_000_000_000,
                service: SERVICES[*svc].into(),
                tenant_id: None,
                stream: "stdout".into(),
                level: level.into(),
                template_id: id as i64,
                line,
            });
        }
        store.insert_logs(records, tpl.into_values().collect(), vec![], 0).await?;
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = (process_cpu_seconds() - cpu0).max(0.01);
    let rate = n as f64 / cpu;
    report.add(
        "log ingestion (mining + SQLite + FTS5), lines/s per core",
        format!("{rate:.0}"),
        &format!("≥ {INGEST_TARGET:.0}"),
        Verdict::of(rate >= INGEST_TARGET),
        format!(
            "{n} lines in {wall:.2} s wall ({:.0} lines/s), {cpu:.2} s CPU (miner + writer threads)",
            n as f64 / wall
        ),
    );
    Ok(())
}
