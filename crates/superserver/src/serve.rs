//! `superserver serve`: configuration, logging, the HTTP listener, graceful
//! shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use superserver_core::{Config, Helper, Service};
use tokio::net::TcpListener;

/// Flags of `serve`; each overrides the config file and has an env variable.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TOML config file (unknown keys are refused).
    #[arg(long, env = "SUPERSERVER_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: the SQLite store and runtime files.
    #[arg(long, env = "SUPERSERVER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (any address with API keys; loopback only with auth.enabled = false).
    #[arg(long, env = "SUPERSERVER_LISTEN")]
    listen: Option<SocketAddr>,
    /// Ready sandboxes kept per profile (0 disables the warm pool).
    #[arg(long, env = "SUPERSERVER_POOL_SIZE")]
    pool_size: Option<usize>,
    /// Log format: pretty or json.
    #[arg(long, env = "SUPERSERVER_LOG_FORMAT")]
    log_format: Option<String>,
}

fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut cfg = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(n) = args.pool_size {
        cfg.pool.size = n;
    }
    if let Some(f) = &args.log_format {
        cfg.log_format = f.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SUPERSERVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = load_config(&args)?;
    init_logging(&cfg.log_format);
    let mut shown = cfg.clone();
    shown.webhooks = shown.webhooks.iter().map(|w| w.redacted()).collect();
    shown.smtp = shown.smtp.as_ref().map(|s| s.redacted());
    shown.alerts = shown.alerts.redacted();
    tracing::info!(config = %serde_json::to_string(&shown).unwrap_or_default(), "effective configuration");
    let exe = std::env::current_exe().context("cannot find this executable to start the sandbox helper")?;
    let helper = Helper { exe, args: vec!["__zygote".into()] };
    let listen = cfg.listen;
    let key_file = cfg.data_dir.join(superserver_core::ADMIN_KEY_FILE);
    let svc = Service::start(cfg, helper).await?;
    if let Some(key) = svc.take_bootstrap_key() {
        println!(
            "\nSuperServer created the admin API key. It is shown this once, and saved (mode 0600) in {}:\n\n    \
             {key}\n\nUse it as `Authorization: Bearer <key>`, or `export SUPERSERVER_API_KEY=<key>` for the CLI.\n",
            key_file.display()
        );
    }
    if !svc.auth_enabled() {
        tracing::warn!("authentication is off (auth.enabled = false): every caller on loopback is the admin");
    }
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    // The dashboard's pages at `/`, the API under `/v1`.
    let app = superserver_web::router(svc.clone()).merge(superserver_api::app(svc.clone()));
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await;
    tracing::info!("shutting down: destroying sandboxes");
    if tokio::time::timeout(Duration::from_secs(30), svc.shutdown()).await.is_err() {
        tracing::error!("shutdown did not finish within 30s");
    }
    served.context("HTTP server failed")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
