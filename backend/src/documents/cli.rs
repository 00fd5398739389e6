//! `ducha report`, `ducha ledger` and `ducha circular`: arguments and handlers (wired in
//! [`crate::cli`]).
//!
//! `report --issue` records `ReportIssued` as the user named by `--as` (a sub-district admin of the
//! tenant, with the grants they hold now): issuing is an act of the committee, so the record names an
//! accountable person, exactly as the API records the logged-in admin. Whoever runs the command
//! line has the store anyway; `--as` only says on whose behalf.

use super::{DocumentError, Snapshot, When, circular, ledger};
use crate::commands::{self, Meta};
use crate::projector;
use crate::store::{Access, StoreLocation};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use ducha_events::event::DocumentFormat;
use ducha_events::ids::{CommunityId, DistrictId, InspectionId, TenantId};
use ducha_events::inspection::InspectionCommand;
use ducha_events::projection::{LedgerFilter, RectificationStatus, WarningLevel, WarningPolicy};
use ducha_events::time;
use std::path::{Path, PathBuf};

/// When the document is of: now, `--as-of TIME` or `--at-position N`.
#[derive(Debug, Clone, Args)]
pub struct WhenArgs {
    /// As the log stood at this time (RFC 3339, e.g. 2024-01-01T00:00:00+08:00).
    #[arg(long, conflicts_with = "at_position")]
    pub as_of: Option<String>,
    /// As the log stood at this global position (an issued report's `log_position`).
    #[arg(long)]
    pub at_position: Option<u64>,
}

impl WhenArgs {
    fn when(&self) -> anyhow::Result<When> {
        Ok(match (&self.as_of, self.at_position) {
            (Some(t), _) => When::AsOf(
                time::parse(t).context("时间格式无效，应为 RFC 3339（如 2024-01-01T00:00:00+08:00） / invalid time")?,
            ),
            (None, Some(p)) => When::AtPosition(p),
            (None, None) => When::Now,
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Docx,
    Html,
    Txt,
}

impl From<ReportFormat> for DocumentFormat {
    fn from(f: ReportFormat) -> Self {
        match f {
            ReportFormat::Docx => DocumentFormat::Docx,
            ReportFormat::Html => DocumentFormat::Html,
            ReportFormat::Txt => DocumentFormat::Txt,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub inspection: String,
    #[command(flatten)]
    pub when: WhenArgs,
    #[arg(long, value_enum, default_value_t = ReportFormat::Docx)]
    pub format: ReportFormat,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// Record that this report was issued (`ReportIssued` with its SHA-256 and log position).
    #[arg(long, requires = "issued_by")]
    pub issue: bool,
    /// With `--issue`: the username of the sub-district admin who issues it.
    #[arg(long = "as", value_name = "USERNAME", requires = "issue")]
    pub issued_by: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CircularFormat {
    Xlsx,
    Docx,
    Html,
    Txt,
}

#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    #[arg(long)]
    pub tenant: String,
    /// Only this community's findings (community id).
    #[arg(long)]
    pub community: Option<String>,
    /// Only this finding category (code).
    #[arg(long)]
    pub category: Option<String>,
    /// Only this status: unassigned, assigned, in_progress, submitted, returned, verified, dismissed.
    #[arg(long)]
    pub status: Option<String>,
    /// Only this warning level: red, yellow, blue, green.
    #[arg(long)]
    pub warning: Option<String>,
    /// Only findings of this inspection.
    #[arg(long)]
    pub inspection: Option<String>,
    /// Only findings of inspections of this year.
    #[arg(long)]
    pub year: Option<i32>,
    #[command(flatten)]
    pub when: WhenArgs,
    /// Output file (.xlsx).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CircularArgs {
    #[arg(long)]
    pub district: String,
    #[arg(long)]
    pub year: Option<i32>,
    #[command(flatten)]
    pub when: WhenArgs,
    #[arg(long, value_enum)]
    pub format: CircularFormat,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
}

fn write_out(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("输出路径 {} 是目录，请给出文件名 / the output path is a directory", path.display());
    }
    std::fs::write(path, bytes).with_context(|| format!("无法写入文件 {} / cannot write the file", path.display()))
}

pub async fn report(location: &StoreLocation, args: ReportArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(args.tenant).context("街道编号无效 / invalid tenant id")?;
    let inspection = InspectionId::parse(args.inspection).context("督查编号无效 / invalid inspection id")?;
    let when = args.when.when()?;
    let opened = crate::personal::open_store(location, if args.issue { Access::Write } else { Access::Read }).await?;
    let store = &*opened.store;
    let now = chrono::Utc::now();
    let report = super::generate_report(store, &tenant, &inspection, when, args.format.into(), now).await?;
    write_out(&args.out, &report.bytes)?;
    println!("已生成督查报告 {}：{}", args.out.display(), report.title);
    println!("report written: sha256 {} log position {}", report.sha256, report.log_position);
    let live = projector::load_live(store).await?;
    if let Some(note) = super::erasure_note(&live, &tenant, &inspection, &report) {
        eprintln!("注意：{} / note: {}", note.chinese(), note.english());
    }
    if args.issue {
        let username = args.issued_by.unwrap_or_default();
        let user = live
            .directory()
            .user_by_username(&username)
            .with_context(|| format!("未找到用户 {username} / no such user"))?;
        if user.disabled {
            bail!("用户 {username} 已停用 / the user is disabled");
        }
        // Signed with the anchors' key when there is one (as the API does).
        let config = crate::config::Config::load(None, &crate::config::FlagOverrides::default())?;
        let signature = crate::anchors::AnchorKey::load(
            config.anchor_key_file.as_deref(),
            opened.data_dir(),
            config.anchor_algorithm,
        )
        .ok()
        .map(|k| {
            crate::anchors::sign_report(
                &k,
                tenant.as_str(),
                inspection.as_str(),
                &report.sha256,
                report.log_position,
                report.format.code(),
            )
        });
        let cmd = InspectionCommand::IssueReport {
            sha256: report.sha256.clone(),
            log_position: report.log_position,
            as_of: report.as_of.clone(),
            format: report.format,
            signature,
        };
        let done = commands::inspection(store, &Meta::new(user.actor(), now), &tenant, &inspection, cmd)
            .await
            .context("签发未记录 / the report was not recorded as issued")?;
        println!(
            "已签发：签发人 {}，记录于日志位置 {} / issued, recorded at log position {}",
            user.display_name, done.outcome.last_position, done.outcome.last_position
        );
    }
    opened.close().await;
    Ok(())
}

fn parse_code<T: Copy>(what: &str, value: &str, all: &[T], code: impl Fn(T) -> &'static str) -> anyhow::Result<T> {
    all.iter().copied().find(|v| code(*v) == value).with_context(|| {
        let valid: Vec<&str> = all.iter().map(|v| code(*v)).collect();
        format!("{what}“{value}”无效，可选：{} / invalid {what}", valid.join(", "))
    })
}

pub async fn ledger(location: &StoreLocation, args: LedgerArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(args.tenant).context("街道编号无效 / invalid tenant id")?;
    let filter = LedgerFilter {
        community: args.community.map(CommunityId::parse).transpose().context("社区编号无效 / invalid community id")?,
        category: args.category,
        status: args
            .status
            .map(|s| parse_code("完成情况", &s, &RectificationStatus::ALL, RectificationStatus::code))
            .transpose()?,
        warning: args.warning.map(|s| parse_code("预警", &s, &WarningLevel::ALL, WarningLevel::code)).transpose()?,
        inspection: args
            .inspection
            .map(InspectionId::parse)
            .transpose()
            .context("督查编号无效 / invalid inspection id")?,
        year: args.year,
    };
    let when = args.when.when()?;
    let opened = crate::personal::open_store(location, Access::Read).await?;
    let snap = Snapshot::take(&*opened.store, when, Some(&tenant), chrono::Utc::now()).await?;
    let bytes = ledger::xlsx(&snap.model, &tenant, snap.today, &WarningPolicy::default(), &filter)?
        .ok_or_else(|| DocumentError::UnknownTenant(tenant.to_string()))?;
    write_out(&args.out, &bytes)?;
    println!("已生成整改台账 {}（截至 {}） / ledger written", args.out.display(), snap.today);
    Ok(())
}

pub async fn circular(location: &StoreLocation, args: CircularArgs) -> anyhow::Result<()> {
    let district = DistrictId::parse(args.district).context("区编号无效 / invalid district id")?;
    let when = args.when.when()?;
    let opened = crate::personal::open_store(location, Access::Read).await?;
    let snap = Snapshot::take(&*opened.store, when, None, chrono::Utc::now()).await?;
    let data = circular::gather(&snap.model, &district, args.year, snap.today, &WarningPolicy::default())
        .ok_or_else(|| DocumentError::UnknownDistrict(district.to_string()))?;
    let bytes = match args.format {
        CircularFormat::Xlsx => circular::xlsx(&data)?,
        CircularFormat::Docx => super::render(&circular::document(&data), DocumentFormat::Docx)?,
        CircularFormat::Html => super::render(&circular::document(&data), DocumentFormat::Html)?,
        CircularFormat::Txt => super::render(&circular::document(&data), DocumentFormat::Txt)?,
    };
    write_out(&args.out, &bytes)?;
    println!("已生成通报 {}（截至 {}） / circular written", args.out.display(), snap.today);
    Ok(())
}
