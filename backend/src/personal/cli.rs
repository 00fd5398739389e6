//! `ducha erase-person` and `ducha personal-data …`.

use super::erase::{self, Whom};
use crate::commands::Meta;
use crate::store::{Access, StoreLocation};
use anyhow::{Context, bail};
use ducha_events::authz::Actor;
use ducha_events::ids::{TenantId, UserId};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// An account: its name, phone number and the addresses in its security records.
    #[arg(long, conflicts_with_all = ["tenant", "name"])]
    pub user: Option<String>,
    /// With `--name`: the sub-district whose records name the person.
    #[arg(long, requires = "name")]
    pub tenant: Option<String>,
    /// A person named in the sub-district's records (责任人, 参加人员), exactly as written.
    #[arg(long, requires = "tenant")]
    pub name: Option<String>,
    /// Why (e.g. the request's reference); recorded, so never the person's name.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum PersonalDataCmd {
    /// Print a new master key (`ducha-pii-1:<hex>`) to put in `personal_data_key_file`.
    NewKey,
    /// Whether personal data is sealed here, the cipher, the master key's id, the keys and erasures.
    Status,
}

pub async fn erase(location: &StoreLocation, args: EraseArgs) -> anyhow::Result<ExitCode> {
    let whom = match (args.user, args.tenant, args.name) {
        (Some(u), None, None) => Whom::User(UserId::parse(u).context("用户编号无效 / invalid user id")?),
        (None, Some(t), Some(n)) if !n.trim().is_empty() => Whom::Name {
            tenant: TenantId::parse(t).context("街道编号无效 / invalid tenant id")?,
            name: n.trim().to_owned(),
        },
        _ => bail!("请给出 --user，或 --tenant 与 --name / give --user, or --tenant and --name"),
    };
    let opened = super::open_store(location, Access::Write).await?;
    let Some(keys) = opened.keys.clone() else {
        bail!(
            "本部署未配置个人信息主密钥，个人信息未加密保存，无法按密钥删除 / personal data is not sealed here \
             (no personal_data_key_file)"
        );
    };
    let meta = Meta::new(Actor::system(), crate::clock::now());
    let done = match erase::erase(&*opened.store, &keys, &meta, &whom, &args.reason).await {
        Ok(d) => d,
        Err(e) => {
            opened.close().await;
            bail!("{e}");
        }
    };
    // The checkpoint held what was erased: fold again and replace it now.
    let model = crate::projector::rebuild(&*opened.store, |_| {}).await?;
    crate::projector::checkpoint(&*opened.store, &model).await?;
    println!(
        "已删除：密钥 {}，删除记录位于日志位置 {}；各哈希链不变 / erased: key {} destroyed, recorded at position {}",
        done.key_ids.join(", "),
        done.outcome.last_position,
        done.key_ids.join(", "),
        done.outcome.last_position
    );
    opened.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn personal_data(location: &StoreLocation, cmd: PersonalDataCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PersonalDataCmd::NewKey => {
            print!("{}", super::MasterKey::generate_text()?);
        }
        PersonalDataCmd::Status => {
            let opened = super::open_store(location, Access::Read).await?;
            match &opened.keys {
                Some(k) => {
                    let n = k.vault().list().await?.len();
                    println!("个人信息：已加密 / personal data: sealed");
                    println!("  算法 / cipher: {}", k.cipher().code());
                    println!("  主密钥 / master key id: {}", k.master_id());
                    println!("  个人密钥 / person keys: {n}");
                }
                None => println!("个人信息：未加密（未配置 personal_data_key_file） / personal data: NOT sealed"),
            }
            opened.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
