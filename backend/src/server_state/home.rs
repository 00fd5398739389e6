//! Where a replica keeps its [`ServerState`]: beside the events by default (the SQLite data
//! directory's `api.db`, or the PostgreSQL database's tables), or in a home of its own named by
//! `server_state` (`DUCHA_SERVER_STATE`): `postgres://…` (any number of replicas) or `sqlite:DIR`
//! (one replica; the directory is locked like a data directory).
//!
//! A KurrentDB store holds events only, so `ducha serve` on one needs `server_state`; a KurrentDB
//! URL is refused as a home for the server state (it has no tables, no files and no leases).

use super::ServerState;
use crate::store::sqlite::Synchronous;
use crate::store::{self, Access, OpenedStore, StoreLocation};
use anyhow::bail;
use std::path::{Path, PathBuf};

/// The server state of a replica and what keeps it valid.
pub struct StateHome {
    pub state: ServerState,
    /// A directory where an HS256 key may be generated and kept (a SQLite home only).
    pub key_dir: Option<PathBuf>,
    /// Where it lives, for logs and `/readyz` (passwords redacted).
    pub display: String,
    /// A home of its own (`server_state`): its lock or pool, held while serving.
    own: Option<OpenedStore>,
}

impl std::fmt::Debug for StateHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateHome").field("display", &self.display).finish_non_exhaustive()
    }
}

impl StateHome {
    /// Releases a home of its own (its directory's lock, its pool).
    pub async fn close(self) {
        if let Some(own) = self.own {
            own.close().await;
        }
    }
}

/// Parses `server_state`: where it may live, or why not (before anything is opened).
pub fn parse(configured: &str) -> anyhow::Result<StoreLocation> {
    let location = StoreLocation::parse(configured.trim(), Synchronous::Full).map_err(|e| {
        anyhow::anyhow!("server_state 无效（应为 postgres://… 或 sqlite:目录）/ invalid server_state: {e}")
    })?;
    if let StoreLocation::KurrentDb { .. } = location {
        bail!(
            "server_state 不能是 KurrentDB：会话、幂等应答、登录锁定、佐证文件与租约需要 PostgreSQL 或 SQLite / \
             server_state cannot be KurrentDB (sessions, replies, lockouts, evidence and leases need PostgreSQL \
             or SQLite): {}",
            location.display()
        );
    }
    Ok(location)
}

/// Checks, before the store is opened, that a replica on `store` has a home for its state.
pub fn check(store: &StoreLocation, configured: Option<&str>) -> anyhow::Result<()> {
    match (store, configured.filter(|c| !c.trim().is_empty())) {
        (_, Some(c)) => parse(c).map(|_| ()),
        (StoreLocation::KurrentDb { .. }, None) => bail!(
            "KurrentDB 存储只保存事件：ducha serve 还需要 server_state（多副本用 DUCHA_SERVER_STATE=postgres://…，\
             单副本可用 sqlite:目录）/ a KurrentDB store holds events only: ducha serve also needs server_state \
             (DUCHA_SERVER_STATE=postgres://… for replicas, or sqlite:DIR for one): {}",
            store.display()
        ),
        (_, None) => Ok(()),
    }
}

/// The server state of the store's own home: `api.db` and `evidence_dir` (default: `evidence`) in
/// a data directory, or the PostgreSQL database's tables (evidence in `evidence_dir` when given,
/// else as rows). `None` for a KurrentDB store.
pub fn beside(opened: &OpenedStore, evidence_dir: Option<&Path>) -> anyhow::Result<Option<StateHome>> {
    let display = opened.location.display();
    if let Some(dir) = opened.data_dir() {
        let evidence = evidence_dir.map_or_else(|| dir.join("evidence"), Path::to_path_buf);
        let state = ServerState::sqlite(dir, &evidence)?;
        return Ok(Some(StateHome { state, key_dir: Some(dir.to_owned()), display, own: None }));
    }
    if let Some(pg) = &opened.postgres {
        let state = ServerState::postgres(pg.pool().clone(), evidence_dir);
        return Ok(Some(StateHome { state, key_dir: None, display, own: None }));
    }
    Ok(None)
}

/// Opens the server state for a replica of `store`: `configured` (`server_state`) when given,
/// else beside the events.
pub async fn open(
    store: &OpenedStore,
    configured: Option<&str>,
    evidence_dir: Option<&Path>,
) -> anyhow::Result<StateHome> {
    check(&store.location, configured)?;
    let location = configured.filter(|c| !c.trim().is_empty()).map(parse).transpose()?;
    // Not configured, or the same place as the events: beside them, without opening it twice.
    let Some(location) = location.filter(|l| *l != store.location) else {
        return match beside(store, evidence_dir)? {
            Some(home) => Ok(home),
            None => bail!("内部错误：存储没有存放服务器状态之处 / the store has no home for the server state"),
        };
    };
    let own = store::location::open(&location, Access::Write).await?;
    let Some(mut home) = beside(&own, evidence_dir)? else {
        bail!("内部错误：server_state 没有存放之处 / server_state has no home");
    };
    home.own = Some(own);
    Ok(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KDB: &str = "kurrentdb://admin:changeit@127.0.0.1:1?tls=false";

    #[test]
    fn a_kurrentdb_store_needs_a_home_for_the_state() {
        let kdb = StoreLocation::parse(KDB, Synchronous::Full).unwrap();
        let m = check(&kdb, None).unwrap_err().to_string();
        assert!(m.contains("server_state") && m.contains("DUCHA_SERVER_STATE") && !m.contains("changeit"), "{m}");
        assert!(check(&kdb, Some("   ")).is_err(), "blank is not given");
        check(&kdb, Some("postgres://u:p@db/ducha")).unwrap();
        check(&kdb, Some("sqlite:/var/lib/ducha-state")).unwrap();
        // The other stores have their own home; a configured one is still checked.
        let sqlite = StoreLocation::parse("sqlite:./data", Synchronous::Full).unwrap();
        check(&sqlite, None).unwrap();
        assert!(check(&sqlite, Some("mysql://x")).is_err());
    }

    #[test]
    fn kurrentdb_is_no_home_for_the_state() {
        let m = parse(KDB).unwrap_err().to_string();
        assert!(m.contains("cannot be KurrentDB") && !m.contains("changeit"), "{m}");
        let m = parse("ftp://somewhere").unwrap_err().to_string();
        assert!(m.contains("invalid server_state"), "{m}");
    }

    #[tokio::test]
    async fn a_sqlite_home_of_its_own_is_locked_and_keeps_the_key() {
        let events = tempfile::tempdir().unwrap();
        let state_dir = tempfile::tempdir().unwrap();
        let loc = StoreLocation::parse(&format!("sqlite:{}", events.path().display()), Synchronous::Full).unwrap();
        let opened = store::location::open(&loc, Access::Write).await.unwrap();
        let configured = format!("sqlite:{}", state_dir.path().display());
        let home = open(&opened, Some(&configured), None).await.unwrap();
        assert_eq!(home.key_dir.as_deref(), Some(state_dir.path()));
        assert_eq!(home.state.kind, "sqlite");
        assert!(state_dir.path().join("api.db").is_file(), "the state is in its own directory");
        // A second replica cannot share a SQLite home.
        let other = tempfile::tempdir().unwrap();
        let loc2 = StoreLocation::parse(&format!("sqlite:{}", other.path().display()), Synchronous::Full).unwrap();
        let opened2 = store::location::open(&loc2, Access::Write).await.unwrap();
        let err = open(&opened2, Some(&configured), None).await.unwrap_err().to_string();
        assert!(err.contains(&state_dir.path().display().to_string()), "{err}");
        home.close().await;
        // Released: now it opens.
        open(&opened2, Some(&configured), None).await.unwrap().close().await;
        // The store's own directory named again is the default, not a second lock on it.
        let same = format!("sqlite:{}", events.path().display());
        let home = open(&opened, Some(&same), None).await.unwrap();
        assert_eq!(home.key_dir.as_deref(), Some(events.path()));
    }
}
