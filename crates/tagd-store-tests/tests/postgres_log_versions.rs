//! `tagd log-versions` on PostgreSQL: a database switched between transaction-id versions and
//! a counter per organization (the scheme a Citus cluster needs, docs/SCALING.md) keeps every
//! organization's versions increasing across each switch, its log whole and in order, and a
//! server that connects afterwards makes versions the new way.

use std::sync::Arc;
use tagd_core::{Recorder, Store};
use tagd_postgres::{PgDriver, VersionScheme};
use tagd_sql::SqlStore;
use tagd_store_tests::harness::postgres;
use tagd_store_tests::suite::{assign_command, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_log_versions_keeps_every_organizations_versions_increasing() {
    let Some(fixture) = postgres().await else {
        return;
    };
    let first: Arc<dyn Store> = fixture.store.clone();
    let w = world(&first, "Acme").await;
    let org = w.org.id;
    let mut versions = Vec::new();
    let write = |store: Arc<dyn Store>, value: i64| {
        let command = assign_command(&w.number, "u1", &value.to_string());
        async move {
            let written = store.assign(org, &command, &Recorder::none()).await;
            written.expect("assigned");
            store.log_head(org).await.expect("head")
        }
    };
    versions.push(write(first.clone(), 1).await);

    for (step, scheme) in [
        VersionScheme::Counter,
        VersionScheme::TransactionId,
        VersionScheme::Counter,
    ]
    .into_iter()
    .enumerate()
    {
        let driver = PgDriver::connect(&fixture.url).await.expect("connects");
        let driver = driver.use_version_scheme(scheme).await.expect("switched");
        let store: Arc<dyn Store> = Arc::new(SqlStore::open(driver).await.expect("opens"));
        for value in 0..2 {
            versions.push(write(store.clone(), (step * 10) as i64 + value).await);
        }
        let later = PgDriver::connect(&fixture.url).await.expect("connects");
        assert_eq!(
            tagd_sql::Driver::version_scheme(&later),
            scheme,
            "a server started after the switch reads it"
        );
        later.close().await;
    }
    assert!(
        versions.windows(2).all(|pair| pair[0] < pair[1]),
        "versions increase across every switch: {versions:?}"
    );
    let log = first.read_log(org, 0, 100).await.expect("log read");
    let logged: Vec<i64> = log.entries.iter().map(|e| e.version).collect();
    assert!(
        logged.windows(2).all(|pair| pair[0] < pair[1]),
        "{logged:?}"
    );
    for version in &versions {
        assert!(
            logged.contains(version),
            "{version} is in the log: {logged:?}"
        );
    }
    fixture.cleanup().await;
}
