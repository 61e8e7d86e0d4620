//! systemd service units, through `systemctl` (only where systemd is init).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use tokio::process::Command;

use crate::error::{Error, Result};
use crate::model::UnitInfo;

/// How long one `systemctl` call may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Lists service units with their states and main pids. `run_dir` is
/// `/run/systemd/system`, which exists exactly when systemd is running.
pub async fn list_units(run_dir: &Path) -> Result<Vec<UnitInfo>> {
    if !run_dir.is_dir() {
        return Err(Error::SystemdNotRunning);
    }
    let json = systemctl(&["list-units", "--type=service", "--all", "--output=json", "--no-pager"]).await;
    let mut units = match json.as_deref().map(parse_list_json) {
        Ok(Ok(units)) => units,
        _ => parse_list_plain(
            &systemctl(&["list-units", "--type=service", "--all", "--plain", "--no-legend", "--no-pager"]).await?,
        ),
    };
    if units.is_empty() {
        return Ok(units);
    }
    let mut args = vec!["show", "-p", "Id", "-p", "MainPID", "--"];
    args.extend(units.iter().map(|u| u.name.as_str()));
    let pids = parse_show_main_pids(&systemctl(&args).await?);
    for unit in &mut units {
        unit.main_pid = pids.get(&unit.name).copied();
    }
    Ok(units)
}

async fn systemctl(args: &[&str]) -> Result<String> {
    let run = Command::new("systemctl").args(args).kill_on_drop(true).output();
    let out = tokio::time::timeout(TIMEOUT, run)
        .await
        .map_err(|_| Error::Systemctl(format!("no answer within {TIMEOUT:?}")))?
        .map_err(|e| Error::Systemctl(format!("cannot run systemctl: {e}")))?;
    if !out.status.success() {
        return Err(Error::Systemctl(format!(
            "systemctl {} exited with {}: {}",
            args.first().unwrap_or(&""),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[derive(Deserialize)]
struct JsonUnit {
    unit: String,
    #[serde(default)]
    load: String,
    #[serde(default)]
    active: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    description: String,
}

/// Parses `systemctl list-units --output=json`.
pub fn parse_list_json(text: &str) -> Result<Vec<UnitInfo>> {
    let units: Vec<JsonUnit> = serde_json::from_str(text).map_err(|e| Error::Systemctl(format!("bad JSON: {e}")))?;
    Ok(units
        .into_iter()
        .map(|u| UnitInfo {
            name: u.unit,
            description: u.description,
            load_state: u.load,
            active_state: u.active,
            sub_state: u.sub,
            main_pid: None,
        })
        .collect())
}

/// Parses `systemctl list-units --plain --no-legend` (older systemd without
/// JSON output): `UNIT LOAD ACTIVE SUB DESCRIPTION…`, possibly led by `●`.
pub fn parse_list_plain(text: &str) -> Vec<UnitInfo> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches(['●', '*']).trim_start();
            let mut f = line.split_whitespace();
            let name = f.next()?.to_owned();
            let (load_state, active_state, sub_state) =
                (f.next()?.to_owned(), f.next()?.to_owned(), f.next()?.to_owned());
            let description = f.collect::<Vec<_>>().join(" ");
            Some(UnitInfo { name, description, load_state, active_state, sub_state, main_pid: None })
        })
        .collect()
}

/// Parses `systemctl show -p Id -p MainPID u1 u2 …`: blank-line separated
/// blocks; a main pid of 0 means none.
pub fn parse_show_main_pids(text: &str) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut pid = None;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("Id=") {
                id = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("MainPID=") {
                pid = v.trim().parse::<u32>().ok().filter(|p| *p > 0);
            }
        }
        if let (Some(id), Some(pid)) = (id, pid) {
            out.insert(id, pid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output() {
        let text = r#"[{"unit":"nginx.service","load":"loaded","active":"active","sub":"running","description":"A high performance web server"},
            {"unit":"foo.service","load":"not-found","active":"inactive","sub":"dead","description":"foo.service"}]"#;
        let units = parse_list_json(text).unwrap();
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].name, "nginx.service");
        assert_eq!((units[0].active_state.as_str(), units[0].sub_state.as_str()), ("active", "running"));
        assert_eq!(units[1].load_state, "not-found");
        assert!(parse_list_json("UNIT LOAD").is_err());
    }

    #[test]
    fn plain_output() {
        let text = "  cron.service    loaded    active   running Regular background program processing daemon\n\
                    ● bad.service     not-found inactive dead    bad.service\n";
        let units = parse_list_plain(text);
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].name, "cron.service");
        assert_eq!(units[0].description, "Regular background program processing daemon");
        assert_eq!(units[1].name, "bad.service");
        assert_eq!(units[1].active_state, "inactive");
    }

    #[test]
    fn show_output() {
        let text = "MainPID=812\nId=nginx.service\n\nMainPID=0\nId=foo.service\n";
        let pids = parse_show_main_pids(text);
        assert_eq!(pids.get("nginx.service"), Some(&812));
        assert!(!pids.contains_key("foo.service"));
    }

    #[tokio::test]
    async fn reports_systemd_absent() {
        let dir = tempfile::tempdir().unwrap();
        let err = list_units(&dir.path().join("nope")).await.unwrap_err();
        assert!(matches!(err, Error::SystemdNotRunning));
    }
}
