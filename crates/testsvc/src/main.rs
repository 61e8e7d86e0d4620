//! `superserver-testsvc`: the service the monitoring tests watch. It runs as
//! the only file of a `FROM scratch` image, so it is std-only and linked
//! statically.
//!
//! - `GET /` answers `ok`; `GET /health` answers 200 `healthy`, or 503 after
//!   `POST /health/fail` (until `POST /health/ok`).
//! - `POST /log?n=N&level=info|warn|error&msg=TEXT` writes N lines
//!   (`<RFC 3339> <LEVEL> <msg> seq=<k>`; errors on stderr, the rest on stdout).
//! - `POST /leak?mb=N` allocates and keeps N MiB; `POST /exit?code=N` exits.
//!
//! Environment: `PORT` (8080), `LOG_EVERY_MS` (an info line `tick n=<k>` every
//! so often), `EXIT_AFTER_MS` (exit 1 after that long: a crash loop under a
//! restart policy), `LOG_FILE` (also append every line to that file).
//! `superserver-testsvc probe` GETs `/health` on `PORT` and exits 0 if it
//! answered 200: the image's `HEALTHCHECK`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static UNHEALTHY: AtomicBool = AtomicBool::new(false);
static SEQ: AtomicU64 = AtomicU64::new(0);
static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    if std::env::args().nth(1).as_deref() == Some("probe") {
        std::process::exit(if probe(port) { 0 } else { 1 });
    }
    if let Some(ms) = env_ms("EXIT_AFTER_MS") {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            log("error", "exiting as told by EXIT_AFTER_MS");
            std::process::exit(1);
        });
    }
    if let Some(ms) = env_ms("LOG_EVERY_MS") {
        std::thread::spawn(move || {
            for n in 0.. {
                log("info", &format!("tick n={n}"));
                std::thread::sleep(Duration::from_millis(ms.max(1)));
            }
        });
    }
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            log("error", &format!("cannot listen on port {port}: {e}"));
            std::process::exit(2);
        }
    };
    log("info", &format!("listening on port {port}"));
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = serve(stream);
        });
    }
}

fn env_ms(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn probe(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    // Headers are read and ignored; bodies are not used.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, body) = route(&method, path, query);
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

fn route(method: &str, path: &str, query: &str) -> (&'static str, String) {
    let param = |name: &str| {
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| unescape(v))
    };
    match (method, path) {
        ("GET", "/") => ("200 OK", "ok\n".into()),
        ("GET", "/health") if UNHEALTHY.load(Ordering::Relaxed) => ("503 Service Unavailable", "unhealthy\n".into()),
        ("GET", "/health") => ("200 OK", "healthy\n".into()),
        ("POST", "/health/fail") => {
            UNHEALTHY.store(true, Ordering::Relaxed);
            ("200 OK", "unhealthy from now on\n".into())
        }
        ("POST", "/health/ok") => {
            UNHEALTHY.store(false, Ordering::Relaxed);
            ("200 OK", "healthy from now on\n".into())
        }
        ("POST", "/log") => {
            let n: u64 = param("n").and_then(|v| v.parse().ok()).unwrap_or(1);
            let level = param("level").unwrap_or_else(|| "info".into());
            let msg = param("msg").unwrap_or_else(|| "something happened".into());
            for _ in 0..n {
                log(&level, &msg);
            }
            ("200 OK", format!("logged {n}\n"))
        }
        ("POST", "/leak") => {
            let mb: usize = param("mb").and_then(|v| v.parse().ok()).unwrap_or(1);
            // Touched, so it is resident, not just reserved.
            let block = vec![0x5a_u8; mb << 20];
            let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
            leaked.push(block);
            let total: usize = leaked.iter().map(Vec::len).sum();
            ("200 OK", format!("holding {} MiB\n", total >> 20))
        }
        ("POST", "/exit") => {
            let code: i32 = param("code").and_then(|v| v.parse().ok()).unwrap_or(1);
            log("error", &format!("exiting with code {code} as told"));
            std::process::exit(code);
        }
        _ => ("404 Not Found", "no such endpoint\n".into()),
    }
}

/// `%XX` and `+` decoding of a query value.
fn unescape(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn log(level: &str, msg: &str) {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let line = format!("{} {} {msg} seq={seq}\n", rfc3339_now(), level.to_ascii_uppercase());
    if level.eq_ignore_ascii_case("error") {
        let _ = std::io::stderr().write_all(line.as_bytes());
    } else {
        let _ = std::io::stdout().write_all(line.as_bytes());
    }
    if let Ok(path) = std::env::var("LOG_FILE") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil-from-days, no dependencies).
fn rfc3339_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, now.subsec_millis())
}
