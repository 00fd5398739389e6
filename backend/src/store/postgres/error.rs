//! PostgreSQL errors → [`StoreError`], with messages an operator can act on.

use crate::store::StoreError;
use tokio_postgres::error::SqlState;

/// The name of the unique constraint a statement violated, if that is what failed.
pub fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or(""))
}

/// Whether the connection is gone or unusable (reconnect, and treat an unanswered commit as unknown).
pub fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c.starts_with("57P") || c == "53300"
        }
    }
}

pub fn pg_err(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed (refused, closed, timed out, TLS).
        return StoreError::Unavailable(format!("PostgreSQL: {}", describe(&e)));
    };
    let message = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned());
    match code.code() {
        "28P01" | "28000" => StoreError::Unavailable(format!("PostgreSQL refused the login: {message}")),
        "3D000" => StoreError::Io(format!("PostgreSQL: {message} (create the database first)")),
        "42501" => StoreError::Io(format!("PostgreSQL: permission denied: {message}")),
        "53100" => StoreError::StorageFull(format!("PostgreSQL: disk full: {message}")),
        "25006" => StoreError::ReadOnly,
        c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
            StoreError::Unavailable(format!("PostgreSQL: {message}"))
        }
        _ => StoreError::Io(format!("PostgreSQL ({}): {message}", code.code())),
    }
}

/// The error and its sources on one line (tokio-postgres puts the useful part in the source).
fn describe(e: &tokio_postgres::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

pub fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_err(e),
        other => StoreError::Unavailable(format!("PostgreSQL connection pool: {other}")),
    }
}
