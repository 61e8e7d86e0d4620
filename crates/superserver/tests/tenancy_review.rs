//! Adversarial tests from a security review of tenancy, metering and keys,
//! against the real server: each tries an attack or a quota bypass and
//! asserts that it failed. Some of them failed before the fixes made with
//! them (metering of an admin's exec, a command killed by deleting its
//! sandbox, plan overrides that lock a tenant out); the others cover attacks
//! that were refused already and are not tried in `tenancy.rs`,
//! `billing.rs` or `cli_tenancy.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{http_with_key, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use superserver_wire::Role;

/// Creates tenant `name` on `plan` and a key of `role` for it: (key, key id).
async fn tenant(s: &Server, name: &str, plan: &str, role: Role) -> (String, String) {
    common::tenant_with_key(s, name, plan, role).await
}

/// Status and body of a request made with `key`.
async fn call(s: &Server, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    common::call(s, Some(key), method, path, body).await
}

fn quota_used(quotas: &Value, name: &str) -> f64 {
    let t = &quotas["tenants"][0];
    t["quotas"].as_array().unwrap().iter().find(|q| q["quota"] == name).unwrap()["used"].as_f64().unwrap()
}

/// docs/tenancy.md: "an admin's exec in another tenant's sandbox is metered
/// to the `admin` tenant". It was metered to the sandbox's tenant instead:
/// the tenant paid for the admin's command, and its viewers saw the admin
/// key's id in `GET /v1/usage?group_by=key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_exec_in_a_tenants_sandbox_is_metered_to_the_admin_tenant() {
    let s = Server::start().await;
    let (member, _) = tenant(&s, "beta", "developer", Role::Member).await;
    let (viewer, _) = common::new_key(&s, "beta", Role::Viewer).await;
    let (st, sb) = call(&s, &member, Method::POST, "/v1/sandboxes", Some(json!({}))).await;
    assert_eq!(st, StatusCode::CREATED, "{sb}");
    let id = sb["id"].as_str().unwrap();
    let (_, me) = call(&s, &s.admin_key, Method::GET, "/v1/whoami", None).await;
    let admin_key_id = me["key"]["id"].as_str().unwrap().to_string();

    let (st, r) =
        call(&s, &s.admin_key, Method::POST, &format!("/v1/sandboxes/{id}/exec"), Some(json!({"command": ["true"]})))
            .await;
    assert_eq!(st, StatusCode::OK, "{r}");

    let (_, usage) = call(&s, &viewer, Method::GET, "/v1/usage?group_by=key", None).await;
    assert_eq!(usage["totals"]["executions"], 0, "beta pays nothing for the admin's command: {usage}");
    assert!(!usage.to_string().contains(&admin_key_id), "the admin key's id leaks to beta: {usage}");
    let (_, quotas) = call(&s, &viewer, Method::GET, "/v1/quotas", None).await;
    assert_eq!(quota_used(&quotas, "executions"), 0.0, "{quotas}");
    let (_, admin_usage) = call(&s, &s.admin_key, Method::GET, "/v1/usage?tenant=admin&group_by=key", None).await;
    assert_eq!(admin_usage["totals"]["executions"], 1, "{admin_usage}");
    assert_eq!(admin_usage["groups"][0]["group"], admin_key_id.as_str(), "{admin_usage}");
}

/// A command killed because its sandbox was deleted (or expired) while it
/// ran used CPU and memory all the same. It was neither recorded nor
/// counted: deleting the sandbox just before a long command ended gave
/// unmetered executions, CPU time and GB-seconds without limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_sandbox_mid_command_does_not_unmeter_the_command() {
    let s = Server::start().await;
    let (member, _) = tenant(&s, "spinner", "developer", Role::Member).await;
    let (st, sb) = call(&s, &member, Method::POST, "/v1/sandboxes", Some(json!({}))).await;
    assert_eq!(st, StatusCode::CREATED, "{sb}");
    let id = sb["id"].as_str().unwrap().to_string();

    let exec = {
        let (url, member) = (s.url.clone(), member.clone());
        let id = id.clone();
        tokio::spawn(async move {
            let body = json!({"command": ["sh", "-c", "while :; do :; done"], "timeout_ms": 30000});
            let res =
                http_with_key(&member).post(format!("{url}/v1/sandboxes/{id}/exec")).json(&body).send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (st, del) = call(&s, &member, Method::DELETE, &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(st, StatusCode::OK, "{del}");
    let (st, answer) = exec.await.unwrap();
    assert_eq!((st, common::error_code(&answer)), (StatusCode::CONFLICT, "sandbox_not_running"), "{answer}");

    let (_, usage) = call(&s, &member, Method::GET, "/v1/usage", None).await;
    let totals = &usage["totals"];
    assert_eq!(totals["executions"], 1, "the killed command counts: {usage}");
    assert!(totals["wall_seconds"].as_f64().unwrap() >= 1.0, "{usage}");
    assert!(totals["gb_seconds"].as_f64().unwrap() > 0.0, "{usage}");
    assert!(totals["cpu_seconds"].as_f64().unwrap() > 0.0, "{usage}");
    let (_, quotas) = call(&s, &member, Method::GET, "/v1/quotas", None).await;
    assert_eq!(quota_used(&quotas, "executions"), 1.0, "{quotas}");
    assert!(quota_used(&quotas, "cpu_seconds") > 0.0, "{quotas}");
}

/// Plan overrides are checked like the config's plans: a tenant with a
/// request rate of zero (or below) could never be let in again (its 429s
/// said to retry after 2^64 − 1 seconds), one with 0 MB of memory could not
/// run anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_overrides_that_cannot_work_are_refused() {
    let s = Server::start().await;
    tenant(&s, "acme", "team", Role::Member).await;
    for overrides in [
        json!({"requests_per_second": 0.0}),
        json!({"requests_per_second": -1.0}),
        json!({"request_burst": 0}),
        json!({"max_memory_mb": 0}),
        json!({"max_timeout_seconds": 0}),
    ] {
        let (st, b) =
            call(&s, &s.admin_key, Method::PATCH, "/v1/tenants/acme", Some(json!({"overrides": overrides}))).await;
        assert_eq!(
            (st, common::error_code(&b)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "PATCH {overrides}: {b}"
        );
        let (st, b) = call(
            &s,
            &s.admin_key,
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "broken", "plan": "team", "overrides": overrides})),
        )
        .await;
        assert_eq!((st, common::error_code(&b)), (StatusCode::BAD_REQUEST, "invalid_request"), "POST {overrides}: {b}");
    }
    // Sensible overrides still work.
    let (st, b) = call(
        &s,
        &s.admin_key,
        Method::PATCH,
        "/v1/tenants/acme",
        Some(json!({"overrides": {"requests_per_second": 1.5, "max_memory_mb": 256}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

/// An owner key of the `admin` tenant is not an admin: it cannot mint an
/// admin key, revoke one, manage tenants or see other tenants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_of_the_admin_tenant_is_no_admin() {
    let s = Server::start().await;
    let (owner, _) = common::new_key(&s, "admin", Role::Owner).await;
    tenant(&s, "alpha", "team", Role::Member).await;
    let (_, me) = call(&s, &s.admin_key, Method::GET, "/v1/whoami", None).await;
    let admin_key_id = me["key"]["id"].as_str().unwrap().to_string();

    let (st, b) = call(&s, &owner, Method::POST, "/v1/keys", Some(json!({"role": "admin"}))).await;
    assert_eq!((st, common::error_code(&b)), (StatusCode::FORBIDDEN, "forbidden"), "{b}");
    let (st, b) = call(&s, &owner, Method::DELETE, &format!("/v1/keys/{admin_key_id}"), None).await;
    assert_eq!((st, common::error_code(&b)), (StatusCode::FORBIDDEN, "forbidden"), "{b}");
    let (st, b) = call(&s, &owner, Method::POST, "/v1/tenants/alpha/suspend", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    for path in ["/v1/tenants/alpha", "/v1/keys?tenant=alpha", "/v1/usage?tenant=alpha", "/v1/quotas?tenant=alpha"] {
        let (st, b) = call(&s, &owner, Method::GET, path, None).await;
        assert_eq!((st, common::error_code(&b)), (StatusCode::NOT_FOUND, "tenant_not_found"), "{path}: {b}");
    }
    let (_, list) = call(&s, &owner, Method::GET, "/v1/tenants", None).await;
    assert_eq!(list["tenants"].as_array().unwrap().len(), 1, "{list}");
    let (_, keys) = call(&s, &owner, Method::GET, "/v1/keys", None).await;
    assert!(keys["keys"].as_array().unwrap().iter().all(|k| k["tenant"] == "admin"), "{keys}");
    // The admin key still works.
    let (st, _) = call(&s, &s.admin_key, Method::GET, "/v1/audit", None).await;
    assert_eq!(st, StatusCode::OK);
}

/// Extreme numbers in query strings and bodies are answered, never a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_numbers_are_answered_without_a_crash() {
    let s = Server::start().await;
    let (owner, _) = tenant(&s, "acme", "team", Role::Owner).await;
    s.run(&["true"]).await;
    for path in [
        "/v1/usage?from=-9223372036854775808&to=9223372036854775807",
        "/v1/usage?from=-9223372036854775808&to=9223372036854775807&group_by=day&format=csv",
        "/v1/usage/export?from=-9223372036854775808&to=9223372036854775807",
        "/v1/usage?from=9999-12-31T23:59:59Z&to=9223372036854775807",
        "/v1/usage?from=1&to=1",
        "/v1/usage?from=99999999999999999999",
    ] {
        for key in [&owner, &s.admin_key] {
            let (st, b) = call(&s, key, Method::GET, path, None).await;
            assert!(st == StatusCode::OK || st == StatusCode::BAD_REQUEST, "{path}: {st} {b}");
        }
    }
    for path in ["/v1/audit?limit=18446744073709551615&before=-9223372036854775808", "/v1/outbox?limit=0"] {
        let (st, b) = call(&s, &s.admin_key, Method::GET, path, None).await;
        assert!(st == StatusCode::OK || st == StatusCode::BAD_REQUEST, "{path}: {st} {b}");
    }
    let (st, b) = call(&s, &owner, Method::POST, "/v1/keys", Some(json!({"expires_at_ms": i64::MAX}))).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, _) = call(&s, b["key"].as_str().unwrap(), Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::OK);
    // The server is still up.
    let (st, _) = call(&s, &owner, Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::OK);
}

/// No secret reaches the log or the audit log: not the admin key, not a
/// created key (used, refused when revoked, or presented with one character
/// changed), not a webhook secret or SMTP password from the config (whose
/// effective values are logged at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    const HOOK_SECRET: &str = "whsec-review-0123456789abcdef";
    const SMTP_PASSWORD: &str = "smtp-review-password-9876543210";
    let s = Server::start_with(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nusername = \"u\"\npassword = \"{SMTP_PASSWORD}\"\n\
         from = \"SuperServer <alerts@example.com>\"\n\
         [[webhooks]]\nname = \"billing\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"{HOOK_SECRET}\"\n"
    ))
    .await;
    let (owner, owner_id) = tenant(&s, "acme", "team", Role::Owner).await;
    let (member, member_id) = common::new_key(&s, "acme", Role::Member).await;
    let (st, _) = call(&s, &member, Method::POST, "/v1/run", Some(json!({"command": ["true"]}))).await;
    assert_eq!(st, StatusCode::OK);
    let mut altered = member.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(altered).unwrap();
    let (st, b) = call(&s, &altered, Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    assert!(!b.to_string().contains(&altered[4..]), "the presented key is echoed: {b}");
    let (st, _) = call(&s, &owner, Method::DELETE, &format!("/v1/keys/{member_id}"), None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = call(&s, &member, Method::GET, "/v1/whoami", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    assert!(!b.to_string().contains(&member[16..]), "the revoked key is echoed: {b}");

    let (_, audit) = call(&s, &s.admin_key, Method::GET, "/v1/audit", None).await;
    let audit = audit.to_string();
    assert!(audit.contains(&owner_id) && audit.contains(&member_id), "{audit}");
    let log = s.log();
    assert!(log.contains("effective configuration"), "{log}");
    for (what, secret) in [
        ("the admin key", &s.admin_key[16..]),
        ("an owner key", &owner[16..]),
        ("a member key", &member[16..]),
        ("an altered key", &altered[16..]),
        ("the webhook secret", HOOK_SECRET),
        ("the SMTP password", SMTP_PASSWORD),
    ] {
        assert!(!log.contains(secret), "{what} is in the server log");
        assert!(!audit.contains(secret), "{what} is in the audit log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_racing_creations_leaves_no_sandbox_running() {
    let s = Server::start_with("[pool]\nsize = 4\n").await;
    let (key, _) = common::tenant_with_key(&s, "racer", "team", Role::Owner).await;
    let http = common::http_with_key(&key);
    let url = format!("{}/v1/sandboxes", s.url);
    let creations: Vec<_> = (0..5)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move { http.post(&url).json(&serde_json::json!({})).send().await.unwrap().status() })
        })
        .collect();
    s.client.suspend_tenant("racer").await.unwrap();
    for c in creations {
        let status = c.await.unwrap();
        assert!(status == 201 || status == 403 || status == 429, "{status}");
    }
    // Whatever got created before or during the suspension is gone.
    let all: serde_json::Value =
        s.http().get(format!("{}/v1/sandboxes", s.url)).send().await.unwrap().json().await.unwrap();
    let tenant = s.client.get_tenant("racer").await.unwrap().id;
    let running: Vec<&serde_json::Value> = all["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sb| sb["tenant_id"] == tenant.as_str() && sb["state"] == "running")
        .collect();
    assert!(running.is_empty(), "{running:?}");
}
