//! Peers on the same host: plain fork+exec (the floor), bubblewrap, Docker.

use crate::api::Bounds;
use crate::peers::{self, BWRAP_ARGS, DOCKER_IMAGE};
use crate::report::Report;
use crate::stats::{ms, ratio, Samples, Summary};

use super::{PeerFigures, Plan, DOCKER_ONESHOT_ANCHOR_MS};

fn measure(b: Bounds, f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Option<Summary>> {
    peers::time_loop(b.n, b.warmup, b.budget, f).map(|s: Samples| s.summary())
}

pub fn run(plan: &Plan, report: &mut Report) -> PeerFigures {
    let mut out = PeerFigures::default();

    match measure(plan.fork, || peers::run_quiet("/bin/true", &[])) {
        Ok(Some(s)) => {
            report.info(
                "fork+exec /bin/true (floor)",
                s.line(),
                "std::process::Command, status() per iteration".into(),
            );
            out.fork = Some(s);
        }
        Ok(None) => report.skipped("fork+exec /bin/true (floor)", "no iteration within the time budget".into()),
        Err(e) => report.skipped("fork+exec /bin/true (floor)", format!("failed: {e:#}")),
    }

    match peers::on_path("bwrap") {
        None => {
            report.skipped("bwrap --unshare-all … true", "bwrap is not installed (scripts/bench installs it)".into())
        }
        Some(_) => match measure(plan.bwrap, || peers::run_quiet("bwrap", BWRAP_ARGS)) {
            Ok(Some(s)) => {
                let vs_fork = out.fork.map(|f| format!("; {} fork+exec p50", ratio(s.p50, f.p50))).unwrap_or_default();
                report.info(
                    "bwrap --unshare-all … true",
                    s.line(),
                    format!("new namespaces + mounts per run{vs_fork}"),
                );
                out.bwrap = Some(s);
            }
            Ok(None) => report.skipped("bwrap --unshare-all … true", "no iteration within the time budget".into()),
            Err(e) => report.skipped("bwrap --unshare-all … true", format!("failed: {e:#}")),
        },
    }

    if !plan.docker_enabled {
        report.skipped("docker run --rm (busybox true)", "disabled with --no-docker".into());
        return out;
    }
    let docker = peers::docker_ready().and_then(|version| {
        peers::docker_build_image()?;
        Ok(version)
    });
    match docker {
        Err(e) => report.skipped("docker run --rm (busybox true)", format!("{e:#}")),
        Ok(version) => match measure(plan.docker, peers::docker_run_true) {
            Ok(Some(s)) => {
                report.info(
                    "docker run --rm (busybox true)",
                    s.line(),
                    format!(
                        "engine {version}, local image {DOCKER_IMAGE} (docker import, no registry); anchor Docker one-shot ~{} → measured {}",
                        ms(DOCKER_ONESHOT_ANCHOR_MS),
                        ms(s.p50)
                    ),
                );
                out.docker = Some(s);
            }
            Ok(None) => report.skipped("docker run --rm (busybox true)", "no iteration within the time budget".into()),
            Err(e) => report.skipped("docker run --rm (busybox true)", format!("failed: {e:#}")),
        },
    }
    out
}
