//! Alerts through the real server, the real Docker engine and real
//! receivers on loopback: a stopped container raises one `service_down`
//! alert, notified once to a signed webhook, a Slack-compatible receiver and
//! an SMTP server, with its context; starting it again resolves it, notified
//! once each. Silences and acks, a crash with an undelivered alert, and bad
//! rule configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use common::docker::{require_docker, Container};
use common::Server;
use serde_json::Value;
use superserver_wire::{Alert, AlertState, SilenceRequest};

const BOUND: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);
const SECRET: &str = "whsec_alerts_test_77c1";

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Polls `f` until it gives a value, for at most [`BOUND`].
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    ok: bool,
    received_s: i64,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str).unwrap_or_default()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct HookState {
    hits: Vec<Hit>,
    fail_all: bool,
}

/// A receiver on loopback for `/hook` (signed webhook) and `/slack`.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<HookState>>);

impl Hooks {
    async fn start() -> (Self, String) {
        let hooks = Hooks::default();
        let app =
            axum::Router::new().route("/hook", post(receive)).route("/slack", post(receive)).with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (hooks, url)
    }

    fn set_failing(&self, fail: bool) {
        self.0.lock().unwrap().fail_all = fail;
    }

    /// Accepted requests to `path`.
    fn ok(&self, path: &str) -> Vec<Hit> {
        self.0.lock().unwrap().hits.iter().filter(|h| h.path == path && h.ok).cloned().collect()
    }

    fn all(&self, path: &str) -> Vec<Hit> {
        self.0.lock().unwrap().hits.iter().filter(|h| h.path == path).cloned().collect()
    }
}

async fn receive(State(hooks): State<Hooks>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut s = hooks.0.lock().unwrap();
    let ok = !s.fail_all;
    s.hits.push(Hit {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
        ok,
        received_s: now_s(),
    });
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Debian's interpreter: a `python3` earlier on PATH may lack aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";

const SMTP_PY: &str = r#"
import json, socket, sys
from aiosmtpd.controller import Controller

out_path = sys.argv[1]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        record = {"rcpt_tos": envelope.rcpt_tos, "content": envelope.content.decode("utf-8", "replace")}
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
            .unwrap_or_else(|e| panic!("cannot start {PYTHON} (python3-aiosmtpd): {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
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

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn config(service: &str, url: &str, smtp: Option<u16>) -> String {
    let (smtp_cfg, email_ch, channels) = match smtp {
        Some(port) => (
            format!(
                "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"SuperServer <alerts@example.com>\"\ntimeout_ms = 5000\n"
            ),
            "[[alerts.channels]]\nname = \"mail\"\nkind = \"email\"\nto = [\"oncall@example.net\"]\n".to_string(),
            "[\"hook\", \"chat\", \"mail\"]",
        ),
        None => (String::new(), String::new(), "[\"hook\", \"chat\"]"),
    };
    format!(
        "{smtp_cfg}[discovery]\ninterval_seconds = 1\n\
         [alerts]\nevaluate_interval_seconds = 1\nlog_lines = 5\n\
         [[alerts.rules]]\nname = \"down\"\nkind = \"service_down\"\nfor_seconds = 1\nseverity = \"critical\"\n\
         cooldown_seconds = 3600\nservices = [\"{service}\"]\nchannels = {channels}\n\
         [[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}/hook\"\nsecret = \"{SECRET}\"\n\
         [[alerts.channels]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{url}/slack\"\n{email_ch}"
    )
}

async fn alerts_of(s: &Server, service: &str) -> Vec<Alert> {
    s.client.alerts(Some("all"), Some(service)).await.unwrap().alerts
}

/// Waits until discovery sees the service in `state`.
async fn wait_state(s: &Server, id: &str, state: &str) {
    let deadline = Instant::now() + BOUND;
    loop {
        let list = s.client.services().await.unwrap();
        if list.services.iter().any(|sv| sv.id == id && sv.container.as_ref().is_some_and(|c| c.state == state)) {
            return;
        }
        assert!(Instant::now() < deadline, "discovery never saw {id} {state}");
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_alert(s: &Server, service: &str, what: &str, pred: impl Fn(&[Alert]) -> bool) -> Vec<Alert> {
    let deadline = Instant::now() + BOUND;
    loop {
        let a = alerts_of(s, service).await;
        if pred(&a) {
            return a;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {a:#?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the outbox has nothing pending.
async fn wait_outbox_idle(s: &Server) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let v: Value = s
            .http()
            .get(format!("{}/v1/outbox", s.url))
            .bearer_auth(&s.admin_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["entries"].as_array().unwrap().iter().all(|e| e["state"] != "pending") {
            return v;
        }
        assert!(Instant::now() < deadline, "the outbox never drained: {v:#}");
        tokio::time::sleep(POLL).await;
    }
}

fn verify_signed(h: &Hit) {
    let sig = h.header(superserver_notify::SIGNATURE_HEADER);
    superserver_notify::verify(SECRET.as_bytes(), sig, &h.body, h.received_s, superserver_notify::DEFAULT_TOLERANCE_S)
        .unwrap_or_else(|e| panic!("bad signature {sig:?}: {e}"));
    assert_eq!(h.header(superserver_notify::IDEMPOTENCY_HEADER), h.json()["id"].as_str().unwrap());
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_container_alerts_every_channel_once_and_resolves_once() {
    require_docker();
    let smtp = SmtpServer::start();
    let (hooks, url) = Hooks::start().await;
    let c = Container::run("ss-alert-web", &["-e", "LOG_EVERY_MS=100"]);
    let id = format!("container:{}", c.name);
    let s = Server::start_with(&config(&id, &url, Some(smtp.port))).await;
    wait_state(&s, &id, "running").await;
    c.docker("stop -t 1");
    let stopped = Instant::now();

    let a = wait_alert(&s, &id, "the firing alert", |a| a.iter().any(|a| a.state == AlertState::Firing)).await;
    assert_eq!(a.len(), 1, "one alert: {a:#?}");
    let alert = &a[0];
    assert_eq!(alert.rule, "down");
    assert!(alert.summary.contains("exited"), "{}", alert.summary);
    assert!(
        alert.context.changes.iter().any(|ch| ch.kind == "state_changed"),
        "recent state change in the context: {:#?}",
        alert.context
    );
    assert!(!alert.context.log_excerpt.is_empty(), "a log excerpt: {:#?}", alert.context);
    assert!(alert.context.log_excerpt.len() <= 5);

    let hook = wait_for("the webhook", || hooks.ok("/hook").first().cloned()).await;
    // A figure for docs, not an assertion: from the container's exit to the webhook.
    eprintln!("container exited -> signed webhook received: {:?}", stopped.elapsed());
    verify_signed(&hook);
    assert_eq!(hook.header(superserver_notify::EVENT_TYPE_HEADER), "alert.firing");
    assert_eq!(hook.json()["data"]["alert"]["id"], alert.id.as_str());
    assert_eq!(hook.json()["data"]["alert"]["service"], id.as_str());
    let slack = wait_for("the slack message", || hooks.ok("/slack").first().cloned()).await;
    let body = slack.json();
    assert!(body["text"].as_str().unwrap().contains("FIRING"), "{body}");
    assert!(body["blocks"].as_array().is_some_and(|b| !b.is_empty()), "{body}");
    let mail = wait_for("the e-mail", || smtp.received().first().cloned()).await;
    assert_eq!(mail["rcpt_tos"][0], "oncall@example.net");
    let content = mail["content"].as_str().unwrap();
    assert!(content.contains("FIRING") && content.contains(&id), "{content}");

    // Back up: resolved, one more notification on each channel.
    c.docker("start");
    wait_alert(&s, &id, "the resolution", |a| a.iter().all(|a| a.state == AlertState::Resolved)).await;
    wait_for("resolved webhook", || (hooks.ok("/hook").len() >= 2).then_some(())).await;
    wait_for("resolved slack", || (hooks.ok("/slack").len() >= 2).then_some(())).await;
    wait_for("resolved e-mail", || (smtp.received().len() >= 2).then_some(())).await;
    wait_outbox_idle(&s).await;
    let hooks_seen = hooks.ok("/hook");
    assert_eq!(hooks_seen.len(), 2, "exactly once each: {hooks_seen:#?}");
    assert_eq!(hooks_seen[1].header(superserver_notify::EVENT_TYPE_HEADER), "alert.resolved");
    verify_signed(&hooks_seen[1]);
    assert_eq!(hooks.ok("/slack").len(), 2);
    assert!(hooks.ok("/slack")[1].json()["text"].as_str().unwrap().contains("RESOLVED"));
    assert_eq!(smtp.received().len(), 2);
    let log = s.log();
    assert!(
        log.contains("effective configuration") && !log.contains(SECRET),
        "the channel secret stays out of the log"
    );
    assert!(!log.contains(&format!("{url}/slack")), "so does the Slack URL");

    let detail = s.client.alert(&alert.id).await.unwrap();
    let kinds: Vec<&str> = detail.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["fired", "notified", "resolved", "notified"], "{:#?}", detail.history);

    // Down again within the rule's cooldown: a new alert, recorded but quiet.
    c.docker("stop -t 1");
    let a = wait_alert(&s, &id, "the second alert", |a| a.iter().any(|a| a.state == AlertState::Firing)).await;
    let second = a.iter().find(|a| a.state == AlertState::Firing).unwrap();
    let detail = s.client.alert(&second.id).await.unwrap();
    assert!(detail.history.iter().any(|e| e.kind == "suppressed" && e.detail.contains("cooldown")), "{detail:#?}");
    // Ack it: recorded once.
    let acked = s.client.ack_alert(&second.id).await.unwrap();
    assert!(acked.ack.is_some());
    wait_outbox_idle(&s).await;
    assert_eq!(hooks.ok("/hook").len(), 2, "nothing more was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_keeps_an_alert_quiet_and_bad_requests_are_named() {
    require_docker();
    let (hooks, url) = Hooks::start().await;
    let c = Container::run("ss-alert-quiet", &[]);
    let id = format!("container:{}", c.name);
    let s = Server::start_with(&config(&id, &url, None)).await;
    let silence = s
        .client
        .create_silence(&SilenceRequest {
            rule: Some("down".into()),
            service: Some(id.clone()),
            for_seconds: Some(3600),
            reason: "maintenance".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.client.silences().await.unwrap().silences, vec![silence.clone()]);
    wait_state(&s, &id, "running").await;
    c.docker("stop -t 1");
    let a = wait_alert(&s, &id, "the silenced alert", |a| !a.is_empty()).await;
    let detail = s.client.alert(&a[0].id).await.unwrap();
    assert!(detail.history.iter().any(|e| e.kind == "suppressed" && e.detail.contains("maintenance")), "{detail:#?}");
    assert_eq!(detail.alert.notifications, 0);
    // The alert's own silence endpoint; its event lands in the history.
    let s2 = s
        .client
        .silence_alert(
            &a[0].id,
            &SilenceRequest { for_seconds: Some(60), reason: "again".into(), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(s2.service.as_deref(), Some(id.as_str()));
    s.client.delete_silence(&s2.id).await.unwrap();
    wait_outbox_idle(&s).await;
    assert!(hooks.all("/hook").is_empty() && hooks.all("/slack").is_empty(), "silenced: nothing sent");

    // The CLI shows the same.
    let cli = |args: &[&str]| {
        let o = Command::new(common::bin())
            .args(args)
            .env("SUPERSERVER_URL", &s.url)
            .env("SUPERSERVER_API_KEY", &s.admin_key)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let ls = cli(&["alerts", "ls", "--state", "all", "--service", &id]);
    assert!(ls.contains(&a[0].id) && ls.contains("down"), "{ls}");
    let show = cli(&["alerts", "show", &a[0].id]);
    assert!(show.contains("suppressed"), "{show}");
    let acked: Value = serde_json::from_str(&cli(&["alerts", "ack", &a[0].id, "--json"])).unwrap();
    assert!(acked["ack"]["by"].is_string(), "{acked}");
    let silences = cli(&["alerts", "silences"]);
    assert!(silences.contains(&silence.id) && silences.contains("maintenance"), "{silences}");

    // Bad input gets a named 400 / 404.
    let http = s.http();
    let post =
        |path: &str, body: Value| http.post(format!("{}{path}", s.url)).bearer_auth(&s.admin_key).json(&body).send();
    let r = post("/v1/silences", serde_json::json!({"reason": "x"})).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("for_seconds"), "{v}");
    let r = post("/v1/silences", serde_json::json!({"for_seconds": 5, "until": 1})).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post("/v1/silences", serde_json::json!({"until": 1})).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post("/v1/alerts/al_nope/ack", serde_json::json!({})).await.unwrap();
    assert_eq!(r.status(), 404);
    let r = http.get(format!("{}/v1/alerts?state=bogus", s.url)).bearer_auth(&s.admin_key).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Alerts are about the host: admin keys only.
    let (member, _) = common::tenant_with_key(&s, "alerts-member", "team", superserver_wire::Role::Member).await;
    for (method, path) in [
        (reqwest::Method::GET, "/v1/alerts".to_string()),
        (reqwest::Method::GET, format!("/v1/alerts/{}", a[0].id)),
        (reqwest::Method::POST, format!("/v1/alerts/{}/ack", a[0].id)),
        (reqwest::Method::GET, "/v1/silences".to_string()),
    ] {
        let (status, body) = common::call(&s, Some(&member), method, &path, None).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undelivered_alert_is_delivered_once_after_a_kill() {
    require_docker();
    let (hooks, url) = Hooks::start().await;
    hooks.set_failing(true);
    let c = Container::run("ss-alert-crash", &[]);
    let id = format!("container:{}", c.name);
    let mut s = Server::start_with(&config(&id, &url, None)).await;
    wait_state(&s, &id, "running").await;
    c.docker("stop -t 1");
    wait_for("a refused delivery", || (!hooks.all("/hook").is_empty()).then_some(())).await;
    s.kill9();
    hooks.set_failing(false);
    s.spawn().await;
    let hit = wait_for("the delivery after the restart", || hooks.ok("/hook").first().cloned()).await;
    verify_signed(&hit);
    let event = hit.json()["id"].as_str().unwrap().to_string();
    wait_outbox_idle(&s).await;
    let delivered: Vec<Hit> =
        hooks.ok("/hook").into_iter().filter(|h| h.json()["id"].as_str() == Some(event.as_str())).collect();
    assert_eq!(delivered.len(), 1, "delivered exactly once");
    // Still one alert for the condition across the restart.
    assert_eq!(alerts_of(&s, &id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rule_config_is_refused_at_start() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    for (toml, want) in [
        ("[[alerts.rules]]\nname = \"m\"\nkind = \"metric\"\nseries = \"cpu\"\n", "a metric rule needs series, op"),
        (
            "[[alerts.rules]]\nname = \"d\"\nkind = \"service_down\"\nchannels = [\"pager\"]\n",
            "channel \"pager\" is not in",
        ),
        ("[[alerts.rules]]\nname = \"d\"\nkind = \"service_down\"\nwhen = 3\n", "unknown field `when`"),
        ("[[alerts.channels]]\nname = \"m\"\nkind = \"email\"\nto = [\"a@b.c\"]\n", "needs an [smtp] server"),
    ] {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, format!("data_dir = \"{}\"\n{toml}", dir.path().join("data").display())).unwrap();
        let out = Command::new(common::bin()).args(["serve", "--config"]).arg(&path).output().unwrap();
        assert!(!out.status.success(), "{toml} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "for {toml:?}: want {want:?} in {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_burst_is_an_anomaly_alerted_once_with_its_evidence() {
    require_docker();
    let smtp = SmtpServer::start();
    let (hooks, url) = Hooks::start().await;
    // A steady trickle of info lines, no errors: the baseline.
    let c = Container::run("ss-alert-burst", &["-e", "LOG_EVERY_MS=100"]);
    let id = format!("container:{}", c.name);
    let s = Server::start_with(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"SuperServer <alerts@example.com>\"\n\
         [discovery]\ninterval_seconds = 1\n\
         [anomaly]\nbucket_seconds = 1\nmin_baseline_buckets = 3\nerror_floor = 20\n\
         [alerts]\nevaluate_interval_seconds = 1\n\
         [[alerts.rules]]\nname = \"errors\"\nkind = \"anomaly\"\nanomaly_kinds = [\"error_rate_spike\"]\n\
         services = [\"{id}\"]\nchannels = [\"hook\", \"mail\"]\n\
         [[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}/hook\"\nsecret = \"{SECRET}\"\n\
         [[alerts.channels]]\nname = \"mail\"\nkind = \"email\"\nto = [\"oncall@example.net\"]\n",
        port = smtp.port
    ))
    .await;
    wait_state(&s, &id, "running").await;
    // Its lines are followed, and a few seconds of baseline pass.
    let deadline = Instant::now() + BOUND;
    loop {
        let logs: Value = s
            .http()
            .get(format!("{}/v1/logs", s.url))
            .query(&[("service", id.as_str()), ("limit", "1")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if logs["lines"].as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the container's lines were never followed: {logs}");
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    // The burst: 200 error lines at once.
    let res = reqwest::Client::new()
        .post(format!("http://{}:8080/log?n=200&level=error&msg=payment+gateway+timeout+order%3D42", c.ip()))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());

    // An anomaly with its evidence...
    let deadline = Instant::now() + BOUND;
    let anomaly = loop {
        let list = s.client.anomalies(Some(&id), Some("error_rate_spike"), None).await.unwrap();
        if let Some(a) = list.anomalies.into_iter().next() {
            break a;
        }
        assert!(Instant::now() < deadline, "no error_rate_spike anomaly");
        tokio::time::sleep(POLL).await;
    };
    assert!(anomaly.evidence.figures["count"] >= 20.0, "{anomaly:#?}");
    assert!(anomaly.evidence.samples.iter().any(|l| l.contains("payment gateway timeout")), "{anomaly:#?}");
    assert!(!anomaly.evidence.window.is_empty(), "{anomaly:#?}");

    // ... and one alert, delivered once to the webhook and once by e-mail,
    // carrying the anomaly and a log excerpt.
    let a = wait_alert(&s, &id, "the anomaly alert", |a| !a.is_empty()).await;
    assert_eq!(a.len(), 1, "{a:#?}");
    let ctx = &a[0].context;
    assert_eq!(ctx.anomaly.as_ref().map(|x| x.kind), Some(superserver_wire::AnomalyKind::ErrorRateSpike));
    assert!(ctx.log_excerpt.iter().any(|l| l.contains("payment gateway timeout")), "{ctx:#?}");
    let hook = wait_for("the webhook", || hooks.ok("/hook").first().cloned()).await;
    verify_signed(&hook);
    wait_for("the e-mail", || smtp.received().first().cloned()).await;
    // Nothing more arrives: the burst is one anomaly, one alert.
    tokio::time::sleep(Duration::from_secs(4)).await;
    wait_outbox_idle(&s).await;
    assert_eq!(hooks.ok("/hook").len(), 1, "{:#?}", hooks.ok("/hook").iter().map(Hit::json).collect::<Vec<_>>());
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_repeats_after_its_cooldown_until_acked() {
    require_docker();
    let (hooks, url) = Hooks::start().await;
    let c = Container::run("ss-alert-repeat", &[]);
    let id = format!("container:{}", c.name);
    let s =
        Server::start_with(&config(&id, &url, None).replace("cooldown_seconds = 3600", "cooldown_seconds = 2")).await;
    wait_state(&s, &id, "running").await;
    c.docker("stop");
    // The first notification and, a cooldown later, a repeat of the same alert.
    let hits = wait_for("a repeat notification", || {
        let h = hooks.ok("/hook");
        (h.len() >= 2).then_some(h)
    })
    .await;
    let ids: Vec<String> = hits.iter().map(|h| h.json()["id"].as_str().unwrap().to_string()).collect();
    assert!(ids[0].ends_with(":1") && ids[1].ends_with(":2"), "{ids:?}");
    assert_eq!(hits[0].json()["data"]["alert"]["id"], hits[1].json()["data"]["alert"]["id"]);
    let alert_id = hits[0].json()["data"]["alert"]["id"].as_str().unwrap().to_string();
    s.client.ack_alert(&alert_id).await.unwrap();
    wait_outbox_idle(&s).await;
    let after_ack = hooks.ok("/hook").len();
    // Three cooldowns later: no repeat of the acknowledged alert.
    tokio::time::sleep(Duration::from_secs(6)).await;
    wait_outbox_idle(&s).await;
    assert_eq!(hooks.ok("/hook").len(), after_ack, "no repeat after the ack");
    // Its resolution is still told.
    c.docker("start");
    let resolved = wait_for("the resolved notification", || {
        hooks.ok("/hook").into_iter().find(|h| h.header(superserver_notify::EVENT_TYPE_HEADER) == "alert.resolved")
    })
    .await;
    assert_eq!(resolved.json()["data"]["alert"]["id"], alert_id.as_str());
    assert!(resolved.json()["data"]["alert"]["ack"]["at_ms"].is_i64(), "the ack travels with it");
}
