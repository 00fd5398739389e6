//! `ducha serve`: open the store (a SQLite data directory as its only writer, or a PostgreSQL
//! database shared with other replicas), load and follow the read model, run the once-per-deployment
//! jobs under their lease, and serve the REST API until SIGTERM or SIGINT.
//!
//! Shutdown is graceful on both signals: stop accepting connections, let in-flight requests finish
//! (up to `shutdown_timeout_seconds`), stop following the log, save a read-model checkpoint, then
//! close the store (its writer thread commits whatever is queued). An acknowledged write was
//! committed before it was acknowledged, so none is lost.

use crate::api::{self, AppState, LiveModel};
use crate::auth::AuthService;
use crate::config::{Config, FlagOverrides, LogFormat};
use crate::jobs::Replica;
use crate::server_state;
use crate::store::{self, Access, StoreLocation};
use anyhow::Context;
use ducha_events::projection::WarningPolicy;
use std::io::Write;
use std::path::PathBuf;
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

/// Installs the SIGTERM and SIGINT handlers now and returns what waits for either. Installed before
/// "listening on" is printed: a supervisor may stop the process the moment it reports that, and a
/// signal before the handler exists would take its default action (killed, no graceful stop).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received: shutting down gracefully"),
                        _ = int.recv() => tracing::info!("SIGINT received: shutting down gracefully"),
                    }
                }
                (term, int) => {
                    tracing::warn!(
                        sigterm = term.is_ok(),
                        sigint = int.is_ok(),
                        "cannot listen for every stop signal; only the one that is listened for stops the server"
                    );
                    if let Ok(mut term) = term {
                        term.recv().await;
                    } else if let Ok(mut int) = int {
                        int.recv().await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                    tracing::info!("stop signal received: shutting down gracefully");
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Threads each HTTP worker may run blocking work on (store reads, hashing, roll-ups). actix's
/// default (512 shared out between the workers) let a burst of commands start over a hundred
/// threads on two cores — tokio starts a thread whenever no idle one has woken yet — each holding
/// its allocator's pages until it exited (BENCHMARKS.md, 2026-12-03). Reads of the event store are
/// bounded apart (16 at once), so this leaves room for them and for the rest.
const BLOCKING_THREADS_PER_WORKER: usize = 16;

pub async fn run(location: &StoreLocation, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let flags = FlagOverrides { listen: args.listen, demo: args.demo.then_some(true) };
    let config = Config::load(args.config.as_deref(), &flags)?;
    // Refused before anything is opened or written (not even `--demo`): a store without a home
    // for the replicas' state (KurrentDB without `server_state`), or a bad `server_state`.
    server_state::home::check(location, config.server_state.as_deref())?;
    init_logging(&config)?;
    crate::clock::warn_if_offset();
    // The file's `chain_hash`, unless the flag or the environment said already (they win).
    if store::location::configured_chain_hash().is_none() {
        store::location::configure_chain_hash(config.chain_hash);
    }
    store::sqlite::set_max_page_count(config.sqlite_max_page_count);
    store::sqlite::set_cache_mb(config.sqlite_cache_mb);

    let opened = store::location::open(location, Access::Write).await?;
    let home =
        server_state::home::open(&opened, config.server_state.as_deref(), config.evidence_dir.as_deref()).await?;
    let key_dir = home.key_dir.clone();
    // A shared deployment signs with a configured key, the same on every replica: checked before
    // anything else happens.
    if key_dir.is_none() {
        crate::auth::SigningKeys::load(&config, None)?;
    }
    let keys = crate::personal::keyring(&config, key_dir.as_deref(), &home.state)?;
    let store: Arc<dyn store::EventStore> = match &keys {
        Some(k) => {
            let sealing = Arc::new(crate::personal::store::SealingStore::new(opened.store.clone(), k.clone()));
            let destroyed = crate::personal::erase::reconcile(&*sealing, k).await?;
            tracing::info!(master_key = k.master_id(), cipher = k.cipher().code(), destroyed, "personal data sealed");
            sealing
        }
        None => {
            tracing::warn!(
                "no personal_data_key_file configured for a shared store: personal data is stored in clear \
                 (docs/SECURITY.md)"
            );
            opened.store.clone()
        }
    };
    if config.demo {
        // Load into an empty store; on a store that already holds the demo, `load` adds nothing
        // and the logins are printed again. Never mix the demo into other data.
        let demo_district = ducha_events::ids::DistrictId::parse(crate::demo::DISTRICT)
            .map(|d| ducha_events::ids::stream::district(&d))
            .unwrap_or_default();
        if store.head().await? == 0 || store.stream_version(&demo_district).await? > 0 {
            let report = crate::demo::load(&*store).await?;
            print!("{}", report.render(&location.display()));
        } else {
            println!("数据目录中已有数据，未加载演示数据 / the store is not empty: demo not loaded");
        }
    }
    let budget = usize::try_from(config.read_model_budget_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let live = Arc::new(LiveModel::load(&*store, budget).await?);
    let mut server = home.state.clone();
    if let Some(k) = &keys {
        // Channels' endpoints and secrets are encrypted at rest under the master key.
        server.notify = Arc::new(server_state::notify::sealed::SealedChannels::new(server.notify.clone(), k.clone()));
    }
    tracing::info!(server_state = %home.display, kind = server.kind, "server state");
    let auth = Arc::new(AuthService::new(&config, key_dir.as_deref(), &server)?);
    let config = Arc::new(config);
    let replica = Arc::new(Replica::new());
    let anchor_key = match (&config.anchor_key_file, key_dir.as_deref()) {
        (None, None) => {
            tracing::warn!("no anchor_key_file configured for a shared store: chain heads are not anchored");
            None
        }
        (file, dir) => {
            let key = crate::anchors::AnchorKey::load(file.as_deref(), dir, config.anchor_algorithm)?;
            let public = key.public_key();
            tracing::info!(algorithm = public.algorithm.code(), key_id = %public.key_id, "anchor key loaded");
            Some(Arc::new(key))
        }
    };
    let (begin_stopping, stopping) = tokio::sync::watch::channel(false);
    let state = AppState {
        store: store.clone(),
        live: live.clone(),
        config: config.clone(),
        auth,
        metrics: Arc::default(),
        server,
        policy: WarningPolicy::default(),
        rollups: Arc::default(),
        replica: replica.clone(),
        anchor_key,
        keys,
        stopping,
    };

    let (stop_tasks, stopped) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(live.clone().follow(store.clone(), stopped.clone()));
    let trimmer = tokio::spawn(live.clone().keep_to_budget(stopped.clone()));
    let notifier = tokio::spawn(crate::notify::job::run(state.clone(), stopped.clone()));
    let maintenance = tokio::spawn(crate::jobs::maintenance(state.clone(), stopped));

    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let server = actix_web::HttpServer::new(move || api::app(state.clone()))
        .workers(workers)
        .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
        .shutdown_timeout(config.shutdown_timeout_seconds)
        .disable_signals()
        .bind(&config.listen)
        .with_context(|| format!("无法监听 {} / cannot listen on {}", config.listen, config.listen))?;
    let addrs = server.addrs();
    let server = server.run();
    let handle = server.handle();
    let stop_signal = shutdown_signal();
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
    tracing::info!(addrs = ?addrs, workers, position = live.position(), store = %location.display(), replica = %replica.id, "serving");
    tokio::spawn(async move {
        stop_signal.await;
        // First the live streams (they send `event: shutdown` and end), then the graceful stop.
        let _ = begin_stopping.send(true);
        handle.stop(true).await;
    });
    server.await.context("服务异常退出 / the server failed")?;

    let _ = stop_tasks.send(true);
    let _ = follower.await;
    let _ = trimmer.await;
    // With several replicas the lease holder checkpoints; alone, always.
    let holds = replica.holds(crate::jobs::MAINTENANCE);
    let _ = maintenance.await;
    let _ = notifier.await;
    if (!location.is_shared() || holds)
        && let Err(e) = live.checkpoint(&*store).await
    {
        tracing::warn!(error = %e, "cannot save the read-model checkpoint at shutdown");
    }
    drop(store);
    opened.close().await;
    home.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
