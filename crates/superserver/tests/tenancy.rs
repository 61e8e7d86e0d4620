//! Tenants, API keys and roles against the real server: the bootstrap key,
//! every way a key can be refused, what each role may do, and that one
//! tenant can neither see nor touch another's sandboxes, keys or usage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{argv, call, error_code, http_with_key, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use superserver_client::Client;
use superserver_wire::{CreateKeyRequest, Role, RunRequest};

/// A tenant and one key of it.
struct Tenant {
    key: String,
    key_id: String,
}

async fn tenant(s: &Server, name: &str, plan: &str, role: Role) -> Tenant {
    let (key, key_id) = common::tenant_with_key(s, name, plan, role).await;
    Tenant { key, key_id }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_creates_an_admin_key_once() {
    let mut s = Server::start().await;
    let file = s.data_dir().join("admin.key");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin.key must be readable by its owner only");
    assert!(s.admin_key.starts_with("ssk_") && s.admin_key.len() > 40);
    let printed = std::fs::read_to_string(s.stdout_path()).unwrap();
    assert_eq!(printed.matches(&s.admin_key).count(), 1, "the key is printed once:\n{printed}");
    let who = s.client.whoami().await.unwrap();
    assert_eq!((who.key.role, who.tenant.name.as_str()), (Role::Admin, "admin"));

    // A restart on the same data directory makes no new key and prints none.
    s.stop().await;
    s.spawn().await;
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), s.admin_key);
    let printed = std::fs::read_to_string(s.stdout_path()).unwrap();
    assert_eq!(printed.matches("ssk_").count(), 1, "{printed}");
    assert_eq!(s.client.list_keys(None).await.unwrap().keys.len(), 1);
    // The last working admin key cannot be revoked.
    let who = s.client.whoami().await.unwrap();
    let (st, b) = call(&s, Some(&s.admin_key), Method::DELETE, &format!("/v1/keys/{}", who.key.id), None).await;
    assert_eq!((st, error_code(&b)), (StatusCode::CONFLICT, "conflict"), "{b}");
    // With a second one it can; once no admin key works (this one expires),
    // a restart makes a new one: the way back in for whoever runs the server.
    let soon = superserver_core::now_ms() + 1000;
    let second = s
        .client
        .create_key(&CreateKeyRequest {
            tenant: Some("admin".into()),
            role: Some(Role::Admin),
            expires_at_ms: Some(soon),
            ..Default::default()
        })
        .await
        .unwrap();
    s.client.revoke_key(&who.key.id).await.unwrap();
    let (st, _) = call(&s, Some(&s.admin_key), Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    while superserver_core::now_ms() <= soon + 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, _) = call(&s, Some(&second.key), Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let old = s.admin_key.clone();
    s.stop().await;
    s.spawn().await;
    assert_ne!(s.admin_key, old, "a new admin key was written");
    let (st, _) = call(&s, Some(&s.admin_key), Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::OK);
    // The secret is stored nowhere but in admin.key: not in the database.
    let db = std::fs::read(s.data_dir().join("superserver.db")).unwrap();
    assert!(!db.windows(s.admin_key.len()).any(|w| w == s.admin_key.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_key_gets_401_and_the_open_endpoints_stay_open() {
    let s = Server::start().await;
    let t = tenant(&s, "acme", "team", Role::Member).await;
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing"),
        (Some(format!("Basic {}", t.key)), "malformed"),
        (Some("Bearer ".into()), "malformed"),
        (Some("Bearer sk_live_123".into()), "ssk_"),
        (Some("Bearer ssk_tooshort".into()), "malformed"),
        (Some(format!("Bearer ssk_{}", "A".repeat(43))), "unknown"),
        // The right prefix with the wrong secret is just as unknown.
        (Some(format!("Bearer {}{}", &t.key[..16], "z".repeat(t.key.len() - 16))), "unknown"),
    ];
    for (header, want) in cases {
        let mut req = reqwest::Client::new().get(format!("{}/v1/sandboxes", s.url));
        if let Some(h) = &header {
            req = req.header("authorization", h);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body: Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "unauthorized");
        assert!(body["error"]["message"].as_str().unwrap().contains(want), "{header:?}: {body}");
    }
    // Every /v1 endpoint needs a key; health checks and metrics do not.
    let run = Some(json!({"command": ["true"]}));
    for (m, path, body) in [
        (Method::POST, "/v1/run", run.clone()),
        (Method::POST, "/v1/sandboxes", Some(json!({}))),
        (Method::GET, "/v1/status", None),
        (Method::GET, "/v1/openapi.json", None),
        (Method::GET, "/v1/usage", None),
        (Method::GET, "/v1/tenants", None),
        (Method::GET, "/v1/keys", None),
        (Method::GET, "/v1/whoami", None),
    ] {
        let (st, _) = call(&s, None, m.clone(), path, body).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {path}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (st, _) = call(&s, None, Method::GET, path, None).await;
        assert_eq!(st, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_lives_is_used_expires_and_is_revoked() {
    let s = Server::start().await;
    let t = tenant(&s, "acme", "team", Role::Owner).await;
    let owner = Client::new(&s.url).unwrap().with_api_key(&t.key);

    // Shown once: listings never carry the secret.
    let created = owner
        .create_key(&CreateKeyRequest { name: Some("ci".into()), role: Some(Role::Member), ..Default::default() })
        .await
        .unwrap();
    assert!(created.key.starts_with(&created.info.prefix));
    let listed = s.http().get(format!("{}/v1/keys", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(listed.contains(&created.info.id) && !listed.contains(&created.key));

    // Used: it works, and its last use shows in the listing (flushed in batches).
    let member = Client::new(&s.url).unwrap().with_api_key(&created.key);
    assert_eq!(
        member.run(&RunRequest { command: argv(&["true"]), ..Default::default() }).await.unwrap().exit_code,
        Some(0)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let keys = owner.list_keys(None).await.unwrap().keys;
        let k = keys.iter().find(|k| k.id == created.info.id).unwrap();
        if k.last_used_at_ms.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "last use never recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Expires.
    let soon = superserver_core::now_ms() + 1500;
    let short = owner.create_key(&CreateKeyRequest { expires_at_ms: Some(soon), ..Default::default() }).await.unwrap();
    let (st, _) = call(&s, Some(&short.key), Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::OK);
    while superserver_core::now_ms() <= soon + 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, body) = call(&s, Some(&short.key), Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
    // An expiry in the past is refused at creation.
    let (st, _) = call(&s, Some(&t.key), Method::POST, "/v1/keys", Some(json!({"expires_at_ms": 1}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Revoked: refused at once.
    let revoked = owner.revoke_key(&created.info.id).await.unwrap();
    assert!(revoked.revoked_at_ms.is_some());
    let (st, body) = call(&s, Some(&created.key), Method::POST, "/v1/run", Some(json!({"command": ["true"]}))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("revoked"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_do_what_it_should_and_nothing_more() {
    let s = Server::start().await;
    let t = tenant(&s, "acme", "team", Role::Owner).await;
    let (viewer, _) = common::new_key(&s, "acme", Role::Viewer).await;
    let (member, _) = common::new_key(&s, "acme", Role::Member).await;
    let run = json!({"command": ["true"]});

    // Viewer: reads only.
    for (m, path, body) in [
        (Method::POST, "/v1/run", Some(run.clone())),
        (Method::POST, "/v1/sandboxes", Some(json!({}))),
        (Method::POST, "/v1/keys", Some(json!({}))),
        (Method::GET, "/v1/keys", None),
    ] {
        let (st, b) = call(&s, Some(&viewer), m.clone(), path, body).await;
        assert_eq!((st, error_code(&b)), (StatusCode::FORBIDDEN, "forbidden"), "viewer {m} {path}: {b}");
    }
    for path in ["/v1/sandboxes", "/v1/usage", "/v1/quotas", "/v1/whoami", "/v1/status", "/v1/plans"] {
        let (st, b) = call(&s, Some(&viewer), Method::GET, path, None).await;
        assert_eq!(st, StatusCode::OK, "viewer GET {path}: {b}");
    }
    // Member: runs and manages sandboxes, but no keys.
    let (st, _) = call(&s, Some(&member), Method::POST, "/v1/run", Some(run.clone())).await;
    assert_eq!(st, StatusCode::OK);
    let (st, sb) = call(&s, Some(&member), Method::POST, "/v1/sandboxes", Some(json!({}))).await;
    assert_eq!(st, StatusCode::CREATED, "{sb}");
    let id = sb["id"].as_str().unwrap().to_string();
    let (st, _) = call(&s, Some(&viewer), Method::GET, &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(st, StatusCode::OK, "viewers see their tenant's sandboxes");
    let (st, _) = call(&s, Some(&viewer), Method::DELETE, &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(&s, Some(&member), Method::DELETE, &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(st, StatusCode::OK);
    for (m, path) in [(Method::POST, "/v1/keys"), (Method::GET, "/v1/keys"), (Method::POST, "/v1/tenants")] {
        let (st, _) = call(&s, Some(&member), m.clone(), path, Some(json!({"name": "x"}))).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "member {m} {path}");
    }
    // Owner: its tenant's keys, up to owner; not tenants, not the audit log.
    let (st, _) = call(&s, Some(&t.key), Method::POST, "/v1/keys", Some(json!({"role": "owner"}))).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, b) = call(&s, Some(&t.key), Method::POST, "/v1/keys", Some(json!({"role": "admin"}))).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    for (m, path, body) in [
        (Method::POST, "/v1/tenants", Some(json!({"name": "other"}))),
        (Method::POST, "/v1/tenants/acme/suspend", None),
        (Method::PATCH, "/v1/tenants/acme", Some(json!({"plan": "enterprise"}))),
        (Method::GET, "/v1/audit", None),
    ] {
        let (st, b) = call(&s, Some(&t.key), m.clone(), path, body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "owner {m} {path}: {b}");
    }
    // The plan's limits apply to every role: team has no 1-hour TTL cap, but
    // its memory maximum is 2 GiB.
    let (st, b) = call(
        &s,
        Some(&member),
        Method::POST,
        "/v1/run",
        Some(json!({"command": ["true"], "limits": {"memory_mb": 4096}})),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("max_memory_mb"), "{b}");
}

/// An id of another tenant answers exactly as one that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_sees_or_touches_another_tenants_things() {
    let s = Server::start().await;
    let a = tenant(&s, "alpha", "team", Role::Owner).await;
    let b = tenant(&s, "beta", "team", Role::Owner).await;
    let ca = Client::new(&s.url).unwrap().with_api_key(&a.key);
    let sb = ca.create_sandbox(&Default::default()).await.unwrap();
    ca.put_file(&sb.id, "secret.txt", b"alpha's data".to_vec(), None).await.unwrap();
    let run = ca.run(&RunRequest { command: argv(&["echo", "alpha"]), ..Default::default() }).await.unwrap();

    let theirs = sb.id.clone();
    let nobody = "sb_00000000000000000000".to_string();
    let endpoints = |id: &str| -> Vec<(Method, String, Option<Value>)> {
        vec![
            (Method::GET, format!("/v1/sandboxes/{id}"), None),
            (Method::DELETE, format!("/v1/sandboxes/{id}"), None),
            (Method::POST, format!("/v1/sandboxes/{id}/exec"), Some(json!({"command": ["cat", "secret.txt"]}))),
            (Method::GET, format!("/v1/sandboxes/{id}/files?path=secret.txt"), None),
            (Method::GET, format!("/v1/sandboxes/{id}/files?path=.&list=true"), None),
        ]
    };
    for ((m, path, body), (_, none_path, _)) in endpoints(&theirs).into_iter().zip(endpoints(&nobody)) {
        let (st, got) = call(&s, Some(&b.key), m.clone(), &path, body.clone()).await;
        let (st_none, none) = call(&s, Some(&b.key), m.clone(), &none_path, body).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m} {path}: {got}");
        assert_eq!((st, error_code(&got)), (st_none, error_code(&none)), "{m} {path}");
        let msg = got["error"]["message"].as_str().unwrap().replace(&theirs, "ID");
        assert_eq!(msg, none["error"]["message"].as_str().unwrap().replace(&nobody, "ID"));
    }
    // Uploads too (not JSON).
    let put = http_with_key(&b.key)
        .put(format!("{}/v1/sandboxes/{theirs}/files?path=x", s.url))
        .body("overwrite")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NOT_FOUND);
    // Still alive and untouched for its owner.
    let out = ca
        .exec(&sb.id, &superserver_wire::ExecRequest { command: argv(&["cat", "secret.txt"]), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(out.stdout, "alpha's data");

    // Lists hold only one's own.
    let (_, list) = call(&s, Some(&b.key), Method::GET, "/v1/sandboxes?all=true", None).await;
    let ids: Vec<&str> = list["sandboxes"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&sb.id.as_str()) && !ids.contains(&run.sandbox_id.as_str()), "{ids:?}");
    let (_, tenants) = call(&s, Some(&b.key), Method::GET, "/v1/tenants", None).await;
    assert_eq!(tenants["tenants"].as_array().unwrap().len(), 1);
    let (_, keys) = call(&s, Some(&b.key), Method::GET, "/v1/keys", None).await;
    assert!(keys["keys"].as_array().unwrap().iter().all(|k| k["tenant"] == "beta"), "{keys}");
    // Another tenant's tenant record, keys, usage and quotas are not found.
    for path in [
        "/v1/tenants/alpha".to_string(),
        "/v1/keys?tenant=alpha".to_string(),
        "/v1/usage?tenant=alpha".to_string(),
        "/v1/usage/export?tenant=alpha".to_string(),
        "/v1/quotas?tenant=alpha".to_string(),
    ] {
        let (st, got) = call(&s, Some(&b.key), Method::GET, &path, None).await;
        assert_eq!((st, error_code(&got)), (StatusCode::NOT_FOUND, "tenant_not_found"), "{path}: {got}");
    }
    let (st, got) = call(&s, Some(&b.key), Method::DELETE, &format!("/v1/keys/{}", a.key_id), None).await;
    assert_eq!((st, error_code(&got)), (StatusCode::NOT_FOUND, "key_not_found"), "{got}");
    let (st, got) = call(&s, Some(&b.key), Method::POST, "/v1/keys", Some(json!({"tenant": "alpha"}))).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{got}");
    // Beta's status counts only its own.
    let (_, st) = call(&s, Some(&b.key), Method::GET, "/v1/status", None).await;
    assert_eq!((st["sandboxes_running"].as_u64(), st["executions_total"].as_u64()), (Some(0), Some(0)), "{st}");
    // Beta's usage does not include alpha's run.
    let (_, usage) = call(&s, Some(&b.key), Method::GET, "/v1/usage", None).await;
    assert_eq!(usage["totals"]["executions"], 0, "{usage}");
    // The admin sees both.
    let (_, all) = call(&s, Some(&s.admin_key), Method::GET, "/v1/sandboxes", None).await;
    assert!(all["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == sb.id.as_str() && x["tenant_id"].is_string()));
    assert_eq!(s.client.get_sandbox(&sb.id).await.unwrap().id, sb.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_tenant_is_refused_and_its_sandboxes_stop() {
    let s = Server::start().await;
    let t = tenant(&s, "acme", "team", Role::Member).await;
    let c = Client::new(&s.url).unwrap().with_api_key(&t.key);
    let sb = c.create_sandbox(&Default::default()).await.unwrap();
    let pid_count_before = s.sandbox_processes().len();
    assert!(pid_count_before >= 1);

    let info = s.client.suspend_tenant("acme").await.unwrap();
    assert!(info.suspended);
    let (st, body) = call(&s, Some(&t.key), Method::GET, "/v1/whoami", None).await;
    assert_eq!((st, error_code(&body)), (StatusCode::FORBIDDEN, "tenant_suspended"));
    assert!(body["error"]["message"].as_str().unwrap().contains("suspended"), "{body}");
    let got = s.client.get_sandbox(&sb.id).await.unwrap();
    assert_eq!(got.state, superserver_wire::SandboxState::Destroyed);
    assert!(got.end_reason.unwrap().contains("suspended"));
    // The admin tenant cannot be suspended.
    assert!(s.client.suspend_tenant("admin").await.is_err());

    s.client.resume_tenant("acme").await.unwrap();
    let (st, _) = call(&s, Some(&t.key), Method::POST, "/v1/run", Some(json!({"command": ["true"]}))).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_to_tenants_and_keys_is_audited() {
    let s = Server::start().await;
    let t = tenant(&s, "acme", "free", Role::Owner).await;
    s.client
        .update_tenant(
            "acme",
            &superserver_wire::UpdateTenantRequest { plan: Some("team".into()), ..Default::default() },
        )
        .await
        .unwrap();
    s.client.suspend_tenant("acme").await.unwrap();
    s.client.resume_tenant("acme").await.unwrap();
    s.client.revoke_key(&t.key_id).await.unwrap();
    let who = s.client.whoami().await.unwrap();
    let log = s.client.audit(Some(100)).await.unwrap().entries;
    let actions: Vec<&str> = log.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["key.create", "tenant.create", "key.create", "tenant.update", "tenant.suspend", "tenant.resume", "key.revoke"]
    );
    // The bootstrap key was made by the server itself; the rest by the admin key, from loopback.
    let bootstrap = log.last().unwrap();
    assert_eq!((bootstrap.actor_key_id.as_deref(), bootstrap.details["bootstrap"].as_bool()), (None, Some(true)));
    for e in &log[..log.len() - 1] {
        assert_eq!(e.actor_key_id.as_deref(), Some(who.key.id.as_str()), "{e:?}");
        assert!(e.remote_addr.as_deref().unwrap().starts_with("127.0.0.1:"), "{e:?}");
    }
    let update = log.iter().find(|e| e.action == "tenant.update").unwrap();
    assert_eq!(update.details["plan"], json!({"from": "free", "to": "team"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_validated_and_unique() {
    let s = Server::start().await;
    tenant(&s, "acme", "free", Role::Member).await;
    let (st, b) = call(&s, Some(&s.admin_key), Method::POST, "/v1/tenants", Some(json!({"name": "acme"}))).await;
    assert_eq!((st, error_code(&b)), (StatusCode::CONFLICT, "conflict"), "{b}");
    for (body, want) in [
        (json!({"name": "Bad Name"}), "tenant name"),
        (json!({"name": "ok", "plan": "gold"}), "gold"),
        (json!({"name": "ok", "email": "not-an-address"}), "email"),
        (json!({"name": "ok", "overrides": {"executions_per_month": "lots"}}), "lots"),
        (json!({"name": "ok", "plna": "free"}), "plna"),
    ] {
        let (st, b) = call(&s, Some(&s.admin_key), Method::POST, "/v1/tenants", Some(body.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert!(b["error"]["message"].as_str().unwrap().contains(want), "{body}: {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_pool_serves_the_higher_plan_first() {
    // No warm pool and one creation at a time: every run waits its turn.
    let plans = "[plans.free]\nexecutions_per_month = \"unlimited\"\nconcurrent_sandboxes = \"unlimited\"\n\
                 requests_per_second = 1000.0\nrequest_burst = 1000\n";
    let s = Server::start_with(&format!("{plans}[pool]\nsize = 0\nparallel_creates = 1\n")).await;
    let free = tenant(&s, "freeloader", "free", Role::Member).await;
    let dev = tenant(&s, "developer-co", "developer", Role::Member).await;
    const FREE: usize = 30;
    let done = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    // One client (one connection pool) for all: building a client per
    // request would pace the requests slower than the server creates.
    let free_client = Client::new(&s.url).unwrap().with_api_key(&free.key);
    let dev_client = Client::new(&s.url).unwrap().with_api_key(&dev.key);
    dev_client.whoami().await.unwrap();
    for i in 0..FREE {
        let (c, done) = (free_client.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            c.run(&RunRequest { command: argv(&["true"]), ..Default::default() }).await.unwrap();
            done.lock().unwrap().push(i);
        }));
    }
    // Once a few are through, the rest are queued for a sandbox: then ask
    // as a developer.
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "free runs do not finish");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    dev_client.run(&RunRequest { command: argv(&["true"]), ..Default::default() }).await.unwrap();
    let after_dev = FREE - done.lock().unwrap().len();
    for t in tasks {
        t.await.unwrap();
    }
    let st = s.client.status().await.unwrap();
    assert!(st.pool.misses as usize > FREE, "every run created its sandbox: {:?}", st.pool);
    // First come, first served would leave no free run behind the developer's.
    assert!(after_dev >= 8, "only {after_dev} free runs finished after the developer's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_the_server_may_listen_beyond_loopback() {
    // Authentication on (the default): any address.
    let s = Server::start_with("listen = \"0.0.0.0:0\"\n").await;
    assert!(s.url.contains("0.0.0.0"), "{}", s.url);
    assert_eq!(
        s.client.run(&RunRequest { command: argv(&["true"]), ..Default::default() }).await.unwrap().exit_code,
        Some(0)
    );
    // Authentication off: loopback only, and the refusal says why.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), "listen = \"0.0.0.0:0\"\n[auth]\nenabled = false\n").unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--config"])
        .arg(dir.path().join("c.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_off_loopback_callers_are_the_admin() {
    let s = Server::start_with("[auth]\nenabled = false\n").await;
    assert!(s.admin_key.is_empty() && !s.data_dir().join("admin.key").exists());
    let (st, b) = call(&s, None, Method::POST, "/v1/run", Some(json!({"command": ["echo", "open"]}))).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["stdout"], "open\n");
    let (_, who) = call(&s, None, Method::GET, "/v1/whoami", None).await;
    assert_eq!((who["key"]["role"].as_str(), who["tenant"]["name"].as_str()), (Some("admin"), Some("admin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_per_tenant_and_can_require_a_key() {
    let s = Server::start_with("[auth]\nmetrics_require_key = true\n").await;
    let t = tenant(&s, "acme", "team", Role::Member).await;
    let c = Client::new(&s.url).unwrap().with_api_key(&t.key);
    for _ in 0..3 {
        c.run(&RunRequest { command: argv(&["true"]), ..Default::default() }).await.unwrap();
    }
    let (st, _) = call(&s, None, Method::GET, "/metrics", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = call(&s, Some(&t.key), Method::GET, "/metrics", None).await;
    assert_eq!(st, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(text.contains("superserver_tenant_executions_total{tenant=\"acme\"} 3"), "{text}");
    assert!(text.contains("superserver_tenant_gb_seconds_total{tenant=\"acme\"}"), "{text}");
    assert!(text.contains("superserver_requests_refused_total{reason=\"unauthenticated\"} 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_metric_labels_are_bounded() {
    let s = Server::start_with("[tenants]\nmax_metric_tenants = 2\n").await;
    for name in ["t1", "t2", "t3", "t4"] {
        let t = tenant(&s, name, "team", Role::Member).await;
        let c = Client::new(&s.url).unwrap().with_api_key(&t.key);
        c.run(&RunRequest { command: argv(&["true"]), ..Default::default() }).await.unwrap();
    }
    let text = s.http().get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    let labelled: Vec<&str> = text.lines().filter(|l| l.starts_with("superserver_tenant_executions_total{")).collect();
    assert_eq!(labelled.len(), 3, "two tenants and _other: {labelled:?}");
    assert!(labelled.iter().any(|l| l.contains("tenant=\"_other\"} 2")), "{labelled:?}");
}
