//! What changed between two snapshots: the events of continuous discovery.

use std::collections::BTreeMap;

use crate::model::{Change, ChangeKind, ContainerInfo, Service, Snapshot, UnitInfo};

/// Changes from `old` to `new`, ordered by service id, then kind.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let before: BTreeMap<&str, &Service> = old.services.iter().map(|s| (s.id.as_str(), s)).collect();
    let after: BTreeMap<&str, &Service> = new.services.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut out = Vec::new();
    for (id, b) in &before {
        match after.get(id) {
            None => out.push(change(ChangeKind::Gone, id, Some(summary(b)), None)),
            Some(a) => service_changes(b, a, &mut out),
        }
    }
    for (id, a) in &after {
        if !before.contains_key(id) {
            out.push(change(ChangeKind::Appeared, id, None, Some(summary(a))));
        }
    }
    out.sort_by(|x, y| (x.service.as_str(), x.kind).cmp(&(y.service.as_str(), y.kind)));
    out
}

fn change(kind: ChangeKind, service: &str, before: Option<String>, after: Option<String>) -> Change {
    Change { kind, service: service.to_owned(), before, after }
}

/// One line describing a service, for appeared/gone.
fn summary(s: &Service) -> String {
    if let Some(c) = &s.container {
        format!("{} {} {}", c.image, c.state, c.image_digest)
    } else if let Some(u) = &s.unit {
        format!("{}/{}", u.active_state, u.sub_state)
    } else {
        format!("pids {:?}", s.pids)
    }
}

fn service_changes(b: &Service, a: &Service, out: &mut Vec<Change>) {
    let id = b.id.as_str();
    if let (Some(cb), Some(ca)) = (&b.container, &a.container) {
        container_changes(id, cb, ca, out);
    } else if let (Some(ub), Some(ua)) = (&b.unit, &a.unit) {
        unit_changes(id, ub, ua, out);
    } else if b.pids != a.pids && !b.pids.is_empty() && !a.pids.is_empty() {
        out.push(change(
            ChangeKind::Restarted,
            id,
            Some(format!("pids {:?}", b.pids)),
            Some(format!("pids {:?}", a.pids)),
        ));
    }
}

fn container_changes(id: &str, b: &ContainerInfo, a: &ContainerInfo, out: &mut Vec<Change>) {
    if b.state != a.state {
        out.push(change(ChangeKind::StateChanged, id, Some(b.state.clone()), Some(a.state.clone())));
    }
    if b.started_at != a.started_at || b.restart_count != a.restart_count {
        let run = |c: &ContainerInfo| {
            format!("started_at={} restart_count={}", c.started_at.as_deref().unwrap_or("-"), c.restart_count)
        };
        out.push(change(ChangeKind::Restarted, id, Some(run(b)), Some(run(a))));
    }
    if b.health != a.health {
        out.push(change(ChangeKind::HealthChanged, id, b.health.clone(), a.health.clone()));
    }
    if b.image_id != a.image_id || b.image_digest != a.image_digest {
        let img = |c: &ContainerInfo| format!("{} {}", c.image, c.image_digest);
        out.push(change(ChangeKind::ImageChanged, id, Some(img(b)), Some(img(a))));
    }
}

fn unit_changes(id: &str, b: &UnitInfo, a: &UnitInfo, out: &mut Vec<Change>) {
    if (&b.active_state, &b.sub_state) != (&a.active_state, &a.sub_state) {
        let st = |u: &UnitInfo| format!("{}/{}", u.active_state, u.sub_state);
        out.push(change(ChangeKind::StateChanged, id, Some(st(b)), Some(st(a))));
    }
    if let (Some(pb), Some(pa)) = (b.main_pid, a.main_pid) {
        if pb != pa {
            out.push(change(ChangeKind::Restarted, id, Some(format!("main pid {pb}")), Some(format!("main pid {pa}"))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceKind;

    fn container(name: &str) -> Service {
        Service {
            id: format!("container:{name}"),
            kind: ServiceKind::Container,
            name: name.into(),
            ports: vec![],
            pids: vec![10],
            processes: vec![],
            container: Some(ContainerInfo {
                id: "c".repeat(64),
                name: name.into(),
                image: "web:1".into(),
                image_id: "sha256:aa".into(),
                image_digest: "web@sha256:bb".into(),
                state: "running".into(),
                health: Some("healthy".into()),
                restart_count: 0,
                started_at: Some("2026-01-01T00:00:00Z".into()),
                pid: Some(10),
                ports: vec![],
                networks: vec![],
                labels: Default::default(),
                compose: None,
            }),
            unit: None,
        }
    }

    fn process(pids: Vec<u32>) -> Service {
        Service {
            id: "process:python3:8000".into(),
            kind: ServiceKind::Process,
            name: "python3".into(),
            ports: vec![],
            pids,
            processes: vec![],
            container: None,
            unit: None,
        }
    }

    fn snap(services: Vec<Service>) -> Snapshot {
        Snapshot { at_ms: 0, services, edges: vec![], notes: vec![] }
    }

    fn kinds(changes: &[Change]) -> Vec<ChangeKind> {
        changes.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn unchanged_is_empty() {
        let s = snap(vec![container("web"), process(vec![1])]);
        assert!(diff(&s, &s).is_empty());
    }

    #[test]
    fn appeared_and_gone() {
        let changes = diff(&snap(vec![container("old")]), &snap(vec![container("new")]));
        assert_eq!(kinds(&changes), vec![ChangeKind::Appeared, ChangeKind::Gone]);
        assert_eq!(changes[0].service, "container:new");
        assert!(changes[0].before.is_none() && changes[0].after.is_some());
        assert!(changes[1].after.is_none() && changes[1].before.is_some());
    }

    #[test]
    fn container_changes_each_kind() {
        let old = container("web");
        let mut new = container("web");
        let c = new.container.as_mut().unwrap();
        c.state = "restarting".into();
        c.restart_count = 3;
        c.health = Some("unhealthy".into());
        c.image_digest = "web@sha256:cc".into();
        let changes = diff(&snap(vec![old]), &snap(vec![new]));
        assert_eq!(
            kinds(&changes),
            vec![ChangeKind::Restarted, ChangeKind::StateChanged, ChangeKind::HealthChanged, ChangeKind::ImageChanged]
        );
        let restarted = &changes[0];
        assert_eq!(restarted.before.as_deref(), Some("started_at=2026-01-01T00:00:00Z restart_count=0"));
        assert_eq!(restarted.after.as_deref(), Some("started_at=2026-01-01T00:00:00Z restart_count=3"));
        assert_eq!(changes[2].after.as_deref(), Some("unhealthy"));
    }

    #[test]
    fn process_new_pids_is_a_restart() {
        let changes = diff(&snap(vec![process(vec![100])]), &snap(vec![process(vec![200])]));
        assert_eq!(kinds(&changes), vec![ChangeKind::Restarted]);
        assert_eq!(changes[0].after.as_deref(), Some("pids [200]"));
    }

    #[test]
    fn unit_state_and_main_pid() {
        let unit = |active: &str, pid| Service {
            id: "unit:nginx.service".into(),
            kind: ServiceKind::Unit,
            name: "nginx.service".into(),
            ports: vec![],
            pids: vec![],
            processes: vec![],
            container: None,
            unit: Some(UnitInfo {
                name: "nginx.service".into(),
                description: String::new(),
                load_state: "loaded".into(),
                active_state: active.into(),
                sub_state: "running".into(),
                main_pid: Some(pid),
            }),
        };
        let changes = diff(&snap(vec![unit("active", 5)]), &snap(vec![unit("failed", 6)]));
        assert_eq!(kinds(&changes), vec![ChangeKind::Restarted, ChangeKind::StateChanged]);
    }
}
