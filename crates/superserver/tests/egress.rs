//! Governed egress: real clients in real sandboxes against real HTTP servers
//! on loopback standing in for internet hosts (named through `egress.hosts`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::governed::{events_until, policy, run_sh};
use common::upstream::Upstream;
use common::Server;
use reqwest::Method;
use superserver_client::EgressQuery;
use superserver_wire::{
    ApprovalDecision, ApprovalState, CreateSandboxRequest, EgressDecision, EgressEvent, EgressLogLevel, EgressRule,
    ExecRequest, NetworkMode, NetworkSpec, OnUnknown,
};

fn config(extra: &str) -> String {
    format!(
        "[egress]\napproval_timeout_seconds = 3\n[egress.hosts]\n\"api.example.test\" = \"127.0.0.1\"\n\
         \"other.example.test\" = \"127.0.0.1\"\n\"third.example.test\" = \"127.0.0.1\"\n{extra}"
    )
}

fn has(events: &[EgressEvent], decision: EgressDecision, protocol: &str, name: &str, rule_part: &str) -> bool {
    events.iter().any(|e| {
        e.decision == decision
            && e.protocol == protocol
            && e.name.as_deref() == Some(name)
            && e.rule.contains(rule_part)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_are_reached_by_every_kind_of_client_and_others_are_not() {
    let s = Server::start_with(&config("")).await;
    let api = Upstream::start("api").await;
    let script = r#"
curl -sS -m 5 http://api.example.test:PORT/a; echo "curl=$?"
curl -sS -m 5 --noproxy '*' http://api.example.test:PORT/b; echo "direct=$?"
python3 -c "import urllib.request as u; print(u.urlopen('http://api.example.test:PORT/c', timeout=5).read().decode().strip())"
python3 - <<'PY'
import socket
s = socket.create_connection(("api.example.test", PORT), timeout=5)
s.sendall(b"GET /d HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
print("raw:", s.recv(4096).decode().splitlines()[-1])
s.sendall(b"GET /e HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
print("raw-again:", s.recv(4096).decode().splitlines()[-1])
PY
curl -sS -m 5 -w '\ndenied-proxy=%{http_code}\n' http://other.example.test:PORT/x
curl -sS -m 5 --noproxy '*' http://other.example.test:PORT/y; echo "denied-direct=$?"
python3 -c "import socket; socket.gethostbyname('other.example.test')" 2>&1 | tail -1
"#
    .replace("PORT", &api.port.to_string());
    let r = run_sh(&s, &script, policy(&["api.example.test"], &[])).await;
    let out = r.stdout.clone();
    for want in [
        "upstream api: GET /a\ncurl=0",
        "upstream api: GET /b\ndirect=0",
        "upstream api: GET /c",
        "raw: upstream api: GET /d",
        "raw-again: upstream api: GET /e",
        "is not allowed (default deny)",
        "denied-proxy=403",
        "denied-direct=6",
        "gaierror",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\nstderr:\n{}", r.stderr);
    }
    assert_eq!(api.paths(), ["/a", "/b", "/c", "/d", "/e"], "the denied requests never left");

    // The run's summary and its audit events.
    let sum = r.egress.clone().expect("a governed run has an egress summary");
    assert_eq!(sum.hosts, ["api.example.test"], "{sum:?}");
    assert!(sum.connections >= 4 && sum.denials >= 3 && sum.dns_queries >= 2, "{sum:?}");
    assert!(sum.bytes_out > 0 && sum.bytes_in > 0, "{sum:?}");
    let events = events_until(&s, &r.sandbox_id, |ev| {
        has(ev, EgressDecision::Deny, "dns", "other.example.test", "default deny")
            && ev.iter().filter(|e| e.protocol == "http" && e.decision == EgressDecision::Allow).count() >= 4
    })
    .await;
    assert!(has(&events, EgressDecision::Allow, "dns", "api.example.test", "api.example.test"));
    assert!(has(&events, EgressDecision::Deny, "http", "other.example.test", "default deny"));
    let get_a = events.iter().find(|e| e.path.as_deref() == Some("/a")).expect("the request to /a");
    assert_eq!(
        (get_a.method.as_deref(), get_a.port, get_a.decision),
        (Some("GET"), Some(api.port), EgressDecision::Allow)
    );
    assert!(get_a.bytes_in > 0 && get_a.execution_id.as_deref() == Some(r.execution_id.as_str()), "{get_a:?}");
    assert!(events.iter().all(|e| e.tenant == events[0].tenant && e.sandbox_id == r.sandbox_id));

    // Filters, the JSONL export and the CLI.
    let q = EgressQuery { sandbox: Some(r.sandbox_id.clone()), decision: Some("deny".into()), ..Default::default() };
    let denied = s.client.egress_events(&q).await.unwrap().events;
    assert!(!denied.is_empty() && denied.iter().all(|e| e.decision == EgressDecision::Deny));
    let q = EgressQuery { sandbox: Some(r.sandbox_id.clone()), ..Default::default() };
    let jsonl = s.client.export_egress_events(&q).await.unwrap();
    let exported: Vec<EgressEvent> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(exported, s.client.egress_events(&q).await.unwrap().events);
    let cli = common::stdout_of(&s, &["egress", "events", "--sandbox", &r.sandbox_id, "--decision", "deny"]);
    assert!(cli.contains("other.example.test") && cli.contains("default deny") && !cli.contains(" allow "), "{cli}");
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::GET, "/v1/egress/events?decision=maybe", None).await;
    assert_eq!(status.as_u16(), 400, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_fronting_tunnelling_and_other_protocols_are_refused() {
    let s = Server::start_with(&config("")).await;
    let api = Upstream::start("api").await;
    let port = api.port.to_string();
    let script = r#"
python3 - <<'PY'
import socket, ssl
def tcp(host, port, payload):
    try:
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(payload)
        d = s.recv(200)
        return "closed" if not d else d.decode(errors="replace").splitlines()[0]
    except Exception as e:
        return type(e).__name__
print("direct-ip-http:", tcp("93.184.216.34", 80, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
print("direct-ip-raw:", tcp("93.184.216.34", 5432, b"\x00\x00\x00\x08hello"))
print("metadata:", tcp("169.254.169.254", 80, b"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"))
print("fronting-http:", tcp("api.example.test", PORT, b"GET /f HTTP/1.1\r\nHost: other.example.test\r\n\r\n"))
try:
    s = socket.create_connection(("api.example.test", PORT), timeout=5)
    ssl.create_default_context().wrap_socket(s, server_hostname="other.example.test")
    print("fronting-tls: handshake completed")
except Exception as e:
    print("fronting-tls:", type(e).__name__)
try:
    socket.gethostbyname("mzxw6ytboi4tanbvgy3tqojqgezdgnbvgy3tqojq.api.example.test")
    print("tunnel: resolved")
except Exception as e:
    print("tunnel:", type(e).__name__)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", ("192.0.2.1", 123))
    print("udp: sent")
except Exception as e:
    print("udp:", type(e).__name__)
try:
    socket.create_connection(("2606:4700::1111", 80), timeout=2)
    print("ipv6: connected")
except Exception as e:
    print("ipv6:", type(e).__name__)
PY
curl -sS -m 5 -o /dev/null -w 'metadata-proxy=%{http_code}\n' http://169.254.169.254/latest/meta-data/
curl -sS -m 5 -w '\nlocalhost-proxy=%{http_code}\n' -x http://127.0.0.1:15001 --noproxy '' http://localhost:9/l
curl -sS -m 5 -x http://127.0.0.1:15001 --noproxy '' http://127.0.0.1:PORT/ip; echo "ip-rule=$?"
"#
    .replace("PORT", &port);
    let ip_rule = format!("127.0.0.1:{port}");
    let r = run_sh(&s, &script, policy(&["api.example.test", "localhost", &ip_rule], &[])).await;
    let out = &r.stdout;
    for want in [
        "direct-ip-http: HTTP/1.1 403 Forbidden",
        "direct-ip-raw: closed",
        "metadata: HTTP/1.1 403 Forbidden",
        "fronting-http: HTTP/1.1 403 Forbidden",
        "tunnel: gaierror",
        "udp: PermissionError",
        "ipv6: ",
        "metadata-proxy=403",
        "localhost-proxy=403",
        "upstream api: GET /ip\nip-rule=0",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\nstderr:\n{}", r.stderr);
    }
    assert!(!out.contains("fronting-tls: handshake completed") && !out.contains("ipv6: connected"), "{out}");
    assert!(!out.contains("tunnel: resolved") && !out.contains("udp: sent"), "{out}");
    assert_eq!(api.paths(), ["/ip"], "only the explicitly allowed address was reached");

    let events = events_until(&s, &r.sandbox_id, |ev| ev.iter().any(|e| e.rule.contains("special address"))).await;
    let rules: Vec<&str> =
        events.iter().filter(|e| e.decision == EgressDecision::Deny).map(|e| e.rule.as_str()).collect();
    for want in [
        "domain fronting: Host other.example.test on a connection to api.example.test",
        "domain fronting: TLS server name other.example.test on a connection to api.example.test",
        "dns tunnelling",
        "special address: localhost resolves to 127.0.0.1",
        "default deny",
    ] {
        assert!(rules.iter().any(|r| r.contains(want)), "no denial {want:?} among {rules:#?}");
    }
    let direct = events.iter().find(|e| e.address.as_deref() == Some("93.184.216.34") && e.port == Some(5432)).unwrap();
    assert_eq!((direct.decision, direct.protocol.as_str()), (EgressDecision::Deny, "tcp"), "{direct:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_destinations_wait_for_approval() {
    let s = Server::start_with(&config("")).await;
    let up = Upstream::start("up").await;
    let mut network = policy(&["api.example.test"], &[]);
    network.on_unknown = Some(OnUnknown::Ask);
    let req = CreateSandboxRequest { network: Some(network), ..Default::default() };
    let sb = s.client.create_sandbox(&req).await.unwrap();
    let curl = |host: &str, path: &str| {
        let (client, id) = (s.client.clone(), sb.id.clone());
        let url = format!("http://{host}:{}/{path}", up.port);
        tokio::spawn(async move {
            let cmd = common::argv(&["curl", "-sS", "-m", "20", "-w", "\nstatus=%{http_code}", &url]);
            client.exec(&id, &ExecRequest { command: cmd, ..Default::default() }).await.unwrap()
        })
    };
    let pending = || async {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let list = s.client.approvals().await.unwrap().approvals;
            if let Some(a) = list.into_iter().find(|a| a.state == ApprovalState::Pending) {
                return a;
            }
            assert!(Instant::now() < deadline, "no approval was requested");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    let once = curl("other.example.test", "once");
    let a = pending().await;
    assert_eq!(
        (a.name.as_deref(), a.port, a.sandbox_id.as_str()),
        (Some("other.example.test"), up.port, sb.id.as_str())
    );
    assert_eq!((a.method.as_deref(), a.path.as_deref()), (Some("GET"), Some("/once")));
    let decided = s.client.decide_approval(&a.id, ApprovalDecision::AllowOnce).await.unwrap();
    assert_eq!(decided.state, ApprovalState::AllowedOnce);
    assert!(decided.decided_by.is_some());
    let out = once.await.unwrap().stdout;
    assert!(out.contains("upstream up: GET /once") && out.contains("status=200"), "{out}");
    let again = s.client.decide_approval(&a.id, ApprovalDecision::Deny).await.unwrap_err().to_string();
    assert!(again.contains("already decided"), "{again}");

    // Denied through the CLI.
    let denied = curl("other.example.test", "denied");
    let a = pending().await;
    let cli = common::stdout_of(&s, &["approvals", "ls"]);
    assert!(cli.contains(&a.id) && cli.contains("pending") && cli.contains("other.example.test"), "{cli}");
    let cli = common::stdout_of(&s, &["approvals", "deny", &a.id]);
    assert!(cli.contains("denied"), "{cli}");
    let out = denied.await.unwrap().stdout;
    assert!(out.contains("status=403") && out.contains("denied by"), "{out}");

    // Allowed always: the next request is not asked about.
    let always = curl("other.example.test", "always");
    let a = pending().await;
    common::stdout_of(&s, &["approvals", "allow", "--always", &a.id]);
    assert!(always.await.unwrap().stdout.contains("status=200"));
    let after = curl("other.example.test", "after").await.unwrap().stdout;
    assert!(after.contains("upstream up: GET /after") && after.contains("status=200"), "{after}");

    // Nobody answers: denied at the timeout (3 s here).
    let late = curl("third.example.test", "late").await.unwrap().stdout;
    assert!(late.contains("status=403") && late.contains("approval timed out"), "{late}");
    let list = s.client.approvals().await.unwrap().approvals;
    assert!(list.iter().any(|a| a.state == ApprovalState::Expired && a.name.as_deref() == Some("third.example.test")));
    assert_eq!(up.paths(), ["/once", "/always", "/after"]);

    // Every decision is in the audit trail with who made it.
    let events = events_until(&s, &sb.id, |ev| ev.iter().any(|e| e.rule.contains("approval timed out"))).await;
    for rule in ["approved once by", "denied by", "approved always by", "approval timed out"] {
        assert!(events.iter().any(|e| e.rule.starts_with(rule)), "no event {rule:?} in {events:#?}");
    }
    let (_, audit) = common::call(&s, Some(&s.admin_key), Method::GET, "/v1/audit", None).await;
    assert!(audit.to_string().contains("egress.approval"), "{audit}");
}

/// How many of `pid`'s descriptors refer to the namespace `ns` (`net:[N]`).
/// Counting one namespace, not every one, keeps the server's discovery
/// loop, which opens other processes' namespaces for a moment, out of it.
fn fds_on(pid: u32, ns: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.to_string_lossy() == ns)
        .count()
}

fn host_netns() -> String {
    std::fs::read_link("/proc/self/ns/net").unwrap().to_string_lossy().into_owned()
}

/// What preparing a governed namespace would change were it done in the
/// host's namespace by mistake: the loopback's addresses, the routes and
/// SuperServer's nftables tables. (Not the whole link list or ruleset: the
/// Docker engine changes those while other tests run.)
fn host_state() -> (String, String, String) {
    let run = |cmd: &str, args: &[&str]| {
        let out = std::process::Command::new(cmd).args(args).output().unwrap();
        assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tables = run("nft", &["list", "tables"]);
    assert!(!tables.contains("superserver"), "the host has SuperServer's tables: {tables}");
    (run("ip", &["-o", "addr", "show", "dev", "lo"]), run("ip", &["route", "show", "table", "main"]), tables)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governed_sandboxes_leave_nothing_behind_and_plans_and_rules_are_checked() {
    let s = Server::start_with(&config("[pool]\nsize = 0\n")).await;
    let before_host = host_state();
    let req = CreateSandboxRequest { network: Some(policy(&["api.example.test"], &[])), ..Default::default() };
    let sb = s.client.create_sandbox(&req).await.unwrap();
    let readlink = ExecRequest { command: common::argv(&["readlink", "/proc/self/ns/net"]), ..Default::default() };
    let ns = s.client.exec(&sb.id, &readlink).await.unwrap().stdout.trim().to_string();
    assert!(ns.starts_with("net:[") && ns != host_netns(), "the sandbox has a namespace of its own: {ns}");
    assert!(fds_on(s.pid(), &ns) >= 1, "the server holds the sandbox's namespace {ns}");
    // Root inside cannot change its namespace's rules or routes.
    let script = "nft flush ruleset; echo nft=$?; ip route del default; echo route=$?";
    let req = ExecRequest {
        command: common::argv(&["sh", "-c", script]),
        user: Some(superserver_wire::RunAs::Root),
        ..Default::default()
    };
    let r = s.client.exec(&sb.id, &req).await.unwrap();
    assert!(!r.stdout.contains("nft=0") && !r.stdout.contains("route=0"), "{}{}", r.stdout, r.stderr);
    let info = s.client.get_sandbox(&sb.id).await.unwrap();
    assert!(info.egress.is_some(), "{info:?}");
    s.client.delete_sandbox(&sb.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fds_on(s.pid(), &ns) != 0 {
        assert!(Instant::now() < deadline, "the namespace outlived its sandbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(host_state(), before_host, "the host's loopback, routes and tables are untouched");
    s.assert_no_sandbox_leftovers(false).await;

    // A plan without network refuses `policy`; bad rules are named.
    let (key, _) = common::tenant_with_key(&s, "nonet", "free", superserver_wire::Role::Member).await;
    let body = serde_json::json!({"command": ["true"], "network": {"mode": "policy", "allow": ["api.example.test"]}});
    let (status, v) = common::call(&s, Some(&key), Method::POST, "/v1/run", Some(body)).await;
    assert_eq!((status.as_u16(), common::error_code(&v)), (403, "feature_not_in_plan"), "{v}");
    for (rule, needle) in
        [("https://x.example.com", "not a URL"), ("10.0.0.0/99", "prefix length"), ("a b", "not a DNS name")]
    {
        let body = serde_json::json!({"command": ["true"], "network": {"mode": "policy", "allow": [rule]}});
        let (status, v) = common::call(&s, Some(&s.admin_key), Method::POST, "/v1/run", Some(body)).await;
        assert_eq!(status.as_u16(), 400, "{rule}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{rule}: {v}");
    }
    let body = serde_json::json!({"command": ["true"], "network": {"allow": ["x.example.com"]}});
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::POST, "/v1/run", Some(body)).await;
    assert_eq!(status.as_u16(), 400, "{v}");
    // Without `network` nothing changes: no proxy, no way out.
    let r = s.sh("echo \"proxy=$HTTP_PROXY\"; curl -sS -m 3 http://api.example.test/ ; echo curl=$?").await;
    assert!(r.stdout.contains("proxy=\n") && r.stdout.contains("curl=6"), "{}", r.stdout);
    assert!(r.egress.is_none());

    // A tenant's default network applies to its requests that give none.
    let (key, _) = common::tenant_with_key(&s, "netdefault", "team", superserver_wire::Role::Member).await;
    let body = serde_json::json!({"default_network": {"mode": "policy", "allow": ["api.example.test"], "log": "full"}});
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::PATCH, "/v1/tenants/netdefault", Some(body)).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert_eq!(v["default_network"]["allow"][0], "api.example.test", "{v}");
    let body = serde_json::json!({"command": ["sh", "-c", "echo proxy=$HTTP_PROXY"]});
    let (status, v) = common::call(&s, Some(&key), Method::POST, "/v1/run", Some(body)).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert!(v["stdout"].as_str().unwrap().contains("proxy=http://127.0.0.1:15001"), "{v}");
    assert!(v["egress"].is_object(), "{v}");
    let body = serde_json::json!({"default_network": {"mode": "policy", "allow": ["ftp://x"]}});
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::PATCH, "/v1/tenants/netdefault", Some(body)).await;
    assert_eq!(status.as_u16(), 400, "{v}");
    let body = serde_json::json!({"default_network": {"mode": "none"}});
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::PATCH, "/v1/tenants/netdefault", Some(body)).await;
    assert!(status.is_success() && v.get("default_network").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_followed_live() {
    let s = Server::start_with(&config("")).await;
    let api = Upstream::start("api").await;
    let sb = s
        .client
        .create_sandbox(&CreateSandboxRequest {
            network: Some(policy(&["api.example.test"], &[])),
            ..Default::default()
        })
        .await
        .unwrap();
    let (client, id) = (s.client.clone(), sb.id.clone());
    let follower = tokio::spawn(async move {
        let mut seen = Vec::new();
        let q = EgressQuery { sandbox: Some(id), ..Default::default() };
        client
            .follow_egress_events(&q, |e| {
                seen.push(e);
                seen.len() < 3
            })
            .await
            .unwrap();
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for path in ["one", "two", "three"] {
        let url = format!("http://api.example.test:{}/{path}", api.port);
        s.exec(&sb.id, &["curl", "-sS", "-m", "5", &url]).await;
    }
    let seen = tokio::time::timeout(Duration::from_secs(20), follower).await.expect("three events followed").unwrap();
    let paths: Vec<_> = seen.iter().map(|e| e.path.clone().unwrap_or_default()).collect();
    assert_eq!(paths, ["/one", "/two", "/three"], "{seen:#?}");
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_intercepted_to_decide_methods_and_paths_and_upstreams_are_verified() {
    let ca = common::upstream::TestCa::new("test public CA");
    let other_ca = common::upstream::TestCa::new("nobody trusts this");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let s = Server::start_with(&format!(
        "[egress]\nextra_ca_file = \"{}\"\n[egress.hosts]\n\"secure.example.test\" = \"127.0.0.1\"\n\
         \"forged.example.test\" = \"127.0.0.1\"\n",
        ca_file.display()
    ))
    .await;
    let up = Upstream::start_tls("secure", "secure.example.test", &ca).await;
    let forged = Upstream::start_tls("forged", "forged.example.test", &other_ca).await;
    let rule = |host: &str| {
        EgressRule::Full(superserver_wire::EgressRuleSpec {
            host: host.into(),
            methods: vec!["GET".into()],
            paths: vec!["/v1/".into()],
            ..Default::default()
        })
    };
    let network = NetworkSpec {
        mode: NetworkMode::Policy,
        allow: vec![rule("secure.example.test"), rule("forged.example.test")],
        log: Some(EgressLogLevel::Full),
        ..Default::default()
    };
    let script = r#"
curl -sS -m 5 https://secure.example.test:PORT/v1/items; echo "get=$?"
curl -sS -m 5 -X POST -d x=1 https://secure.example.test:PORT/v1/items; echo "post=$?"
curl -sS -m 5 https://secure.example.test:PORT/admin; echo "admin=$?"
curl -sS -m 5 --noproxy '*' https://secure.example.test:PORT/v1/direct; echo "transparent=$?"
python3 -c "import urllib.request as u; print(u.urlopen('https://secure.example.test:PORT/v1/py', timeout=5).read().decode().strip())"
curl -sS -m 5 --noproxy '*' https://forged.example.test:FORGED/v1/x; echo "forged=$?"
"#
    .replace("FORGED", &forged.port.to_string())
    .replace("PORT", &up.port.to_string());
    let r = run_sh(&s, &script, network).await;
    let out = &r.stdout;
    for want in [
        "upstream secure: GET /v1/items\nget=0",
        "secure.example.test POST /v1/items is not allowed (default deny)",
        "secure.example.test GET /admin is not allowed (default deny)",
        "upstream secure: GET /v1/direct\ntransparent=0",
        "upstream secure: GET /v1/py",
        "upstream TLS",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\nstderr:\n{}", r.stderr);
    }
    assert_eq!(up.paths(), ["/v1/items", "/v1/direct", "/v1/py"], "denied requests never reached the host");
    assert!(forged.paths().is_empty(), "a host whose certificate does not verify gets nothing");
    let events = events_until(&s, &r.sandbox_id, |ev| ev.iter().filter(|e| e.protocol == "https").count() >= 5).await;
    let post = events.iter().find(|e| e.method.as_deref() == Some("POST")).unwrap();
    assert_eq!((post.decision, post.protocol.as_str()), (EgressDecision::Deny, "https"), "{post:?}");
    assert!(events.iter().any(|e| e.rule.contains("upstream failed: upstream TLS")), "{events:#?}");
}
