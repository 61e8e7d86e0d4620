//! The dashboard in a real headless Chromium: log in with a key, see a
//! container started by the test on the service map, read its detail page
//! where a hostile label stays text, a state change without the CSRF token
//! is refused, and logging out ends the session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::Browser;
use common::docker::Container;
use common::Server;
use fantoccini::Locator;

const XSS: &str = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=1</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_see_the_map_and_stay_safe() {
    let s = Server::start_with("[discovery]\ninterval_seconds = 1\n").await;
    let ct = Container::run("ss-test-ui-web", &["--label", &format!("note={XSS}")]);
    let b = Browser::start().await;
    let c = &b.client;

    // Not logged in: the login page.
    c.goto(&s.url).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    b.screenshot("login").await;
    // A wrong key is refused with a message.
    c.find(Locator::Css("#key")).await.unwrap().send_keys("ssk_not_a_key").await.unwrap();
    c.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    b.wait_js("the refusal", "return document.querySelector('p.error') !== null").await;
    let err = c.find(Locator::Css("p.error")).await.unwrap().text().await.unwrap();
    assert!(err.starts_with("That key was refused"), "{err}");
    // The admin key logs in.
    c.find(Locator::Css("#key")).await.unwrap().send_keys(&s.admin_key).await.unwrap();
    c.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    b.wait_js("logging in", "return location.pathname === '/'").await;
    let h1 = c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(h1, "Overview");

    // The container appears on the map (reloading as discovery looks).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let svg = c.find(Locator::Css("svg.map")).await.ok();
        let text = match svg {
            Some(e) => e.html(false).await.unwrap(),
            None => String::new(),
        };
        if text.contains("ss-test-ui-web") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the container never appeared on the map");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        c.refresh().await.unwrap();
    }
    b.screenshot("overview").await;

    // Its page shows the hostile label as text; nothing ran.
    c.goto(&format!("{}/services/container:ss-test-ui-web", s.url)).await.unwrap();
    let labels = c.find(Locator::Css("ul.labels")).await.unwrap().text().await.unwrap();
    assert!(labels.contains(XSS), "{labels}");
    let pwned = c.execute("return window.__pwned === undefined && document.querySelectorAll('ul.labels img, ul.labels script').length === 0", vec![]).await.unwrap();
    assert_eq!(pwned.as_bool(), Some(true), "markup from a label was interpreted");
    b.screenshot("service").await;
    c.goto(&format!("{}/services", s.url)).await.unwrap();
    b.screenshot("services").await;

    // The overview is live: the container stopping turns its node down
    // without a reload (pushed over server-sent events).
    c.goto(&s.url).await.unwrap();
    c.execute("window.__same_page = true;", vec![]).await.unwrap();
    ct.docker("stop -t 1");
    b.wait_js(
        "the map to show the container down",
        "return [...document.querySelectorAll('svg.map g.node')].some(g => g.textContent.includes('ss-test-ui-web') && g.classList.contains('off'))",
    )
    .await;
    let same = c.execute("return window.__same_page === true", vec![]).await.unwrap();
    assert_eq!(same.as_bool(), Some(true), "the page was reloaded instead of updated");

    // A state change without the page's CSRF token is refused (same origin,
    // the session cookie sent along): the session survives it.
    let status = c
        .execute_async(
            "const done = arguments[0];
             fetch('/logout', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'},
                               body: 'csrf=forged'}).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status.as_u64(), Some(403));
    c.goto(&s.url).await.unwrap();
    assert_eq!(c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap(), "Overview");

    // Logging out ends the session: the overview asks for a key again.
    c.find(Locator::Css(".who form button")).await.unwrap().click().await.unwrap();
    b.wait_js("logging out", "return location.pathname === '/login'").await;
    c.goto(&s.url).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    c.clone().close().await.unwrap();
}

/// Logs the browser in with `key`.
async fn log_in(b: &Browser, url: &str, key: &str) {
    let c = &b.client;
    c.goto(&format!("{url}/login")).await.unwrap();
    c.find(Locator::Css("#key")).await.unwrap().send_keys(key).await.unwrap();
    c.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    b.wait_js("logging in", "return location.pathname === '/'").await;
    assert_eq!(c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap(), "Overview");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_is_created_used_and_deleted_from_the_browser() {
    let s = Server::start().await;
    let b = Browser::start().await;
    let c = &b.client;
    log_in(&b, &s.url, &s.admin_key).await;

    // Create a sandbox from the form: its page opens.
    c.goto(&format!("{}/sandboxes", s.url)).await.unwrap();
    c.find(Locator::Css("#create button")).await.unwrap().click().await.unwrap();
    b.wait_js("the new sandbox's page", "return location.pathname.startsWith('/sandboxes/sb_')").await;
    let h1 = c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert!(h1.starts_with("Sandbox sb_"), "{h1}");
    let id = h1.trim_start_matches("Sandbox ").to_string();

    // Upload a file (a hostile name and body are data), then run a command
    // that reads it; the output streams in as text.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("note.txt");
    std::fs::write(&file, "<b>not bold</b>\n").unwrap();
    c.find(Locator::Css("#file")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    c.find(Locator::Css("#upload button")).await.unwrap().click().await.unwrap();
    b.wait_js("the upload", "return document.getElementById('upload-status').textContent.startsWith('Uploaded')").await;
    c.find(Locator::Css("#cmd"))
        .await
        .unwrap()
        .send_keys("for i in 1 2 3; do echo line $i; sleep 0.2; done; cat /workspace/note.txt; echo oops >&2; exit 3")
        .await
        .unwrap();
    c.find(Locator::Css("#exec button")).await.unwrap().click().await.unwrap();
    b.wait_js("the command to finish", "return document.getElementById('exec-status').textContent.startsWith('Done')")
        .await;
    let status = c.find(Locator::Css("#exec-status")).await.unwrap().text().await.unwrap();
    assert!(status.starts_with("Done: exit 3"), "{status}");
    let out = c.find(Locator::Css("#exec-out")).await.unwrap().text().await.unwrap();
    assert!(out.contains("line 1\nline 2\nline 3\n<b>not bold</b>\noops"), "{out}");
    let bold = c.execute("return document.querySelectorAll('#exec-out b').length", vec![]).await.unwrap();
    assert_eq!(bold.as_u64(), Some(0), "output was interpreted as markup");
    b.screenshot("sandbox").await;

    // The run history lists it with its outcome.
    c.refresh().await.unwrap();
    let runs = c.find(Locator::Css("#runs")).await.unwrap().text().await.unwrap();
    assert!(runs.contains("exit 3") && runs.contains("cat /workspace/note.txt"), "{runs}");
    c.goto(&format!("{}/sandboxes", s.url)).await.unwrap();
    b.screenshot("sandboxes").await;

    // Delete it (the confirmation accepted).
    c.goto(&format!("{}/sandboxes/{id}", s.url)).await.unwrap();
    c.execute("window.confirm = () => true;", vec![]).await.unwrap();
    c.find(Locator::Css("button.danger")).await.unwrap().click().await.unwrap();
    b.wait_js("the sandbox list", "return location.pathname === '/sandboxes'").await;
    let info = s.client.get_sandbox(&id).await.unwrap();
    assert!(info.ended_at_ms.is_some(), "{info:?}");
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_not_offered_what_it_may_not_do() {
    let s = Server::start().await;
    let (key, _) = common::tenant_with_key(&s, "acme", "team", superserver_wire::Role::Viewer).await;
    let b = Browser::start().await;
    let c = &b.client;
    log_in(&b, &s.url, &key).await;
    let nav = c.find(Locator::Css("header nav")).await.unwrap().text().await.unwrap();
    assert!(!nav.contains("Services"), "the host's pages are for admins: {nav}");
    c.goto(&format!("{}/sandboxes", s.url)).await.unwrap();
    assert!(c.find(Locator::Css("#create")).await.is_err(), "a viewer was offered to create a sandbox");
    // And refused server-side anyway, with a valid token.
    let status = c
        .execute_async(
            "const done = arguments[0];
             const t = document.querySelector('meta[name=csrf-token]').content;
             fetch('/sandboxes', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'},
                                  body: 'csrf=' + t}).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status.as_u64(), Some(403));
    c.goto(&format!("{}/services", s.url)).await.unwrap();
    assert_eq!(c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap(), "Cannot show this page");

    // A plan without the dashboard (free) cannot log in, with the reason.
    let (free_key, _) = common::tenant_with_key(&s, "cheap", "free", superserver_wire::Role::Owner).await;
    c.goto(&s.url).await.unwrap();
    c.find(Locator::Css(".who form button")).await.unwrap().click().await.unwrap();
    b.wait_js("logging out", "return location.pathname === '/login'").await;
    c.find(Locator::Css("#key")).await.unwrap().send_keys(&free_key).await.unwrap();
    c.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    b.wait_js("the refusal", "return document.querySelector('p.error') !== null").await;
    let err = c.find(Locator::Css("p.error")).await.unwrap().text().await.unwrap();
    assert!(err.contains("the web dashboard is not included in the `free` plan"), "{err}");
    c.goto(&format!("{}/services", s.url)).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_bar_moves_after_a_run() {
    let s = Server::start().await;
    let (key, _) = common::tenant_with_key(&s, "acme", "developer", superserver_wire::Role::Owner).await;
    let b = Browser::start().await;
    let c = &b.client;
    log_in(&b, &s.url, &key).await;
    let meter = "return Number(document.querySelector('.quota meter').value)";
    c.goto(&format!("{}/usage", s.url)).await.unwrap();
    let name = c.find(Locator::Css(".quota .qname")).await.unwrap().text().await.unwrap();
    assert_eq!(name, "executions");
    let before = c.execute(meter, vec![]).await.unwrap().as_f64().unwrap();

    // A run through the API with the tenant's own key.
    let res = common::http_with_key(&key)
        .post(format!("{}/v1/run", s.url))
        .json(&serde_json::json!({"command": ["true"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    c.refresh().await.unwrap();
    let after = c.execute(meter, vec![]).await.unwrap().as_f64().unwrap();
    assert_eq!(after, before + 1.0);
    let total = c.find(Locator::Css("#total-executions")).await.unwrap().text().await.unwrap();
    assert_eq!(total, "1");
    b.screenshot("usage").await;
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_tenants_and_keys() {
    let s = Server::start().await;
    let b = Browser::start().await;
    let c = &b.client;
    log_in(&b, &s.url, &s.admin_key).await;
    c.goto(&format!("{}/settings", s.url)).await.unwrap();
    c.execute("window.confirm = () => true;", vec![]).await.unwrap();

    // A tenant, created from the form, on the team plan.
    c.find(Locator::Css("#new-tenant input[name=name]")).await.unwrap().send_keys("globex").await.unwrap();
    c.execute("document.querySelector('#new-tenant select[name=plan]').value = 'team'", vec![]).await.unwrap();
    c.find(Locator::Css("#new-tenant button")).await.unwrap().click().await.unwrap();
    b.wait_js("the new tenant", "return document.querySelector('#tenants') && document.querySelector('#tenants').textContent.includes('globex')").await;
    let t = s.client.get_tenant("globex").await.unwrap();
    assert_eq!(t.plan, "team");

    // A key for it, shown once, that works against the API.
    c.execute("document.querySelector('#new-key select[name=tenant]').value = 'globex'", vec![]).await.unwrap();
    c.find(Locator::Css("#new-key button")).await.unwrap().click().await.unwrap();
    b.wait_js("the new key", "return document.getElementById('new-key-value') !== null").await;
    let key = c.find(Locator::Css("#new-key-value")).await.unwrap().text().await.unwrap();
    assert!(key.starts_with("ssk_"), "{key}");
    let who = common::http_with_key(&key).get(format!("{}/v1/whoami", s.url)).send().await.unwrap();
    assert_eq!(who.status(), 200);

    // Revoked from the list: refused from then on.
    c.goto(&format!("{}/settings", s.url)).await.unwrap();
    c.execute("window.confirm = () => true;", vec![]).await.unwrap();
    let prefix: String = key.chars().take(16).collect();
    let clicked = c
        .execute(
            "const rows = [...document.querySelectorAll('#keys tbody tr')];
             const row = rows.find(r => r.textContent.includes(arguments[0]));
             row.querySelector('button.danger').click(); return true;",
            vec![serde_json::json!(prefix)],
        )
        .await
        .unwrap();
    assert_eq!(clicked.as_bool(), Some(true));
    b.wait_js(
        "the revocation",
        "return location.pathname === '/settings' && document.querySelector('#keys').textContent.includes('revoked')",
    )
    .await;
    let who = common::http_with_key(&key).get(format!("{}/v1/whoami", s.url)).send().await.unwrap();
    assert_eq!(who.status(), 401);

    // Suspending the tenant, then resuming it.
    let suspend = "window.confirm = () => true;
                   const rows = [...document.querySelectorAll('#tenants tbody tr')];
                   rows.find(r => r.textContent.includes('globex')).querySelector('td:last-child button').click(); return true;";
    c.execute(suspend, vec![]).await.unwrap();
    b.wait_js("suspension", "return document.querySelector('#tenants').textContent.includes('suspended')").await;
    assert!(s.client.get_tenant("globex").await.unwrap().suspended);
    b.screenshot("settings").await;
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_shows_on_the_overview_and_is_acknowledged_from_the_browser() {
    let s = Server::start_with(
        "[discovery]\ninterval_seconds = 1\n[alerts]\nevaluate_interval_seconds = 1\n\
         [[alerts.rules]]\nname = \"down\"\nkind = \"service_down\"\nfor_seconds = 1\nservices = [\"container:ss-test-ui-alert\"]\n",
    )
    .await;
    let ct = Container::run("ss-test-ui-alert", &[]);
    let b = Browser::start().await;
    let c = &b.client;
    log_in(&b, &s.url, &s.admin_key).await;
    // Seen running first, then stopped: an alert, pushed to the open overview.
    b.wait_js(
        "the container on the map",
        "return [...document.querySelectorAll('svg.map g.node')].some(g => g.textContent.includes('ss-test-ui-alert'))",
    )
    .await;
    ct.docker("stop -t 1");
    b.wait_js("the open alert", "return document.getElementById('open-alerts') !== null").await;
    let text = c.find(Locator::Css("#open-alerts")).await.unwrap().text().await.unwrap();
    assert!(text.contains("ss-test-ui-alert"), "{text}");

    // Acknowledged from the alerts page.
    c.goto(&format!("{}/alerts", s.url)).await.unwrap();
    b.screenshot("alerts").await;
    c.find(Locator::Css("#alerts .actions button")).await.unwrap().click().await.unwrap();
    b.wait_js("the acknowledgement", "return document.querySelector('#alerts') && document.querySelector('#alerts').textContent.includes('acknowledged')").await;
    let firing = s.client.alerts(Some("firing"), Some("container:ss-test-ui-alert")).await.unwrap().alerts;
    assert!(firing[0].ack.is_some(), "{firing:#?}");
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_page_shows_metrics_and_tails_hostile_logs_as_text() {
    let s = Server::start_with("[discovery]\ninterval_seconds = 1\n[metrics]\ninterval_seconds = 1\n").await;
    let ct = Container::run("ss-test-ui-logs", &[]);
    let base = format!("http://{}:8080", ct.ip());
    let http = reqwest::Client::new();
    let hostile = "<img src=x onerror=\"window.__pwned=1\"> \u{1b}[31mred";
    let say = |msg: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let url =
                reqwest::Url::parse_with_params(&format!("{base}/log"), &[("level", "error"), ("msg", msg.as_str())])
                    .unwrap();
            assert!(http.post(url).send().await.unwrap().status().is_success());
        }
    };
    say(hostile.to_string()).await;
    // Followed and sampled before the page is opened.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let logs: serde_json::Value = s
            .http()
            .get(format!("{}/v1/logs", s.url))
            .query(&[("service", "container:ss-test-ui-logs")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let series = s.client.metric_series().await.unwrap();
        if logs["lines"].as_array().is_some_and(|l| !l.is_empty())
            && series.series.iter().any(|x| x.name == "container:ss-test-ui-logs/memory.bytes")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never followed or sampled: {logs}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let b = Browser::start().await;
    let c = &b.client;
    log_in(&b, &s.url, &s.admin_key).await;
    c.goto(&format!("{}/services/container:ss-test-ui-logs", s.url)).await.unwrap();
    let text = c.find(Locator::Css("#log-lines")).await.unwrap().text().await.unwrap();
    assert!(text.contains("<img src=x onerror="), "{text}");
    let safe = c
        .execute(
            "return window.__pwned === undefined && document.querySelectorAll('#log-lines img').length === 0",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(safe.as_bool(), Some(true), "a log line was interpreted as markup");
    let charts = c.find_all(Locator::Css("#metrics svg.chart")).await.unwrap();
    assert!(!charts.is_empty(), "no metric chart");

    // A new line arrives while the page is open: tailed in live.
    say("tailed <b>live</b> line".to_string()).await;
    b.wait_js(
        "the tailed line",
        "return document.getElementById('log-lines').textContent.includes('tailed <b>live</b> line')",
    )
    .await;
    let bold = c.execute("return document.querySelectorAll('#log-lines b').length", vec![]).await.unwrap();
    assert_eq!(bold.as_u64(), Some(0));
    b.screenshot("service-logs").await;

    // The overview shows the host's sparklines.
    c.goto(&s.url).await.unwrap();
    let sparks = c.find_all(Locator::Css("#host svg.spark")).await.unwrap();
    assert!(!sparks.is_empty(), "no host sparkline");
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_egress_request_is_approved_in_the_browser_and_hostile_names_stay_text() {
    use superserver_wire::{
        CreateSandboxRequest, EgressLogLevel, EgressRule, ExecRequest, NetworkMode, NetworkSpec, OnUnknown,
    };
    let s = Server::start_with(
        "[egress.hosts]\n\"api.example.test\" = \"127.0.0.1\"\n\"held.example.test\" = \"127.0.0.1\"\n",
    )
    .await;
    let up = common::upstream::Upstream::start("up").await;
    let network = NetworkSpec {
        mode: NetworkMode::Policy,
        allow: vec![EgressRule::Short("api.example.test".into())],
        on_unknown: Some(OnUnknown::Ask),
        log: Some(EgressLogLevel::Full),
        ..Default::default()
    };
    let sb =
        s.client.create_sandbox(&CreateSandboxRequest { network: Some(network), ..Default::default() }).await.unwrap();
    let b = Browser::start().await;
    let c = &b.client;
    log_in(&b, &s.url, &s.admin_key).await;
    c.goto(&format!("{}/egress", s.url)).await.unwrap();
    c.execute("window.__same_page = true;", vec![]).await.unwrap();

    // A held connection shows up in the queue without a reload.
    let (client, id) = (s.client.clone(), sb.id.clone());
    let url = format!("http://held.example.test:{}/held", up.port);
    let held = tokio::spawn(async move {
        let cmd = common::argv(&["curl", "-sS", "-m", "30", "-w", "\nstatus=%{http_code}", &url]);
        client.exec(&id, &ExecRequest { command: cmd, ..Default::default() }).await.unwrap()
    });
    b.wait_js("the pending approval", "return document.querySelector('#pending li.approval') !== null").await;
    let same = c.execute("return window.__same_page === true", vec![]).await.unwrap();
    assert_eq!(same.as_bool(), Some(true), "the queue was updated by reloading");
    let card = c.find(Locator::Css("#pending li.approval")).await.unwrap().text().await.unwrap();
    assert!(card.contains("held.example.test") && card.contains("GET /held"), "{card}");
    b.screenshot("egress").await;
    c.find(Locator::Css("#pending li.approval button[value=allow_once]")).await.unwrap().click().await.unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), held).await.unwrap().unwrap().stdout;
    assert!(out.contains("upstream up: GET /held") && out.contains("status=200"), "{out}");
    b.wait_js("the queue to empty", "return document.querySelector('#pending') === null").await;

    // Hostile text in a requested name and path streams in as text.
    c.goto(&format!("{}/egress", s.url)).await.unwrap();
    let script = format!(
        "printf 'GET http://<img/src=x/onerror=window.__pwned=1>/ HTTP/1.1\\r\\n\\r\\n' | timeout 5 python3 -c \"import socket,sys; s=socket.create_connection(('127.0.0.1',15001)); s.sendall(sys.stdin.buffer.read()); s.recv(100)\"; \
         curl -sS -m 5 --noproxy '*' 'http://api.example.test:{}/<script>window.__pwned=1</script>' -o /dev/null; echo done",
        up.port
    );
    let r = s.exec(&sb.id, &["sh", "-c", &script]).await;
    assert!(r.stdout.contains("done"), "{r:?}");
    b.wait_js(
        "the hostile events",
        "return [...document.querySelectorAll('#egress-events td')].some(td => td.textContent.includes('<script>window.__pwned=1</script>')) \
         && [...document.querySelectorAll('#egress-events td')].some(td => td.textContent.includes('`<img` is not a host name'))",
    )
    .await;
    let safe = c
        .execute(
            "return window.__pwned === undefined && document.querySelectorAll('#egress-events img, #egress-events script').length === 0",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(safe.as_bool(), Some(true), "markup from an egress event was interpreted");
    // And after a reload, rendered by the server, still text.
    c.refresh().await.unwrap();
    let safe = c
        .execute(
            "return window.__pwned === undefined && document.querySelectorAll('main img, main script').length === 0 \
             && document.querySelector('#egress-events').textContent.includes('<script>window.__pwned=1</script>')",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(safe.as_bool(), Some(true), "markup from an egress event was interpreted after a reload");
    c.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_set_in_the_browser_shown_without_values_and_removed() {
    use superserver_wire::{NetworkMode, NetworkSpec, RunRequest};
    let s = Server::start_with("[egress.hosts]\n\"api.example.test\" = \"127.0.0.1\"\n").await;
    let b = Browser::start().await;
    let c = &b.client;
    log_in(&b, &s.url, &s.admin_key).await;
    c.goto(&format!("{}/secrets", s.url)).await.unwrap();
    let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("No secrets yet") && text.contains("--secret NAME"), "{text}");

    // Set from the form: the value goes into a password field and never comes back.
    let value = "browser-secret-value-0123456789";
    for (field, v) in [
        ("name", "API_TOKEN"),
        ("value", value),
        ("hosts", "api.example.test, *.example.org"),
        ("header", "Authorization"),
        ("template", "Bearer {value}"),
    ] {
        c.find(Locator::Css(&format!("#set-secret input[name={field}]"))).await.unwrap().send_keys(v).await.unwrap();
    }
    let kind = c.execute("return document.querySelector('#set-secret input[name=value]').type", vec![]).await.unwrap();
    assert_eq!(kind.as_str(), Some("password"));
    c.find(Locator::Css("#set-secret button")).await.unwrap().click().await.unwrap();
    b.wait_js("the new secret", "return document.querySelector('#secrets tr[data-name=API_TOKEN]') !== null").await;
    let row = c.find(Locator::Css("#secrets tr[data-name=API_TOKEN]")).await.unwrap().text().await.unwrap();
    assert!(
        row.contains("api.example.test") && row.contains("*.example.org") && row.contains("Bearer {value}"),
        "{row}"
    );
    assert!(!c.source().await.unwrap().contains(value));
    assert_eq!(s.client.secret("API_TOKEN").await.unwrap().header.as_deref(), Some("Authorization"));

    // A run holding it shows under "Held by".
    let network = NetworkSpec { mode: NetworkMode::Policy, ..Default::default() };
    let req = RunRequest {
        command: common::argv(&["true"]),
        network: Some(network),
        secrets: vec!["API_TOKEN".into()],
        ..Default::default()
    };
    let r = s.run_req(req).await;
    c.goto(&format!("{}/secrets", s.url)).await.unwrap();
    let row = c.find(Locator::Css("#secrets tr[data-name=API_TOKEN]")).await.unwrap().text().await.unwrap();
    assert!(row.contains(&r.sandbox_id), "{row}");
    b.screenshot("secrets").await;

    // A change without the CSRF token is refused.
    let status = c
        .execute_async(
            "const done = arguments[0];
             fetch('/secrets/API_TOKEN/delete', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'csrf=forged'})
               .then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status.as_u64(), Some(403));
    assert!(s.client.secret("API_TOKEN").await.is_ok());

    // A viewer sees names, not the form; the owner removes it.
    let (viewer, _) = common::new_key(&s, "admin", superserver_wire::Role::Viewer).await;
    let b2 = Browser::start().await;
    log_in(&b2, &s.url, &viewer).await;
    b2.client.goto(&format!("{}/secrets", s.url)).await.unwrap();
    let form = b2.client.execute("return document.querySelector('#set-secret') === null && document.querySelector('#secrets button') === null", vec![]).await.unwrap();
    assert_eq!(form.as_bool(), Some(true), "a viewer is not offered changes");
    b2.client.clone().close().await.unwrap();
    c.execute("window.confirm = () => true;", vec![]).await.unwrap();
    c.find(Locator::Css("#secrets tr[data-name=API_TOKEN] button.danger")).await.unwrap().click().await.unwrap();
    b.wait_js("the removal", "return document.querySelector('#secrets') === null").await;
    assert!(s.client.secret("API_TOKEN").await.is_err());
    c.clone().close().await.unwrap();
}
