//! Fresh stores for tests: a new SQLite file in a temporary folder, or a new schema in the
//! PostgreSQL database named by `TAGD_TEST_POSTGRES_URL`.
//!
//! Without that variable the PostgreSQL tests return early (a note is printed). With it, a
//! PostgreSQL that cannot be reached fails the test: CI sets it, so a missing database is a
//! failure there, never a silent skip.

use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use std::str::FromStr;
use std::sync::Arc;
use tagd_core::Store;
use tagd_postgres::{Layout, PgDriver, PgStore, VersionScheme};
use tagd_sql::SqlStore;
use tagd_sqlite::SqliteStore;

/// Name of the variable that turns the PostgreSQL tests on.
pub const POSTGRES_URL_VAR: &str = "TAGD_TEST_POSTGRES_URL";

/// Name of the variable that lays every PostgreSQL test schema out partitioned by `org_id`
/// into this many hash partitions (CI runs the PostgreSQL tests once this way: issue 17,
/// docs/SCALING.md).
pub const POSTGRES_PARTITIONS_VAR: &str = "TAGD_TEST_POSTGRES_PARTITIONS";

/// Name of the variable that makes every PostgreSQL test schema take change-log versions
/// from a counter per organization (`counter`, as a Citus cluster needs) instead of
/// transaction ids (`transaction-id`, the default).
pub const POSTGRES_LOG_VERSIONS_VAR: &str = "TAGD_TEST_POSTGRES_LOG_VERSIONS";

/// The version scheme [`POSTGRES_LOG_VERSIONS_VAR`] asks for.
pub fn postgres_version_scheme() -> VersionScheme {
    match std::env::var(POSTGRES_LOG_VERSIONS_VAR).as_deref() {
        Ok("counter") => VersionScheme::Counter,
        Ok("transaction-id") | Err(_) => VersionScheme::TransactionId,
        Ok(other) => panic!("{POSTGRES_LOG_VERSIONS_VAR}={other}: counter or transaction-id"),
    }
}

/// The layout [`POSTGRES_PARTITIONS_VAR`] asks for.
pub fn postgres_layout() -> Layout {
    match std::env::var(POSTGRES_PARTITIONS_VAR) {
        Ok(text) => Layout::HashPartitioned {
            partitions: text
                .parse()
                .unwrap_or_else(|_| panic!("{POSTGRES_PARTITIONS_VAR}={text} is not a count")),
        },
        Err(_) => Layout::Plain,
    }
}

pub struct Fixture {
    pub store: Arc<dyn Store>,
    /// The URL a `tagd` process would use to reach the same database.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(SqliteStore, tempfile::TempDir),
    Postgres(PgStore, String, String),
}

impl Fixture {
    /// Closes the store and removes what the test made.
    pub async fn cleanup(self) {
        match self.cleanup {
            Cleanup::Sqlite(store, dir) => {
                store.driver().close().await;
                drop(dir);
            }
            Cleanup::Postgres(store, url, schema) => {
                store.driver().close().await;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                    let drop_schema = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::query(&drop_schema).execute(&mut conn).await;
                }
            }
        }
    }
}

/// A store on a new SQLite file.
pub async fn sqlite() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("tagd.db").display());
    let store = tagd_sqlite::open(&url).await.expect("SQLite opens");
    Some(Fixture {
        store: Arc::new(store.clone()),
        url,
        cleanup: Cleanup::Sqlite(store, dir),
    })
}

/// A store on a new schema of the test PostgreSQL, or `None` when none is configured.
pub async fn postgres() -> Option<Fixture> {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("{POSTGRES_URL_VAR} is not set: PostgreSQL test not run");
        return None;
    };
    postgres_at(&url).await
}

/// A store on a new schema of the PostgreSQL at `url` (a proxy, say). The schema is dropped
/// through `TAGD_TEST_POSTGRES_URL` when set, so cleanup works even if `url` was cut.
pub async fn postgres_at(url: &str) -> Option<Fixture> {
    postgres_laid_out(url, postgres_layout()).await
}

/// A store on a new schema of the PostgreSQL at `url`, its tables laid out as `layout` says.
pub async fn postgres_laid_out(url: &str, layout: Layout) -> Option<Fixture> {
    let cleanup_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| url.to_owned());
    let url = url.to_owned();
    let schema = format!("tagd_test_{:016x}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={url} is set but unreachable: {e}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("schema created");
    let options = PgConnectOptions::from_str(&url)
        .expect("a valid PostgreSQL URL")
        .options([("search_path", schema.as_str())]);
    let mut driver = PgDriver::connect_with_layout(options, 8, layout)
        .await
        .expect("PostgreSQL store connects");
    if postgres_version_scheme() != VersionScheme::TransactionId {
        driver = driver
            .use_version_scheme(postgres_version_scheme())
            .await
            .expect("version scheme set");
    }
    let store = SqlStore::open(driver).await.expect("store opens");
    let separator = if url.contains('?') { '&' } else { '?' };
    let process_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    Some(Fixture {
        store: Arc::new(store.clone()),
        url: process_url,
        cleanup: Cleanup::Postgres(store, cleanup_url, schema),
    })
}
