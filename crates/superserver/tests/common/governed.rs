//! Helpers for tests of governed sandboxes: a policy network and the
//! sandbox's stored egress events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use superserver_client::EgressQuery;
use superserver_wire::{EgressEvent, EgressLogLevel, EgressRule, ExecResult, NetworkMode, NetworkSpec, RunRequest};

use super::Server;

/// A `policy` network allowing `allow` and denying `deny`, every event logged
/// in full.
pub fn policy(allow: &[&str], deny: &[&str]) -> NetworkSpec {
    let rules = |hosts: &[&str]| hosts.iter().map(|s| EgressRule::Short(s.to_string())).collect();
    NetworkSpec {
        mode: NetworkMode::Policy,
        allow: rules(allow),
        deny: rules(deny),
        on_unknown: None,
        log: Some(EgressLogLevel::Full),
    }
}

/// A one-shot run of `sh -c script` on `network`, with a 60 s timeout.
pub fn sh_request(script: &str, network: NetworkSpec) -> RunRequest {
    RunRequest {
        command: super::argv(&["sh", "-c", script]),
        network: Some(network),
        timeout_ms: Some(60_000),
        ..Default::default()
    }
}

/// Runs `sh -c script` in a fresh sandbox on `network`.
pub async fn run_sh(s: &Server, script: &str, network: NetworkSpec) -> ExecResult {
    s.run_req(sh_request(script, network)).await
}

/// The sandbox's stored events, once `pred` holds for them (events are
/// stored in batches, a moment after they happen). Fails after 15 s.
pub async fn events_until(s: &Server, sandbox: &str, pred: impl Fn(&[EgressEvent]) -> bool) -> Vec<EgressEvent> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let q = EgressQuery { sandbox: Some(sandbox.into()), ..Default::default() };
        let events = s.client.egress_events(&q).await.unwrap().events;
        if pred(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "events never matched: {events:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
