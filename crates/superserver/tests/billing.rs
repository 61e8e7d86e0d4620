//! Plans, quotas, rate limits, usage metering and the billing hooks
//! (signed webhooks through the durable outbox, quota e-mails) against the
//! real server. Webhook receivers and the SMTP server are real servers on
//! loopback, started by the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use common::{argv, http_with_key, Server};
use serde_json::{json, Value};
use superserver_client::{Client, UsageQuery};
use superserver_wire::{
    CreateKeyRequest, CreateSandboxRequest, CreateTenantRequest, CreatedKey, ErrorBody, ErrorResponse, ExecRequest,
    ExecResult, Limits, QuotaState, Role, RunRequest, TenantInfo, UsageReport, UsageTotals,
};

/// Bound on every wait for something the server does in the background.
const BOUND: Duration = Duration::from_secs(30);
/// Polling interval of those waits.
const POLL: Duration = Duration::from_millis(100);

/// Rate limits that never get in the way of a test that is not about them.
const FAST: &str = "requests_per_second = 1000.0\nrequest_burst = 1000\n";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Creates a tenant on `plan` (as the admin) and a key of `role` for it.
async fn tenant_with_key(
    s: &Server,
    name: &str,
    plan: &str,
    email: Option<&str>,
    role: Role,
) -> (TenantInfo, CreatedKey) {
    let t = s
        .client
        .create_tenant(&CreateTenantRequest {
            name: name.into(),
            plan: Some(plan.into()),
            email: email.map(str::to_string),
            overrides: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create tenant {name}: {e}"));
    assert_eq!((t.name.as_str(), t.plan.as_str()), (name, plan));
    let k = key_for(s, name, role).await;
    (t, k)
}

async fn key_for(s: &Server, tenant: &str, role: Role) -> CreatedKey {
    let k = s
        .client
        .create_key(&CreateKeyRequest {
            tenant: Some(tenant.into()),
            role: Some(role),
            name: Some(format!("{role} key of {tenant}")),
            expires_at_ms: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create key for {tenant}: {e}"));
    assert_eq!((k.info.tenant.as_str(), k.info.role), (tenant, role));
    k
}

fn client_with(s: &Server, key: &str) -> Client {
    Client::new(&s.url).unwrap().with_api_key(key)
}

/// An HTTP answer, read whole.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    async fn of(r: reqwest::RequestBuilder) -> Self {
        let res = r.send().await.expect("the server answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("a readable body");
        Self { status, headers, text }
    }

    /// The `{"error": …}` body.
    fn error(&self) -> ErrorBody {
        serde_json::from_str::<ErrorResponse>(&self.text)
            .unwrap_or_else(|e| panic!("not an error body ({e}): {} {}", self.status, self.text))
            .error
    }

    /// A 2xx body as JSON.
    fn json(&self) -> Value {
        assert!((200..300).contains(&self.status), "expected success, got {} {}", self.status, self.text);
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// A 200 body as a run's result.
    fn result(&self) -> ExecResult {
        assert_eq!(self.status, 200, "{}", self.text);
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not a result ({e}): {}", self.text))
    }
}

async fn post_run(http: &reqwest::Client, s: &Server, req: &RunRequest) -> Answer {
    Answer::of(http.post(format!("{}/v1/run", s.url)).json(req)).await
}

fn run_req(cmd: &[&str]) -> RunRequest {
    RunRequest { command: argv(cmd), ..Default::default() }
}

/// Asserts `a` is `429 quota_exceeded` for `quota` with `limit`, and returns its body.
fn assert_quota_exceeded(a: &Answer, quota: &str, limit: u64) -> ErrorBody {
    assert_eq!(a.status, 429, "{}", a.text);
    let e = a.error();
    assert_eq!(e.code, "quota_exceeded", "{e:?}");
    assert_eq!(e.quota.as_deref(), Some(quota), "{e:?}");
    assert_eq!(e.limit, Some(limit), "{e:?}");
    assert!(e.message.contains(quota), "the message names the quota: {e:?}");
    e
}

/// The first instant of next month (UTC): RFC 3339 and unix ms.
fn next_month_start() -> (String, i64) {
    let now = time::OffsetDateTime::now_utc();
    let (y, m) = if now.month() == time::Month::December {
        (now.year() + 1, time::Month::January)
    } else {
        (now.year(), now.month().next())
    };
    let first = time::Date::from_calendar_date(y, m, 1).unwrap().with_time(time::Time::MIDNIGHT).assume_utc();
    (format!("{y:04}-{:02}-01T00:00:00Z", u8::from(m)), first.unix_timestamp() * 1000)
}

/// Asserts the body's reset instant is the start of next month, both forms.
fn assert_resets_next_month(e: &ErrorBody) {
    let (rfc, ms) = next_month_start();
    assert_eq!(e.resets_at.as_deref(), Some(rfc.as_str()), "{e:?}");
    assert_eq!(e.resets_at_ms, Some(ms), "{e:?}");
    assert!(e.message.contains(&rfc), "the message says when the quota resets: {e:?}");
}

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Polls `f` every [`POLL`] until it yields a value, failing after [`BOUND`]
/// with `what` and the last state `f` described.
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        match f() {
            Ok(v) => return v,
            Err(state) if Instant::now() > deadline => panic!("timed out after {BOUND:?} waiting for {what}: {state}"),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

/// What a set of results adds up to, as the usage report should say.
fn sum_results(results: &[(ExecResult, u64)]) -> UsageTotals {
    let mut t = UsageTotals::default();
    for (r, memory_mb) in results {
        t.executions += 1;
        t.wall_seconds += r.duration_ms / 1000.0;
        t.cpu_seconds += r.cpu_ms / 1000.0;
        t.gb_seconds += *memory_mb as f64 / 1024.0 * r.duration_ms / 1000.0;
        t.peak_memory_bytes_max = t.peak_memory_bytes_max.max(r.peak_memory_bytes);
        t.output_bytes += r.stdout_bytes + r.stderr_bytes;
    }
    t
}

/// Asserts usage totals equal the expected ones (floats within rounding).
fn assert_totals(what: &str, got: &UsageTotals, want: &UsageTotals) {
    assert_eq!(got.executions, want.executions, "{what}: executions {got:?} vs {want:?}");
    assert_eq!(got.output_bytes, want.output_bytes, "{what}: output bytes {got:?} vs {want:?}");
    assert_eq!(got.peak_memory_bytes_max, want.peak_memory_bytes_max, "{what}: peak memory {got:?} vs {want:?}");
    assert!(close(got.wall_seconds, want.wall_seconds, 1e-6), "{what}: wall {got:?} vs {want:?}");
    assert!(close(got.cpu_seconds, want.cpu_seconds, 1e-6), "{what}: cpu {got:?} vs {want:?}");
    assert!(close(got.gb_seconds, want.gb_seconds, 1e-6), "{what}: GB-s {got:?} vs {want:?}");
}

fn quota<'a>(quotas: &'a [QuotaState], name: &str) -> &'a QuotaState {
    quotas.iter().find(|q| q.quota == name).unwrap_or_else(|| panic!("no quota {name} in {quotas:?}"))
}

/// Rows of a CSV without quoted fields (what these tests produce), by column name.
fn csv_rows(text: &str, header: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header), "CSV header of:\n{text}");
    let names: Vec<&str> = header.split(',').collect();
    lines
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            assert_eq!(fields.len(), names.len(), "CSV row {l:?}");
            names.iter().zip(fields).map(|(n, f)| (n.to_string(), f.to_string())).collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row[col].parse().unwrap_or_else(|_| panic!("column {col} is not a number in {row:?}"))
}

// ---------------------------------------------------------------------------
// 1. Quotas and plan limits
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_quota_is_enforced_with_its_figures() {
    let s = Server::start_with(&format!(
        "[plans.exec3]\nexecutions_per_month = 3\n{FAST}\
         [plans.conc1]\nconcurrent_sandboxes = 1\npersistent_sandboxes = true\nmax_ttl_seconds = 600\n{FAST}\
         [plans.cpu1]\ncpu_seconds_per_month = 1\n{FAST}\
         [plans.gb1]\ngb_seconds_per_month = 1\n{FAST}"
    ))
    .await;

    // Executions: three runs, then 429 with the figures and the reset instant.
    let (t, k) = tenant_with_key(&s, "quota-exec", "exec3", None, Role::Member).await;
    let http = http_with_key(&k.key);
    for i in 0..3 {
        let a = post_run(&http, &s, &run_req(&["echo", &format!("run {i}")])).await;
        let r = a.result();
        assert_eq!((r.exit_code, r.stdout.as_str()), (Some(0), format!("run {i}\n").as_str()));
    }
    let a = post_run(&http, &s, &run_req(&["echo", "one too many"])).await;
    let e = assert_quota_exceeded(&a, "executions", 3);
    assert_eq!(e.used, Some(3.0), "{e:?}");
    assert_resets_next_month(&e);
    // The typed client sees the same figures.
    let err = client_with(&s, &k.key).run(&run_req(&["true"])).await.unwrap_err();
    match err {
        superserver_client::ClientError::QuotaExceeded { status: 429, quota, .. } => {
            assert_eq!(quota.name.as_deref(), Some("executions"));
            assert_eq!((quota.limit, quota.used), (Some(3), Some(3.0)));
            assert_eq!(quota.resets_at_ms, e.resets_at_ms);
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    // Refused runs are not counted.
    let q = s.client.quotas(Some(&t.name)).await.unwrap();
    assert_eq!(q.tenants.len(), 1);
    let ex = quota(&q.tenants[0].quotas, "executions");
    assert_eq!((ex.used, ex.limit), (3.0, Some(3)));
    assert_eq!(ex.resets_at_ms, e.resets_at_ms);

    // Concurrent sandboxes: one persistent sandbox fills the plan.
    let (_, k) = tenant_with_key(&s, "quota-conc", "conc1", None, Role::Member).await;
    let http = http_with_key(&k.key);
    let c = client_with(&s, &k.key);
    let first = c.create_sandbox(&CreateSandboxRequest { ttl_seconds: Some(300), ..Default::default() }).await.unwrap();
    let create = || {
        Answer::of(
            http.post(format!("{}/v1/sandboxes", s.url))
                .json(&CreateSandboxRequest { ttl_seconds: Some(300), ..Default::default() }),
        )
    };
    let a = create().await;
    let e = assert_quota_exceeded(&a, "concurrent_sandboxes", 1);
    assert_eq!(e.used, Some(1.0), "{e:?}");
    assert_eq!((e.resets_at.as_deref(), e.resets_at_ms), (None, None), "not a periodic quota: {e:?}");
    // A one-shot run needs a sandbox too.
    let a = post_run(&http, &s, &run_req(&["true"])).await;
    assert_quota_exceeded(&a, "concurrent_sandboxes", 1);
    // The persistent sandbox itself still works (an exec is no new sandbox).
    assert_eq!(
        c.exec(&first.id, &ExecRequest { command: argv(&["true"]), ..Default::default() }).await.unwrap().exit_code,
        Some(0)
    );
    c.delete_sandbox(&first.id).await.unwrap();
    let a = create().await;
    assert_eq!(a.status, 201, "after deleting the first sandbox a new one fits: {}", a.text);
    let second = a.json()["id"].as_str().expect("the new sandbox's id").to_string();
    c.delete_sandbox(&second).await.unwrap();
    assert_eq!(c.run(&run_req(&["echo", "fits"])).await.unwrap().stdout, "fits\n");

    // CPU seconds: a command may end past the limit; the next one is refused.
    let (_, k) = tenant_with_key(&s, "quota-cpu", "cpu1", None, Role::Member).await;
    let http = http_with_key(&k.key);
    let burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.3:\n    pass\nprint('burnt')";
    let r = post_run(&http, &s, &run_req(&["/usr/bin/python3", "-c", burn])).await.result();
    assert_eq!((r.exit_code, r.stdout.as_str()), (Some(0), "burnt\n"), "{r:?}");
    assert!(r.cpu_ms > 1000.0, "the command burnt more than the 1 s quota: {r:?}");
    let a = post_run(&http, &s, &run_req(&["true"])).await;
    let e = assert_quota_exceeded(&a, "cpu_seconds", 1);
    let used = e.used.unwrap();
    assert!(close(used, r.cpu_ms / 1000.0, 0.0011), "used {used} vs the run's {} ms: {e:?}", r.cpu_ms);
    assert_resets_next_month(&e);

    // GB-seconds: the memory limit (512 MiB) × wall time.
    let (_, k) = tenant_with_key(&s, "quota-gb", "gb1", None, Role::Member).await;
    let http = http_with_key(&k.key);
    let sleep = RunRequest {
        limits: Some(Limits { memory_mb: Some(512), ..Default::default() }),
        ..run_req(&["sleep", "2.2"])
    };
    let r = post_run(&http, &s, &sleep).await.result();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let gb_s = 512.0 / 1024.0 * r.duration_ms / 1000.0;
    assert!(gb_s > 1.0, "the sleep used more than 1 GB-s: {r:?}");
    let a = post_run(&http, &s, &run_req(&["true"])).await;
    let e = assert_quota_exceeded(&a, "gb_seconds", 1);
    assert!(close(e.used.unwrap(), gb_s, 0.0011), "used {:?} vs {gb_s}: {e:?}", e.used);
    assert_resets_next_month(&e);

    // Features and per-request limits of the free plan.
    let (t, k) = tenant_with_key(&s, "quota-free", "free", None, Role::Member).await;
    assert!(!t.limits.persistent_sandboxes);
    let http = http_with_key(&k.key);
    let a = Answer::of(http.post(format!("{}/v1/sandboxes", s.url)).json(&CreateSandboxRequest::default())).await;
    assert_eq!(a.status, 403, "{}", a.text);
    let e = a.error();
    assert_eq!(e.code, "feature_not_in_plan", "{e:?}");
    assert_eq!(e.feature.as_deref(), Some("persistent sandboxes"), "{e:?}");
    assert!(e.message.contains("persistent sandboxes"), "{e:?}");

    let over_memory = RunRequest {
        limits: Some(Limits { memory_mb: Some(t.limits.max_memory_mb + 1), ..Default::default() }),
        ..run_req(&["true"])
    };
    let a = post_run(&http, &s, &over_memory).await;
    assert_eq!(a.status, 422, "{}", a.text);
    let e = a.error();
    assert_eq!(e.code, "limit_exceeded", "{e:?}");
    assert!(e.message.contains("memory_mb") && e.message.contains("max_memory_mb"), "{e:?}");

    let over_time = RunRequest { timeout_ms: Some(t.limits.max_timeout_seconds * 1000 + 1), ..run_req(&["true"]) };
    let a = post_run(&http, &s, &over_time).await;
    assert_eq!(a.status, 422, "{}", a.text);
    let e = a.error();
    assert_eq!(e.code, "limit_exceeded", "{e:?}");
    assert!(e.message.contains("timeout_ms") && e.message.contains("max_timeout_seconds"), "{e:?}");

    // At the limits themselves the run is accepted, and refusals cost nothing.
    let at_limits = RunRequest {
        limits: Some(Limits { memory_mb: Some(t.limits.max_memory_mb), ..Default::default() }),
        timeout_ms: Some(t.limits.max_timeout_seconds * 1000),
        ..run_req(&["echo", "ok"])
    };
    let r = post_run(&http, &s, &at_limits).await.result();
    assert_eq!(r.stdout, "ok\n");
    let q = s.client.quotas(Some(&t.name)).await.unwrap();
    assert_eq!(quota(&q.tenants[0].quotas, "executions").used, 1.0, "{q:?}");
}

// ---------------------------------------------------------------------------
// 2. The last execution under contention
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_with_one_execution_left_give_exactly_one_success() {
    let s =
        Server::start_with(&format!("[plans.one]\nexecutions_per_month = 1\nconcurrent_sandboxes = 50\n{FAST}")).await;
    let (t, k) = tenant_with_key(&s, "contended", "one", None, Role::Member).await;
    let http = http_with_key(&k.key);
    let answers = futures::future::join_all((0..20).map(|i| {
        let http = http.clone();
        let req = run_req(&["echo", &format!("request {i}")]);
        let url = format!("{}/v1/run", s.url);
        async move { Answer::of(http.post(url).json(&req)).await }
    }))
    .await;
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!((ok.len(), refused.len()), (1, 19), "statuses {statuses:?}");
    let r = ok[0].result();
    assert_eq!(r.exit_code, Some(0));
    assert!(r.stdout.starts_with("request "), "{r:?}");
    for a in refused {
        let e = assert_quota_exceeded(a, "executions", 1);
        assert_eq!(e.used, Some(1.0), "{e:?}");
    }
    let q = s.client.quotas(Some(&t.name)).await.unwrap();
    let ex = quota(&q.tenants[0].quotas, "executions");
    assert_eq!(ex.used, 1.0, "{q:?}");
    assert_eq!(quota(&q.tenants[0].quotas, "concurrent_sandboxes").used, 0.0, "{q:?}");
    let usage = s.client.usage(&UsageQuery { tenant: Some(t.name.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(usage.totals.executions, 1, "{usage:?}");
}

// ---------------------------------------------------------------------------
// 3. Rate limits
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let s = Server::start_with("[plans.slow]\nrequests_per_second = 1.0\nrequest_burst = 3\n").await;
    let (_, k) = tenant_with_key(&s, "rate-limited", "slow", None, Role::Member).await;
    let http = http_with_key(&k.key);
    let whoami = || Answer::of(http.get(format!("{}/v1/whoami", s.url)));
    // The burst (3) goes through; then the key is out of tokens. On a
    // stalled machine the bucket refills at 1/s, which may let more through.
    let started = Instant::now();
    let mut ok = 0u32;
    let limited = loop {
        let a = whoami().await;
        if a.status != 200 {
            break a;
        }
        assert_eq!(a.json()["key"]["id"].as_str(), Some(k.info.id.as_str()));
        ok += 1;
        let refilled = started.elapsed().as_secs_f64().ceil() as u32;
        assert!(ok <= 3 + refilled, "{ok} requests passed a burst of 3 at 1/s within {:?}", started.elapsed());
    };
    assert!(ok >= 3, "the burst of 3 must pass, only {ok} did");
    if started.elapsed() < Duration::from_secs(1) {
        assert_eq!(ok, 3, "exactly the burst passes within the first second");
    }
    assert_eq!(limited.status, 429, "{}", limited.text);
    let e = limited.error();
    assert_eq!(e.code, "rate_limited", "{e:?}");
    let wait = e.retry_after_seconds.expect("retry_after_seconds in the body");
    assert!(wait >= 1, "{e:?}");
    let header: u64 = limited
        .headers
        .get(reqwest::header::RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert_eq!(header, wait, "header and body agree");
    // Another key of the same tenant has its own bucket.
    let other = key_for(&s, "rate-limited", Role::Viewer).await;
    let a = Answer::of(http_with_key(&other.key).get(format!("{}/v1/whoami", s.url))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    // After the advertised wait the key works again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let a = whoami().await;
    assert_eq!(a.status, 200, "after waiting {wait} s: {}", a.text);
}

// ---------------------------------------------------------------------------
// 4. Usage metering
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_totals_match_the_executions_run() {
    let s = Server::start_with(&format!(
        "[plans.meter]\npersistent_sandboxes = true\nmax_ttl_seconds = 600\nmax_memory_mb = 1024\n\
         concurrent_sandboxes = 4\n{FAST}"
    ))
    .await;
    let (a_tenant, a_key) = tenant_with_key(&s, "meter-a", "meter", None, Role::Member).await;
    let (b_tenant, b_key) = tenant_with_key(&s, "meter-b", "meter", None, Role::Member).await;
    let a = client_with(&s, &a_key.key);
    let b = client_with(&s, &b_key.key);
    // The server's default memory limit (within the plan's 1024).
    let default_mb = 512;

    // One-shot runs and execs in a persistent sandbox, with known outputs:
    // (result, memory limit of its sandbox in MiB).
    let mut results: Vec<(ExecResult, u64)> = Vec::new();
    let run = |cmd: &[&str], mb: Option<u64>| RunRequest {
        limits: mb.map(|m| Limits { memory_mb: Some(m), ..Default::default() }),
        ..run_req(cmd)
    };
    let r = a.run(&run(&["sh", "-c", "printf hello; printf err >&2"], Some(256))).await.unwrap();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str(), r.stdout_bytes, r.stderr_bytes), ("hello", "err", 5, 3));
    results.push((r, 256));
    let r = a.run(&run(&["echo", "usage"], None)).await.unwrap();
    assert_eq!((r.stdout_bytes, r.stderr_bytes), (6, 0));
    results.push((r, default_mb));
    let r = a.run(&run(&["head", "-c", "1000", "/dev/zero"], None)).await.unwrap();
    assert_eq!((r.stdout_bytes, r.stderr_bytes), (1000, 0));
    results.push((r, default_mb));
    let sb = a
        .create_sandbox(&CreateSandboxRequest {
            limits: Some(Limits { memory_mb: Some(128), ..Default::default() }),
            ttl_seconds: Some(300),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sb.limits.memory_mb, 128);
    for (cmd, out, err) in
        [(&["echo", "one"][..], 4, 0), (&["sh", "-c", "echo two >&2; exit 3"], 0, 4), (&["printf", "abc"], 3, 0)]
    {
        let r = a.exec(&sb.id, &ExecRequest { command: argv(cmd), ..Default::default() }).await.unwrap();
        assert_eq!((r.stdout_bytes, r.stderr_bytes), (out, err), "{r:?}");
        results.push((r, 128));
    }
    // Each command's sandbox had the memory limit the figures assume.
    for (r, mb) in &results {
        assert_eq!(a.get_sandbox(&r.sandbox_id).await.unwrap().limits.memory_mb, *mb, "{r:?}");
    }
    let n = results.len() as u64;
    let want = sum_results(&results);
    // The other tenant's usage.
    let mut b_results = Vec::new();
    for word in ["x", "yy"] {
        b_results.push((b.run(&run(&["echo", word], None)).await.unwrap(), default_mb));
    }
    let b_want = sum_results(&b_results);

    let from = Some("2000-01-01".to_string());
    let by = |g: &str| UsageQuery { from: from.clone(), group_by: Some(g.into()), ..Default::default() };

    // By day: every group is the caller's; the groups add up to the totals.
    let day: UsageReport = a.usage(&by("day")).await.unwrap();
    assert_eq!(day.group_by, "day");
    assert!(!day.groups.is_empty());
    let mut summed = UsageTotals::default();
    for g in &day.groups {
        assert_eq!((g.tenant_id.as_str(), g.tenant.as_str()), (a_tenant.id.as_str(), "meter-a"), "{g:?}");
        assert_eq!(g.group.len(), 10, "a YYYY-MM-DD day: {g:?}");
        summed.executions += g.totals.executions;
        summed.wall_seconds += g.totals.wall_seconds;
        summed.cpu_seconds += g.totals.cpu_seconds;
        summed.gb_seconds += g.totals.gb_seconds;
        summed.peak_memory_bytes_max = summed.peak_memory_bytes_max.max(g.totals.peak_memory_bytes_max);
        summed.output_bytes += g.totals.output_bytes;
    }
    assert_totals("by day, totals", &day.totals, &want);
    assert_totals("by day, summed groups", &summed, &want);
    assert_eq!(want.output_bytes, 5 + 3 + 6 + 1000 + 4 + 4 + 3);

    // By key: one key made every call.
    let key: UsageReport = a.usage(&by("key")).await.unwrap();
    assert_eq!(key.groups.len(), 1, "{key:?}");
    assert_eq!(key.groups[0].group, a_key.info.id);
    assert_totals("by key", &key.groups[0].totals, &want);
    assert_totals("by key, totals", &key.totals, &want);

    // By sandbox: each one-shot run had its own; the persistent one had three execs.
    let by_sandbox: UsageReport = a.usage(&by("sandbox")).await.unwrap();
    let mut want_per_sandbox: BTreeMap<String, Vec<(ExecResult, u64)>> = BTreeMap::new();
    for (r, mb) in &results {
        want_per_sandbox.entry(r.sandbox_id.clone()).or_default().push((r.clone(), *mb));
    }
    assert_eq!(want_per_sandbox.len(), 4);
    assert_eq!(want_per_sandbox[&sb.id].len(), 3);
    let got: BTreeMap<&str, &UsageTotals> = by_sandbox.groups.iter().map(|g| (g.group.as_str(), &g.totals)).collect();
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        want_per_sandbox.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (id, rs) in &want_per_sandbox {
        assert_totals(&format!("sandbox {id}"), got[id.as_str()], &sum_results(rs));
    }
    assert_totals("by sandbox, totals", &by_sandbox.totals, &want);

    // The CSV form has the same figures (rounded to what it prints).
    let csv = a.usage_csv(&by("sandbox")).await.unwrap();
    let rows = csv_rows(
        &csv,
        "group,tenant_id,tenant,executions,wall_seconds,cpu_seconds,gb_seconds,peak_memory_bytes_max,output_bytes",
    );
    assert_eq!(rows.len(), by_sandbox.groups.len(), "{csv}");
    for (row, g) in rows.iter().zip(&by_sandbox.groups) {
        assert_eq!((row["group"].as_str(), row["tenant_id"].as_str()), (g.group.as_str(), a_tenant.id.as_str()));
        assert_eq!(row["tenant"], "meter-a");
        assert_eq!(row["executions"], g.totals.executions.to_string());
        assert_eq!(row["output_bytes"], g.totals.output_bytes.to_string());
        assert_eq!(row["peak_memory_bytes_max"], g.totals.peak_memory_bytes_max.to_string());
        assert!(close(num(row, "wall_seconds"), g.totals.wall_seconds, 0.0005 + 1e-9), "{row:?} vs {g:?}");
        assert!(close(num(row, "cpu_seconds"), g.totals.cpu_seconds, 0.0005 + 1e-9), "{row:?} vs {g:?}");
        assert!(close(num(row, "gb_seconds"), g.totals.gb_seconds, 0.0000005 + 1e-12), "{row:?} vs {g:?}");
    }

    // The billing export: one row per tenant, meter and day. It needs the owner role.
    let refused = Answer::of(http_with_key(&a_key.key).get(format!("{}/v1/usage/export?from=2000-01-01", s.url))).await;
    assert_eq!((refused.status, refused.error().code.as_str()), (403, "forbidden"), "{}", refused.text);
    let owner = key_for(&s, "meter-a", Role::Owner).await;
    let export = client_with(&s, &owner.key).usage_export(Some("2000-01-01"), None, None).await.unwrap();
    let rows = csv_rows(&export, "tenant_id,tenant,meter,quantity,unit,period_start,period_end");
    assert_eq!(rows.len(), 5 * day.groups.len(), "five meters per day:\n{export}");
    let mut per_meter: BTreeMap<String, f64> = BTreeMap::new();
    for row in &rows {
        assert_eq!((row["tenant_id"].as_str(), row["tenant"].as_str()), (a_tenant.id.as_str(), "meter-a"));
        let unit = match row["meter"].as_str() {
            "executions" => "count",
            "cpu_seconds" | "wall_seconds" => "second",
            "gb_seconds" => "gigabyte_second",
            "output_bytes" => "byte",
            other => panic!("unknown meter {other} in {row:?}"),
        };
        assert_eq!(row["unit"], unit, "{row:?}");
        let start = &row["period_start"];
        assert!(start.ends_with("T00:00:00Z"), "{row:?}");
        assert!(day.groups.iter().any(|g| start.starts_with(&g.group)), "a day of the report: {row:?}");
        let start_t = time::OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339).unwrap();
        let end_t =
            time::OffsetDateTime::parse(&row["period_end"], &time::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(end_t - start_t, time::Duration::days(1), "{row:?}");
        *per_meter.entry(row["meter"].clone()).or_default() += num(row, "quantity");
    }
    let days = day.groups.len() as f64;
    assert_eq!(per_meter["executions"], n as f64, "{export}");
    assert_eq!(per_meter["output_bytes"], want.output_bytes as f64, "{export}");
    assert!(close(per_meter["cpu_seconds"], want.cpu_seconds, 0.0005 * days + 1e-9), "{export}");
    assert!(close(per_meter["wall_seconds"], want.wall_seconds, 0.0005 * days + 1e-9), "{export}");
    assert!(close(per_meter["gb_seconds"], want.gb_seconds, 0.0000005 * days + 1e-12), "{export}");

    // Tenants do not see each other's usage; the admin sees both.
    let a_http = http_with_key(&a_key.key);
    for path in ["usage?tenant=meter-b", &format!("usage?tenant={}", b_tenant.id), "quotas?tenant=meter-b"] {
        let r = Answer::of(a_http.get(format!("{}/v1/{path}", s.url))).await;
        assert_eq!((r.status, r.error().code.as_str()), (404, "tenant_not_found"), "{path}: {}", r.text);
    }
    let r = Answer::of(http_with_key(&owner.key).get(format!("{}/v1/usage/export?tenant=meter-b", s.url))).await;
    assert_eq!((r.status, r.error().code.as_str()), (404, "tenant_not_found"), "{}", r.text);
    let own = a.usage(&UsageQuery { tenant: Some("meter-a".into()), ..by("tenant") }).await.unwrap();
    assert_totals("own tenant by name", &own.totals, &want);

    let all = s.client.usage(&by("tenant")).await.unwrap();
    let per_tenant: BTreeMap<&str, &UsageTotals> = all.groups.iter().map(|g| (g.tenant.as_str(), &g.totals)).collect();
    assert_eq!(per_tenant.len(), 2, "only the two tenants ran anything: {all:?}");
    assert_totals("admin: meter-a", per_tenant["meter-a"], &want);
    assert_totals("admin: meter-b", per_tenant["meter-b"], &b_want);
    assert_eq!(all.totals.executions, n + 2);
    let b_only = s.client.usage(&UsageQuery { tenant: Some("meter-b".into()), ..by("day") }).await.unwrap();
    assert_totals("admin: meter-b alone", &b_only.totals, &b_want);
    let b_export = s.client.usage_export(Some("2000-01-01"), None, Some("meter-b")).await.unwrap();
    let b_rows = csv_rows(&b_export, "tenant_id,tenant,meter,quantity,unit,period_start,period_end");
    assert!(b_rows.iter().all(|r| r["tenant"] == "meter-b"), "{b_export}");
    let b_execs: f64 = b_rows.iter().filter(|r| r["meter"] == "executions").map(|r| num(r, "quantity")).sum();
    assert_eq!(b_execs, 2.0, "{b_export}");

    // Quotas: the member sees its own tenant only, with what it ran.
    let q = a.quotas(None).await.unwrap();
    assert_eq!(q.tenants.len(), 1, "{q:?}");
    assert_eq!((q.tenants[0].tenant.as_str(), q.tenants[0].plan.as_str()), ("meter-a", "meter"));
    let qs = &q.tenants[0].quotas;
    assert_eq!(quota(qs, "executions").used, n as f64, "{q:?}");
    assert_eq!(quota(qs, "executions").limit, Some(100), "{q:?}");
    assert!(close(quota(qs, "cpu_seconds").used, want.cpu_seconds, 0.0011), "{q:?} vs {want:?}");
    assert!(close(quota(qs, "gb_seconds").used, want.gb_seconds, 0.0011), "{q:?} vs {want:?}");
    assert_eq!(quota(qs, "concurrent_sandboxes").used, 1.0, "the persistent sandbox is alive: {q:?}");
    a.delete_sandbox(&sb.id).await.unwrap();
    let q = a.quotas(None).await.unwrap();
    assert_eq!(quota(&q.tenants[0].quotas, "concurrent_sandboxes").used, 0.0, "{q:?}");
    assert_eq!(quota(&q.tenants[0].quotas, "executions").used, n as f64, "{q:?}");
}

// ---------------------------------------------------------------------------
// 5. Webhooks
// ---------------------------------------------------------------------------

const QUOTA_SECRET: &str = "whsec_quota_test_5f2c";
const USAGE_SECRET: &str = "whsec_usage_test_91ab";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    /// Lower-case names.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    /// What the receiver answered.
    status: u16,
    received_s: i64,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn event_id(&self) -> &str {
        self.header(superserver_notify::EVENT_ID_HEADER)
    }

    fn attempt(&self) -> u32 {
        self.header(superserver_notify::ATTEMPT_HEADER).parse().expect("a numeric attempt")
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn tenant_id(&self) -> String {
        self.json()["tenant"]["id"].as_str().expect("tenant.id").to_string()
    }
}

#[derive(Default)]
struct HookState {
    hits: Vec<Hit>,
    /// Answer 500 to this many more `/quota` deliveries.
    fail_quota_next: usize,
    /// Answer 500 to everything.
    fail_all: bool,
}

/// A webhook receiver on loopback that records every request.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<HookState>>);

impl Hooks {
    async fn start() -> (Self, String) {
        let hooks = Hooks::default();
        let app =
            axum::Router::new().route("/quota", post(receive)).route("/usage", post(receive)).with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (hooks, url)
    }

    fn with<T>(&self, f: impl FnOnce(&mut HookState) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }

    fn hits(&self) -> Vec<Hit> {
        self.with(|s| s.hits.clone())
    }
}

async fn receive(State(hooks): State<Hooks>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    hooks.with(|s| {
        let path = uri.path().to_string();
        let fail = s.fail_all || (path == "/quota" && s.fail_quota_next > 0);
        if !s.fail_all && fail {
            s.fail_quota_next -= 1;
        }
        let status = if fail { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
        s.hits.push(Hit {
            path,
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: body.to_vec(),
            status: status.as_u16(),
            received_s: now_s(),
        });
        status
    })
}

/// Hits of one endpoint and tenant.
fn hits_of<'a>(hits: &'a [Hit], path: &str, tenant_id: &str) -> Vec<&'a Hit> {
    hits.iter().filter(|h| h.path == path && h.tenant_id() == tenant_id).collect()
}

/// Event ids answered 2xx, with how often.
fn delivered_ids(hits: &[&Hit]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for h in hits.iter().filter(|h| h.ok()) {
        *m.entry(h.event_id().to_string()).or_default() += 1;
    }
    m
}

/// Executions and output bytes of a tenant's usage reports, each distinct
/// event counted once; `only_delivered` keeps those answered 2xx.
fn usage_reported(hits: &[Hit], tenant_id: &str, only_delivered: bool) -> (u64, u64) {
    let mut seen = BTreeSet::new();
    let (mut executions, mut output) = (0, 0);
    for h in hits_of(hits, "/usage", tenant_id) {
        if (only_delivered && !h.ok()) || !seen.insert(h.event_id().to_string()) {
            continue;
        }
        for m in h.json()["data"]["meters"].as_array().expect("meters") {
            match m["meter"].as_str() {
                Some("executions") => executions += m["quantity"].as_u64().expect("a count"),
                Some("output_bytes") => output += m["quantity"].as_u64().expect("bytes"),
                _ => {}
            }
        }
    }
    (executions, output)
}

/// Checks what every delivery must carry: a valid signature with the
/// endpoint's secret (and not with the other's), the event id as the
/// idempotency key, the event type, JSON.
fn assert_well_formed(h: &Hit) {
    let (secret, other, kind) = match h.path.as_str() {
        "/quota" => (QUOTA_SECRET, USAGE_SECRET, "quota.warning"),
        "/usage" => (USAGE_SECRET, QUOTA_SECRET, "usage.reported"),
        p => panic!("unexpected path {p}"),
    };
    let sig = h.header(superserver_notify::SIGNATURE_HEADER);
    superserver_notify::verify(secret.as_bytes(), sig, &h.body, h.received_s, superserver_notify::DEFAULT_TOLERANCE_S)
        .unwrap_or_else(|e| panic!("signature of {h:?}: {e}"));
    assert!(
        superserver_notify::verify(other.as_bytes(), sig, &h.body, h.received_s, 300).is_err(),
        "the signature must depend on the secret"
    );
    let mut tampered = h.body.clone();
    tampered.push(b' ');
    assert!(superserver_notify::verify(secret.as_bytes(), sig, &tampered, h.received_s, 300).is_err());
    assert_eq!(h.header(superserver_notify::IDEMPOTENCY_HEADER), h.event_id(), "{h:?}");
    assert_eq!(h.header(superserver_notify::EVENT_TYPE_HEADER), kind, "{h:?}");
    assert!(h.header("content-type").starts_with("application/json"), "{h:?}");
    assert!(h.header("user-agent").starts_with("SuperServer/"), "{h:?}");
    let body = h.json();
    assert_eq!((body["id"].as_str(), body["type"].as_str()), (Some(h.event_id()), Some(kind)), "{body}");
    assert!(h.attempt() >= 1, "{h:?}");
}

/// Checks a tenant's two executions warnings (80 % and 100 % of `limit`).
fn assert_warnings(hits: &[&Hit], tenant: &TenantInfo, limit: u64) {
    let delivered = delivered_ids(hits);
    assert_eq!(delivered.len(), 2, "two warnings for {}: {delivered:?}", tenant.name);
    let (resets, _) = next_month_start();
    let mut percents = BTreeSet::new();
    for id in delivered.keys() {
        let h = hits.iter().find(|h| h.event_id() == id && h.ok()).unwrap();
        let body = h.json();
        let data = &body["data"];
        let percent = data["percent"].as_u64().expect("percent");
        percents.insert(percent);
        assert_eq!(data["quota"], "executions", "{body}");
        assert_eq!(data["limit"].as_u64(), Some(limit), "{body}");
        assert_eq!(data["used"].as_f64(), Some((limit * percent / 100) as f64), "{body}");
        assert_eq!(data["resets_at"].as_str(), Some(resets.as_str()), "{body}");
        assert_eq!(body["tenant"]["name"].as_str(), Some(tenant.name.as_str()), "{body}");
        assert_eq!(body["tenant"]["plan"].as_str(), Some(tenant.plan.as_str()), "{body}");
        // Every retry of an event carries the same id and body.
        for other in hits.iter().filter(|o| o.event_id() == id) {
            assert_eq!(other.json(), body, "a retry changed the payload");
        }
    }
    assert_eq!(percents, BTreeSet::from([80, 100]), "{delivered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_retried_and_survive_a_kill() {
    let (hooks, base) = Hooks::start().await;
    let mut s = Server::start_with(&format!(
        "[plans.hooked]\nexecutions_per_month = 5\n{FAST}\
         [billing]\nusage_report_interval_seconds = 1\n\
         [[webhooks]]\nname = \"quota\"\nurl = \"{base}/quota\"\nsecret = \"{QUOTA_SECRET}\"\n\
         events = [\"quota.warning\"]\ntimeout_ms = 5000\n\
         [[webhooks]]\nname = \"usage\"\nurl = \"{base}/usage\"\nsecret = \"{USAGE_SECRET}\"\n\
         events = [\"usage.reported\"]\ntimeout_ms = 5000\n"
    ))
    .await;

    // Phase 1: the receiver fails the first two quota deliveries; they are retried.
    const FAILURES: usize = 2;
    hooks.with(|h| h.fail_quota_next = FAILURES);
    let (a, a_key) = tenant_with_key(&s, "hooks-a", "hooked", None, Role::Member).await;
    let ca = client_with(&s, &a_key.key);
    for _ in 0..5 {
        assert_eq!(ca.run(&run_req(&["echo", "hi"])).await.unwrap().stdout, "hi\n");
    }
    let refused = post_run(&http_with_key(&a_key.key), &s, &run_req(&["echo", "hi"])).await;
    assert_quota_exceeded(&refused, "executions", 5);
    wait_for("two quota warnings and the usage of 5 runs of hooks-a", || {
        let hits = hooks.hits();
        let warned = delivered_ids(&hits_of(&hits, "/quota", &a.id));
        let usage = usage_reported(&hits, &a.id, true);
        if warned.len() >= 2 && usage.0 >= 5 {
            Ok(())
        } else {
            Err(format!("warnings {warned:?}, usage {usage:?}"))
        }
    })
    .await;
    let hits = hooks.hits();
    hits.iter().for_each(assert_well_formed);
    let a_quota = hits_of(&hits, "/quota", &a.id);
    assert_warnings(&a_quota, &a, 5);
    // Retries: the same event id, the attempt counting up from 1, every
    // attempt but the last refused, exactly the failures the receiver made.
    let mut failed = 0;
    for id in delivered_ids(&a_quota).keys() {
        let attempts: Vec<&&Hit> = a_quota.iter().filter(|h| h.event_id() == id).collect();
        let numbers: Vec<u32> = attempts.iter().map(|h| h.attempt()).collect();
        assert_eq!(numbers, (1..=attempts.len() as u32).collect::<Vec<_>>(), "attempts of {id}");
        let statuses: Vec<u16> = attempts.iter().map(|h| h.status).collect();
        let (last, before) = statuses.split_last().unwrap();
        assert!(*last == 200 && before.iter().all(|&s| s == 500), "attempts of {id}: {statuses:?}");
        failed += before.len();
    }
    assert_eq!(failed, FAILURES, "each refused delivery was retried");
    assert!(a_quota.iter().any(|h| h.attempt() > 1), "some retry happened");
    assert_eq!(usage_reported(&hits, &a.id, true), (5, 5 * 3), "5 runs of `echo hi` reported once each");

    // Phase 2: the receiver refuses everything, events pile up in the
    // outbox, and the server is killed. (No delivery is answered 2xx while
    // the server may die, so exactly-once holds here, not just at-least-once.)
    hooks.with(|h| h.fail_all = true);
    let (b, b_key) = tenant_with_key(&s, "hooks-b", "hooked", None, Role::Member).await;
    let cb = client_with(&s, &b_key.key);
    for _ in 0..4 {
        assert_eq!(cb.run(&run_req(&["echo", "hi"])).await.unwrap().stdout, "hi\n");
    }
    // A second attempt of the 80 % warning proves the server recorded the
    // first one as failed.
    wait_for("a retried 80 % warning of hooks-b and a refused usage report", || {
        let hits = hooks.hits();
        let attempts: Vec<u32> = hits_of(&hits, "/quota", &b.id).iter().map(|h| h.attempt()).collect();
        let usage = usage_reported(&hits, &b.id, false);
        if attempts.iter().any(|&n| n >= 2) && usage.0 >= 1 {
            Ok(())
        } else {
            Err(format!("warning attempts {attempts:?}, usage {usage:?}"))
        }
    })
    .await;
    // The fifth run: its 100 % warning and its usage may not even be queued yet.
    assert_eq!(cb.run(&run_req(&["echo", "hi"])).await.unwrap().stdout, "hi\n");
    s.kill9();
    let before_restart = hooks.hits().len();
    hooks.with(|h| h.fail_all = false);
    s.spawn().await;

    wait_for("every event delivered after the restart", || {
        let hits = hooks.hits();
        let b_warned = delivered_ids(&hits_of(&hits, "/quota", &b.id));
        let ua = usage_reported(&hits, &a.id, true);
        let ub = usage_reported(&hits, &b.id, true);
        if b_warned.len() >= 2 && ua.0 >= 5 && ub.0 >= 5 {
            Ok(())
        } else {
            Err(format!("hooks-b warnings {b_warned:?}, usage a {ua:?} b {ub:?}"))
        }
    })
    .await;
    // Give late duplicates (re-queued warnings, a usage batch reported
    // twice) time to show up: two more report intervals.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let hits = hooks.hits();
    assert!(hits.len() > before_restart, "deliveries resumed after the restart");
    hits.iter().for_each(assert_well_formed);
    for path in ["/quota", "/usage"] {
        let all: Vec<&Hit> = hits.iter().filter(|h| h.path == path).collect();
        let twice: Vec<_> = delivered_ids(&all).into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(twice.is_empty(), "{path}: events delivered successfully more than once: {twice:?}");
    }
    let b_quota = hits_of(&hits, "/quota", &b.id);
    assert_warnings(&b_quota, &b, 5);
    assert_warnings(&hits_of(&hits, "/quota", &a.id), &a, 5);
    let quota_ids = delivered_ids(&hits.iter().filter(|h| h.path == "/quota").collect::<Vec<_>>());
    assert_eq!(quota_ids.len(), 4, "exactly four warnings in all: {quota_ids:?}");
    // The 80 % warning was refused before the kill and delivered after it,
    // with the attempt count carried across the restart.
    for id in delivered_ids(&b_quota).keys() {
        let numbers: Vec<u32> = b_quota.iter().filter(|h| h.event_id() == id).map(|h| h.attempt()).collect();
        assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "attempts of {id} never go back: {numbers:?}");
    }
    let b80 = b_quota.iter().find(|h| h.ok() && h.json()["data"]["percent"] == 80).unwrap();
    assert!(b80.attempt() >= 2, "delivered on a later attempt than the refused one: {b80:?}");
    assert_eq!(usage_reported(&hits, &a.id, true), (5, 15), "hooks-a's usage reported exactly once");
    assert_eq!(usage_reported(&hits, &b.id, true), (5, 15), "hooks-b's usage reported exactly once");
    // The restarted server counts what ran before the kill.
    let q = s.client.quotas(Some("hooks-b")).await.unwrap();
    assert_eq!(quota(&q.tenants[0].quotas, "executions").used, 5.0, "{q:?}");
    // The outbox shows every warning delivered, and who refused before.
    let outbox: serde_json::Value =
        s.http().get(format!("{}/v1/outbox?limit=1000", s.url)).send().await.unwrap().json().await.unwrap();
    let warnings: Vec<&serde_json::Value> =
        outbox["entries"].as_array().unwrap().iter().filter(|e| e["event_type"] == "quota.warning").collect();
    assert_eq!(warnings.len(), 4, "{outbox}");
    assert!(warnings.iter().all(|e| e["state"] == "delivered" && e["destination"] == "webhook:quota"), "{outbox}");
    assert!(warnings.iter().any(|e| e["attempts"].as_u64().unwrap() >= 2), "{outbox}");
}

// ---------------------------------------------------------------------------
// 6. E-mail
// ---------------------------------------------------------------------------

/// Debian's interpreter: a `python3` earlier on PATH may lack aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";

/// An SMTP server accepting everything; appends each message as a JSON line
/// to the file named by its argument, prints its port when ready and runs
/// until its stdin closes.
const SMTP_PY: &str = r#"
import json, socket, sys
from aiosmtpd.controller import Controller

out_path = sys.argv[1]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": envelope.content.decode("utf-8", "replace"),
        }
        with open(out_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()

controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
sys.stdin.read()
controller.stop()
"#;

/// A running aiosmtpd; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    fn start() -> Self {
        let importable = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            importable,
            "{PYTHON} cannot import aiosmtpd: the e-mail test needs a real SMTP server; run scripts/test \
             (it installs python3-aiosmtpd), or apt-get install python3-aiosmtpd"
        );
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, SMTP_PY).unwrap();
        let log = dir.path().join("received.jsonl");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(BOUND).expect("the SMTP server prints its port in time");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP server did not start: {line:?}"));
        Self { child, port, log, _dir: dir }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON lines"))
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The unfolded headers and the body of a message.
fn parse_mail(content: &str) -> (Vec<(String, String)>, String) {
    let content = content.replace("\r\n", "\n");
    let (head, body) = content.split_once("\n\n").expect("a blank line ends the headers");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        match (line.starts_with([' ', '\t']), headers.last_mut()) {
            (true, Some((_, value))) => value.push_str(line),
            _ => {
                let (name, value) = line.split_once(':').expect("a header line");
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
    }
    (headers, body.to_owned())
}

fn mail_header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    let found: Vec<_> = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).collect();
    assert_eq!(found.len(), 1, "header {name} once in {headers:?}");
    &found[0].1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_warning_emails_go_through_smtp() {
    let smtp = SmtpServer::start();
    let s = Server::start_with(&format!(
        "[plans.mailed]\nexecutions_per_month = 5\n{FAST}\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"SuperServer <alerts@example.com>\"\n\
         timeout_ms = 5000\n",
        smtp.port
    ))
    .await;
    // A tenant without an address gets no mail.
    let (_, quiet_key) = tenant_with_key(&s, "mail-quiet", "mailed", None, Role::Member).await;
    let quiet = client_with(&s, &quiet_key.key);
    for _ in 0..4 {
        quiet.run(&run_req(&["true"])).await.unwrap();
    }
    let (t, key) = tenant_with_key(&s, "mail-tenant", "mailed", Some("ops@example.net"), Role::Member).await;
    assert_eq!(t.email.as_deref(), Some("ops@example.net"));
    let c = client_with(&s, &key.key);
    for _ in 0..3 {
        c.run(&run_req(&["true"])).await.unwrap();
    }
    // 3 of 5 is below 80 %: nothing yet. The fourth run reaches it.
    assert!(smtp.received().is_empty(), "{:?}", smtp.received());
    c.run(&run_req(&["true"])).await.unwrap();
    let mails = wait_for("the 80 % e-mail", || match smtp.received() {
        m if m.is_empty() => Err("no mail".into()),
        m => Ok(m),
    })
    .await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail["mail_from"], "alerts@example.com");
    assert_eq!(mail["rcpt_tos"], json!(["ops@example.net"]));
    let (headers, body) = parse_mail(mail["content"].as_str().unwrap());
    assert_eq!(mail_header(&headers, "From"), "SuperServer <alerts@example.com>");
    assert_eq!(mail_header(&headers, "To"), "ops@example.net");
    let subject = mail_header(&headers, "Subject");
    assert!(subject.contains("executions") && subject.contains("mail-tenant"), "{subject}");
    assert!(subject.contains("80%"), "{subject}");
    assert!(body.contains("has used 4 of its 5 executions quota"), "{body}");
    assert!(body.contains(&next_month_start().0), "the mail says when the quota resets: {body}");

    // Using it up sends the second mail, with its own Message-ID.
    c.run(&run_req(&["true"])).await.unwrap();
    let mails = wait_for("the 100 % e-mail", || match smtp.received() {
        m if m.len() < 2 => Err(format!("{} mails", m.len())),
        m => Ok(m),
    })
    .await;
    let (headers2, body2) = parse_mail(mails[1]["content"].as_str().unwrap());
    let subject2 = mail_header(&headers2, "Subject");
    assert!(subject2.contains("executions") && subject2.contains("mail-tenant"), "{subject2}");
    assert!(subject2.contains("used up"), "{subject2}");
    assert!(body2.contains("has used 5 of its 5 executions quota"), "{body2}");
    assert_ne!(mail_header(&headers, "Message-ID"), mail_header(&headers2, "Message-ID"));
    // Nothing else goes out: no duplicate, nothing for the quiet tenant.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails = smtp.received();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().all(|m| m["rcpt_tos"] == json!(["ops@example.net"])), "{mails:?}");
}
