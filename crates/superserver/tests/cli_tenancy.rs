//! The tenancy commands of the CLI against a real server: the admin's cycle
//! of tenants and keys, how the CLI finds its key, key expiry, quotas and
//! usage, and what each role may do — asserting on exit codes and on what
//! the CLI prints for people.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, Server};
use serde_json::Value;

/// Environment variables through which a key, a key file or a data
/// directory could leak in from the environment of the test run.
const KEY_ENV: [&str; 4] =
    ["SUPERSERVER_API_KEY", "SUPERSERVER_API_KEY_FILE", "SUPERSERVER_DATA_DIR", "SUPERSERVER_URL"];

/// What one CLI invocation did.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// The CLI pointed at `s`, with nothing inherited that names a key, run in
/// the server's temp dir (which has no `./superserver-data/admin.key`).
fn base(s: &Server) -> Command {
    let mut c = Command::new(bin());
    for var in KEY_ENV {
        c.env_remove(var);
    }
    c.env("SUPERSERVER_URL", &s.url).current_dir(s.dir.path()).stdin(Stdio::null());
    c
}

fn output(mut c: Command) -> Out {
    let o = c.output().unwrap();
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `superserver ARGS` with the admin key in `SUPERSERVER_API_KEY`.
fn admin(s: &Server, args: &[&str]) -> Out {
    let mut c = base(s);
    c.env("SUPERSERVER_API_KEY", &s.admin_key).args(args);
    output(c)
}

/// `superserver ARGS --api-key KEY`, with the admin key still in the
/// environment: the flag must win.
fn with_key(s: &Server, key: &str, args: &[&str]) -> Out {
    let (cmd, rest) = args.split_first().unwrap();
    let mut c = base(s);
    c.env("SUPERSERVER_API_KEY", &s.admin_key).arg(cmd).args(["--api-key", key]).args(rest);
    output(c)
}

/// `superserver ARGS` with `key` in `SUPERSERVER_API_KEY` only.
fn as_key(s: &Server, key: &str, args: &[&str]) -> Out {
    let mut c = base(s);
    c.env("SUPERSERVER_API_KEY", key).args(args);
    output(c)
}

/// Asserts success and returns the output.
#[track_caller]
fn must(o: Out) -> Out {
    assert!(o.ok(), "expected success: {o}");
    o
}

/// `tenants create NAME --plan PLAN` as the admin.
fn create_tenant(s: &Server, name: &str, plan: &str) {
    let o = must(admin(s, &["tenants", "create", name, "--plan", plan]));
    assert!(o.stdout.starts_with(&format!("created tenant {name} (tn_")), "{o}");
    assert!(o.stdout.contains(&format!("plan {plan}, active")), "{o}");
}

/// `keys create --tenant T --role R --json` as the admin: `(key, id, prefix)`.
fn create_key(s: &Server, tenant: &str, role: &str) -> (String, String, String) {
    let v = must(admin(s, &["keys", "create", "--tenant", tenant, "--role", role, "--json"])).json();
    assert_eq!((v["tenant"].as_str(), v["role"].as_str()), (Some(tenant), Some(role)), "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let id = v["id"].as_str().unwrap().to_string();
    let prefix = v["prefix"].as_str().unwrap().to_string();
    assert!(key.starts_with("ssk_") && key.starts_with(&prefix) && key.len() > prefix.len(), "{v}");
    assert!(id.starts_with("key_"), "{v}");
    (key, id, prefix)
}

/// The sum of `column` over the data rows of a CSV text whose first line is
/// its header, for the rows where `filter` holds.
fn csv_sum(csv: &str, column: &str, filter: impl Fn(&[&str], &[&str]) -> bool) -> f64 {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let i = header.iter().position(|h| *h == column).unwrap_or_else(|| panic!("no column {column}: {csv}"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|row| filter(&header, row))
        .map(|row| row[i].parse::<f64>().unwrap_or_else(|_| panic!("{column} is not a number: {row:?}")))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_manages_tenants_and_keys_through_the_cli() {
    let s = Server::start().await;

    // A tenant: created, listed, shown.
    let o = must(admin(&s, &["tenants", "create", "acme", "--plan", "developer", "--email", "ops@example.com"]));
    assert!(o.stdout.starts_with("created tenant acme (tn_") && o.stdout.contains("plan developer, active"), "{o}");
    let list = must(admin(&s, &["tenants", "ls", "--json"])).json();
    let acme = list["tenants"].as_array().unwrap().iter().find(|t| t["name"] == "acme").expect("acme is listed");
    assert_eq!((acme["plan"].as_str(), acme["email"].as_str()), (Some("developer"), Some("ops@example.com")));
    let o = must(admin(&s, &["tenants", "ls"]));
    assert!(o.stdout.starts_with("NAME") && o.stdout.lines().any(|l| l.starts_with("acme ")), "{o}");
    let o = must(admin(&s, &["tenants", "show", "acme"]));
    for line in ["name:      acme\n", "plan:      developer\n", "state:     active\n", "email:     ops@example.com\n"] {
        assert!(o.stdout.contains(line), "missing {line:?}: {o}");
    }
    assert!(o.stdout.contains("limits:\n  executions per month") && o.stdout.contains("1000"), "{o}");

    // A member key: who it is, and it runs commands.
    let (member, member_id, prefix) = create_key(&s, "acme", "member");
    let o = must(with_key(&s, &member, &["whoami"]));
    assert!(o.stdout.starts_with(&format!("key:       {member_id} ({prefix}…")), "{o}");
    assert!(o.stdout.contains("role:      member\n") && o.stdout.contains("  name:      acme\n"), "{o}");
    assert!(!o.stdout.contains(&member), "whoami must not print the secret: {o}");
    let who = must(as_key(&s, &member, &["whoami", "--json"])).json();
    assert_eq!((who["key"]["role"].as_str(), who["tenant"]["name"].as_str()), (Some("member"), Some("acme")));
    let o = must(with_key(&s, &member, &["run", "--", "echo", "hi"]));
    assert_eq!(o.stdout, "hi\n", "{o}");

    // Listed by its prefix, never by its secret.
    let o = must(admin(&s, &["keys", "ls", "--tenant", "acme"]));
    let row = o.stdout.lines().find(|l| l.starts_with(&member_id)).unwrap_or_else(|| panic!("key not listed: {o}"));
    assert!(row.contains(&format!("{prefix}…")) && row.contains("member") && row.contains("active"), "{o}");
    assert!(!o.stdout.contains(&member), "keys ls printed the secret: {o}");
    let o = must(admin(&s, &["keys", "ls", "--tenant", "acme", "--json"]));
    assert!(o.stdout.contains(&member_id) && !o.stdout.contains(&member), "{o}");

    // Revoked: refused at once, with a hint.
    let o = must(admin(&s, &["keys", "revoke", &member_id]));
    assert!(o.stdout.starts_with(&format!("revoked key {member_id} ({prefix}…, tenant acme, role member)")), "{o}");
    let o = with_key(&s, &member, &["whoami"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("error: API key") && o.stderr.contains("was revoked (unauthorized)"), "{o}");
    assert!(o.stderr.contains("hint: the server refused the key from --api-key or SUPERSERVER_API_KEY"), "{o}");
    assert!(o.stdout.is_empty(), "{o}");
    let o = with_key(&s, &member, &["run", "--", "echo", "hi"]);
    assert_eq!(o.code, Some(125), "run with a revoked key did not run: {o}");
    assert!(o.stderr.contains("revoked") && !o.stdout.contains("hi"), "{o}");
    let o = must(admin(&s, &["keys", "ls", "--tenant", "acme"]));
    let row = o.stdout.lines().find(|l| l.starts_with(&member_id)).unwrap();
    assert!(row.contains("revoked"), "{o}");

    // Another plan; suspended (its keys are refused) and resumed.
    let (viewer, _, _) = create_key(&s, "acme", "viewer");
    let o = must(admin(&s, &["tenants", "set-plan", "acme", "team"]));
    assert!(o.stdout.starts_with("moved tenant acme (") && o.stdout.contains("plan team, active"), "{o}");
    let o = must(admin(&s, &["tenants", "show", "acme", "--json"]));
    assert_eq!(o.json()["plan"], "team");
    let o = must(admin(&s, &["tenants", "suspend", "acme"]));
    assert!(o.stdout.starts_with("suspended tenant acme (") && o.stdout.contains("plan team, suspended"), "{o}");
    let o = as_key(&s, &viewer, &["whoami"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(
        o.stderr.contains("tenant acme is suspended")
            && o.stderr.contains("(tenant_suspended)")
            && o.stderr.contains("tenants resume"),
        "{o}"
    );
    let o = must(admin(&s, &["tenants", "ls"]));
    assert!(o.stdout.lines().any(|l| l.starts_with("acme ") && l.contains("suspended")), "{o}");
    let o = must(admin(&s, &["tenants", "resume", "acme"]));
    assert!(o.stdout.starts_with("resumed tenant acme (") && o.stdout.contains("plan team, active"), "{o}");
    let o = must(as_key(&s, &viewer, &["whoami"]));
    assert!(o.stdout.contains("role:      viewer\n") && o.stdout.contains("  plan:      team\n"), "{o}");

    // Every change is in the audit log, newest first.
    let o = must(admin(&s, &["audit", "--limit", "20"]));
    assert!(o.stdout.starts_with("ID "), "{o}");
    for action in ["tenant.create", "key.create", "key.revoke", "tenant.update", "tenant.suspend", "tenant.resume"] {
        assert!(o.stdout.lines().any(|l| l.contains(&format!(" {action} "))), "no {action} in the audit log: {o}");
    }
    let log = must(admin(&s, &["audit", "--limit", "20", "--json"])).json();
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "tenant.resume",
            "tenant.suspend",
            "tenant.update",
            "key.create",
            "key.revoke",
            "key.create",
            "tenant.create",
            "key.create"
        ]
    );
    let o = must(admin(&s, &["audit", "--limit", "2", "--json"]));
    assert_eq!(o.json()["entries"].as_array().unwrap().len(), 2, "{o}");
    // The audit log is the admin's: a tenant's key is refused.
    let o = as_key(&s, &viewer, &["audit"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("(forbidden)"), "{o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_finds_its_key_or_says_where_to_put_one() {
    let s = Server::start().await;
    let data_dir = s.data_dir();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(data_dir.join("admin.key")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "admin.key must be private");

    // The server's data directory holds admin.key: found through the
    // environment or the flag.
    let mut c = base(&s);
    c.env("SUPERSERVER_DATA_DIR", &data_dir).arg("status");
    let o = must(output(c));
    assert!(o.stdout.contains("backend native"), "{o}");
    let mut c = base(&s);
    c.args(["whoami", "--data-dir"]).arg(&data_dir);
    let o = must(output(c));
    assert!(o.stdout.contains("role:      admin\n"), "{o}");

    // An empty data directory and no key: refused, saying where a key comes from.
    let empty = tempfile::tempdir().unwrap();
    let mut c = base(&s);
    c.env("SUPERSERVER_DATA_DIR", empty.path()).arg("status");
    let o = output(c);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("(unauthorized)"), "{o}");
    let admin_key_path = empty.path().join("admin.key");
    assert!(o.stderr.contains("SUPERSERVER_API_KEY") && o.stderr.contains("admin.key"), "{o}");
    assert!(o.stderr.contains(&admin_key_path.display().to_string()), "the hint names the file it looked for: {o}");
    // The default data directory is ./superserver-data, relative to where the CLI runs.
    let mut c = base(&s);
    c.current_dir(empty.path()).arg("status");
    let o = output(c);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("superserver-data/admin.key"), "{o}");

    // --api-key-file (and its variable); it wins over the data directory.
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("key");
    std::fs::write(&key_file, format!("{}\n", s.admin_key)).unwrap();
    let mut c = base(&s);
    c.env("SUPERSERVER_DATA_DIR", empty.path()).arg("status").arg("--api-key-file").arg(&key_file);
    must(output(c));
    let mut c = base(&s);
    c.env("SUPERSERVER_API_KEY_FILE", &key_file).arg("whoami");
    let o = must(output(c));
    assert!(o.stdout.contains("role:      admin\n"), "{o}");
    // A key file that is missing, or holds a key the server does not know, is named.
    let missing = keys.path().join("missing");
    let mut c = base(&s);
    c.arg("status").arg("--api-key-file").arg(&missing);
    let o = output(c);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains(&missing.display().to_string()) && o.stderr.contains("--api-key-file"), "{o}");
    let wrong = keys.path().join("wrong");
    std::fs::write(&wrong, format!("ssk_{}\n", "A".repeat(43))).unwrap();
    let mut c = base(&s);
    c.arg("status").arg("--api-key-file").arg(&wrong);
    let o = output(c);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("unknown API key") && o.stderr.contains(&wrong.display().to_string()), "{o}");
    // A key given outright wins over the key file.
    let mut c = base(&s);
    c.args(["status", "--api-key", &s.admin_key]).arg("--api-key-file").arg(&wrong);
    must(output(c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_when_asked() {
    let s = Server::start().await;
    create_tenant(&s, "acme", "developer");

    // The key alone on stdout (for `KEY=$(…)`), the summary and warning on stderr.
    let o = must(admin(&s, &["keys", "create", "--tenant", "acme", "--name", "ci", "--expires", "2s"]));
    let key = o.stdout.trim().to_string();
    assert_eq!(o.stdout, format!("{key}\n"), "{o}");
    assert!(key.starts_with("ssk_"), "{o}");
    assert!(o.stderr.contains("Created API key key_") && o.stderr.contains("for tenant acme"), "{o}");
    assert!(o.stderr.contains("role member, \"ci\", expires ") && o.stderr.contains(" UTC"), "{o}");
    assert!(o.stderr.contains("will not be shown again") && !o.stderr.contains(&key), "{o}");
    let created = std::time::Instant::now();

    let o = must(as_key(&s, &key, &["whoami"]));
    assert!(o.stdout.contains("role:      member\n") && o.stdout.contains(", expires "), "{o}");
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(created.elapsed())).await;
    let o = as_key(&s, &key, &["whoami"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("expired") && o.stderr.contains("(unauthorized)"), "{o}");
    assert!(o.stderr.contains("hint: ") && o.stderr.contains("revoked or expired"), "{o}");
    let o = must(admin(&s, &["keys", "ls", "--tenant", "acme"]));
    assert!(o.stdout.lines().any(|l| l.contains(" ci ") && l.contains("expired")), "{o}");

    // An expiry in the past is refused before anything is created.
    let before =
        must(admin(&s, &["keys", "ls", "--tenant", "acme", "--json"])).json()["keys"].as_array().unwrap().len();
    let o = admin(&s, &["keys", "create", "--tenant", "acme", "--expires", "2001-01-01"]);
    assert_ne!(o.code, Some(0), "{o}");
    assert!(o.stderr.contains("the expiry 2001-01-01 00:00:00 UTC has already passed"), "{o}");
    assert!(o.stdout.is_empty(), "{o}");
    let after = must(admin(&s, &["keys", "ls", "--tenant", "acme", "--json"])).json()["keys"].as_array().unwrap().len();
    assert_eq!(before, after, "no key was created");
    // Garbage is refused by the argument parser (exit 2), saying what is accepted.
    let o = admin(&s, &["keys", "create", "--tenant", "acme", "--expires", "soon"]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("30d") && o.stderr.contains("2026-12-31"), "{o}");
    // A time in the future is taken as given.
    let v = must(admin(&s, &["keys", "create", "--tenant", "acme", "--expires", "2999-01-01", "--json"])).json();
    assert_eq!(v["expires_at_ms"], 32_472_144_000_000_i64, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_and_usage_through_the_cli() {
    let s = Server::start_with("[plans.free]\nexecutions_per_month = 2\n").await;
    create_tenant(&s, "small", "free");
    let (owner, _, _) = create_key(&s, "small", "owner");

    for _ in 0..2 {
        let o = as_key(&s, &owner, &["run", "--", "true"]);
        assert_eq!(o.code, Some(0), "{o}");
    }
    let o = as_key(&s, &owner, &["run", "--", "echo", "third"]);
    assert_eq!(o.code, Some(125), "a spent quota means the command did not run: {o}");
    assert!(o.stdout.is_empty(), "{o}");
    assert!(o.stderr.starts_with("error: ") && o.stderr.contains("(quota_exceeded)"), "{o}");
    assert!(o.stderr.contains("\n  quota:  executions, 2 of 2 used\n"), "{o}");
    let resets =
        o.stderr.lines().find(|l| l.starts_with("  resets: ")).unwrap_or_else(|| panic!("no resets line: {o}"));
    assert!(resets.contains(" UTC (in "), "{o}");
    assert!(o.stderr.contains("hint: `superserver quotas` shows every quota of the tenant"), "{o}");

    // Usage: the two that ran, none for the one refused.
    let usage = must(as_key(&s, &owner, &["usage", "--json"])).json();
    assert_eq!(usage["totals"]["executions"], 2, "{usage}");
    let o = must(as_key(&s, &owner, &["usage"]));
    assert!(o.stdout.starts_with("Usage from ") && o.stdout.contains(" UTC, by day\n"), "{o}");
    let total = o.stdout.lines().find(|l| l.starts_with("TOTAL")).unwrap_or_else(|| panic!("no total: {o}"));
    assert_eq!(total.split_whitespace().nth(1), Some("2"), "{o}");
    let o = must(as_key(&s, &owner, &["usage", "--csv"]));
    assert!(o.stdout.starts_with("group,tenant_id,tenant,executions,"), "{o}");
    assert!(o.stdout.lines().count() >= 2, "a header and a row: {o}");
    assert_eq!(csv_sum(&o.stdout, "executions", |_, _| true), 2.0, "{o}");
    let o = must(as_key(&s, &owner, &["usage", "--csv", "--group-by", "key"]));
    assert_eq!(o.stdout.lines().count(), 2, "one key ran: {o}");
    let o = must(admin(&s, &["usage", "--group-by", "tenant", "--json"]));
    let small = o.json()["groups"].as_array().unwrap().iter().find(|g| g["tenant"] == "small").cloned();
    assert_eq!(small.unwrap()["executions"], 2, "{o}");

    // Export: meter rows a billing system imports.
    let o = must(as_key(&s, &owner, &["usage", "export"]));
    assert!(o.stdout.starts_with("tenant_id,tenant,meter,quantity,unit,period_start,period_end\n"), "{o}");
    let executions = |header: &[&str], row: &[&str]| {
        let meter = header.iter().position(|h| *h == "meter").unwrap();
        row[meter] == "executions"
    };
    assert!(o.stdout.lines().any(|l| l.contains(",small,executions,")), "{o}");
    assert_eq!(csv_sum(&o.stdout, "quantity", executions), 2.0, "{o}");
    let o = must(admin(&s, &["usage", "export", "--tenant", "small"]));
    assert_eq!(csv_sum(&o.stdout, "quantity", executions), 2.0, "{o}");

    // Quotas: executions 2 of 2.
    let o = must(as_key(&s, &owner, &["quotas"]));
    assert!(o.stdout.starts_with("TENANT"), "{o}");
    let row = o.stdout.lines().find(|l| l.contains(" executions ")).unwrap_or_else(|| panic!("no executions: {o}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..6], ["small", "free", "executions", "2", "2", "100%"], "{o}");
    assert_eq!(cells[6], "in", "{o}");
    let q = must(admin(&s, &["quotas", "--tenant", "small", "--json"])).json();
    let tenants = q["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 1, "{q}");
    let ex = tenants[0]["quotas"].as_array().unwrap().iter().find(|q| q["quota"] == "executions").unwrap();
    assert_eq!((ex["used"].as_f64(), ex["limit"].as_u64()), (Some(2.0), Some(2)), "{q}");

    // Plans, with the config's change to free.
    let o = must(as_key(&s, &owner, &["plans"]));
    let header: Vec<&str> = o.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["LIMIT", "DEVELOPER", "ENTERPRISE", "FREE", "TEAM"], "{o}");
    let row = o.stdout.lines().find(|l| l.starts_with("executions per month")).unwrap();
    assert_eq!(row.split_whitespace().skip(3).collect::<Vec<_>>(), ["1000", "unlimited", "2", "10000"], "{o}");
    let plans = must(admin(&s, &["plans", "--json"])).json();
    for p in ["free", "developer", "team", "enterprise"] {
        assert!(plans["plans"][p].is_object(), "no plan {p}: {plans}");
    }
    assert_eq!(plans["plans"]["free"]["executions_per_month"], 2, "{plans}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_limit_what_a_key_may_do_through_the_cli() {
    let s = Server::start().await;
    create_tenant(&s, "acme", "developer");
    let (viewer, _, _) = create_key(&s, "acme", "viewer");
    let (member, _, _) = create_key(&s, "acme", "member");

    // A viewer reads but does not change.
    let o = as_key(&s, &viewer, &["sandbox", "create"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.starts_with("error: ") && o.stderr.contains("(forbidden)"), "{o}");
    assert!(o.stderr.contains("hint: the API key's role does not allow this"), "{o}");
    assert!(o.stdout.is_empty(), "{o}");
    let o = must(as_key(&s, &viewer, &["sandbox", "ls"]));
    assert!(o.stdout.starts_with("ID"), "{o}");

    // A member's sandbox is seen, but not destroyed, by the viewer.
    let o = must(as_key(&s, &member, &["sandbox", "create"]));
    let id = o.stdout.trim().to_string();
    assert!(id.starts_with("sb_"), "{o}");
    let o = must(as_key(&s, &viewer, &["sandbox", "ls"]));
    assert!(o.stdout.contains(&id), "{o}");
    let o = as_key(&s, &viewer, &["sandbox", "rm", &id]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("(forbidden)"), "{o}");
    let o = as_key(&s, &viewer, &["sandbox", "exec", &id, "--", "true"]);
    assert_eq!(o.code, Some(125), "{o}");
    assert!(o.stderr.contains("(forbidden)"), "{o}");
    let o = as_key(&s, &viewer, &["run", "--", "echo", "no"]);
    assert_eq!(o.code, Some(125), "{o}");
    assert!(o.stderr.contains("(forbidden)") && !o.stdout.contains("no"), "{o}");
    must(as_key(&s, &viewer, &["usage"]));
    must(as_key(&s, &viewer, &["quotas"]));

    // Neither manages keys or tenants.
    for key in [&viewer, &member] {
        for args in [
            &["keys", "ls"][..],
            &["keys", "create", "--tenant", "acme"],
            &["tenants", "create", "other"],
            &["tenants", "suspend", "acme"],
        ] {
            let o = as_key(&s, key, args);
            assert_eq!(o.code, Some(1), "{args:?}: {o}");
            assert!(o.stderr.contains("(forbidden)"), "{args:?}: {o}");
        }
    }
    // Tenants other than their own are not even seen.
    let o = must(as_key(&s, &member, &["tenants", "ls"]));
    assert_eq!(o.stdout.lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect::<Vec<_>>(), ["acme"]);
    let o = as_key(&s, &viewer, &["tenants", "show", "tn_admin"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("not_found"), "another tenant answers as one that does not exist: {o}");
    let o = must(as_key(&s, &member, &["sandbox", "rm", &id]));
    assert!(o.stderr.is_empty() || !o.stderr.contains("error"), "{o}");
}
