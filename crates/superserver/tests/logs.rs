//! Logs through the real server: a test-service container's lines are
//! followed, mined, searchable and tailed, and a restart of the server
//! neither loses nor repeats them; files are followed across rotation and
//! truncation; a sandbox's output is its tenant's alone; retention keeps the
//! store under its cap; hostile lines are stored as bounded data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use common::docker::Container;
use common::{http_with_key, tenant_with_key, Server};
use superserver_client::LogsQuery;
use superserver_wire::{LogList, LogTemplateList, Role, RunRequest};

/// Polls `GET /v1/logs` until `done` holds for the answer (30 s at most).
async fn wait_logs(s: &Server, query: &[(&str, &str)], what: &str, done: impl Fn(&LogList) -> bool) -> LogList {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: LogList =
            s.http().get(format!("{}/v1/logs", s.url)).query(query).send().await.unwrap().json().await.unwrap();
        if done(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "{what}: never happened; last answer {list:?}\nserver log:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `POST /log?n=…&level=…&msg=…` to the test service in `c`.
async fn emit(c: &Container, n: u32, level: &str, msg: &str) {
    let url = format!("http://{}:8080/log", c.ip());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = reqwest::Client::new()
            .post(&url)
            .query(&[("n", n.to_string().as_str()), ("level", level), ("msg", msg)])
            .send()
            .await;
        if r.as_ref().is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "the test service never answered: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn seqs(list: &LogList) -> Vec<String> {
    list.lines.iter().filter_map(|l| l.line.rsplit_once("seq=").map(|(_, s)| s.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_lines_are_followed_searched_tailed_and_survive_a_restart() {
    common::docker::require_docker();
    let mut s = Server::start_with("[discovery]\ninterval_seconds = 1\n").await;
    let c = Container::run("ss-test-logs-web", &[]);
    let service = format!("container:{}", c.name);
    let svc = service.as_str();
    emit(&c, 5, "error", "payment failed for order 4711").await;
    emit(&c, 2, "info", "cache warmed").await;

    let found =
        wait_logs(&s, &[("service", svc), ("q", "payment")], "error lines stored", |l| l.lines.len() == 5).await;
    let first = &found.lines[0];
    assert_eq!(first.level, "error");
    assert_eq!(first.stream, "stderr");
    assert!(first.template.contains("payment failed"), "{first:?}");
    assert!(first.template.contains("<*>"), "the sequence number is a variable: {first:?}");
    assert!(found.lines.iter().all(|l| l.template_id == first.template_id), "one template for the five lines");
    assert!(found.lines.windows(2).all(|w| w[0].at_ms >= w[1].at_ms), "newest first");

    let errors = wait_logs(&s, &[("service", svc), ("level", "error")], "level filter", |l| l.lines.len() >= 5).await;
    assert!(errors.lines.iter().all(|l| l.level == "error"));
    let info =
        wait_logs(&s, &[("service", svc), ("level", "info"), ("q", "cache")], "info lines", |l| l.lines.len() == 2)
            .await;
    assert_eq!(info.lines[0].stream, "stdout");
    let at = first.at_ms;
    let before =
        wait_logs(&s, &[("service", svc), ("q", "payment"), ("to", &(at - 60_000).to_string())], "range", |_| true)
            .await;
    assert!(before.lines.is_empty(), "nothing a minute before the first line");
    let within = (at - 60_000).to_string();
    let within = wait_logs(&s, &[("service", svc), ("q", "payment"), ("from", &within)], "range", |_| true).await;
    assert_eq!(within.lines.len(), 5);

    let templates: LogTemplateList = s
        .http()
        .get(format!("{}/v1/logs/templates", s.url))
        .query(&[("service", svc)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = templates.templates.iter().find(|t| t.id == first.template_id).expect("the lines' template is listed");
    assert_eq!((t.count, t.level.as_str()), (5, "error"));

    // A live tail sees a new line.
    let client = s.client.clone();
    let q = LogsQuery { service: Some(service.clone()), q: Some("tailed".into()), ..Default::default() };
    let tail = tokio::spawn(async move {
        let mut got = None;
        client
            .follow_logs(&q, |l| {
                got = Some(l);
                false
            })
            .await
            .unwrap();
        got.unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tail.is_finished() {
        emit(&c, 1, "warn", "tailed line").await;
        assert!(Instant::now() < deadline, "the tail never received a line");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let tailed = tail.await.unwrap();
    assert_eq!((tailed.level.as_str(), tailed.service.as_str()), ("warn", svc));

    // The CLI prints the lines.
    let out = std::process::Command::new(common::bin())
        .args(["logs", svc, "-q", "payment", "--level", "error", "--since", "1h"])
        .env("SUPERSERVER_URL", &s.url)
        .env("SUPERSERVER_API_KEY", &s.admin_key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.lines().filter(|l| l.contains("payment failed for order 4711")).count(), 5, "{text}");

    // Lines written while the server is down are read after it starts again, once.
    let all_before = wait_logs(&s, &[("service", svc), ("limit", "1000")], "all lines", |_| true).await;
    s.stop().await;
    emit(&c, 3, "error", "written while down").await;
    s.spawn().await;
    emit(&c, 1, "info", "after restart").await;
    let all = wait_logs(&s, &[("service", svc), ("limit", "1000")], "lines after the restart", |l| {
        l.lines.iter().any(|x| x.line.contains("after restart"))
    })
    .await;
    let down = all.lines.iter().filter(|l| l.line.contains("written while down")).count();
    assert_eq!(down, 3, "lines written while the server was down are read once");
    let seq = seqs(&all);
    let unique: HashSet<_> = seq.iter().collect();
    assert_eq!(seq.len(), unique.len(), "no line stored twice: {seq:?}");
    assert_eq!(all.lines.len(), all_before.lines.len() + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_followed_across_rotation_and_truncation_and_hostile_lines_are_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let glob = dir.path().join("*.log");
    let cfg =
        format!("[logs]\nfile_poll_ms = 50\n[[logs.files]]\nservice = \"app\"\npaths = [\"{}\"]\n", glob.display());
    let s = Server::start_with(&cfg).await;
    let append = |text: &str| {
        std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap().write_all(text.as_bytes()).unwrap()
    };
    append("INFO first file line n=1\nWARN before rotation n=2\n");
    wait_logs(&s, &[("service", "app")], "first lines", |l| l.lines.len() == 2).await;

    // Rename rotation: the rest of the old file, then the new one.
    append("INFO last of the old file n=3\n");
    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    append("INFO first of the new file n=4\n");
    let l = wait_logs(&s, &[("service", "app")], "rotation", |l| l.lines.len() == 4).await;
    assert!(l.lines.iter().any(|x| x.line.contains("last of the old file")));
    assert!(l.lines.iter().any(|x| x.line.contains("first of the new file")));

    // copytruncate: the file shrinks, and is read again from its start.
    std::fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
    append("ERROR after truncation n=5\n");
    let l = wait_logs(&s, &[("service", "app")], "truncation", |l| l.lines.len() == 5).await;
    assert_eq!(l.lines[0].level, "error");

    // Hostile lines: markup, terminal escapes, a 1 MiB line.
    let big = "A".repeat(1 << 20);
    append(&format!("<script>alert(1)</script> \x1b[31mred\x1b[0m\n{big}\n"));
    let l = wait_logs(&s, &[("service", "app"), ("limit", "2")], "hostile lines", |l| {
        l.lines.len() == 2 && l.lines.iter().any(|x| x.line.starts_with("AAAA"))
    })
    .await;
    let long = l.lines.iter().find(|x| x.line.starts_with("AAAA")).unwrap();
    assert!(long.line.len() <= 8 * 1024, "a long line is cut to 8 KiB, was {}", long.line.len());
    let script = wait_logs(&s, &[("service", "app"), ("q", "script")], "markup search", |l| !l.lines.is_empty()).await;
    assert_eq!(script.lines[0].line, "<script>alert(1)</script> \x1b[31mred\x1b[0m", "stored as it was, as data");
    let out = std::process::Command::new(common::bin())
        .args(["logs", "app", "-q", "script"])
        .env("SUPERSERVER_URL", &s.url)
        .env("SUPERSERVER_API_KEY", &s.admin_key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\x1b'), "the CLI escapes terminal control characters: {text:?}");
    assert!(text.contains("\\u{1b}[31mred"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_s_output_is_its_tenant_s_only_and_host_logs_are_admin_only() {
    let s = Server::start().await;
    let (key_a, _) = tenant_with_key(&s, "logs-a", "team", Role::Member).await;
    let (key_b, _) = tenant_with_key(&s, "logs-b", "team", Role::Member).await;
    let a = http_with_key(&key_a);
    let req = RunRequest {
        command: common::argv(&["sh", "-c", "echo 'ERROR tenant secret 42'; echo 'plain stderr' >&2"]),
        ..Default::default()
    };
    let r: superserver_wire::ExecResult =
        a.post(format!("{}/v1/run", s.url)).json(&req).send().await.unwrap().json().await.unwrap();
    let service = format!("sandbox:{}", r.sandbox_id);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mine = loop {
        let l: LogList =
            a.get(format!("{}/v1/logs", s.url)).query(&[("q", "secret")]).send().await.unwrap().json().await.unwrap();
        if !l.lines.is_empty() {
            break l;
        }
        assert!(Instant::now() < deadline, "the tenant never saw its sandbox's line");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(mine.lines[0].service, service);
    assert_eq!(mine.lines[0].level, "error");
    let stderr: LogList = a
        .get(format!("{}/v1/logs", s.url))
        .query(&[("service", service.as_str()), ("q", "plain")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((stderr.lines[0].stream.as_str(), stderr.lines[0].level.as_str()), ("stderr", "unknown"));

    let b = http_with_key(&key_b);
    for query in [vec![("q", "secret")], vec![("service", service.as_str())]] {
        let l: LogList = b.get(format!("{}/v1/logs", s.url)).query(&query).send().await.unwrap().json().await.unwrap();
        assert!(l.lines.is_empty(), "another tenant sees nothing: {l:?}");
    }
    let admin = wait_logs(&s, &[("q", "secret")], "admin sees all", |l| !l.lines.is_empty()).await;
    assert_eq!(admin.lines[0].service, service);

    let host = b.get(format!("{}/v1/logs", s.url)).query(&[("service", "container:web")]).send().await.unwrap();
    assert_eq!(host.status(), 403);
    let bad = s.http().get(format!("{}/v1/logs", s.url)).query(&[("level", "loud")]).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(common::error_code(&body).len() > 1 && body["error"]["message"].as_str().unwrap().contains("loud"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_logs_under_their_cap_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let cfg = format!(
        "[logs]\nmax_disk_mb = 1\nprune_interval_seconds = 1\nfile_poll_ms = 50\n[[logs.files]]\nservice = \"big\"\npaths = [\"{}\"]\n",
        path.display()
    );
    let s = Server::start_with(&cfg).await;
    // About 3 MiB of estimated storage: three times the cap.
    let mut text = String::new();
    for i in 0..6000 {
        text.push_str(&format!("INFO line number {i} marker{i} {}\n", "x".repeat(120)));
    }
    std::fs::write(&path, text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let newest: LogList = s
            .http()
            .get(format!("{}/v1/logs", s.url))
            .query(&[("service", "big"), ("q", "marker5999")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let all: LogList = s
            .http()
            .get(format!("{}/v1/logs", s.url))
            .query(&[("service", "big"), ("limit", "10000")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let estimate: i64 = all.lines.iter().map(|l| 2 * l.line.len() as i64 + 96).sum();
        if newest.lines.len() == 1 && estimate <= 1 << 20 && all.lines.len() < 6000 {
            let oldest = all.lines.last().unwrap();
            assert!(!oldest.line.contains("marker0 "), "the oldest lines went first");
            let kept: Vec<usize> =
                all.lines.iter().map(|l| l.line.split_whitespace().nth(3).unwrap().parse().unwrap()).collect();
            let min = *kept.iter().min().unwrap();
            assert_eq!(kept.len(), 6000 - min, "every line newer than the oldest kept is still there");
            return;
        }
        assert!(Instant::now() < deadline, "retention never got the logs under 1 MiB ({} lines)", all.lines.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
