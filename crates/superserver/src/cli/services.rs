//! `superserver services`: what runs on the host and how it connects.

use superserver_wire::{Service, ServiceDetail, ServiceEventList, ServiceList, ServiceMap};

use super::output::{print_json, print_table, utc};
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
