//! `superserver services`: what runs on the host and how it connects.

use superserver_wire::{
    AnomalyList, HealthList, Service, ServiceDetail, ServiceEventList, ServiceHealth, ServiceList, ServiceMap,
};

use super::output::{print_json, print_table, printable, utc};
use super::ClientOpts;

/// What `superserver services` shows besides the list.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ServicesCmd {
    /// One service: its processes, ports, edges and latest changes.
    Show {
        /// Service id, e.g. `container:web` or `process:python3:8000`.
        id: String,
    },
    /// The service map: every edge between services.
    Map,
    /// Health: every service's status, or one service's probes, uptime and history.
    Health {
        /// Service id; all services without it.
        id: Option<String>,
    },
    /// Anomalies with their evidence, newest first.
    Anomalies {
        /// Only this service's.
        #[arg(long)]
        service: Option<String>,
        /// Only this kind (error_rate_spike, new_error_template, template_rate_spike,
        /// crash_loop, disk_full_soon, memory_growth, health_flapping).
        #[arg(long)]
        kind: Option<String>,
        /// How many (default 100).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// The latest changes (appeared, gone, restarted, state, health, image).
    Events {
        /// How many (default 100).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
}

/// Lists the host's services, or runs a subcommand; exit code 0, or 1 after an error.
pub async fn services(opts: &ClientOpts, cmd: Option<ServicesCmd>) -> anyhow::Result<i32> {
    let result = async {
        let client = opts.client()?;
        match cmd {
            None => {
                let list = client.services().await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&list)?);
                }
                print_table(&["ID", "STATE", "PORTS", "PIDS"], &rows(&list));
                for n in &list.notes {
                    eprintln!("note: {n}");
                }
            }
            Some(ServicesCmd::Show { id }) => {
                let d = client.service(&id).await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&d)?);
                }
                print_detail(&d);
            }
            Some(ServicesCmd::Map) => {
                let m = client.service_map().await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&m)?);
                }
                print_table(&["FROM", "KIND", "TO", "DETAIL", "COUNT"], &map_rows(&m));
            }
            Some(ServicesCmd::Health { id: None }) => {
                let h = client.health().await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&h)?);
                }
                print_table(&["SERVICE", "HEALTH", "SINCE (UTC)", "REASON"], &health_rows(&h));
            }
            Some(ServicesCmd::Health { id: Some(id) }) => {
                let h = client.service_health(&id).await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&h)?);
                }
                print_health(&h);
            }
            Some(ServicesCmd::Anomalies { service, kind, limit }) => {
                let a = client.anomalies(service.as_deref(), kind.as_deref(), limit).await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&a)?);
                }
                print_anomalies(&a);
            }
            Some(ServicesCmd::Events { limit }) => {
                let e = client.service_events(limit).await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&e)?);
                }
                print_table(&["TIME (UTC)", "SERVICE", "CHANGE", "BEFORE", "AFTER"], &event_rows(&e));
            }
        }
        Ok(())
    };
    Ok(opts.finish(result.await))
}

fn state(s: &Service) -> String {
    match (&s.container, &s.unit) {
        (Some(c), _) => match &c.health {
            Some(h) => format!("{} ({h})", c.state),
            None => c.state.clone(),
        },
        (None, Some(u)) => format!("{}/{}", u.active_state, u.sub_state),
        _ => "running".into(),
    }
}

fn ports(s: &Service) -> String {
    let p: Vec<String> = s.ports.iter().map(|p| format!("{}:{}/{:?}", p.address, p.port, p.proto)).collect();
    if p.is_empty() {
        "-".into()
    } else {
        p.join(" ")
    }
}

fn rows(list: &ServiceList) -> Vec<Vec<String>> {
    list.services
        .iter()
        .map(|s| {
            let pids: Vec<String> = s.pids.iter().map(u32::to_string).collect();
            vec![s.id.clone(), state(s), ports(s), if pids.is_empty() { "-".into() } else { pids.join(",") }]
        })
        .collect()
}

fn print_detail(d: &ServiceDetail) {
    let s = &d.service;
    println!("id:       {}", s.id);
    println!("name:     {}", s.name);
    println!("state:    {}", state(s));
    println!("ports:    {}", ports(s));
    if let Some(c) = &s.container {
        println!("image:    {} {}", c.image, c.image_digest);
        println!("restarts: {}", c.restart_count);
    }
    if let Some(h) = &d.health {
        println!("health:   {} since {} ({})", h.status.as_str(), utc(h.since_ms), h.reason);
    }
    for p in &s.processes {
        println!("process:  {} {}", p.pid, p.cmdline.join(" "));
    }
    for e in &d.edges {
        println!("edge:     {:?} {} -> {} ({})", e.kind, e.from, e.to, e.detail);
    }
    for e in &d.events {
        println!("change:   {} {:?}", utc(e.at_ms), e.kind);
    }
}

fn map_rows(m: &ServiceMap) -> Vec<Vec<String>> {
    m.edges
        .iter()
        .map(|e| vec![e.from.clone(), format!("{:?}", e.kind), e.to.clone(), e.detail.clone(), e.count.to_string()])
        .collect()
}

fn event_rows(e: &ServiceEventList) -> Vec<Vec<String>> {
    e.events
        .iter()
        .map(|e| {
            vec![
                utc(e.at_ms),
                e.service.clone(),
                format!("{:?}", e.kind),
                e.before.clone().unwrap_or_default(),
                e.after.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

fn health_rows(h: &HealthList) -> Vec<Vec<String>> {
    h.services
        .iter()
        .map(|s| vec![s.service.clone(), s.status.as_str().into(), utc(s.since_ms), printable(&s.reason)])
        .collect()
}

fn print_health(h: &ServiceHealth) {
    println!("service:  {}", h.service);
    println!("health:   {} since {}", h.status.as_str(), utc(h.since_ms));
    println!("reason:   {}", printable(&h.reason));
    println!("uptime:   {:.2} % (24 h), {:.2} % (7 d)", h.uptime.day_percent, h.uptime.week_percent);
    if let Some(d) = &h.docker_health {
        println!("docker:   {d}");
    }
    if let Some(c) = &h.crash_loop {
        println!("crash loop: {} restarts in {} s", c.restarts, c.window_seconds);
    }
    for p in &h.probes {
        let last = p.last.as_ref().map_or("not run yet".to_string(), |l| {
            format!(
                "{} {} ({} ms, {})",
                if l.ok { "ok" } else { "FAIL" },
                printable(&l.message),
                l.latency_ms,
                utc(l.at_ms)
            )
        });
        println!(
            "probe:    {} {:?} {} -> {last}; {}/{} failures",
            p.name, p.kind, p.target, p.consecutive_failures, p.retries
        );
    }
    for e in &h.history {
        println!("change:   {} {} ({})", utc(e.at_ms), e.status.as_str(), printable(&e.reason));
    }
}

fn print_anomalies(a: &AnomalyList) {
    if a.anomalies.is_empty() {
        println!("No anomalies.");
    }
    for x in &a.anomalies {
        println!("{}  {}  {}", utc(x.at_ms), x.kind.as_str(), printable(&x.summary));
        if let Some(t) = &x.evidence.template {
            println!("    template: {}", printable(t));
        }
        for (k, v) in &x.evidence.figures {
            println!("    {k}: {v}");
        }
        for l in &x.evidence.samples {
            println!("    | {}", printable(l));
        }
    }
}
