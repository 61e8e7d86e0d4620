//! Discovery against the real Docker engine: two containers of a tiny image
//! built locally (no registry) from Debian's static busybox, with compose
//! labels, on a user-defined network. Needs a Docker engine and
//! `/bin/busybox` from `busybox-static` (installed by `scripts/test`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use superserver_ops::{diff, discover, ChangeKind, EdgeKind, Options, Proto, ServiceKind, Snapshot};

const BUSYBOX: &str = "/bin/busybox";

/// Runs `docker ARGS`, returning trimmed stdout, failing with stderr.
fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker").args(args).stdin(Stdio::null()).output().context("running docker")?;
    if !out.status.success() {
        bail!("docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Everything the test creates, removed on drop.
struct Fixture {
    tag: String,
    network: String,
    web: String,
    api: String,
    project: String,
}

impl Fixture {
    fn new() -> Result<Self> {
        if let Err(e) = docker(&["info", "--format", "{{.ServerVersion}}"]) {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            panic!("Docker engine unavailable{}: {e:#}", if ci { " in CI" } else { "" });
        }
        check_static_busybox()?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let uniq = format!("{}-{}", std::process::id(), nanos % 1_000_000_000);
        Ok(Self {
            tag: format!("sstest-busybox:{uniq}"),
            network: format!("sstest-net-{uniq}"),
            web: format!("sstest-{uniq}-web"),
            api: format!("sstest-{uniq}-api"),
            project: format!("sstest-{uniq}"),
        })
    }

    /// `docker import` of a tarball holding only `/bin/busybox`.
    fn build_image(&self) -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("bin"))?;
        std::fs::copy(BUSYBOX, dir.path().join("bin/busybox"))?;
        let tar = dir.path().join("rootfs.tar");
        let status = Command::new("tar")
            .args(["-C", &dir.path().to_string_lossy(), "-cf", &tar.to_string_lossy(), "bin"])
            .status()?;
        ensure!(status.success(), "tar failed");
        docker(&[
            "import",
            "--change",
            r#"CMD ["/bin/busybox","httpd","-f","-p","8080"]"#,
            &tar.to_string_lossy(),
            &self.tag,
        ])?;
        Ok(())
    }

    fn run(&self, name: &str, service: &str, extra: &[&str]) -> Result<String> {
        let project = format!("com.docker.compose.project={}", self.project);
        let svc = format!("com.docker.compose.service={service}");
        let mut args =
            vec!["run", "-d", "--name", name, "--network", &self.network, "--label", &project, "--label", &svc];
        args.extend_from_slice(extra);
        args.push(&self.tag);
        docker(&args)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
        };
        quiet(&["rm", "-f", "-v", &self.web, &self.api]);
        quiet(&["network", "rm", &self.network]);
        quiet(&["image", "rm", "-f", &self.tag]);
    }
}

/// `/bin/busybox` must exist and be a static ELF (no `PT_INTERP` header).
fn check_static_busybox() -> Result<()> {
    let elf = std::fs::read(Path::new(BUSYBOX))
        .with_context(|| format!("{BUSYBOX} missing: run scripts/test (it installs busybox-static)"))?;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    ensure!(elf.starts_with(b"\x7fELF\x02\x01"), "{BUSYBOX} is not a 64-bit little-endian ELF");
    let phoff = elf.get(0x20..0x28).context("short ELF")?;
    let phoff = u64::from_le_bytes(phoff.try_into()?) as usize;
    let (phentsize, phnum) = (u16_at(0x36).context("short ELF")?, u16_at(0x38).context("short ELF")?);
    for i in 0..phnum {
        let p_type = elf.get(phoff + i * phentsize..phoff + i * phentsize + 4).context("short ELF")?;
        ensure!(
            u32::from_le_bytes(p_type.try_into()?) != 3,
            "{BUSYBOX} is dynamically linked: run scripts/test (it installs busybox-static)"
        );
    }
    Ok(())
}

fn service<'a>(snap: &'a Snapshot, id: &str) -> Result<&'a superserver_ops::Service> {
    snap.services.iter().find(|s| s.id == id).with_context(|| format!("{id} not discovered: {:#?}", snap.services))
}

#[tokio::test(flavor = "multi_thread")]
async fn discovers_compose_containers_and_reports_changes() -> Result<()> {
    let fx = Fixture::new()?;
    fx.build_image()?;
    docker(&["network", "create", &fx.network])?;
    let web_id = fx.run(&fx.web, "web", &["-p", "127.0.0.1::8080"])?;
    fx.run(&fx.api, "api", &["--label", "com.docker.compose.depends_on=web:service_started:false"])?;

    let opts = Options::default();
    let started = std::time::Instant::now();
    let snap = discover(&opts).await;
    println!("discover() with the test containers took {:?}; notes: {:?}", started.elapsed(), snap.notes);
    let web = service(&snap, &format!("container:{}", fx.web))?;
    println!("web: {}", serde_json::to_string_pretty(web)?);
    println!("edges: {}", serde_json::to_string_pretty(&snap.edges)?);
    let api = service(&snap, &format!("container:{}", fx.api))?;
    assert_eq!(web.kind, ServiceKind::Container);
    let wc = web.container.as_ref().context("container info")?;
    assert_eq!(wc.id, web_id);
    assert_eq!(wc.state, "running");
    assert_eq!(wc.image, fx.tag);
    assert!(wc.image_id.starts_with("sha256:"));
    assert_eq!(wc.image_digest, wc.image_id, "a local image has no repo digest");
    assert!(wc.started_at.is_some());
    assert_eq!(wc.restart_count, 0);
    assert!(wc.networks.iter().any(|n| n.name == fx.network && n.ip.is_some()), "{:?}", wc.networks);
    assert_eq!(wc.labels.get("com.docker.compose.service").map(String::as_str), Some("web"));
    let compose = wc.compose.as_ref().context("compose info")?;
    assert_eq!((compose.project.as_str(), compose.service.as_str()), (fx.project.as_str(), "web"));
    let published = wc
        .ports
        .iter()
        .find(|p| p.port == 8080 && p.host_port.is_some())
        .with_context(|| format!("8080 not published: {:?}", wc.ports))?;
    assert_eq!(published.host_ip.as_deref(), Some("127.0.0.1"));
    let host_port = published.host_port.context("host port")?;

    // Host processes of the container are folded into it: busybox httpd,
    // listening on 8080 in the container's network namespace.
    assert!(!web.pids.is_empty(), "no pids for web");
    assert!(web.processes.iter().any(|p| p.cmdline.iter().any(|a| a == "httpd")), "{:?}", web.processes);
    assert!(web.processes.iter().all(|p| p.container_id.as_deref() == Some(wc.id.as_str())
        || p.exe.as_deref().is_some_and(|e| e.ends_with("docker-proxy"))));
    assert!(web.ports.iter().any(|p| p.port == 8080 && p.proto == Proto::Tcp), "{:?}", web.ports);
    assert!(web.ports.iter().any(|p| p.port == host_port && p.address == "127.0.0.1"), "{:?}", web.ports);
    assert!(!snap.services.iter().any(|s| s.id.starts_with("process:docker-proxy")), "docker-proxy not folded");

    let ac = api.container.as_ref().context("api container info")?;
    assert!(ac.ports.is_empty(), "api publishes nothing and the image exposes nothing: {:?}", ac.ports);
    let api_compose = ac.compose.as_ref().context("api compose")?;
    assert_eq!(api_compose.service, "api");
    assert_eq!(api_compose.depends_on.len(), 1);
    assert_eq!(api_compose.depends_on[0].service, "web");
    assert_eq!(api_compose.depends_on[0].condition, "service_started");
    assert!(!api_compose.depends_on[0].restart);

    let (a, w) = (api.id.as_str(), web.id.as_str());
    let (lo, hi) = if a < w { (a, w) } else { (w, a) };
    assert!(
        snap.edges.iter().any(|e| e.kind == EdgeKind::Network && e.from == lo && e.to == hi && e.detail == fx.network),
        "no network edge: {:?}",
        snap.edges
    );
    assert!(
        snap.edges.iter().any(|e| e.kind == EdgeKind::DependsOn && e.from == a && e.to == w),
        "no depends_on edge: {:?}",
        snap.edges
    );

    // A connection from api to web across the network: a tcp edge between
    // two containers' network namespaces.
    let nc = format!("/bin/busybox sleep 60 | /bin/busybox nc {} 8080", fx.web);
    docker(&["exec", "-d", &fx.api, "/bin/busybox", "sh", "-c", &nc])?;
    let mut tcp = None;
    for _ in 0..50 {
        let s = discover(&opts).await;
        tcp = s.edges.iter().find(|e| e.kind == EdgeKind::Tcp && e.from == a && e.to == w).cloned();
        if tcp.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let tcp = tcp.context("no tcp edge api -> web after 5 s")?;
    assert_eq!((tcp.detail.as_str(), tcp.count), ("8080", 1));

    // Stop api: its state changes; remove it: it is gone.
    docker(&["stop", "-t", "1", &fx.api])?;
    let stopped = discover(&opts).await;
    let changes = diff(&snap, &stopped);
    let mine: Vec<_> = changes.iter().filter(|c| c.service == api.id).collect();
    assert!(
        mine.iter().any(|c| c.kind == ChangeKind::StateChanged
            && c.before.as_deref() == Some("running")
            && c.after.as_deref() == Some("exited")),
        "changes {changes:?}"
    );
    assert!(!changes.iter().any(|c| c.service == web.id), "web did not change: {changes:?}");
    docker(&["rm", &fx.api])?;
    let removed = discover(&opts).await;
    let changes = diff(&stopped, &removed);
    assert!(changes.iter().any(|c| c.kind == ChangeKind::Gone && c.service == api.id), "changes {changes:?}");
    Ok(())
}
