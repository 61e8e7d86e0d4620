//! Adversarial isolation tests against a real server: each test tries one
//! escape or abuse from inside a sandbox and asserts that it failed, with the
//! error the kernel or the server is expected to give.
//!
//! Scripts print `ESCAPED` only when an attack worked and `DONE` when they ran
//! to the end, so every check can fail: a missing `DONE` means the probe did
//! not run, an `ESCAPED` line means the sandbox let it through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{argv, Server, MAX_SANDBOXES};
use superserver_wire::{CreateSandboxRequest, ExecRequest, ExecResult, Limits, RunAs, RunRequest};

/// What a script prints only when an attack worked.
const ESCAPED: &str = "ESCAPED";

/// A bash function that runs one attempt and reports it on one line:
/// `ESCAPED: <cmd>` when it succeeded, `refused: <cmd> :: <error text>` when not.
const ATTEMPT: &str = r#"
attempt() {
  if out=$( (eval "$1") 2>&1 ); then echo "ESCAPED: $1"; else echo "refused: $1 :: ${out//$'\n'/ }"; fi
}
"#;

const USERS: [RunAs; 2] = [RunAs::User, RunAs::Root];

fn bash(script: &str) -> Vec<String> {
    argv(&["bash", "-c", script])
}

fn run_as(user: RunAs, script: &str) -> RunRequest {
    RunRequest { command: bash(script), user: Some(user), ..Default::default() }
}

fn with_limits(script: &str, limits: Limits) -> RunRequest {
    RunRequest { command: bash(script), limits: Some(limits), ..Default::default() }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn exec_as(s: &Server, id: &str, user: RunAs, script: &str) -> ExecResult {
    let req = ExecRequest { command: bash(script), user: Some(user), ..Default::default() };
    s.client.exec(id, &req).await.unwrap_or_else(|e| panic!("exec in {id} failed: {e}"))
}

/// A token no sandbox can guess or find by accident.
fn token() -> String {
    let mut b = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    format!("tok{:016x}", u64::from_le_bytes(b))
}

/// The probe ran to its end and no attack got through.
#[track_caller]
fn assert_contained(r: &ExecResult, what: &str) {
    assert!(!r.stdout.contains(ESCAPED), "{what}: an attack succeeded:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("DONE"), "{what}: the probe did not run to its end: {r:?}");
}

/// The error text of a refused `attempt`, or a failure naming the attempt.
#[track_caller]
fn refusal<'a>(stdout: &'a str, cmd: &str) -> &'a str {
    let prefix = format!("refused: {cmd} :: ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no refusal recorded for `{cmd}` in:\n{stdout}"))
}

/// Lines of the `== name` section of a script's output.
fn section<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("== {name}");
    let mut lines = stdout.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "no section {header} in:\n{stdout}");
    lines.take_while(|l| !l.starts_with("== ")).collect()
}

/// The server answers and can still run commands.
async fn assert_server_alive(s: &Server) {
    let health = s.client.healthz().await.unwrap_or_else(|e| panic!("server not answering: {e}"));
    assert!(!health.is_empty());
    let r = s.run(&["echo", "still-alive"]).await;
    assert_eq!(r.stdout, "still-alive\n", "{r:?}");
}

/// Waits up to `wait` for this server's sandbox cgroups to go (all of them
/// once it is stopped; while it runs, all but the empty spares it keeps for
/// the next sandboxes), then removes what is left (with the child groups
/// that pin it) and returns it, so that a failing test does not leave cgroup
/// directories on the host.
async fn remove_leftover_cgroups(s: &Server, wait: Duration) -> Vec<std::path::PathBuf> {
    fn subtree(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                subtree(&e.path(), out);
            }
        }
        out.push(dir.to_path_buf());
    }
    let deadline = Instant::now() + wait;
    loop {
        let left = s.leftover_cgroups();
        if left.is_empty() {
            return left;
        }
        if Instant::now() > deadline {
            let mut dirs = Vec::new();
            for d in &left {
                subtree(d, &mut dirs);
            }
            for d in &dirs {
                let _ = std::fs::remove_dir(d);
            }
            return dirs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`Server::assert_no_sandbox_leftovers`] with cgroups, cleaning up the
/// cgroups it finds before failing.
async fn assert_no_leftovers(s: &Server) {
    let left = remove_leftover_cgroups(s, Duration::from_secs(15)).await;
    assert!(left.is_empty(), "cgroups of finished sandboxes left on the host (now removed by the test): {left:?}");
    s.assert_no_sandbox_leftovers(true).await;
}

fn server_port(s: &Server) -> u16 {
    s.url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
}

// ---------------------------------------------------------------------------
// 1. Host files outside the image view
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_files_outside_the_image_are_unreachable() {
    let s = Server::start().await;
    let secret = token();
    std::fs::write(s.data_dir().join("secret.txt"), &secret).unwrap();
    // The targets exist on the host, so not seeing them means something.
    for p in ["/etc/shadow", "/var/lib/dpkg/status"] {
        assert!(Path::new(p).exists(), "test premise: host has {p}");
    }
    assert!(s.data_dir().join("superserver.db").exists());
    let data = s.data_dir().display().to_string();
    let script = r##"
for f in /etc/shadow /etc/gshadow /etc/sudoers /root/.bash_history /run/docker.sock /var/lib/dpkg/status \
         "$DATA/superserver.db" "$DATA/secret.txt" "$DATA/instance-id" \
         /proc/1/root/etc/shadow "/proc/1/root$DATA/secret.txt" /proc/1/cwd/etc/shadow /proc/1/environ \
         /sys/kernel/notes /sys/fs/cgroup/cgroup.procs; do
  if out=$(head -c 64 "$f" 2>&1); then echo "ESCAPED: read $f: $out"; else echo "refused: $f :: $out"; fi
done
for d in /root /home /var/lib /run /sys "$DATA" /proc/1/root /proc/1/cwd /proc/1/fd /proc/1/map_files; do echo "== $d"; ls -A "$d" 2>&1; done
echo "== sockets"
python3 - <<'PY'
import socket
for path in ("/run/docker.sock", "/var/run/docker.sock"):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        print("ESCAPED: connected to", path)
    except OSError as e:
        print("refused:", path, "::", e.strerror)
PY
echo DONE
"##;
    for user in USERS {
        let r = s.run_req(RunRequest { env: env(&[("DATA", &data)]), ..run_as(user, script) }).await;
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        assert!(!r.stdout.contains(&secret), "{what}: the host secret leaked:\n{}", r.stdout);
        assert!(!r.stdout.contains("SQLite format"), "{what}: the server's database was read:\n{}", r.stdout);
        for f in ["/etc/shadow", "/etc/gshadow", "/run/docker.sock", "/var/lib/dpkg/status"] {
            assert!(refusal(&r.stdout, f).contains("No such file or directory"), "{what} {f}:\n{}", r.stdout);
        }
        for f in ["superserver.db", "secret.txt", "instance-id"] {
            let e = refusal(&r.stdout, &format!("{data}/{f}"));
            assert!(e.contains("No such file or directory"), "{what} {f}: {e}");
        }
        for f in [
            "/proc/1/root/etc/shadow",
            &format!("/proc/1/root{data}/secret.txt"),
            "/proc/1/cwd/etc/shadow",
            "/proc/1/environ",
        ] {
            assert!(refusal(&r.stdout, f).contains("Permission denied"), "{what} {f}:\n{}", r.stdout);
        }
        for f in ["/sys/kernel/notes", "/sys/fs/cgroup/cgroup.procs"] {
            assert!(refusal(&r.stdout, f).contains("No such file or directory"), "{what} {f}:\n{}", r.stdout);
        }
        // Directory listings show nothing of the host's.
        for d in ["/root", "/home", "/var/lib", "/run"] {
            let seen = section(&r.stdout, d);
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                assert!(!seen.contains(&name.as_str()), "{what}: host entry {d}/{name} visible: {seen:?}");
            }
        }
        for d in ["/home", "/var/lib", "/sys", data.as_str()] {
            let seen = section(&r.stdout, d).join("\n");
            assert!(seen.contains("No such file or directory"), "{what} {d}: {seen}");
        }
        assert!(section(&r.stdout, "/run").is_empty(), "{what}: /run is not empty:\n{}", r.stdout);
        for d in ["/proc/1/root", "/proc/1/cwd", "/proc/1/fd", "/proc/1/map_files"] {
            let seen = section(&r.stdout, d).join("\n");
            assert!(seen.contains("Permission denied"), "{what} {d}: {seen}");
        }
        let sockets = section(&r.stdout, "sockets").join("\n");
        assert!(sockets.contains("refused: /run/docker.sock :: No such file or directory"), "{what}: {sockets}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_kernel_interfaces_are_masked_or_read_only() {
    let s = Server::start().await;
    let host_core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let script = format!(
        "{ATTEMPT}{}",
        r##"
echo "kallsyms-bytes $(head -c 4096 /proc/kallsyms | wc -c)"
echo "keys-bytes $(head -c 4096 /proc/keys | wc -c)"
echo "timer_list-bytes $(head -c 4096 /proc/timer_list | wc -c)"
attempt 'cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern'
attempt 'echo 1 > /proc/sys/vm/drop_caches'
attempt 'echo sandbox > /proc/sys/kernel/hostname'
attempt 'echo 0 > /proc/sys/kernel/randomize_va_space'
attempt 'echo 1 > /proc/sys/net/ipv4/ip_forward'
echo DONE
"##
    );
    assert!(!std::fs::read_to_string("/proc/kallsyms").unwrap().is_empty(), "test premise: host kallsyms");
    for user in USERS {
        let r = s.run_req(run_as(user, &script)).await;
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        for f in ["kallsyms", "keys", "timer_list"] {
            assert!(r.stdout.contains(&format!("{f}-bytes 0\n")), "{what}: /proc/{f} is not masked:\n{}", r.stdout);
        }
        for cmd in [
            "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern",
            "echo 1 > /proc/sys/vm/drop_caches",
            "echo sandbox > /proc/sys/kernel/hostname",
            "echo 0 > /proc/sys/kernel/randomize_va_space",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ] {
            let e = refusal(&r.stdout, cmd);
            assert!(e.contains("Read-only file system") || e.contains("Permission denied"), "{what} `{cmd}`: {e}");
        }
    }
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(), host_core_pattern);
}

// ---------------------------------------------------------------------------
// 2. Writing read-only paths
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_system_paths_refuse_writes_as_user_and_root() {
    let s = Server::start().await;
    let probe = token();
    // The host's /usr belongs to a host uid no sandbox maps, so permissions
    // may refuse before the read-only mount does. The sandbox's own root owns
    // `/` and `/etc`: root inside gets past permissions and must meet the
    // read-only mount.
    let ro_attempts = [
        format!("echo x > /usr/bin/{probe}"),
        format!("echo x > /bin/{probe}"),
        format!("ln -s /workspace /usr/lib/{probe}"),
        "touch /usr/bin/env".to_string(),
        "mv /usr/bin/env /usr/bin/env2".to_string(),
    ];
    let own_ro_attempts = [
        format!("echo x > /{probe}"),
        format!("mkdir /etc/{probe}"),
        "echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd".to_string(),
        "echo x > /etc/hosts".to_string(),
        "rm -f /etc/hostname".to_string(),
        "mkdir /newdir".to_string(),
        "chmod 777 /etc".to_string(),
    ];
    let mut script = String::from(ATTEMPT);
    for a in ro_attempts.iter().chain(&own_ro_attempts) {
        script.push_str(&format!("attempt '{}'\n", a.replace('\'', r"'\''")));
    }
    script.push_str(
        r#"
echo tmp-content > /tmp/t && echo "tmp: $(cat /tmp/t)"
echo shm-content > /dev/shm/t && echo "shm: $(cat /dev/shm/t)"
if [ "$(id -u)" = 1000 ]; then echo ws-content > /workspace/t && echo "workspace: $(cat /workspace/t)"; fi
echo "passwd-lines $(wc -l < /etc/passwd)"
echo DONE
"#,
    );
    for user in USERS {
        let r = s.run_req(run_as(user, &script)).await;
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        for a in &ro_attempts {
            let e = refusal(&r.stdout, a);
            assert!(e.contains("Read-only file system") || e.contains("Permission denied"), "{what} `{a}`: {e}");
        }
        for a in &own_ro_attempts {
            let e = refusal(&r.stdout, a);
            // /etc is mounted read-only and owned by host root (unmapped
            // here): either refusal may come first, for root too.
            let ok = e.contains("Read-only file system")
                || e.contains("Permission denied")
                || e.contains("Operation not permitted");
            assert!(ok, "{what} `{a}`: {e}");
        }
        assert!(r.stdout.contains("tmp: tmp-content\n"), "{what}: /tmp must be writable:\n{}", r.stdout);
        assert!(r.stdout.contains("shm: shm-content\n"), "{what}: /dev/shm must be writable:\n{}", r.stdout);
        if user == RunAs::User {
            assert!(r.stdout.contains("workspace: ws-content\n"), "/workspace must be writable:\n{}", r.stdout);
        }
        assert!(r.stdout.contains("passwd-lines 3\n"), "{what}: /etc/passwd changed:\n{}", r.stdout);
    }
    // Nothing reached the host's /usr or /.
    for p in [format!("/usr/bin/{probe}"), format!("/{probe}"), format!("/usr/lib/{probe}"), format!("/etc/{probe}")] {
        assert!(std::fs::symlink_metadata(&p).is_err(), "the sandbox wrote {p} on the host");
    }
    assert!(Path::new("/usr/bin/env").exists() && !Path::new("/usr/bin/env2").exists());
}

// ---------------------------------------------------------------------------
// 3. Seeing or signalling host processes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_processes_are_invisible_and_cannot_be_signalled() {
    let s = Server::start().await;
    let me = std::process::id();
    let server = s.pid();
    let test_exe = std::env::current_exe().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    let script = format!(
        r#"
echo "pids: $(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
echo "== ps"; ps -eo pid,args
echo "== kill"
for p in {me} {server}; do
  if kill -9 $p 2>/dev/null; then echo "$MARK: killed $p"; else echo "kill $p: $(kill -9 $p 2>&1)"; fi
done
if [ -e /proc/{me} ] || [ -e /proc/{server} ]; then echo "$MARK: host pid visible in /proc"; fi
echo DONE
"#
    );
    for user in USERS {
        // The marker comes through the environment: `ps` shows this script's
        // own text, which must not contain it.
        let r = s.run_req(RunRequest { env: env(&[("MARK", ESCAPED)]), ..run_as(user, &script) }).await;
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        let pids: Vec<u32> = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("pids: "))
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert!(!pids.is_empty() && pids.len() <= 10, "{what}: /proc shows {pids:?}");
        assert!(pids.contains(&1), "{what}: the sandbox's own init is pid 1: {pids:?}");
        assert!(!pids.contains(&me) && !pids.contains(&server), "{what}: host pids visible: {pids:?}");
        let ps = section(&r.stdout, "ps").join("\n");
        for host_only in [" serve ", "--data-dir", test_exe.as_str(), "cargo", "nextest"] {
            assert!(!ps.contains(host_only), "{what}: host process `{host_only}` visible:\n{ps}");
        }
        for p in [me, server] {
            let prefix = format!("kill {p}: ");
            let line = r.stdout.lines().find(|l| l.starts_with(&prefix)).unwrap_or_default();
            assert!(line.contains("No such process"), "{what}: kill {p} did not fail with ESRCH:\n{}", r.stdout);
        }
    }
    assert!(Path::new(&format!("/proc/{server}")).exists(), "the server process is gone");
    assert_server_alive(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_root_cannot_kill_or_stop_its_init() {
    let s = Server::start().await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    let r = exec_as(
        &s,
        &id,
        RunAs::Root,
        "for sig in STOP SEGV TERM INT HUP ABRT KILL; do kill -$sig 1; done; kill -9 -1; echo DONE",
    )
    .await;
    assert!(r.stdout.contains("DONE"), "{r:?}");
    // The init still serves commands: the sandbox is intact.
    for _ in 0..3 {
        let r = exec_as(&s, &id, RunAs::User, "echo alive; echo DONE").await;
        assert_eq!(r.stdout, "alive\nDONE\n", "{r:?}");
    }
    s.client.delete_sandbox(&id).await.unwrap();
}

/// A command has no controlling terminal, and its session is the sandbox's
/// own: opening `/dev/tty` (the way to a host terminal the server may have
/// been started from, and to TIOCSTI input injection) fails, and the session
/// leader is a process of the sandbox's pid namespace (one outside it would
/// show as 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_have_no_terminal_and_a_session_of_the_sandbox() {
    let s = Server::start().await;
    let script = "if (exec 3</dev/tty) 2>/dev/null; then echo TTY; else echo NO_TTY; fi; \
                  set -- $(cut -d')' -f2 /proc/self/stat); echo sid=$4 pgid=$3 self=$$";
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    for user in USERS {
        let req = ExecRequest { command: argv(&["sh", "-c", script]), user: Some(user), ..Default::default() };
        for r in [
            s.client.exec(&id, &req).await.unwrap(),
            s.run_req(RunRequest { command: req.command.clone(), user: Some(user), ..Default::default() }).await,
        ] {
            let out = r.stdout.clone();
            assert!(out.starts_with("NO_TTY\n"), "{user:?}: {r:?}");
            let field = |k: &str| -> i64 {
                out.split_whitespace().find_map(|w| w.strip_prefix(k)).and_then(|v| v.parse().ok()).unwrap_or(-1)
            };
            assert!(field("sid=") > 0, "the session must be the sandbox's: {r:?}");
            // The shell leads its own process group (what a kill reaches).
            assert_eq!(field("pgid="), field("self="), "{r:?}");
        }
    }
    s.client.delete_sandbox(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_descriptors_leak_into_commands() {
    let s = Server::start().await;
    let script = r#"
import os
fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
print("fds", fds)
for fd in fds[:3]:
    print(fd, os.readlink(f"/proc/self/fd/{fd}").split(":")[0])
print("DONE")
"#;
    for user in USERS {
        let r = s
            .run_req(RunRequest { command: argv(&["python3", "-c", script]), user: Some(user), ..Default::default() })
            .await;
        // 0-2 and the descriptor listdir itself holds; nothing of the init's.
        // Without input, stdin is the sandbox's /dev/null.
        assert!(r.stdout.starts_with("fds [0, 1, 2, 3]\n0 /dev/null\n1 pipe\n2 pipe\nDONE"), "{user:?}: {r:?}");
        // With input, a pipe that ends where the input does.
        let r = s
            .run_req(RunRequest {
                command: argv(&[
                    "python3",
                    "-c",
                    &format!("import sys\nd = sys.stdin.read()\n{script}\nprint(repr(d))\n"),
                ]),
                user: Some(user),
                stdin: Some("in".into()),
                ..Default::default()
            })
            .await;
        assert!(r.stdout.starts_with("fds [0, 1, 2, 3]\n0 pipe\n1 pipe\n2 pipe\nDONE\n'in'"), "{user:?}: {r:?}");
    }
    // Commands of a persistent sandbox join their own cgroup through
    // descriptors the init holds on the host's cgroup tree: none may leak.
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    for user in USERS {
        let req = ExecRequest { command: argv(&["python3", "-c", script]), user: Some(user), ..Default::default() };
        let r = s.client.exec(&id, &req).await.unwrap();
        assert!(
            r.stdout.starts_with("fds [0, 1, 2, 3]\n0 /dev/null\n1 pipe\n2 pipe\nDONE"),
            "persistent {user:?}: {r:?}"
        );
    }
    s.client.delete_sandbox(&id).await.unwrap();
}

// ---------------------------------------------------------------------------
// 4. The host's network
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_is_unreachable() {
    use std::os::linux::net::SocketAddrExt;
    let s = Server::start().await;
    let lo = TcpListener::bind("127.0.0.1:0").unwrap();
    let any = TcpListener::bind("0.0.0.0:0").unwrap();
    let abstract_name = format!("ss-isolation-{}", token());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let unix = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    for l in [&lo, &any] {
        l.set_nonblocking(true).unwrap();
    }
    unix.set_nonblocking(true).unwrap();
    // The host's own non-loopback addresses, where `any` listens too.
    let host_ips: Vec<String> = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .split_whitespace()
        .filter(|a| a.parse::<Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback()))
        .map(str::to_string)
        .collect();
    let lo_port = lo.local_addr().unwrap().port().to_string();
    let any_port = any.local_addr().unwrap().port().to_string();
    let server_port = server_port(&s).to_string();
    let script = r#"
import os, socket
targets = [("127.0.0.1", int(os.environ["LO_PORT"])), ("127.0.0.1", int(os.environ["SERVER_PORT"])),
           ("localhost", int(os.environ["SERVER_PORT"])), ("127.0.0.1", int(os.environ["ANY_PORT"]))]
targets += [(ip, int(os.environ["ANY_PORT"])) for ip in os.environ["HOST_IPS"].split()]
for host, port in targets:
    try:
        socket.create_connection((host, port), timeout=3)
        print("ESCAPED: connected to", host, port)
    except OSError as e:
        print(f"refused: {host}:{port} :: errno {e.errno}")
u = socket.socket(socket.AF_UNIX)
try:
    u.connect("\0" + os.environ["ABSTRACT"])
    print("ESCAPED: connected to the host's abstract socket")
except OSError as e:
    print(f"refused: abstract :: errno {e.errno}")
print("interfaces", [name for _, name in socket.if_nameindex()])
print("DONE")
"#;
    let vars = env(&[
        ("LO_PORT", &lo_port),
        ("ANY_PORT", &any_port),
        ("SERVER_PORT", &server_port),
        ("HOST_IPS", &host_ips.join(" ")),
        ("ABSTRACT", &abstract_name),
    ]);
    for user in USERS {
        let r = s
            .run_req(RunRequest {
                command: argv(&["python3", "-c", script]),
                env: vars.clone(),
                user: Some(user),
                ..Default::default()
            })
            .await;
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        const ECONNREFUSED: &str = "errno 111";
        const ENETUNREACH: &str = "errno 101";
        for port in [&lo_port, &server_port, &any_port] {
            assert_eq!(refusal(&r.stdout, &format!("127.0.0.1:{port}")), ECONNREFUSED, "{what}: {}", r.stdout);
        }
        assert_eq!(refusal(&r.stdout, &format!("localhost:{server_port}")), ECONNREFUSED, "{what}");
        for ip in &host_ips {
            assert_eq!(refusal(&r.stdout, &format!("{ip}:{any_port}")), ENETUNREACH, "{what}: {}", r.stdout);
        }
        assert_eq!(refusal(&r.stdout, "abstract"), ECONNREFUSED, "{what}");
        assert!(r.stdout.contains("interfaces ['lo']\n"), "{what}: {}", r.stdout);
        let ip = s.run_req(run_as(user, "ip -o link show | cut -d: -f2")).await;
        assert_eq!(ip.stdout.trim(), "lo", "{what}: {ip:?}");
    }
    // Nothing ever reached the host's listeners.
    for l in [&lo, &any] {
        assert_eq!(l.accept().map(|_| ()).unwrap_err().kind(), ErrorKind::WouldBlock, "a sandbox connected");
    }
    assert_eq!(unix.accept().map(|_| ()).unwrap_err().kind(), ErrorKind::WouldBlock, "a sandbox connected");
}

// ---------------------------------------------------------------------------
// 5-7. Mounts, namespaces, devices, dangerous syscalls
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounting_chroot_and_new_namespaces_fail() {
    // mount(8) refuses a non-root caller itself; root gets to the syscall.
    const MOUNT_REFUSED: &[&str] = &["permission denied", "must be superuser"];
    const EPERM: &[&str] = &["Operation not permitted"];
    let s = Server::start().await;
    let attempts: [(&str, &[&str]); 13] = [
        ("mkdir -p /tmp/m && mount -t tmpfs x /tmp/m", MOUNT_REFUSED),
        ("mkdir -p /tmp/m && mount -t proc proc /tmp/m", MOUNT_REFUSED),
        ("mkdir -p /tmp/m && mount --bind /usr /tmp/m", MOUNT_REFUSED),
        ("mount -o remount,rw /", MOUNT_REFUSED),
        // umount(8) words its refusal differently for users; the mount
        // table below shows whether it worked.
        ("umount -l /proc/sys", &[""]),
        ("unshare -U true", EPERM),
        ("unshare -r true", EPERM),
        ("unshare -m true", EPERM),
        ("unshare -n true", EPERM),
        ("unshare -p -f true", EPERM),
        ("chroot / true", EPERM),
        ("nsenter -t 1 -m -U true", &["Permission denied", "Operation not permitted"]),
        (
            "python3 -c \"import ctypes,os; l=ctypes.CDLL(None,use_errno=True); r=l.unshare(0x10000000); print(os.strerror(ctypes.get_errno()), flush=True); os._exit(0 if r == 0 else 1)\"",
            EPERM,
        ),
    ];
    let mut script = String::from(ATTEMPT);
    for (a, _) in &attempts {
        script.push_str(&format!("attempt '{}'\n", a.replace('\'', r"'\''")));
    }
    script.push_str("echo \"mounted: $(grep -c ' /tmp/m ' /proc/self/mountinfo)\"\n");
    script.push_str("echo \"proc-sys: $(awk '$5 == \"/proc/sys\" {print $6}' /proc/self/mountinfo)\"\necho DONE\n");
    for user in USERS {
        let r = s.run_req(run_as(user, &script)).await;
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        for (a, expect) in &attempts {
            let e = refusal(&r.stdout, a);
            assert!(expect.iter().any(|x| e.contains(x)), "{what} `{a}`: expected one of {expect:?}, got: {e}");
        }
        assert!(r.stdout.contains("mounted: 0\n"), "{what}: {}", r.stdout);
        let proc_sys = r.stdout.lines().find_map(|l| l.strip_prefix("proc-sys: ")).unwrap();
        assert!(proc_sys.starts_with("ro,"), "{what}: /proc/sys is no longer read-only: {proc_sys:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_nodes_cannot_be_created() {
    let s = Server::start().await;
    // The host's root disk: the node an attacker would want.
    let dev = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff));
    let attempts = [
        "mknod /tmp/null c 1 3".to_string(),
        "mknod /tmp/mem c 1 1".to_string(),
        format!("mknod /tmp/disk b {major} {minor}"),
        "mknod /workspace/kmsg c 1 11".to_string(),
        "python3 -c \"import os, stat; os.mknod('/tmp/pynull', stat.S_IFCHR | 0o666, os.makedev(1, 3))\"".to_string(),
    ];
    let mut script = String::from(ATTEMPT);
    for a in &attempts {
        script.push_str(&format!("attempt '{}'\n", a.replace('\'', r"'\''")));
    }
    script.push_str(
        "echo \"devices: $(find /tmp /workspace /dev/shm \\( -type b -o -type c \\) 2>/dev/null | wc -l)\"\necho DONE\n",
    );
    for user in USERS {
        let r = s.run_req(run_as(user, &script)).await;
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        for a in &attempts {
            let e = refusal(&r.stdout, a);
            assert!(e.contains("Operation not permitted") || e.contains("Permission denied"), "{what} `{a}`: {e}");
        }
        assert!(r.stdout.contains("devices: 0\n"), "{what}: {}", r.stdout);
    }
}

/// Calls each syscall raw through ctypes (x86_64 numbers) and prints
/// `name ERRNO`, or `ESCAPED` when the call did what it was asked.
#[cfg(target_arch = "x86_64")]
const SYSCALL_PROBE: &str = r#"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def ptr(b):
    return ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value
def sc(name, nr, *args, allowed=False):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    e = ctypes.get_errno()
    if r == 0 and name.startswith("clone"):
        os._exit(0)  # the child of a clone that went through
    if r >= 0:
        print(f"{'ok' if allowed else 'ESCAPED:'} {name} returned {r}", flush=True)
    else:
        print(f"{name} {errno.errorcode.get(e, e)}", flush=True)
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID = 0x10000000, 0x00020000, 0x40000000, 0x20000000
SIGCHLD = 17
sc("clone_newuser", 56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
sc("clone_newns", 56, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0)
sc("clone_newnet", 56, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0)
sc("clone_newpid", 56, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0)
sc("clone3", 435, 0, 0)
sc("unshare_newuser", 272, CLONE_NEWUSER)
sc("setns", 308, os.open("/proc/self/ns/user", os.O_RDONLY), 0)
sc("ptrace_traceme", 101, 0, 0, 0, 0)
sc("process_vm_readv", 310, os.getpid(), 0, 0, 0, 0, 0)
sc("bpf", 321, 0, 0, 0)
sc("io_uring_setup", 425, 1, 0)
sc("keyctl", 250, 0, -3, 0)
sc("add_key", 248, ptr(b"user"), ptr(b"k"), ptr(b"v"), 1, -3)
sc("userfaultfd", 323, 1)
sc("perf_event_open", 298, 0, 0, -1, -1, 0)
sc("x32_getpid", 0x40000000 | 39)
sc("x32_unshare", 0x40000000 | 272, CLONE_NEWUSER)
sc("mount", 165, ptr(b"x"), ptr(b"/tmp"), ptr(b"tmpfs"), 0, 0)
sc("chroot", 161, ptr(b"/"))
sc("pivot_root", 155, ptr(b"/"), ptr(b"/"))
sc("umount2", 166, ptr(b"/proc/sys"), 2)
sc("open_by_handle_at", 304, -100, 0, 0)
sc("fsopen", 430, ptr(b"tmpfs"), 0)
sc("open_tree", 428, -100, ptr(b"/"), 0)
sc("kexec_load", 246, 0, 0, 0, 0)
sc("init_module", 175, 0, 0, ptr(b""))
sc("iopl", 172, 3)
sc("syslog", 103, 10, 0, 0)
# The init's descriptors (its control socket among them) through a pidfd.
init = libc.syscall(ctypes.c_long(434), ctypes.c_long(1), ctypes.c_long(0))
print("pidfd_open(1)", "ok" if init >= 0 else "failed", flush=True)
for fd in range(3, 16):
    sc(f"pidfd_getfd_init_{fd}", 438, init, fd, 0)
sc("getpid", 39, allowed=True)
print("DONE")
"#;

#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_syscalls_are_refused() {
    let s = Server::start().await;
    let eperm = [
        "clone_newuser",
        "clone_newns",
        "clone_newnet",
        "clone_newpid",
        "unshare_newuser",
        "setns",
        "ptrace_traceme",
        "process_vm_readv",
        "bpf",
        "io_uring_setup",
        "keyctl",
        "add_key",
        "userfaultfd",
        "perf_event_open",
        "x32_getpid",
        "x32_unshare",
        "mount",
        "chroot",
        "pivot_root",
        "umount2",
        "open_by_handle_at",
        "fsopen",
        "open_tree",
        "kexec_load",
        "init_module",
        "iopl",
        "syslog",
    ];
    for user in USERS {
        let r = s
            .run_req(RunRequest {
                command: argv(&["python3", "-c", SYSCALL_PROBE]),
                user: Some(user),
                ..Default::default()
            })
            .await;
        let what = format!("{user:?}");
        assert!(r.stdout.contains("ok getpid returned"), "{what}: the probe itself is broken: {r:?}");
        assert_contained(&r, &what);
        for name in eperm {
            assert!(
                r.stdout.lines().any(|l| l == format!("{name} EPERM")),
                "{what}: {name} not refused with EPERM:\n{}",
                r.stdout
            );
        }
        assert!(r.stdout.contains("pidfd_open(1) ok\n"), "{what}: {}", r.stdout);
        for fd in 3..16 {
            let line = format!("pidfd_getfd_init_{fd} EPERM");
            assert!(r.stdout.lines().any(|l| l == line), "{what}: the init's fd {fd}:\n{}", r.stdout);
        }
        // clone3 hides its flags from seccomp: it must not be available at all.
        assert!(r.stdout.lines().any(|l| l == "clone3 ENOSYS"), "{what}:\n{}", r.stdout);
    }
}

/// x86 machine code run from Python: the 32-bit `int 0x80` ABI, calling
/// i386 `unshare(CLONE_NEWUSER)` (nr 310), which the x86_64 filter cannot
/// see by number. The process must be killed, not allowed to continue.
#[cfg(target_arch = "x86_64")]
const I386_PROBE: &str = r#"
import ctypes, mmap
# push rbx; mov eax, 310; mov ebx, 0x10000000; int 0x80; pop rbx; ret
code = bytes([0x53, 0xb8, 0x36, 0x01, 0, 0, 0xbb, 0, 0, 0, 0x10, 0xcd, 0x80, 0x5b, 0xc3])
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(code)
fn = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))
print("calling", flush=True)
print("ESCAPED: i386 unshare returned", fn(), flush=True)
"#;

#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_syscall_abi_kills_the_process() {
    let s = Server::start().await;
    for user in USERS {
        let r = s
            .run_req(RunRequest {
                command: argv(&["python3", "-c", I386_PROBE]),
                user: Some(user),
                ..Default::default()
            })
            .await;
        assert_eq!(r.stdout, "calling\n", "{user:?}: {r:?}");
        assert_eq!(r.signal, Some(31), "{user:?}: expected SIGSYS: {r:?}");
    }
}

// ---------------------------------------------------------------------------
// 8-13. Resource abuse
// ---------------------------------------------------------------------------

/// Runs `fut` while counting this server's sandbox processes on the host;
/// returns its output and the most processes seen at once.
async fn with_process_count<T>(s: &Server, fut: impl std::future::Future<Output = T>) -> (T, usize) {
    let (lo, hi) = (s.id_base, s.id_base + 65_536 * MAX_SANDBOXES);
    let stop = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, max_seen) = (stop.clone(), max_seen.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = common::processes_with_uid_in(lo, hi).len();
                max_seen.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = fut.await;
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    (out, max_seen.load(Ordering::SeqCst))
}

const FORK_BOMB: &str = ":(){ :|:& };:; sleep 1000";

#[track_caller]
fn assert_bomb_contained(r: &ExecResult, max_seen: usize, elapsed: Duration, what: &str) {
    assert!(r.timed_out || r.exit_code != Some(0), "{what}: {r:?}");
    assert!(r.stderr.contains("Resource temporarily unavailable"), "{what}: the pids limit was never hit: {r:?}");
    assert!(max_seen > 16, "{what}: the bomb never ran ({max_seen} processes seen)");
    assert!(max_seen <= 64, "{what}: {max_seen} sandbox processes on the host, more than the limit of 64");
    assert!(elapsed < Duration::from_secs(30), "{what}: the run took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_is_contained_by_the_pids_limit() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    let limits = Limits { pids: Some(64), ..Default::default() };
    let started = Instant::now();
    let (r, max_seen) =
        with_process_count(&s, s.run_req(RunRequest { timeout_ms: Some(3000), ..with_limits(FORK_BOMB, limits) }))
            .await;
    assert_bomb_contained(&r, max_seen, started.elapsed(), "one-shot");
    assert_server_alive(&s).await;
    assert_no_leftovers(&s).await;

    // In a persistent sandbox each command runs in its own child cgroup:
    // the sandbox's limit still holds, and the sandbox survives the bomb.
    let id =
        s.client.create_sandbox(&CreateSandboxRequest { limits: Some(limits), ..Default::default() }).await.unwrap().id;
    let req = ExecRequest { command: bash(FORK_BOMB), timeout_ms: Some(3000), ..Default::default() };
    let started = Instant::now();
    let (r, max_seen) = with_process_count(&s, s.client.exec(&id, &req)).await;
    assert_bomb_contained(&r.unwrap(), max_seen, started.elapsed(), "persistent");
    let r = exec_as(&s, &id, RunAs::User, "echo alive").await;
    assert_eq!(r.stdout, "alive\n", "{r:?}");
    s.client.delete_sandbox(&id).await.unwrap();
    assert_server_alive(&s).await;
    assert_no_leftovers(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_oom_killed() {
    let s = Server::start().await;
    let bomb = argv(&["python3", "-c", "b = b'x' * (512 << 20)\nprint('ESCAPED: allocated', len(b))"]);
    let limits = Limits { memory_mb: Some(64), ..Default::default() };
    let oneshot = s.run_req(RunRequest { command: bomb.clone(), limits: Some(limits), ..Default::default() }).await;
    // The same in a persistent sandbox, where the command has its own cgroup
    // under the sandbox's: the sandbox's limit holds and the sandbox lives on.
    let id =
        s.client.create_sandbox(&CreateSandboxRequest { limits: Some(limits), ..Default::default() }).await.unwrap().id;
    let persistent = s.client.exec(&id, &ExecRequest { command: bomb, ..Default::default() }).await.unwrap();
    for (what, r) in [("one-shot", oneshot), ("persistent", persistent)] {
        assert!(!r.stdout.contains(ESCAPED), "{what}: {r:?}");
        assert!(r.oom_killed, "{what}: {r:?}");
        assert_eq!(r.signal, Some(9), "{what}: {r:?}");
        assert_eq!(r.exit_code, None, "{what}: {r:?}");
        assert!(!r.timed_out, "{what}");
        assert!(r.peak_memory_bytes <= 72 << 20, "{what}: peak {} above the 64 MiB limit", r.peak_memory_bytes);
    }
    assert_eq!(exec_as(&s, &id, RunAs::User, "echo alive").await.stdout, "alive\n");
    s.client.delete_sandbox(&id).await.unwrap();
    assert_server_alive(&s).await;
}

/// How many sandboxes got a finished sandbox's cgroup (`/metrics`).
async fn cgroups_reused(s: &Server) -> u64 {
    let m = s.http().get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix("superserver_sandbox_cgroups_reused_total "))
        .map(|v| v.trim().parse::<u64>().unwrap())
        .unwrap()
}

/// A finished sandbox's cgroup is given to the next sandbox: what the first
/// one did there (an OOM kill, frozen or leftover child groups, a peak)
/// must not show in the next one's results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_cgroup_carries_nothing_over() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    // A shell that grows past its 64 MiB limit, with no interpreter's page
    // cache to keep the group from being reused.
    let limits = Limits { memory_mb: Some(64), ..Default::default() };
    let bomb = "x=$(head -c 400000000 /dev/zero | tr '\\0' x); echo ESCAPED ${#x}";
    let r = s.run_req(with_limits(bomb, limits)).await;
    assert!(r.oom_killed && !r.stdout.contains(ESCAPED), "test premise: the bomb is OOM-killed: {r:?}");
    let before = cgroups_reused(&s).await;
    // The next sandbox gets that group, and a SIGKILL that is not the OOM
    // killer's is reported as just that.
    let r = s.run_req(with_limits("kill -9 $$", limits)).await;
    assert_eq!(r.signal, Some(9), "{r:?}");
    assert!(!r.oom_killed, "an earlier sandbox's OOM kill was attributed to this one: {r:?}");
    assert_eq!(cgroups_reused(&s).await, before + 1, "test premise: the second sandbox reused the first one's cgroup");
    // A persistent sandbox in a reused group gets per-command groups as usual,
    // and its own OOM kills are still seen.
    let id =
        s.client.create_sandbox(&CreateSandboxRequest { limits: Some(limits), ..Default::default() }).await.unwrap().id;
    assert_eq!(cgroups_reused(&s).await, before + 2);
    let r = exec_as(&s, &id, RunAs::User, "sleep 1000 & echo started").await;
    assert_eq!(r.stdout, "started\n", "{r:?}");
    let r = exec_as(&s, &id, RunAs::User, bomb).await;
    assert!(r.oom_killed, "{r:?}");
    s.client.delete_sandbox(&id).await.unwrap();
    assert_no_leftovers(&s).await;
}

/// The limits a live sandbox's cgroup carries on the host: memory bytes,
/// pids, CPU quota in µs per 100 ms (`None` for no quota).
fn host_limits(s: &Server) -> (u64, u64, Option<u64>) {
    let dirs = s.leftover_cgroups();
    let read = |names: &[&str]| {
        dirs.iter()
            .flat_map(|d| names.iter().map(move |n| d.join(n)))
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_else(|| panic!("none of {names:?} in {dirs:?}"))
    };
    let memory = read(&["memory.max", "memory.limit_in_bytes"]).trim().parse().unwrap();
    let pids = read(&["pids.max"]).trim().parse().unwrap();
    let cpu = read(&["cpu.max", "cpu.cfs_quota_us"]);
    let quota = cpu.split_whitespace().next().unwrap();
    (memory, pids, quota.parse().ok().filter(|q: &u64| *q as i64 > 0))
}

/// A spare cgroup takes the next sandbox's limits, whichever of them
/// differ from the last sandbox's (only those are rewritten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_cgroup_takes_the_next_sandbox_s_limits() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    let limits = |memory_mb: u64, pids: u32, cpu_percent: u32| Limits {
        memory_mb: Some(memory_mb),
        pids: Some(pids),
        cpu_percent: Some(cpu_percent),
        ..Default::default()
    };
    let mut before = None;
    // Each change alone, all at once, and none.
    for (m, p, c) in [(64, 40, 50), (96, 40, 50), (96, 64, 50), (96, 64, 150), (64, 40, 50), (64, 40, 50)] {
        let req = CreateSandboxRequest { limits: Some(limits(m, p, c)), ..Default::default() };
        let id = s.client.create_sandbox(&req).await.unwrap().id;
        let (memory, pids, quota) = host_limits(&s);
        assert_eq!((memory, pids, quota), (m << 20, u64::from(p), Some(u64::from(c) * 1000)), "limits {m}/{p}/{c}");
        assert_eq!(exec_as(&s, &id, RunAs::User, "echo alive").await.stdout, "alive\n");
        s.client.delete_sandbox(&id).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.leftover_cgroups().is_empty() {
            assert!(Instant::now() < deadline, "the sandbox's cgroup stayed busy: {:?}", s.leftover_cgroups());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        before.get_or_insert(cgroups_reused(&s).await);
    }
    assert_eq!(
        cgroups_reused(&s).await,
        before.unwrap() + 5,
        "test premise: every sandbox after the first reused its cgroup"
    );
    assert_no_leftovers(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fill_stops_at_the_limit() {
    let s = Server::start().await;
    let limits = Limits { disk_mb: Some(16), ..Default::default() };
    for dir in ["/workspace", "/tmp", "/dev/shm"] {
        let script = format!(
            "dd if=/dev/zero of={dir}/fill bs=1M count=64; echo \"dd=$?\"; echo \"size=$(stat -c %s {dir}/fill)\"; echo DONE"
        );
        let r = s.run_req(with_limits(&script, limits)).await;
        assert!(r.stdout.contains("DONE"), "{dir}: {r:?}");
        assert!(r.stderr.contains("No space left on device"), "{dir}: {r:?}");
        assert!(r.stdout.contains("dd=1\n"), "{dir}: {r:?}");
        let size: u64 = r.stdout.lines().find_map(|l| l.strip_prefix("size=")).unwrap().parse().unwrap();
        assert!(size <= 16 << 20, "{dir}: wrote {size} bytes into a 16 MiB sandbox");
    }
    // The files API refuses too.
    let id =
        s.client.create_sandbox(&CreateSandboxRequest { limits: Some(limits), ..Default::default() }).await.unwrap().id;
    let err = s.client.put_file(&id, "big.bin", vec![0u8; 32 << 20], None).await.unwrap_err();
    assert_eq!(err.code(), Some("no_space"), "{err}");
    assert_eq!(err.status(), Some(507), "{err}");
    let r = s.exec(&id, &["sh", "-c", "echo usable; df -k /workspace | tail -1"]).await;
    assert!(r.stdout.starts_with("usable\n"), "{r:?}");
    s.client.delete_sandbox(&id).await.unwrap();
    assert_server_alive(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_quota_throttles_a_busy_loop() {
    let s = Server::start().await;
    // Two busy processes for one second of wall time: unthrottled that is up
    // to two seconds of CPU on two cores; at 20 % of one core, about 0.2 s.
    let script = "timeout 1 bash -c 'while :; do :; done' & timeout 1 bash -c 'while :; do :; done' & wait; echo DONE";
    let limits = Limits { cpu_percent: Some(20), ..Default::default() };
    let (oneshot, persistent) = tokio::join!(s.run_req(with_limits(script, limits)), async {
        let id = s
            .client
            .create_sandbox(&CreateSandboxRequest { limits: Some(limits), ..Default::default() })
            .await
            .unwrap()
            .id;
        let r = exec_as(&s, &id, RunAs::User, script).await;
        s.client.delete_sandbox(&id).await.unwrap();
        r
    });
    for (what, r) in [("one-shot", oneshot), ("persistent", persistent)] {
        assert_eq!(r.exit_code, Some(0), "{what}: {r:?}");
        assert!(r.stdout.contains("DONE"), "{what}: {r:?}");
        assert!(r.duration_ms >= 1000.0, "{what}: {r:?}");
        assert!(r.cpu_ms > 0.0, "{what}: {r:?}");
        assert!(
            r.cpu_ms < 0.6 * r.duration_ms,
            "{what}: cpu {} ms in {} ms of wall time: the 20 % quota did not throttle",
            r.cpu_ms,
            r.duration_ms
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_flood_is_truncated_at_the_cap() {
    let s = Server::start().await;
    let r = s.sh("yes | head -c 10000000").await;
    assert_eq!(r.exit_code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.len(), 1_048_576);
    assert!(r.stdout.starts_with("y\ny\n"));
    assert!(r.stdout_truncated);
    assert_eq!(r.stdout_bytes, 10_000_000);
    let r = s
        .run_req(RunRequest {
            command: bash("yes | head -c 10000000"),
            max_output_bytes: Some(1000),
            ..Default::default()
        })
        .await;
    assert_eq!(r.stdout.len(), 1000);
    assert!(r.stdout_truncated);
    assert_eq!(r.stdout_bytes, 10_000_000);
    let r = s
        .run_req(RunRequest {
            command: bash("yes | head -c 10000000 >&2; echo out"),
            max_output_bytes: Some(1000),
            ..Default::default()
        })
        .await;
    assert_eq!(r.stderr.len(), 1000);
    assert!(r.stderr_truncated);
    assert_eq!(r.stderr_bytes, 10_000_000);
    assert_eq!(r.stdout, "out\n");
    assert!(!r.stdout_truncated);
    assert_server_alive(&s).await;
}

const DAEMONS: &str = "setsid sh -c 'sleep 1000' & nohup sleep 1000 >/dev/null 2>&1 & \
     (trap '' TERM HUP; setsid sleep 1000 &) ; sleep 1000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_daemonized_children() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    let started = Instant::now();
    let r = s.run_req(RunRequest { command: bash(DAEMONS), timeout_ms: Some(500), ..Default::default() }).await;
    assert!(r.timed_out, "{r:?}");
    assert_eq!(r.signal, Some(9), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_no_leftovers(&s).await;

    // In a persistent sandbox the timed-out command's daemons go too.
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    let started = Instant::now();
    let req = ExecRequest { command: bash(DAEMONS), timeout_ms: Some(500), ..Default::default() };
    let r = s.client.exec(&id, &req).await.unwrap();
    assert!(r.timed_out, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    // Killed processes may linger a moment as zombies before the init reaps them.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ps = s.exec(&id, &["ps", "-eo", "args"]).await;
        assert!(ps.stdout.contains("ps -eo args"), "{ps:?}");
        if !ps.stdout.contains("sleep") {
            break;
        }
        assert!(Instant::now() < deadline, "daemons survived the timeout:\n{}", ps.stdout);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.client.delete_sandbox(&id).await.unwrap();
    assert_no_leftovers(&s).await;
}

// ---------------------------------------------------------------------------
// 14. Sandboxes against each other
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_cannot_see_each_other() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    let tok = token();
    let a = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    let b = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    let plant = format!(
        r#"echo {tok} > /workspace/secret-{tok}.txt; echo {tok} > /tmp/secret-{tok}; echo {tok} > /dev/shm/secret-{tok}
nohup sleep 31337 >/dev/null 2>&1 &
nohup python3 -c "import socket, time; s = socket.socket(socket.AF_UNIX); s.bind('\0secret-{tok}'); s.listen(); time.sleep(1000)" >/dev/null 2>&1 &
ipcmk -M 4096 >/dev/null
echo planted"#
    );
    let r = exec_as(&s, &a, RunAs::User, &plant).await;
    assert_eq!(r.stdout, "planted\n", "{r:?}");
    // Premise: A itself sees everything it planted.
    let check = "ps -eo args; ls -A /workspace /tmp /dev/shm; ipcs -m; cat /proc/net/unix";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = exec_as(&s, &a, RunAs::User, check).await.stdout;
        if seen.contains("sleep 31337") && seen.contains(&format!("@secret-{tok}")) && seen.contains("sandbox") {
            assert!(seen.contains(&format!("secret-{tok}.txt")), "{seen}");
            break;
        }
        assert!(Instant::now() < deadline, "A's plants never showed up in A:\n{seen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // B looks everywhere. The token reaches B only through its environment,
    // so nothing in B's own command lines can match.
    let look = r#"
echo "== ls"; ls -A /workspace /tmp /dev/shm
echo "== ps"; ps -eo pid,args
echo "== cmdlines"; for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f"; echo; done
echo "== find"; find / \( -path /proc -o -path /usr \) -prune -o -name 'secret*' -print 2>/dev/null
echo "== grep"; grep -rls -e "$TOKEN" /workspace /tmp /dev/shm /etc /root 2>/dev/null
echo "== ipcs"; ipcs -m
echo "== unix"; cat /proc/net/unix
echo "== connect"
python3 -c "
import os, socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('\0secret-' + os.environ['TOKEN'])
    print(os.environ['MARK'] + ': reached the socket of A')
except OSError as e:
    print('refused', e.errno)
"
echo "== end"
echo DONE
"#;
    for user in USERS {
        let req = ExecRequest {
            command: bash(look),
            user: Some(user),
            env: env(&[("TOKEN", &tok), ("MARK", ESCAPED)]),
            ..Default::default()
        };
        let r = s.client.exec(&b, &req).await.unwrap();
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        assert!(!r.stdout.contains(&tok), "{what}: B saw A's token:\n{}", r.stdout);
        assert!(!r.stdout.contains("31337"), "{what}: B saw A's process:\n{}", r.stdout);
        assert!(section(&r.stdout, "find").is_empty(), "{what}: {}", r.stdout);
        assert!(section(&r.stdout, "grep").is_empty(), "{what}: {}", r.stdout);
        assert!(
            !section(&r.stdout, "ipcs").iter().any(|l| l.starts_with("0x")),
            "{what}: A's shm visible:\n{}",
            r.stdout
        );
        assert_eq!(section(&r.stdout, "connect"), ["refused 111"], "{what}");
    }
    // And B's files are not A's either.
    let r = exec_as(&s, &b, RunAs::User, "echo b-only > /workspace/b.txt; echo DONE").await;
    assert!(r.stdout.contains("DONE"));
    let r = exec_as(&s, &a, RunAs::User, "ls -A /workspace; echo DONE").await;
    assert_eq!(r.stdout, format!("secret-{tok}.txt\nDONE\n"));
    for id in [a, b] {
        s.client.delete_sandbox(&id).await.unwrap();
    }
    s.assert_no_sandbox_leftovers(false).await;
    // Cgroups of deleted sandboxes have their own test
    // (`deleting_a_sandbox_with_daemons_removes_its_cgroups`); only tidy up here.
    remove_leftover_cgroups(&s, Duration::from_secs(2)).await;
}

// ---------------------------------------------------------------------------
// 15. Privilege
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_have_no_privileges() {
    let s = Server::start().await;
    let script = format!(
        "{ATTEMPT}{}",
        r#"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
echo "usr-mount: $(awk '$5 == "/usr" {print $6}' /proc/self/mountinfo)"
if [ "$(id -u)" = 1000 ]; then
  attempt 'su root -c "id -u" < /dev/null'
  attempt 'sudo -n id'
  attempt 'setpriv --reuid=0 --regid=0 --clear-groups id -u'
  attempt 'python3 -c "import os; os.setuid(0)"'
  attempt 'python3 -c "import os; os.setgroups([0])"'
fi
attempt 'python3 -c "import os; os.setresuid(5000, 5000, 5000)"'
# Owner and mount would allow this write; only landlock stands in the way.
attempt 'echo renamed > /proc/self/comm'
echo DONE
"#
    );
    for user in USERS {
        let r = s.run_req(run_as(user, &script)).await;
        let what = format!("{user:?}");
        assert_contained(&r, &what);
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert!(r.stdout.contains(&format!("{cap}:\t0000000000000000\n")), "{what} {cap}:\n{}", r.stdout);
        }
        assert!(r.stdout.contains("NoNewPrivs:\t1\n"), "{what}:\n{}", r.stdout);
        assert!(r.stdout.contains("Seccomp:\t2\n"), "{what}:\n{}", r.stdout);
        let usr = r.stdout.lines().find_map(|l| l.strip_prefix("usr-mount: ")).unwrap();
        assert!(
            usr.split(',').any(|o| o == "nosuid") && usr.split(',').any(|o| o == "ro"),
            "{what}: /usr mounted {usr}"
        );
        // Even root inside cannot switch to an arbitrary uid: no CAP_SETUID.
        let e = refusal(&r.stdout, r#"python3 -c "import os; os.setresuid(5000, 5000, 5000)""#);
        assert!(e.contains("PermissionError"), "{what}: {e}");
        let e = refusal(&r.stdout, "echo renamed > /proc/self/comm");
        assert!(e.contains("Permission denied"), "{what}: landlock is not confining writes: {e}");
        if user == RunAs::User {
            for a in [
                r#"su root -c "id -u" < /dev/null"#,
                "sudo -n id",
                "setpriv --reuid=0 --regid=0 --clear-groups id -u",
                r#"python3 -c "import os; os.setuid(0)""#,
                r#"python3 -c "import os; os.setgroups([0])""#,
            ] {
                let e = refusal(&r.stdout, a);
                assert!(!e.is_empty(), "{a} failed silently");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setuid_binaries_do_not_raise_privilege() {
    let s = Server::start().await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    // Root inside plants setuid-root copies of an interpreter where the
    // sandbox can write and execute.
    let r = exec_as(
        &s,
        &id,
        RunAs::Root,
        "for d in /tmp /dev/shm; do cp /usr/bin/python3 $d/py-suid && chmod 4755 $d/py-suid && stat -c '%A %u' $d/py-suid; done",
    )
    .await;
    assert_eq!(r.stdout, "-rwsr-xr-x 0\n-rwsr-xr-x 0\n", "{r:?}");
    let probe = "import os; print('ids', os.getuid(), os.geteuid(), os.getresuid())";
    for d in ["/tmp", "/dev/shm"] {
        let r = exec_as(&s, &id, RunAs::User, &format!("{d}/py-suid -c \"{probe}\"; echo DONE")).await;
        assert_eq!(r.stdout, "ids 1000 1000 (1000, 1000, 1000)\nDONE\n", "{d}: {r:?}");
    }
    // The host's own setuid programs run without privilege too.
    let r = exec_as(
        &s,
        &id,
        RunAs::User,
        "test -u /usr/bin/passwd && echo suid-bit-present; /usr/bin/passwd -S root 2>&1; echo \"rc=$?\"; echo DONE",
    )
    .await;
    assert!(r.stdout.contains("suid-bit-present"), "test premise: /usr/bin/passwd is setuid: {r:?}");
    assert!(!r.stdout.contains("root P ") && !r.stdout.contains("root L "), "passwd read root's status: {r:?}");
    assert!(!r.stdout.contains("rc=0\n"), "{r:?}");
    s.client.delete_sandbox(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_root_is_an_unprivileged_host_uid() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    exec_as(&s, &id, RunAs::Root, "nohup sleep 31338 >/dev/null 2>&1 & echo started").await;
    exec_as(&s, &id, RunAs::User, "nohup sleep 31339 >/dev/null 2>&1 & echo started").await;
    let find = |arg: &str| -> Option<String> {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if cmdline == format!("sleep\0{arg}\0").as_bytes() {
                return std::fs::read_to_string(e.path().join("status")).ok();
            }
        }
        None
    };
    let field = |status: &str, key: &str| -> Vec<u64> {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line[key.len()..]
            .split_whitespace()
            .map(|v| u64::from_str_radix(v, if key.starts_with("Cap") { 16 } else { 10 }).unwrap())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let (root, user) = loop {
        if let (Some(r), Some(u)) = (find("31338"), find("31339")) {
            break (r, u);
        }
        assert!(Instant::now() < deadline, "the sandbox's sleeps never showed up on the host");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let range = u64::from(s.id_base)..u64::from(s.id_base) + 65_536 * u64::from(MAX_SANDBOXES);
    let root_uids = field(&root, "Uid:");
    let user_uids = field(&user, "Uid:");
    for uid in root_uids.iter().chain(&user_uids).chain(&field(&root, "Gid:")) {
        assert!(*uid != 0 && range.contains(uid), "sandbox id {uid} outside {range:?}");
    }
    assert_eq!(user_uids[0], root_uids[0] + 1000, "uid 1000 inside maps next to the sandbox's root");
    for cap in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(field(&root, cap), [0], "sandbox root holds {cap} on the host");
    }
    s.client.delete_sandbox(&id).await.unwrap();
    s.assert_no_sandbox_leftovers(false).await;
    // Cgroups have their own test below; only tidy up here.
    remove_leftover_cgroups(&s, Duration::from_secs(2)).await;
}

/// Background processes a command leaves in a persistent sandbox keep that
/// command's cgroup alive; deleting the sandbox must still kill them and
/// remove the command's group, leaving at most the sandbox's own group,
/// empty, for the next sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_sandbox_with_daemons_removes_its_cgroups() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    let r = exec_as(&s, &id, RunAs::User, "nohup sleep 1000 >/dev/null 2>&1 & echo started").await;
    assert_eq!(r.stdout, "started\n", "{r:?}");
    assert!(!s.leftover_cgroups().is_empty(), "test premise: the sandbox has cgroups with processes");
    s.client.delete_sandbox(&id).await.unwrap();
    assert_no_leftovers(&s).await;
}

// ---------------------------------------------------------------------------
// The files API as an attack surface
// ---------------------------------------------------------------------------

/// Plants FIFOs at `/workspace/pipe` and `/tmp/pipe` in sandbox `id`.
async fn plant_fifos(s: &Server, id: &str) {
    let r = exec_as(s, id, RunAs::User, "mkfifo /workspace/pipe /tmp/pipe && echo planted").await;
    assert_eq!(r.stdout, "planted\n", "{r:?}");
}

/// A FIFO planted by the sandbox must not wedge its init: the files API
/// answers (with an error), and later commands still run and time out.
/// Returns what went wrong, so the caller can clean up before failing.
async fn fifo_wedges_the_sandbox(s: &Server, id: &str, op: &str) -> Option<String> {
    plant_fifos(s, id).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        match op {
            "get" => s.client.get_file(id, "pipe").await.map(|_| ()),
            _ => s.client.put_file(id, "/tmp/pipe", b"data".to_vec(), None).await.map(|_| ()),
        }
    })
    .await;
    let Ok(answer) = answer else {
        return Some(format!(
            "{op} of a FIFO planted by the sandbox got no answer in 10 s: the sandbox's init blocks in open(2) \
             on the FIFO, and stops serving execs and enforcing timeouts"
        ));
    };
    match answer {
        Ok(()) => return Some(format!("{op} of a FIFO succeeded; a FIFO is not a regular file")),
        Err(e) if e.status().is_none() => return Some(format!("{op} of a FIFO: {e}")),
        Err(_) => {}
    }
    let req = ExecRequest { command: argv(&["sleep", "100"]), timeout_ms: Some(500), ..Default::default() };
    match tokio::time::timeout(Duration::from_secs(10), s.client.exec(id, &req)).await {
        Ok(Ok(r)) if r.timed_out => None,
        Ok(r) => Some(format!("after the FIFO, a command with a 500 ms timeout gave {r:?}")),
        Err(_) => Some("after the FIFO, a command with a 500 ms timeout got no answer in 10 s".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_api_get_of_a_planted_fifo_does_not_hang() {
    let s = Server::start().await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    let problem = fifo_wedges_the_sandbox(&s, &id, "get").await;
    // Deleting kills the init from outside, wedged or not.
    s.client.delete_sandbox(&id).await.unwrap();
    assert!(problem.is_none(), "{}", problem.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_api_put_onto_a_planted_fifo_does_not_hang() {
    let s = Server::start().await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    let problem = fifo_wedges_the_sandbox(&s, &id, "put").await;
    s.client.delete_sandbox(&id).await.unwrap();
    assert!(problem.is_none(), "{}", problem.unwrap_or_default());
}

/// `kill -9` of the server must take every sandbox process with it, even
/// when the sandbox has wedged its init (here with a FIFO and the files API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_processes_do_not_outlive_a_killed_server() {
    let mut s = Server::start_with("[pool]\nsize = 0").await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    plant_fifos(&s, &id).await;
    exec_as(&s, &id, RunAs::User, "nohup sleep 31341 >/dev/null 2>&1 & echo started").await;
    // A download of the FIFO, left pending.
    let client = superserver_client::Client::new(&s.url).unwrap();
    let pending_id = id.clone();
    let pending = tokio::spawn(async move { client.get_file(&pending_id, "pipe").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!s.sandbox_processes().is_empty());
    s.kill9();
    let deadline = Instant::now() + Duration::from_secs(10);
    let survivors = loop {
        let left = s.sandbox_processes();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    pending.abort();
    // Clean up what survived (they are this test's processes), then let a
    // restart of the server on the same data directory clear its cgroups.
    for (pid, _) in &survivors {
        let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
    }
    s.spawn().await;
    s.stop().await;
    // The stop was graceful: whatever it left behind stays.
    let cgroups = remove_leftover_cgroups(&s, Duration::from_secs(5)).await;
    assert!(
        survivors.is_empty(),
        "sandbox processes outlived the killed server by 10 s (the init has no working parent-death \
         signal and never sees its control socket close): {survivors:?}"
    );
    assert!(cgroups.is_empty(), "cgroups left after a restart and stop (now removed by the test): {cgroups:?}");
    s.assert_no_sandbox_leftovers(true).await;
}

// ---------------------------------------------------------------------------
// 16. Everything at once, then a clean stop
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_attacks_leave_nothing_behind_after_stop() {
    let mut s = Server::start_with("[pool]\nsize = 0").await;
    let small = Limits { memory_mb: Some(64), pids: Some(64), disk_mb: Some(16), cpu_percent: Some(50) };
    // A persistent sandbox left running with daemons and a fork bomb inside.
    let id =
        s.client.create_sandbox(&CreateSandboxRequest { limits: Some(small), ..Default::default() }).await.unwrap().id;
    let r = exec_as(
        &s,
        &id,
        RunAs::User,
        "setsid sh -c 'sleep 1000' & nohup sleep 1000 >/dev/null 2>&1 & \
         (bomb() { bomb | bomb & }; bomb) >/dev/null 2>&1 & echo started",
    )
    .await;
    assert!(r.stdout.contains("started"), "{r:?}");
    let oneshots = async {
        tokio::join!(
            s.run_req(RunRequest {
                command: argv(&["python3", "-c", "b = b'x' * (512 << 20)"]),
                limits: Some(small),
                ..Default::default()
            }),
            s.run_req(RunRequest { command: bash(DAEMONS), timeout_ms: Some(500), ..Default::default() }),
            s.run_req(with_limits(
                "dd if=/dev/zero of=/workspace/f bs=1M count=64; dd if=/dev/zero of=/tmp/f bs=1M count=64",
                small
            )),
            s.sh("yes | head -c 10000000"),
            s.run_req(RunRequest { timeout_ms: Some(1500), ..with_limits(FORK_BOMB, small) }),
        )
    };
    let (mem, daemons, disk, flood, bomb) = oneshots.await;
    assert!(mem.oom_killed, "{mem:?}");
    assert!(daemons.timed_out, "{daemons:?}");
    assert!(disk.stderr.contains("No space left on device"), "{disk:?}");
    assert!(flood.stdout_truncated, "{flood:?}");
    assert!(bomb.timed_out || bomb.exit_code != Some(0), "{bomb:?}");
    let left = s.sandbox_processes();
    assert!(left.iter().any(|(_, c)| c == "sleep"), "the persistent sandbox's daemons should still run: {left:?}");
    assert!(!s.host_cgroups().is_empty());
    s.stop().await;
    assert_no_leftovers(&s).await;
}
