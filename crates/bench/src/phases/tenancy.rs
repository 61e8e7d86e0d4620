//! What authentication, quota checks and metering add to `POST /v1/run`:
//! the same loop against a server with authentication off (every loopback
//! caller is the admin, on the unlimited enterprise plan: no key lookup, no
//! rate limit, quota checks that find nothing to count against) and one
//! with it on (a member key of a tenant on the `team` plan: the key looked
//! up and compared, the rate limiter, quota reservations and accounting,
//! usage columns in the execution's record). Two rounds each, alternating,
//! so drift of the machine lands on both sides.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use superserver_client::Client;
use superserver_wire::{CreateKeyRequest, CreateTenantRequest, PlanOverrides, Role};

use super::{spec, Plan, TENANCY_OVERHEAD_TARGET_MS};
use crate::api;
use crate::report::{Report, Verdict};
use crate::server::Server;
use crate::stats::Samples;

const ROUNDS: usize = 2;

pub async fn run(bin: &Path, plan: &Plan, report: &mut Report) -> Result<()> {
    let mut off = Samples::default();
    let mut on = Samples::default();
    let mut on_sandbox = Samples::default();
    let mut off_sandbox = Samples::default();
    for round in 0..ROUNDS {
        for auth in [false, true] {
            let spec = super::ServerSpec { auth, ..spec(4, super::warm::DEFAULT_POOL, super::warm::DEFAULT_PARALLEL) };
            let server = Server::start(bin, &spec).await?;
            server.wait_pool_settled(Duration::from_secs(60)).await?;
            let client = if auth { tenant_client(&server).await? } else { server.client.clone() };
            tokio::time::sleep(Duration::from_millis(500)).await;
            let t = api::run_latency(&client, plan.run).await?;
            let (all, in_sb) = if auth { (&mut on, &mut on_sandbox) } else { (&mut off, &mut off_sandbox) };
            all.extend(&t.client);
            in_sb.extend(&t.in_sandbox);
            if let Some(s) = t.client.summary() {
                println!("   round {}, auth {}: {}", round + 1, if auth { "on " } else { "off" }, s.line());
            }
            server.stop(report).await?;
        }
    }
    let (Some(a), Some(b)) = (off.summary(), on.summary()) else {
        report.skipped("auth + quotas + metering overhead", "no iteration within the time budget".into());
        return Ok(());
    };
    let (sa, sb) = (off_sandbox.summary(), on_sandbox.summary());
    let delta = b.p50 - a.p50;
    report.add(
        "auth + quotas + metering, added to POST /v1/run p50",
        format!("{delta:+.2} ms"),
        &format!("≤ {TENANCY_OVERHEAD_TARGET_MS:.2} ms"),
        Verdict::of(delta <= TENANCY_OVERHEAD_TARGET_MS),
        format!(
            "p50 {:.2} ms with (member key, team plan) vs {:.2} ms without (auth off); p99 {:.2} vs {:.2} ms; \
             command in sandbox p50 {:.2} vs {:.2} ms; {} + {} runs over {ROUNDS} alternating rounds",
            b.p50,
            a.p50,
            b.p99,
            a.p99,
            sb.map_or(0.0, |s| s.p50),
            sa.map_or(0.0, |s| s.p50),
            on.len(),
            off.len()
        ),
    );
    Ok(())
}

/// A member key of a new tenant on the `team` plan, with a request rate no
/// benchmark loop reaches (the quotas stay as the plan has them).
async fn tenant_client(server: &Server) -> Result<Client> {
    let overrides =
        PlanOverrides { requests_per_second: Some(1e6), request_burst: Some(1_000_000), ..Default::default() };
    server
        .client
        .create_tenant(&CreateTenantRequest {
            name: "bench".into(),
            plan: Some("team".into()),
            overrides: Some(overrides),
            ..Default::default()
        })
        .await
        .context("create the benchmark tenant")?;
    let key = server
        .client
        .create_key(&CreateKeyRequest { tenant: Some("bench".into()), role: Some(Role::Member), ..Default::default() })
        .await
        .context("create the benchmark key")?;
    Ok(Client::new(&server.url)?.with_api_key(key.key))
}
