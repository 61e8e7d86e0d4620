//! Docker for the monitoring tests: the `FROM scratch` test-service image,
//! built here from `crates/testsvc`, and containers removed when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The test service's image tag.
pub const TESTSVC_IMAGE: &str = "superserver-testsvc:test";

/// Label on every container the tests start, so a crashed test's leftovers
/// can be found (`docker ps -a --filter label=superserver.test`).
pub const TEST_LABEL: &str = "superserver.test";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Fails loudly when the Docker engine is not there: these tests never skip.
pub fn require_docker() {
    let ok = Command::new("docker").arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        matches!(ok, Ok(s) if s.success()),
        "these tests need a running Docker engine and the docker CLI (they run against the real engine)"
    );
}

/// Builds the test-service image once per test process; across processes a
/// file lock serializes the builds (cargo and docker are both idempotent).
pub fn testsvc_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        require_docker();
        let root = workspace();
        let target = root.join("target/testsvc");
        std::fs::create_dir_all(&target).unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let script = format!(
            "set -e
             RUSTFLAGS='-C target-feature=+crt-static' '{cargo}' build -q --release -p superserver-testsvc \
                 --target x86_64-unknown-linux-gnu --target-dir '{t}'
             ctx=$(mktemp -d)
             cp '{t}/x86_64-unknown-linux-gnu/release/superserver-testsvc' \"$ctx/\"
             cp '{root}/crates/testsvc/Dockerfile' \"$ctx/\"
             docker build -q -t {TESTSVC_IMAGE} \"$ctx\" >/dev/null
             rm -rf \"$ctx\"",
            t = target.display(),
            root = root.display(),
        );
        let status = Command::new("flock")
            .arg(target.join("build.lock"))
            .args(["sh", "-c", &script])
            .current_dir(&root)
            .status()
            .expect("flock (util-linux) runs");
        assert!(status.success(), "building the test-service image failed");
    });
    TESTSVC_IMAGE
}

/// A container of the test image, force-removed when dropped.
pub struct Container {
    pub name: String,
    pub id: String,
}

impl Container {
    /// `docker run -d --name NAME --label superserver.test=1 ARGS… IMAGE`:
    /// `args` go before the image (`-e`, `-p`, `--label`, `--restart` …).
    pub fn run(name: &str, args: &[&str]) -> Self {
        let image = testsvc_image();
        let _ = Command::new("docker").args(["rm", "-f", name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let out = Command::new("docker")
            .args(["run", "-d", "--name", name, "--label", &format!("{TEST_LABEL}=1")])
            .args(args)
            .arg(image)
            .output()
            .expect("docker runs");
        assert!(out.status.success(), "docker run {name}: {}", String::from_utf8_lossy(&out.stderr));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Self { name: name.to_string(), id }
    }

    /// `docker <verb…> NAME`, asserting success (`stop -t 1`, `start`, `restart`, `kill` …).
    /// The test service ignores SIGTERM as PID 1, so a plain `stop` waits 10 s.
    pub fn docker(&self, verb: &str) {
        let out = Command::new("docker").args(verb.split_whitespace()).arg(&self.name).output().expect("docker runs");
        assert!(out.status.success(), "docker {verb} {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
    }

    /// The container's address on the default bridge network.
    pub fn ip(&self) -> String {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", &self.name])
            .output()
            .expect("docker runs");
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ =
            Command::new("docker").args(["rm", "-f", &self.name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}
