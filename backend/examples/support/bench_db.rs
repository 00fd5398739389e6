//! A throw-away database for a benchmark on a PostgreSQL server (included by the benchmarks with
//! `#[path]`; not an example of its own).

use ducha::store::postgres::testing::with_database;

/// A database for the benchmark on a PostgreSQL server, dropped when the benchmark ends.
pub struct BenchDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl BenchDatabase {
    pub async fn create(admin: &str) -> BenchDatabase {
        let name = format!("ducha_bench_{}", uuid::Uuid::now_v7().simple());
        let (client, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"))
            .await
            .expect("create");
        BenchDatabase { url: with_database(admin, &name), admin: admin.to_owned(), name }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        // Kept for further runs against it (e.g. `bench_projection --child-rebuild URL`).
        if std::env::var_os("BENCH_KEEP_DB").is_some() {
            eprintln!("kept {}", self.url);
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}
