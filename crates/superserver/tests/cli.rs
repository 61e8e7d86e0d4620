//! The CLI against a real server: run, sandbox create/exec/cp/ls/files/rm, status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{bin, Server};

fn cli(s: &Server, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("SUPERSERVER_URL", &s.url)
        .env("SUPERSERVER_API_KEY", &s.admin_key)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn cli_stdin(s: &Server, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .env("SUPERSERVER_URL", &s.url)
        .env("SUPERSERVER_API_KEY", &s.admin_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_streams_output_and_exits_with_the_command_code() {
    let s = Server::start().await;
    let o = cli(&s, &["run", "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "err\n");
    let o = cli(&s, &["run", "--timeout", "300ms", "--", "sleep", "10"]);
    assert_eq!(o.status.code(), Some(124), "{}", text(&o.stderr));
    let o = cli(&s, &["run", "--json", "--", "echo", "j"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stdout"], "j\n");
    let o = cli_stdin(&s, &["run", "-i", "--", "tr", "a-z", "A-Z"], b"shout\n");
    assert_eq!(text(&o.stdout), "SHOUT\n");
    let o = cli(&s, &["run", "-e", "X=42", "--memory", "64", "--", "sh", "-c", "echo $X"]);
    assert_eq!(text(&o.stdout), "42\n");
    let o = cli(&s, &["run", "--", "no-such-program"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o.stderr));
    let o = cli(&s, &["run", "-e", "bad", "--", "true"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("KEY=VALUE") || text(&o.stderr).contains("="), "{}", text(&o.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_lifecycle_and_files() {
    let s = Server::start().await;
    let o = cli(&s, &["sandbox", "create", "--ttl", "10m", "-e", "K=v"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    assert!(id.starts_with("sb_"), "{id}");
    let o = cli(&s, &["sandbox", "exec", &id, "--", "sh", "-c", "echo $K > k.txt; cat k.txt"]);
    assert_eq!(text(&o.stdout), "v\n");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("up.txt");
    std::fs::write(&local, b"uploaded").unwrap();
    let dst = format!("{id}:in/up.txt");
    let o = cli(&s, &["sandbox", "cp", local.to_str().unwrap(), &dst]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = cli(&s, &["sandbox", "exec", &id, "--", "cat", "in/up.txt"]);
    assert_eq!(text(&o.stdout), "uploaded");
    let back = dir.path().join("k.txt");
    let o = cli(&s, &["sandbox", "cp", &format!("{id}:k.txt"), back.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "v\n");
    let o = cli(&s, &["sandbox", "files", &id]);
    assert!(text(&o.stdout).contains("k.txt") && text(&o.stdout).contains("in"), "{}", text(&o.stdout));
    let o = cli(&s, &["sandbox", "ls"]);
    assert!(text(&o.stdout).contains(&id));
    let o = cli(&s, &["sandbox", "ls", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.to_string().contains(&id));
    let o = cli(&s, &["sandbox", "cp", "a", "b"]);
    assert!(!o.status.success());
    let o = cli(&s, &["sandbox", "rm", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = cli(&s, &["sandbox", "get", &id, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "destroyed");
    let o = cli(&s, &["sandbox", "exec", &id, "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o.stderr).contains("sandbox_not_running"), "{}", text(&o.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_unreachable_server() {
    let s = Server::start().await;
    let o = cli(&s, &["status"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("native"), "{}", text(&o.stdout));
    let o = cli(&s, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["backends"][0]["name"], "native");
    let o = Command::new(bin()).args(["status"]).env("SUPERSERVER_URL", "http://127.0.0.1:1").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("superserver serve"), "{}", text(&o.stderr));
}
