//! `superserver secrets`: custody secrets. A value is read from standard
//! input (or a file), never from the command line, where other users and
//! the shell's history would see it.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use superserver_wire::{PutSecretRequest, SecretInfo};

use super::output::{print_json, print_table, utc};
use super::ClientOpts;

/// `superserver secrets`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SecretsCmd {
    /// Set a secret (create or replace); the value is read from standard
    /// input, e.g. `printf %s "$TOKEN" | superserver secrets set GITHUB_TOKEN
    /// --host api.github.com --header Authorization --template 'Bearer {value}'`.
    Set {
        /// Its name, also its variable in a sandbox's environment.
        name: String,
        /// A host the value may be sent to: a name or `*.suffix` (repeatable, at least one).
        #[arg(long = "host", value_name = "HOST", required = true)]
        hosts: Vec<String>,
        /// The request header the value goes in, e.g. `Authorization`.
        #[arg(long)]
        header: Option<String>,
        /// The header's value with `{value}` where the secret goes.
        #[arg(long)]
        template: Option<String>,
        /// Read the value from this file instead of standard input.
        #[arg(long, value_name = "PATH")]
        value_file: Option<PathBuf>,
    },
    /// List secrets: names, hosts and the sandboxes that held them (never values).
    Ls,
    /// Show one secret and the sandboxes that held it.
    Show { name: String },
    /// Remove a secret.
    Rm { name: String },
}

/// Runs `superserver secrets`; exit code 0, or 1 after an error.
pub async fn secrets(opts: &ClientOpts, cmd: Option<SecretsCmd>) -> anyhow::Result<i32> {
    let result = async {
        let client = opts.client()?;
        match cmd.unwrap_or(SecretsCmd::Ls) {
            SecretsCmd::Set { name, hosts, header, template, value_file } => {
                let value = read_value(value_file)?;
                let info = client.put_secret(&name, &PutSecretRequest { value, hosts, header, template }).await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&info)?);
                }
                println!("{} set; it may be sent to {}", info.name, info.hosts.join(", "));
            }
            SecretsCmd::Ls => {
                let list = client.secrets().await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&list)?);
                }
                let rows: Vec<Vec<String>> = list.secrets.iter().map(row).collect();
                print_table(&["NAME", "TENANT", "HOSTS", "HEADER", "UPDATED (UTC)", "SANDBOXES"], &rows);
            }
            SecretsCmd::Show { name } => {
                let info = client.secret(&name).await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&info)?);
                }
                print_table(&["NAME", "TENANT", "HOSTS", "HEADER", "UPDATED (UTC)", "SANDBOXES"], &[row(&info)]);
                let users: Vec<Vec<String>> = info
                    .used_by
                    .iter()
                    .map(|u| {
                        vec![
                            u.sandbox_id.clone(),
                            u.kind.clone().unwrap_or_default(),
                            u.state.clone().unwrap_or_default(),
                            utc(u.at_ms),
                        ]
                    })
                    .collect();
                if !users.is_empty() {
                    println!();
                    print_table(&["SANDBOX", "KIND", "STATE", "GIVEN (UTC)"], &users);
                }
            }
            SecretsCmd::Rm { name } => {
                client.delete_secret(&name).await?;
                if !opts.json {
                    println!("{name} removed");
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(0),
        Err(e) => {
            opts.report(&e);
            Ok(1)
        }
    }
}

/// The value from a file or standard input, without one trailing newline.
fn read_value(file: Option<PathBuf>) -> anyhow::Result<String> {
    let mut value = match &file {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("reading the value from standard input (end with Ctrl-D)…");
            }
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("cannot read the value from standard input")?;
            s
        }
    };
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        anyhow::bail!("no value given: pipe it to standard input or use --value-file");
    }
    Ok(value)
}

fn row(s: &SecretInfo) -> Vec<String> {
    let header = match (&s.header, &s.template) {
        (Some(h), Some(t)) => format!("{h}: {t}"),
        (Some(h), None) => h.clone(),
        _ => String::new(),
    };
    vec![s.name.clone(), s.tenant.clone(), s.hosts.join(","), header, utc(s.updated_at_ms), s.used_by.len().to_string()]
}
