//! A throw-away PostgreSQL cluster for the tests and benchmarks: Debian's `postgresql` (installed
//! when missing), `initdb` in a temporary directory, a free loopback port, stopped and deleted on
//! drop. `initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user.

use std::path::PathBuf;
use std::process::Command;

/// A running cluster; stopped and deleted when dropped.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication on loopback).
    pub url: String,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn ensure_installed() -> Result<PathBuf, String> {
    if let Some(bin) = find_bin() {
        return Ok(bin);
    }
    crate::step(
        "apt-get install postgresql",
        Command::new("sh")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-c", "apt-get update -qq && apt-get install -y -qq postgresql"]),
    )?;
    find_bin().ok_or_else(|| "postgresql was installed but no initdb was found under /usr/lib/postgresql".into())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Cluster {
    /// Starts a cluster. `durable`: `fsync` on (benchmarks) or off (tests, faster; the tests check
    /// the store's own settings, not the disk).
    pub fn start(durable: bool) -> Result<Cluster, String> {
        let bin = ensure_installed()?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("ducha-pg-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cluster = Cluster { bin, dir, as_postgres, url: String::new() };
        if as_postgres {
            let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&cluster.dir).status();
            if !chown.is_ok_and(|s| s.success()) {
                return Err(format!("cannot give {} to the postgres user", cluster.dir.display()));
            }
        }
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ],
        )?;
        let port = free_port()?;
        let fsync = if durable { "on" } else { "off" };
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync} -c full_page_writes={fsync} \
             -c max_connections=400 -c shared_buffers=256MB",
            cluster.dir.display()
        );
        let log = cluster.dir.join("postgres.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )?;
        cluster.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        eprintln!("==> PostgreSQL test cluster at {} (fsync {fsync}) in {}", cluster.url, cluster.dir.display());
        Ok(cluster)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).current_dir(&self.dir).output().map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
            Err(format!(
                "{tool} failed: {}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            ))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
