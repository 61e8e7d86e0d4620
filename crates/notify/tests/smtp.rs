//! `send_email` against a real SMTP server on loopback: aiosmtpd run by
//! Debian's `/usr/bin/python3` (package `python3-aiosmtpd`, which
//! `scripts/test` installs). Without it these tests fail; they never skip.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use superserver_notify::{send_email, DeliveryError, Email, SmtpConfig, SmtpTls};

/// Debian's interpreter: a `python3` earlier on PATH may lack aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";
/// Bound on every wait in these tests.
const TEST_BOUND: Duration = Duration::from_secs(20);

/// The SMTP server. Arguments: the JSON-lines file to append each message to,
/// and `open` (no AUTH) or `auth` (AUTH required: `alerts` / `hunter2`,
/// allowed without TLS). Recipients `reject@…` get 550, `tempfail@…` 451.
/// Prints its port when ready and runs until its stdin closes.
const SERVER_PY: &str = r#"
import json, socket, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out_path, mode = sys.argv[1], sys.argv[2]

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local == "reject":
            return "550 5.1.1 <%s>: recipient rejected" % address
        if local == "tempfail":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth": session.auth_data,
            "content": envelope.content.decode("utf-8", "replace"),
        }
        with open(out_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == b"alerts" and auth_data.password == b"hunter2")
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()

options = {}
if mode == "auth":
    options = dict(auth_required=True, auth_require_tls=False, authenticator=authenticator)
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **options)
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
    fn start(mode: &str) -> Self {
        require_aiosmtpd();
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, SERVER_PY).expect("write the SMTP server script");
        let log = dir.path().join("received.jsonl");
        let child = Command::new(PYTHON)
            .arg(&script)
            .arg(&log)
            .arg(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON}: {e}"));
        let mut server = Self { child, port: 0, log, _dir: dir };
        let stdout = server.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(TEST_BOUND).expect("the SMTP server prints its port within the bound");
        server.port = line.trim().parse().unwrap_or_else(|_| panic!("SMTP server did not start: {line:?}"));
        server
    }

    fn config(&self) -> SmtpConfig {
        config(self.port)
    }

    /// The messages received so far.
    fn received(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.log) {
            Ok(text) => text.lines().map(|l| serde_json::from_str(l).expect("the server writes JSON lines")).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", self.log.display()),
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require_aiosmtpd() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import aiosmtpd: the e-mail tests need a real SMTP server; \
         run scripts/test (it installs python3-aiosmtpd), or apt-get install python3-aiosmtpd"
    );
}

/// Plain-text SMTP to 127.0.0.1:`port`, no AUTH.
fn config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        password_file: None,
        from: "SuperServer <alerts@example.com>".into(),
        timeout_ms: 10_000,
    }
}

fn email(to: &str) -> Email {
    Email {
        to: to.into(),
        subject: "Quota warning: t1 at 91%".into(),
        text: "Tenant t1 has used 91 of 100 sandbox-hours this month.\nSee the dashboard.\n".into(),
        message_id_seed: "evt_01HXAMPLE".into(),
    }
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, f).await.expect("the test's wait is bounded")
}

async fn send(cfg: &SmtpConfig, email: &Email) -> Result<(), DeliveryError> {
    bounded(send_email(cfg, email)).await
}

/// Splits a message into unfolded headers and body, with `\n` line ends.
fn parse(content: &str) -> (Vec<(String, String)>, String) {
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

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    let found: Vec<_> = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).collect();
    assert_eq!(found.len(), 1, "header {name} once in {headers:?}");
    &found[0].1
}

#[tokio::test]
async fn delivers_email_with_stable_message_id() {
    let server = SmtpServer::start("open");
    let cfg = server.config();
    cfg.validate().unwrap();
    send(&cfg, &email("ops@example.net")).await.unwrap();
    send(&cfg, &email("ops@example.net")).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let first = &received[0];
    assert_eq!(first["mail_from"], "alerts@example.com");
    assert_eq!(first["rcpt_tos"], serde_json::json!(["ops@example.net"]));
    let (headers, body) = parse(first["content"].as_str().unwrap());
    assert_eq!(header(&headers, "From"), "SuperServer <alerts@example.com>");
    assert_eq!(header(&headers, "To"), "ops@example.net");
    assert_eq!(header(&headers, "Subject"), "Quota warning: t1 at 91%");
    assert_eq!(header(&headers, "Message-ID"), "<superserver.evt_01HXAMPLE@example.com>");
    assert!(header(&headers, "Content-Type").starts_with("text/plain"), "{headers:?}");
    // The SMTP end-of-data marker may leave one more line end.
    assert_eq!(body.trim_end(), email("").text.trim_end());
    assert!(body.starts_with("Tenant t1 has used 91 of 100"), "{body:?}");

    // A resend of the same event carries the same Message-ID.
    let (again, _) = parse(received[1]["content"].as_str().unwrap());
    assert_eq!(header(&again, "Message-ID"), header(&headers, "Message-ID"));
}

#[tokio::test]
async fn refused_recipient_is_permanent() {
    let server = SmtpServer::start("open");
    let e = send(&server.config(), &email("reject@example.net")).await.unwrap_err();
    assert!(!e.retryable, "{e}");
    assert!(e.message.contains("550") && e.message.contains("reject@example.net"), "{e}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn temporary_refusal_is_retryable() {
    let server = SmtpServer::start("open");
    let e = send(&server.config(), &email("tempfail@example.net")).await.unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.message.contains("451"), "{e}");
}

#[tokio::test]
async fn server_down_is_retryable() {
    let server = SmtpServer::start("open");
    let cfg = server.config();
    drop(server);
    let e = send(&cfg, &email("ops@example.net")).await.unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.message.contains(&format!("smtp 127.0.0.1:{}", cfg.port)), "{e}");
}

#[tokio::test]
async fn silent_server_times_out_retryably() {
    // Accepts connections and never greets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let cfg = SmtpConfig { timeout_ms: 300, ..config(port) };
    let started = Instant::now();
    let e = send(&cfg, &email("ops@example.net")).await.unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.message.contains("300 ms"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "gave up after {:?}", started.elapsed());
    hold.abort();
}

#[tokio::test]
async fn authenticates_with_password_file() {
    let server = SmtpServer::start("auth");
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("smtp-password");
    std::fs::File::create(&password_file).unwrap().write_all(b"hunter2\n").unwrap();
    let cfg = SmtpConfig { username: Some("alerts".into()), password_file: Some(password_file), ..server.config() };
    cfg.validate().unwrap();
    send(&cfg, &email("ops@example.net")).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["auth"], "alerts");

    // Without credentials the server requires AUTH (530); with a wrong password it refuses it (535).
    let e = send(&server.config(), &email("ops@example.net")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("530"), "{e}");
    let wrong = SmtpConfig { username: Some("alerts".into()), password: Some("wrong".into()), ..server.config() };
    let e = send(&wrong, &email("ops@example.net")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("535"), "{e}");
    assert_eq!(server.received().len(), 1);
}
