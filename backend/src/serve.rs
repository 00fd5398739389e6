//! `ducha serve`: open the data directory as its writer, load (or follow) the read model, and serve
//! the REST API until SIGTERM or SIGINT.
//!
//! Shutdown is graceful on both signals: stop accepting connections, let in-flight requests finish
//! (up to `shutdown_timeout_seconds`), stop following the log, save a read-model checkpoint, then
//! close the store (its writer thread commits whatever is queued). An acknowledged write was
//! committed before it was acknowledged, so none is lost.

use crate::api::{self, AppState, LiveModel};
use crate::auth::AuthService;
use crate::config::{Config, FlagOverrides, LogFormat};
use crate::datadir::DataDir;
use crate::serverdb::ServerDb;
use crate::store::EventStore;
use crate::store::sqlite::Synchronous;
use anyhow::Context;
use ducha_events::projection::WarningPolicy;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The flags of `ducha serve` (everything else comes from the configuration layers).
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    pub listen: Option<String>,
    pub demo: bool,
    pub config: Option<PathBuf>,
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter: Targets = config
        .log_level
        .parse()
        .with_context(|| format!("log_level 无效 / invalid log_level {:?}", config.log_level))?;
    let registry = tracing_subscriber::registry().with(filter);
    // A second initialisation (tests running `run` twice in one process) keeps the first.
    let _ = match config.log_format {
        LogFormat::Text => {
            registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false)).try_init()
        }
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_current_span(true).with_writer(std::io::stderr))
            .try_init(),
    };
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received: shutting down gracefully"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: shutting down gracefully"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(data_dir: &Path, synchronous: Synchronous, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let flags = FlagOverrides { listen: args.listen, demo: args.demo.then_some(true) };
    let mut config = Config::load(args.config.as_deref(), &flags)?;
    init_logging(&config)?;
    if config.evidence_dir.is_none() {
        config.evidence_dir = Some(data_dir.join("evidence"));
    }

    let dir = DataDir::open_for_write(data_dir)?;
    let store = Arc::new(dir.store(synchronous)?);
    if config.demo {
        // Load into an empty store; on a store that already holds the demo, `load` adds nothing
        // and the logins are printed again. Never mix the demo into other data.
        let demo_district = ducha_events::ids::DistrictId::parse(crate::demo::DISTRICT)
            .map(|d| ducha_events::ids::stream::district(&d))
            .unwrap_or_default();
        if store.head().await? == 0 || store.stream_version(&demo_district).await? > 0 {
            let report = crate::demo::load(&*store).await?;
            print!("{}", report.render(data_dir));
        } else {
            println!("数据目录中已有数据，未加载演示数据 / the store is not empty: demo not loaded");
        }
    }
    let events: Arc<dyn EventStore> = store.clone();
    let live = Arc::new(LiveModel::load(&*events).await?);
    let server_db = ServerDb::open(dir.path())?;
    let retention = chrono::Utc::now().timestamp() - (config.idempotency_retention_hours * 3600) as i64;
    if let Err(e) = server_db.prune_replies(retention) {
        tracing::warn!(error = %e, "cannot prune old idempotent replies");
    }
    let auth = Arc::new(AuthService::new(&config, dir.path(), server_db.clone())?);
    let config = Arc::new(config);
    let state = AppState {
        store: events.clone(),
        live: live.clone(),
        config: config.clone(),
        auth,
        metrics: Arc::default(),
        server_db,
        policy: WarningPolicy::default(),
        rollups: Arc::default(),
    };

    let (stop_follow, stopped) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(live.clone().follow(events.clone(), stopped));

    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let server = actix_web::HttpServer::new(move || api::app(state.clone()))
        .workers(workers)
        .shutdown_timeout(config.shutdown_timeout_seconds)
        .disable_signals()
        .bind(&config.listen)
        .with_context(|| format!("无法监听 {} / cannot listen on {}", config.listen, config.listen))?;
    let addrs = server.addrs();
    let server = server.run();
    let handle = server.handle();
    {
        let mut out = std::io::stdout().lock();
        for addr in &addrs {
            writeln!(out, "listening on http://{addr}")?;
        }
        if let Some(addr) = addrs.first() {
            if crate::web::embedded() {
                writeln!(out, "网页 / web app: http://{addr}/")?;
            }
            writeln!(out, "API 文档 / API docs: http://{addr}{}", api::DOCS_PATH)?;
        }
        out.flush()?;
    }
    tracing::info!(addrs = ?addrs, workers, position = live.position(), "serving");
    tokio::spawn(async move {
        shutdown_signal().await;
        handle.stop(true).await;
    });
    server.await.context("服务异常退出 / the server failed")?;

    let _ = stop_follow.send(true);
    let _ = follower.await;
    if let Err(e) = live.checkpoint(&*events).await {
        tracing::warn!(error = %e, "cannot save the read-model checkpoint at shutdown");
    }
    store.close().await;
    tracing::info!("stopped");
    drop(dir);
    Ok(ExitCode::SUCCESS)
}
