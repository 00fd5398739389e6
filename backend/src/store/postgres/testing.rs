//! Throw-away databases for tests, on the server named by `DUCHA_TEST_POSTGRES_URL` (a URL whose user
//! may create databases; `cargo xtask test` starts a cluster and sets it).
//!
//! Without the variable a test prints one line saying it was skipped and why — unless
//! `DUCHA_REQUIRE_POSTGRES` is set (as `cargo xtask test` and CI do), when the missing server is a
//! failure, so a skipped backend never passes for a tested one.

use tokio_postgres::NoTls;

pub const URL_VAR: &str = "DUCHA_TEST_POSTGRES_URL";
pub const REQUIRE_VAR: &str = "DUCHA_REQUIRE_POSTGRES";

/// A fresh, empty database; dropped (with its connections) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the new database (same server and user as the admin URL).
    pub url: String,
    admin: String,
    name: String,
}

/// The admin URL, or `None` after printing why the test is skipped.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os(REQUIRE_VAR).is_none(),
                "{test}: {REQUIRE_VAR} is set but {URL_VAR} is not: no PostgreSQL to test against"
            );
            eprintln!("skipped: no PostgreSQL server (set {URL_VAR}; `cargo xtask test` starts one) — {test}");
            None
        }
    }
}

/// Replaces the database name of a PostgreSQL URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn admin_client(admin: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(admin, NoTls).await.unwrap_or_else(|e| panic!("cannot reach {URL_VAR}: {e}"));
    tokio::spawn(connection);
    client
}

impl TestDatabase {
    /// Creates a database on the test server, or `None` (test skipped) when there is none.
    pub async fn create(test: &str) -> Option<TestDatabase> {
        let admin = server_url(test)?;
        let name = format!("ducha_test_{}", uuid::Uuid::now_v7().simple());
        let client = admin_client(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE: {e}"));
        Some(TestDatabase { url: with_database(&admin, &name), admin, name })
    }

    /// [`TestDatabase::create`] from synchronous code (end-to-end tests).
    pub fn create_blocking(test: &str) -> Option<TestDatabase> {
        let test = test.to_owned();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(TestDatabase::create(&test))
        })
        .join()
        .unwrap_or_else(|_| panic!("creating a test database failed"))
    }

    /// Runs SQL on this database (set-up and tampering in tests), from synchronous code.
    pub fn execute_blocking(&self, sql: &str) {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let client = admin_client(&url).await;
                client.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            });
        })
        .join()
        .unwrap_or_else(|_| panic!("SQL on the test database failed"));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Its own thread and runtime: drop may run inside or outside a runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(connection);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_replaced() {
        use super::with_database;
        assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h:5/postgres?a=b", "x"), "postgres://u@h:5/x?a=b");
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
    }
}
