//! Egress events through the public API, on real database files: every
//! filter of the listing, alone and together.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use superserver_store::{EgressFilter, Store};
use superserver_wire::{EgressDecision, EgressEvent};

fn event(at_ms: i64, tenant: &str, sandbox: &str, decision: EgressDecision) -> EgressEvent {
    EgressEvent {
        id: 0,
        at_ms,
        tenant: tenant.into(),
        sandbox_id: sandbox.into(),
        execution_id: Some(format!("ex_{sandbox}")),
        protocol: "tcp".into(),
        name: Some("api.example.com".into()),
        address: Some("192.0.2.7".into()),
        port: Some(443),
        method: None,
        path: None,
        decision,
        rule: "api.example.com".into(),
        bytes_out: 10,
        bytes_in: 20,
        duration_ms: 1.5,
    }
}

/// 12 events at times 100, 110, … : tenants alternate `tn_a`/`tn_b`,
/// sandboxes `sb_0`…`sb_2` in turn, every third denied.
async fn seeded() -> (tempfile::TempDir, Store, Vec<EgressEvent>) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let events = (0..12)
        .map(|i| {
            let decision = if i % 3 == 0 { EgressDecision::Deny } else { EgressDecision::Allow };
            event(100 + 10 * i, ["tn_a", "tn_b"][i as usize % 2], &format!("sb_{}", i % 3), decision)
        })
        .collect();
    let stored = store.insert_egress_events(events).await.unwrap();
    (tmp, store, stored)
}

fn ids(v: &[EgressEvent]) -> Vec<i64> {
    v.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn every_filter_selects_what_it_names() {
    let (_tmp, store, all) = seeded().await;
    let list = |f: EgressFilter| {
        let store = store.clone();
        async move { store.list_egress_events(EgressFilter { limit: 100, ..f }).await.unwrap() }
    };
    let expect =
        |keep: &dyn Fn(&EgressEvent) -> bool| ids(&all.iter().filter(|e| keep(e)).cloned().collect::<Vec<_>>());

    assert_eq!(list(EgressFilter::default()).await, all, "every field round-trips, oldest first");
    let tenant = list(EgressFilter { tenant_id: Some("tn_b".into()), ..Default::default() }).await;
    assert_eq!(ids(&tenant), expect(&|e| e.tenant == "tn_b"));
    let sandbox = list(EgressFilter { sandbox_id: Some("sb_1".into()), ..Default::default() }).await;
    assert_eq!(ids(&sandbox), expect(&|e| e.sandbox_id == "sb_1"));
    let execution = list(EgressFilter { execution_id: Some("ex_sb_2".into()), ..Default::default() }).await;
    assert_eq!(ids(&execution), expect(&|e| e.sandbox_id == "sb_2"));
    let denied = list(EgressFilter { decision: Some(EgressDecision::Deny), ..Default::default() }).await;
    assert_eq!(ids(&denied), expect(&|e| e.decision == EgressDecision::Deny));
    let window = list(EgressFilter { from_ms: Some(120), to_ms: Some(150), ..Default::default() }).await;
    assert_eq!(ids(&window), expect(&|e| (120..=150).contains(&e.at_ms)));
    let after = list(EgressFilter { after_id: Some(all[8].id), ..Default::default() }).await;
    assert_eq!(ids(&after), expect(&|e| e.id > all[8].id));
    let together = list(EgressFilter {
        tenant_id: Some("tn_a".into()),
        decision: Some(EgressDecision::Allow),
        from_ms: Some(110),
        ..Default::default()
    })
    .await;
    assert_eq!(
        ids(&together),
        expect(&|e| e.tenant == "tn_a" && e.decision == EgressDecision::Allow && e.at_ms >= 110)
    );
}

#[tokio::test]
async fn limits_keep_the_oldest_or_the_newest_still_oldest_first() {
    let (_tmp, store, all) = seeded().await;
    let oldest = store.list_egress_events(EgressFilter { limit: 3, ..Default::default() }).await.unwrap();
    assert_eq!(ids(&oldest), ids(&all[..3]));
    let newest = store.list_egress_events(EgressFilter { limit: 3, newest: true, ..Default::default() }).await.unwrap();
    assert_eq!(ids(&newest), ids(&all[9..]));
    let newest_of_sandbox = store
        .list_egress_events(EgressFilter {
            sandbox_id: Some("sb_0".into()),
            limit: 2,
            newest: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&newest_of_sandbox), ids(&[all[6].clone(), all[9].clone()]));
}

#[tokio::test]
async fn hosts_sum_each_sandbox_destination_and_decision_in_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut events = Vec::new();
    let mut add = |at_ms, tenant: &str, sandbox: &str, name: Option<&str>, decision, protocol: &str| {
        let mut e = event(at_ms, tenant, sandbox, decision);
        e.name = name.map(String::from);
        e.protocol = protocol.into();
        events.push(e);
    };
    add(50, "tn_a", "sb_1", Some("api.example.com"), EgressDecision::Allow, "tcp"); // before the window
    add(100, "tn_a", "sb_1", Some("api.example.com"), EgressDecision::Allow, "tcp");
    add(130, "tn_a", "sb_1", Some("api.example.com"), EgressDecision::Allow, "http");
    add(120, "tn_a", "sb_1", Some("api.example.com"), EgressDecision::Deny, "http");
    add(140, "tn_a", "sb_1", None, EgressDecision::Deny, "tcp"); // no name: the address
    add(150, "tn_a", "sb_1", Some("api.example.com"), EgressDecision::Allow, "dns"); // queries are not hosts
    add(110, "tn_b", "sb_2", Some("api.example.com"), EgressDecision::Allow, "tcp");
    store.insert_egress_events(events).await.unwrap();

    let all = store.egress_hosts(None, 100, 10).await.unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|h| (h.sandbox_id.as_str(), h.host.as_str(), h.decision, h.events, h.bytes_out, h.bytes_in, h.last_at_ms))
        .collect();
    assert_eq!(
        summary,
        [
            ("sb_1", "192.0.2.7", EgressDecision::Deny, 1, 10, 20, 140),
            ("sb_1", "api.example.com", EgressDecision::Allow, 2, 20, 40, 130),
            ("sb_1", "api.example.com", EgressDecision::Deny, 1, 10, 20, 120),
            ("sb_2", "api.example.com", EgressDecision::Allow, 1, 10, 20, 110),
        ],
        "most recent first"
    );
    let tenant_b = store.egress_hosts(Some("tn_b".into()), 0, 10).await.unwrap();
    assert_eq!(tenant_b.iter().map(|h| h.sandbox_id.as_str()).collect::<Vec<_>>(), ["sb_2"]);
    let two = store.egress_hosts(None, 0, 2).await.unwrap();
    assert_eq!(two.iter().map(|h| h.last_at_ms).collect::<Vec<_>>(), [140, 130]);
    let from_start = store.egress_hosts(Some("tn_a".into()), 0, 10).await.unwrap();
    let allowed = from_start.iter().find(|h| h.decision == EgressDecision::Allow).unwrap();
    assert_eq!(allowed.events, 3, "the event before the first window counts from 0");
}
