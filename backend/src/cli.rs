//! The `ducha` command line: argument parsing and one handler per command.

use crate::store::location::open;
use crate::store::sqlite::Synchronous;
use crate::store::{Access, StoreLocation, Upto};
use crate::{demo, exchange, projector, verify};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use ducha_events::chain::ChainHash;
use ducha_events::ids::{DistrictId, TenantId};
use ducha_events::projection::{RollupQuery, WarningPolicy};
use ducha_events::time;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "ducha", version, about = "督查：街道意识形态工作责任制督查系统 / Ducha inspection service")]
pub struct Cli {
    /// The event store: `sqlite:DIR` (the default, the same as `--data-dir DIR`) or
    /// `postgres://user:password@host:port/database` (shared by several replicas). Wins over
    /// `--data-dir`.
    #[arg(long, global = true, env = "DUCHA_STORE")]
    pub store: Option<String>,
    /// Data directory (database, lock, evidence files) of the SQLite store.
    #[arg(long, global = true, env = "DUCHA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// SQLite durability: `full` (default) survives power loss once an append is acknowledged;
    /// `normal` may lose the last appends on power loss (never on a crash); `off` is for tests only.
    #[arg(long, global = true, env = "DUCHA_SYNCHRONOUS", value_enum, default_value_t = SyncArg::Full)]
    pub synchronous: SyncArg,
    /// The chain hash of a new store: `sha256` (default) or `sm3` (国密 GB/T 32905). Fixed when the
    /// store is created; given for an existing store, it must be the one the store has.
    #[arg(long, global = true, env = "DUCHA_CHAIN_HASH", value_enum)]
    pub chain_hash: Option<ChainHashArg>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChainHashArg {
    Sha256,
    Sm3,
}

impl From<ChainHashArg> for ChainHash {
    fn from(a: ChainHashArg) -> Self {
        match a {
            ChainHashArg::Sha256 => ChainHash::Sha256,
            ChainHashArg::Sm3 => ChainHash::Sm3,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SyncArg {
    Full,
    Normal,
    Off,
}

impl From<SyncArg> for Synchronous {
    fn from(s: SyncArg) -> Self {
        match s {
            SyncArg::Full => Synchronous::Full,
            SyncArg::Normal => Synchronous::Normal,
            SyncArg::Off => Synchronous::Off,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Load the demo data (XX区 with XX街道 from the sample report and two more sub-districts).
    Demo,
    /// Check every tenant's hash chain; exits non-zero and names the first bad event on tampering.
    /// With `--anchors FILE`, also check the chains against signed anchors kept elsewhere, which
    /// finds a history rewritten with every hash recomputed.
    Verify {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// An anchors file (`ducha anchors export`, `GET /api/v1/anchors`) to check the chains against.
        #[arg(long)]
        anchors: Option<PathBuf>,
        /// Accept only anchors signed by this public key (hex, as published), e.g. from docs/AUDIT.md.
        #[arg(long, requires = "anchors")]
        public_key: Option<String>,
    },
    /// Sign an anchor of every tenant's chain head that moved since its last anchor (the server also
    /// does this every `anchor_interval_seconds`). The key is the configuration's `anchor_key_file`,
    /// or `anchor.key` in the data directory (generated if absent).
    Anchor {
        /// TOML configuration file (for `anchor_key_file` and `anchor_algorithm`).
        #[arg(long, env = "DUCHA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The anchors: export them to keep off the system.
    Anchors {
        #[command(subcommand)]
        command: AnchorsCmd,
    },
    /// Rebuild all projections from the log, with a progress bar and the rate.
    Replay,
    /// Write one tenant's events with envelopes as JSON Lines.
    Export {
        #[arg(long)]
        tenant: String,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Load a JSON Lines export into this store (the tenant must not exist here yet).
    Import {
        /// The export file.
        file: PathBuf,
    },
    /// Serve the REST API (and Swagger UI at /api/docs/) until SIGTERM or SIGINT.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
        /// Load the demo data first when the store is empty.
        #[arg(long)]
        demo: bool,
        /// TOML configuration file (see docs/CONFIGURATION.md).
        #[arg(long, env = "DUCHA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Administer accounts from the command line (bootstrap of a fresh deployment).
    Admin {
        #[command(subcommand)]
        command: AdminCmd,
    },
    /// Print the OpenAPI 3.1 document of the REST API.
    Openapi,
    /// Copy a whole store (every tenant, in log order, and its evidence files) into an empty one,
    /// e.g. a single-machine pilot into the shared PostgreSQL deployment; the chains are verified
    /// in the target before it reports success.
    Copy {
        /// The source store URL (`sqlite:DIR` or `postgres://…`).
        #[arg(long)]
        from: String,
        /// The target store URL; it must be empty.
        #[arg(long)]
        to: String,
        /// Where the source's evidence files are, when not beside its events (its `server_state`).
        #[arg(long)]
        from_state: Option<String>,
        /// Where the target's evidence files go, when not beside its events (a KurrentDB target
        /// needs one: its `server_state`).
        #[arg(long)]
        to_state: Option<String>,
    },
    /// Take a consistent online backup (the server may keep running) into one archive: the events,
    /// the evidence files and a manifest (position, every tenant's chain head, SHA-256 of every part),
    /// signed with the deployment's anchor key (`anchor_key_file`, or the data directory's
    /// `anchor.key`).
    Backup {
        /// The archive to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Where the evidence files are, when not in the data directory's `evidence` folder (or,
        /// on PostgreSQL, in the database).
        #[arg(long)]
        evidence_dir: Option<PathBuf>,
        /// TOML configuration file (for `anchor_key_file` and `anchor_algorithm`).
        #[arg(long, env = "DUCHA_CONFIG")]
        config: Option<PathBuf>,
        /// Write the manifest unsigned (a shared store with no `anchor_key_file`).
        #[arg(long)]
        unsigned: bool,
    },
    /// Restore a backup into an empty store (`--to`, else `--store`/`--data-dir`): every part is
    /// checked against the manifest and the restored chains must end on the manifest's heads.
    Restore {
        /// The backup archive.
        file: PathBuf,
        /// The target store URL (`sqlite:DIR` or `postgres://…`); it must be empty.
        #[arg(long)]
        to: Option<String>,
        /// Where the evidence files go, when not beside the events (a KurrentDB target needs one).
        #[arg(long)]
        to_state: Option<String>,
        /// The evidence directory of the target, when not the data directory's `evidence` folder.
        #[arg(long)]
        evidence_dir: Option<PathBuf>,
        /// Accept only a manifest signed by this public key (`ed25519:<hex>` or `sm2:<hex>`, as
        /// `ducha anchors public-key` prints it), kept apart from the backups.
        #[arg(long)]
        public_key: Option<String>,
        /// Accept an archive whose manifest is not signed (made before backups were signed).
        #[arg(long, conflicts_with = "public_key")]
        allow_unsigned: bool,
    },
    /// Print a district's roll-up table.
    Rollup {
        #[arg(long)]
        district: String,
        #[arg(long)]
        year: Option<i32>,
        /// Show the roll-up as it stood at this time (RFC 3339, e.g. 2024-01-01T00:00:00+08:00).
        #[arg(long, conflicts_with = "at_position")]
        as_of: Option<String>,
        /// Show the roll-up as it stood at this global log position.
        #[arg(long)]
        at_position: Option<u64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write an inspection's 督查报告 (DOCX, HTML or text), now or as of a past time or log position;
    /// `--issue --as USER` records it as issued (its SHA-256 and log position).
    Report(crate::documents::cli::ReportArgs),
    /// Write a sub-district's 整改台账 as an Excel workbook, filtered like the ledger screen.
    Ledger(crate::documents::cli::LedgerArgs),
    /// Write a district's 通报: sub-districts ranked by score, completion and timeliness.
    Circular(crate::documents::cli::CircularArgs),
    /// Import an existing 整改台账 (XLSX) into a sub-district: every row becomes a finding and its
    /// rectification with their original dates; nothing is written unless the whole file is valid.
    ImportLedger(crate::ledger_import::ImportLedgerArgs),
    /// 删除个人信息 (PIPL): destroy a person's key, so that their data reads 「已删除的个人信息」
    /// everywhere; the erasure is recorded and every chain still verifies. With SQLite, while no
    /// server holds the data directory (or use the API).
    ErasePerson(crate::personal::cli::EraseArgs),
    /// The personal-data master key and person keys.
    PersonalData {
        #[command(subcommand)]
        command: crate::personal::cli::PersonalDataCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum AnchorsCmd {
    /// Write every anchor, with the keys that signed them, as JSON.
    Export {
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the public key that verifies this deployment's anchors.
    PublicKey {
        /// TOML configuration file (for `anchor_key_file`).
        #[arg(long, env = "DUCHA_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create a platform account with one platform role (default: the platform admin); the password
    /// is read from the first line of standard input. This is how a deployment gets its three
    /// administrators (三员分立): `--role system_admin`, `--role security_admin`, `--role audit_admin`.
    Create {
        username: String,
        /// The name shown in the UI (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// The platform role to grant.
        #[arg(long, value_enum, default_value_t = PlatformRoleArg::PlatformAdmin)]
        role: PlatformRoleArg,
    },
}

/// The roles `ducha admin create` can grant (all platform-wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum PlatformRoleArg {
    /// 平台管理员: districts and sub-districts.
    PlatformAdmin,
    /// 系统管理员: accounts.
    SystemAdmin,
    /// 安全管理员: grants and the security policy.
    SecurityAdmin,
    /// 审计管理员: the security audit log.
    AuditAdmin,
}

impl From<PlatformRoleArg> for ducha_events::authz::Role {
    fn from(r: PlatformRoleArg) -> Self {
        use ducha_events::authz::Role;
        match r {
            PlatformRoleArg::PlatformAdmin => Role::PlatformAdmin,
            PlatformRoleArg::SystemAdmin => Role::SystemAdmin,
            PlatformRoleArg::SecurityAdmin => Role::SecurityAdmin,
            PlatformRoleArg::AuditAdmin => Role::AuditAdmin,
        }
    }
}

/// Parses arguments, runs the command, prints errors in Chinese and English, returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("错误：无法启动运行时 / cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("错误：{e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let sync: Synchronous = cli.synchronous.into();
    crate::store::location::configure_chain_hash(cli.chain_hash.map(ChainHash::from));
    let location = StoreLocation::from_flags(cli.store.as_deref(), &cli.data_dir, sync)?;
    match cli.command {
        Cmd::Demo => {
            let opened = crate::personal::open_store(&location, Access::Write).await?;
            let store = &*opened.store;
            let report = demo::load(store).await?;
            let model = projector::load_live(store).await?;
            projector::checkpoint(store, &model).await?;
            print!("{}", report.render(&location.display()));
            opened.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { json, anchors, public_key } => {
            let file = anchors.as_deref().map(read_anchors).transpose()?;
            let pinned = public_key.as_deref().map(parse_public_key).transpose()?;
            let opened = open(&location, Access::Read).await?;
            let report = verify::verify_all(&*opened.store).await?;
            let checked = match &file {
                Some(f) => Some(crate::anchors::check(&*opened.store, f, pinned.as_ref()).await?),
                None => None,
            };
            if json {
                let mut out = report.to_json();
                if let Some(c) = &checked {
                    out["anchors"] = serde_json::json!({
                        "ok": c.ok(),
                        "checked": c.checked,
                        "bad_signatures": c.bad_signatures,
                        "chain_hash_mismatch": c.chain_hash_mismatch,
                        "first_divergence": c.divergences.first().map(|d| d.to_string()),
                        "divergences": c.divergences,
                    });
                }
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", report.render());
                if let Some(c) = &checked {
                    print!("{}", render_anchor_check(c));
                }
            }
            let ok = report.ok() && checked.as_ref().is_none_or(crate::anchors::AnchorCheck::ok);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Cmd::Anchor { config } => {
            let config = crate::config::Config::load(config.as_deref(), &crate::config::FlagOverrides::default())?;
            let opened = open(&location, Access::Write).await?;
            let key = crate::anchors::AnchorKey::load(
                config.anchor_key_file.as_deref(),
                opened.data_dir(),
                config.anchor_algorithm,
            )?;
            let made = crate::anchors::anchor_all(&*opened.store, &key).await?;
            let public = key.public_key();
            for a in &made {
                println!("⚓ {}：第 {} 个事件，链头 {}", a.tenant, a.sequence, a.head_hash);
            }
            println!(
                "已签署 {} 个锚点（{}，密钥 {}） / {} anchors signed ({}, key {})",
                made.len(),
                public.algorithm.code(),
                public.key_id,
                made.len(),
                public.algorithm.code(),
                public.key_id
            );
            opened.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Anchors { command: AnchorsCmd::Export { out } } => {
            let opened = open(&location, Access::Read).await?;
            let file = crate::anchors::export(&*opened.store).await?;
            let text = serde_json::to_string_pretty(&file)?;
            match out {
                Some(path) => std::fs::write(&path, format!("{text}\n"))
                    .with_context(|| format!("无法写入文件 {} / cannot write the file", path.display()))?,
                None => println!("{text}"),
            }
            eprintln!("已导出 {} 个锚点 / exported {} anchors", file.anchors.len(), file.anchors.len());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Anchors { command: AnchorsCmd::PublicKey { config } } => {
            let config = crate::config::Config::load(config.as_deref(), &crate::config::FlagOverrides::default())?;
            let data_dir = location.data_dir().map(std::path::Path::to_path_buf);
            // Reading the key needs no store; a SQLite deployment's key is in its data directory.
            let generated = data_dir.as_deref().filter(|d| d.join(crate::anchors::key::GENERATED_KEY_FILE).is_file());
            if config.anchor_key_file.is_none() && generated.is_none() && data_dir.is_some() {
                bail!(
                    "数据目录中还没有锚点签名密钥（先运行 ducha anchor 或 ducha serve 生成） / no anchor key in the data \
                     directory yet (run ducha anchor or ducha serve first)"
                );
            }
            let key =
                crate::anchors::AnchorKey::load(config.anchor_key_file.as_deref(), generated, config.anchor_algorithm)?;
            println!("{}", serde_json::to_string_pretty(&key.public_key())?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay => {
            let opened = crate::personal::open_store(&location, Access::Write).await?;
            let store = &*opened.store;
            let total = store.head().await?;
            let bar = progress_bar(total, "事件");
            let started = std::time::Instant::now();
            let model = projector::rebuild(store, |n| bar.set_position(n)).await?;
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            projector::checkpoint(store, &model).await?;
            let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
            println!("已重建全部投影：{total} 个事件，用时 {secs:.2} 秒，{rate:.0} 事件/秒");
            println!("rebuilt all projections: {total} events in {secs:.2} s ({rate:.0} events/s)");
            opened.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Export { tenant, out } => {
            let tenant = TenantId::parse(tenant).context("租户编号无效 / invalid tenant id")?;
            let opened = open(&location, Access::Read).await?;
            let store = &*opened.store;
            let n = match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("无法创建文件 {} / cannot create file", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    let n = exchange::export(store, &tenant, &mut w).await?;
                    std::io::Write::flush(&mut w)?;
                    n
                }
                None => exchange::export(store, &tenant, &mut std::io::stdout().lock()).await?,
            };
            if n == 0 {
                bail!("租户 {tenant} 没有任何事件 / tenant has no events");
            }
            eprintln!("已导出 {n} 个事件 / exported {n} events");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Import { file } => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("无法打开导入文件 {} / cannot open the import file", file.display()))?;
            let opened = crate::personal::open_store(&location, Access::Write).await?;
            let store = &*opened.store;
            let n = exchange::import(store, std::io::BufReader::new(input)).await?;
            let model = projector::load_live(store).await?;
            projector::checkpoint(store, &model).await?;
            println!("已导入 {n} 个事件，哈希链校验通过 / imported {n} events, chain verified");
            opened.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Copy { from, to, from_state, to_state } => {
            copy(&from, &to, from_state.as_deref(), to_state.as_deref(), sync).await
        }
        Cmd::Backup { out, evidence_dir, config, unsigned } => {
            let key = if unsigned { None } else { Some(backup_key(config.as_deref(), &location)?) };
            let m = crate::backup::backup(&location, evidence_dir.as_deref(), &out, key.as_ref()).await?;
            println!(
                "已备份 {} 个事件（位置 {}，{} 个租户）与 {} 个佐证文件到 {} / backed up {} events (position {}) and {} \
                 evidence files",
                m.events,
                m.head_position,
                m.tenants.len(),
                m.evidence_files,
                out.display(),
                m.events,
                m.head_position,
                m.evidence_files
            );
            print!("{}", m.render_heads());
            match &key {
                Some(k) => {
                    let p = k.public_key();
                    println!(
                        "清单已用 {} 密钥 {} 签名 / manifest signed with {} key {}",
                        p.algorithm.code(),
                        p.key_id,
                        p.algorithm.code(),
                        p.key_id
                    );
                }
                None => println!("清单未签名（--unsigned） / manifest not signed (--unsigned)"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Restore { file, to, to_state, evidence_dir, public_key, allow_unsigned } => {
            let target = match to {
                Some(url) => StoreLocation::parse(&url, sync)?,
                None => location,
            };
            let trust = crate::backup::signature::Trust {
                pinned: public_key.as_deref().map(parse_public_key).transpose()?,
                allow_unsigned,
            };
            let r =
                crate::backup::restore(&file, &target, to_state.as_deref(), evidence_dir.as_deref(), &trust).await?;
            let m = &r.manifest;
            println!(
                "已恢复 {} 个事件与 {} 个佐证文件到 {}，哈希链校验通过，链头与备份清单一致 / restored {} events and {} \
                 evidence files; every chain verifies and ends on the manifest's heads",
                m.events,
                r.evidence_files,
                target.display(),
                m.events,
                r.evidence_files
            );
            print!("{}", m.render_heads());
            println!("{}", render_signed(&r.signed));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { listen, demo, config } => {
            crate::serve::run(&location, crate::serve::ServeArgs { listen, demo, config }).await
        }
        Cmd::Admin { command: AdminCmd::Create { username, display_name, role } } => {
            admin_create(&location, username, display_name, role.into()).await
        }
        Cmd::Openapi => {
            println!("{}", crate::api::openapi_document().to_pretty_json()?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Rollup { district, year, as_of, at_position, json } => {
            let district = DistrictId::parse(district).context("区编号无效 / invalid district id")?;
            let opened = open(&location, Access::Read).await?;
            let store = &*opened.store;
            let (upto, today) = match (as_of, at_position) {
                (Some(t), _) => {
                    let at = time::parse(&t).context("时间格式无效，应为 RFC 3339 / invalid time, use RFC 3339")?;
                    (Upto::Position(store.position_at(at).await?), time::local_date(&at))
                }
                (None, Some(p)) => (Upto::Position(p), time::local_date(&chrono::Utc::now())),
                (None, None) => (Upto::Head, time::local_date(&chrono::Utc::now())),
            };
            let model = match upto {
                Upto::Head => projector::load_live(store).await?,
                Upto::Position(_) => projector::as_of(store, upto, None).await?,
            };
            if model.directory().district(&district).is_none() {
                bail!("未找到区 {district}（在所选时间点） / no such district (at that point)");
            }
            let rollup = model.rollup(&district, &RollupQuery { year }, today, &WarningPolicy::default());
            if json {
                println!("{}", serde_json::to_string_pretty(&rollup)?);
            } else {
                print!("{}", crate::render::rollup_table(&rollup));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report(args) => {
            crate::documents::cli::report(&location, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ledger(args) => {
            crate::documents::cli::ledger(&location, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Circular(args) => {
            crate::documents::cli::circular(&location, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::ImportLedger(args) => {
            crate::ledger_import::cli(&location, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::ErasePerson(args) => crate::personal::cli::erase(&location, args).await,
        Cmd::PersonalData { command } => crate::personal::cli::personal_data(&location, command).await,
    }
}

/// Reads an anchors file; a clear error for a missing or malformed one.
fn read_anchors(path: &std::path::Path) -> anyhow::Result<crate::anchors::AnchorExport> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("无法读取锚点文件 {} / cannot read the anchors file", path.display()))?;
    let file: crate::anchors::AnchorExport = serde_json::from_str(&text)
        .with_context(|| format!("锚点文件格式无效：{} / not an anchors file", path.display()))?;
    if file.format != crate::anchors::EXPORT_FORMAT {
        bail!("锚点文件格式 {:?} 无法识别 / unknown anchors file format", file.format);
    }
    Ok(file)
}

/// The key that signs a backup's manifest: the configured `anchor_key_file`, or the SQLite data
/// directory's `anchor.key` (generated if absent, as `ducha serve` does). A shared store without a
/// configured key is refused rather than backed up unsigned without being asked.
fn backup_key(config: Option<&std::path::Path>, location: &StoreLocation) -> anyhow::Result<crate::anchors::AnchorKey> {
    let config = crate::config::Config::load(config, &crate::config::FlagOverrides::default())?;
    let data_dir = location.data_dir();
    if config.anchor_key_file.is_none() && data_dir.is_none() {
        bail!(
            "共享存储的备份需要签名密钥：在配置中设置 anchor_key_file（与各副本相同），或明确加 --unsigned / a backup of \
             a shared store needs the signing key: set anchor_key_file (the replicas' one), or pass --unsigned"
        );
    }
    Ok(crate::anchors::AnchorKey::load(config.anchor_key_file.as_deref(), data_dir, config.anchor_algorithm)?)
}

fn render_signed(signed: &crate::backup::signature::Signed) -> String {
    use crate::backup::signature::Signed;
    match signed {
        Signed::ByPinnedKey(p) => format!(
            "清单签名有效，签名密钥 {} 即指定公钥 / the manifest's signature verifies under the pinned key {}",
            p.key_id, p.key_id
        ),
        Signed::By(p) => format!(
            "清单签名有效（密钥 {}，{}），但未与指定公钥核对：请用 --public-key 确认签名者 / the manifest's signature \
             verifies (key {}), but no key was pinned: pass --public-key to check who signed it",
            p.key_id,
            p.algorithm.code(),
            p.key_id
        ),
        Signed::Unsigned => "清单未签名（--allow-unsigned） / the manifest is not signed (--allow-unsigned)".to_owned(),
    }
}

/// A pinned public key: `ed25519:<hex>`, `sm2:<hex>`, or bare hex (Ed25519 is 32 bytes, SM2 65).
fn parse_public_key(text: &str) -> anyhow::Result<crate::anchors::PublicKey> {
    use crate::anchors::AnchorAlgorithm;
    let text = text.trim();
    let (alg, hex) = match text.split_once(':') {
        Some((a, h)) => (AnchorAlgorithm::parse(a), h),
        None if text.len() == 64 => (Some(AnchorAlgorithm::Ed25519), text),
        None => (Some(AnchorAlgorithm::Sm2), text),
    };
    alg.and_then(|a| crate::anchors::PublicKey::from_parts(a, hex))
        .context("公钥无效（应为 ed25519:十六进制 或 sm2:十六进制） / not a valid public key")
}

fn render_anchor_check(c: &crate::anchors::AnchorCheck) -> String {
    let mut out = String::new();
    if let Some(m) = &c.chain_hash_mismatch {
        out.push_str(&format!("✗ {m}\n"));
    }
    for b in &c.bad_signatures {
        out.push_str(&format!("✗ {b}\n"));
    }
    for d in &c.divergences {
        out.push_str(&format!("✗ {d}\n"));
    }
    match c.divergences.first() {
        None if c.ok() => out.push_str(&format!(
            "锚点核对通过：{} 个锚点与现存历史一致 / all {} anchors match the live history\n",
            c.checked, c.checked
        )),
        None => out.push_str("锚点文件无法用于核对 / the anchors file cannot be trusted\n"),
        Some(d) => out.push_str(&format!(
            "历史与锚点不符，第一处：租户 {}，第 {} 个事件 / history differs from the anchors, first at tenant {} \
             sequence {}\n",
            d.tenant, d.sequence, d.tenant, d.sequence
        )),
    }
    out
}

fn progress_bar(total: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {unit} {{per_sec}} 剩余 {{eta}}"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// `ducha copy`: the events (verified in the target), then the evidence files, then a read-model
/// checkpoint in the target.
async fn copy(
    from: &str,
    to: &str,
    from_state: Option<&str>,
    to_state: Option<&str>,
    sync: Synchronous,
) -> anyhow::Result<ExitCode> {
    let from = StoreLocation::parse(from, sync)?;
    let to = StoreLocation::parse(to, sync)?;
    if from == to {
        bail!("源与目标是同一个存储 / the source and the target are the same store");
    }
    // Both sides need a home for evidence files before anything is copied.
    crate::server_state::home::check(&from, from_state)?;
    crate::server_state::home::check(&to, to_state)?;
    let source = open(&from, Access::Read).await?;
    let target = open(&to, Access::Write).await?;
    let total = source.store.head().await?;
    let bar = progress_bar(total, "事件");
    let started = std::time::Instant::now();
    let report = exchange::copy(&*source.store, &*target.store, |n| bar.set_position(n)).await?;
    bar.finish_and_clear();
    let files = copy_evidence(&source, from_state, &target, to_state).await?;
    let model = projector::load_live(&*target.store).await?;
    projector::checkpoint(&*target.store, &model).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "已复制 {} 个事件（{} 个租户）与 {files} 个佐证文件，{} → {}，哈希链校验通过，用时 {secs:.1} 秒",
        report.events,
        report.tenants,
        from.display(),
        to.display()
    );
    println!(
        "copied {} events of {} tenants and {files} evidence files; every chain verified",
        report.events, report.tenants
    );
    target.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The evidence files of the source deployment into the target's evidence store: each side's
/// `server_state` when given, else beside its events (the data directory's `evidence` folder, or
/// the PostgreSQL database). Each file is re-hashed on the way.
async fn copy_evidence(
    source: &crate::store::OpenedStore,
    source_state: Option<&str>,
    target: &crate::store::OpenedStore,
    target_state: Option<&str>,
) -> anyhow::Result<u64> {
    use crate::server_state::home;
    let from_home = home::open(source, source_state, None).await?;
    let to_home = home::open(target, target_state, None).await?;
    let (from, to) = (&from_home.state, &to_home.state);
    let scratch = tempfile::NamedTempFile::new().context("无法创建临时文件 / cannot create a temporary file")?;
    let mut n = 0;
    for (tenant, sha) in from.evidence.list().await? {
        let Some((bytes, meta)) = from.evidence.get(&tenant, &sha).await? else { continue };
        use sha2::Digest;
        if hex::encode(sha2::Sha256::digest(&bytes)) != sha {
            bail!("源中的佐证文件 {tenant}/{sha} 已损坏，未复制 / a source evidence file is corrupt");
        }
        let meta = meta.unwrap_or(crate::server_state::EvidenceMeta {
            filename: format!("{sha}.bin"),
            content_type: "application/octet-stream".into(),
            size: bytes.len() as u64,
        });
        std::fs::write(scratch.path(), &bytes).context("无法写临时文件 / cannot write a temporary file")?;
        to.evidence.put(&tenant, &sha, &meta, scratch.path()).await?;
        n += 1;
    }
    // The person keys travel with the data, still wrapped (the target needs the same master key).
    for key in from.person_keys.list().await? {
        to.person_keys.get_or_insert(&key).await?;
    }
    from_home.close().await;
    to_home.close().await;
    Ok(n)
}

/// `ducha admin create`: a platform account with one platform role, created by the system actor
/// through the platform aggregate like any other account (the domain's rules apply: no account holds
/// two of the three administrators' roles).
async fn admin_create(
    location: &StoreLocation,
    username: String,
    display_name: Option<String>,
    role: ducha_events::authz::Role,
) -> anyhow::Result<ExitCode> {
    use crate::commands::{self, CommandError, Meta};
    use ducha_events::authz::{Actor, Scope};
    use ducha_events::ids::UserId;
    use ducha_events::platform::PlatformCommand;
    use ducha_events::users::UserCommand;

    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("无法读取标准输入 / cannot read standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    let opened = crate::personal::open_store(location, Access::Write).await?;
    let store = &*opened.store;
    let model = projector::load_live(store).await?;
    // The security policy's password rules apply here too (the password is temporary: it must be
    // changed at the first login, unless the deployment runs the demo's policy).
    let policy = model.directory().security_policy();
    if let Err(e) = ducha_events::security::check_password(&policy, &username, password) {
        opened.close().await;
        bail!("{}（从标准输入读取第一行） / the password breaks the security policy: {e}", e.message_zh());
    }
    if model.directory().user_by_username(&username).is_some() {
        bail!("用户名“{username}”已存在 / the username is taken");
    }
    // The username is the id when it is a valid id (readable events); otherwise a fresh UUID.
    let user_id = UserId::parse(username.as_str())
        .ok()
        .filter(|id| !id.as_str().starts_with('_') && model.directory().user(id).is_none())
        .map_or_else(|| UserId::parse(uuid::Uuid::now_v7().to_string()), Ok)
        .context("无法生成用户编号 / cannot make a user id")?;
    let password_hash = crate::password::hash(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let meta = Meta::new(Actor::system(), chrono::Utc::now());
    let explain = |e: CommandError| match e {
        CommandError::Domain(d) => anyhow::anyhow!("{} / {d}", d.message_zh()),
        other => anyhow::anyhow!("{other}"),
    };
    let display_name = display_name.unwrap_or_else(|| username.clone());
    commands::platform(
        store,
        &meta,
        PlatformCommand::Users(UserCommand::CreateUser {
            user_id: user_id.clone(),
            username: username.clone(),
            display_name,
            password_hash,
        }),
    )
    .await
    .map_err(explain)?;
    commands::platform(
        store,
        &meta,
        PlatformCommand::Users(UserCommand::GrantRole { user_id: user_id.clone(), role, scope: Scope::Platform }),
    )
    .await
    .map_err(explain)?;
    let model = projector::load_live(store).await?;
    projector::checkpoint(store, &model).await?;
    opened.close().await;
    println!("已创建{} {username}（用户编号 {user_id}） / {} created", role.name_zh(), role.code());
    Ok(ExitCode::SUCCESS)
}
