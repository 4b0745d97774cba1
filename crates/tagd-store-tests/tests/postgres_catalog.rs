//! The schema, read from PostgreSQL's catalog, against the rule a distribution by organization
//! (Citus, docs/SCALING.md; issue 17) needs: every key of an organization-owned
//! table contains `org_id`, so each row and each uniqueness check lives on one shard. The
//! exceptions are listed here with their reason, so a new one fails this test until it is
//! decided.

use sqlx::{Connection, Row};
use tagd_postgres::{Layout, UNPARTITIONED_TABLES};
use tagd_store_tests::harness::{postgres, postgres_layout};

/// Tables without `org_id`: reference tables on Citus (copied to every node).
const GLOBAL_TABLES: [&str; 2] = ["organizations", "settings"];

/// Unique keys of organization-owned tables without `org_id`: authentication looks these up
/// before it knows the organization (the `X-APP-ID` header, the v2 Basic user name, the
/// Bearer token's hash). On Citus they need a lookup distributed by that key, or the tables
/// as reference tables.
const LOGIN_KEYS: [&str; 3] = [
    "apps: UNIQUE (app_id)",
    "basic_credentials: UNIQUE (username)",
    "tokens: UNIQUE (token_hash)",
];

/// `table: definition` of each constraint of `kinds` (`p`, `u`, `f`) on a table with an
/// `org_id` column that does not contain `org_id`, plus unique indexes that are not
/// constraints, in the test's schema.
const KEYS_WITHOUT_ORG: &str = "
    SELECT c.relname || ': ' || pg_get_constraintdef(con.oid) AS key
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    WHERE c.relnamespace = current_schema()::regnamespace
      AND con.contype = ANY ($1)
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id')
      AND NOT EXISTS (SELECT 1 FROM unnest(con.conkey) k
                      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k
                      WHERE a.attname = 'org_id')
    UNION ALL
    SELECT t.relname || ': ' || pg_get_indexdef(x.indexrelid)
    FROM pg_index x
    JOIN pg_class t ON t.oid = x.indrelid
    WHERE t.relnamespace = current_schema()::regnamespace
      AND x.indisunique AND 'u' = ANY ($1)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid)
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'org_id')
      AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey) k
                      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k
                      WHERE a.attname = 'org_id')
    ORDER BY 1";

#[tokio::test]
async fn every_key_of_an_organization_owned_table_contains_org_id_but_the_login_keys() {
    let Some(fixture) = postgres().await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&fixture.url)
        .await
        .expect("connects");
    let keys = |kinds: &'static [&'static str]| {
        sqlx::query(KEYS_WITHOUT_ORG).bind(kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>())
    };
    let rows = keys(&["p", "f"])
        .fetch_all(&mut conn)
        .await
        .expect("catalog read");
    let missing: Vec<String> = rows.iter().map(|r| r.get("key")).collect();
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "primary and foreign keys without org_id"
    );
    let rows = keys(&["u"])
        .fetch_all(&mut conn)
        .await
        .expect("catalog read");
    let unique: Vec<String> = rows.iter().map(|r| r.get("key")).collect();
    assert_eq!(unique, LOGIN_KEYS, "unique keys without org_id");

    let rows = sqlx::query(
        "SELECT c.relname FROM pg_class c \
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') \
         AND c.relname <> '_sqlx_migrations' \
         AND NOT EXISTS (SELECT 1 FROM pg_attribute a \
                         WHERE a.attrelid = c.oid AND a.attname = 'org_id') \
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("catalog read");
    let global: Vec<String> = rows.iter().map(|r| r.get("relname")).collect();
    assert_eq!(global, GLOBAL_TABLES, "tables without org_id");

    // In CI's partitioned-schema run, PostgreSQL has checked every key above against the
    // partition column as it created the tables; only the global and login tables stay whole.
    if postgres_layout() != Layout::Plain {
        let rows = sqlx::query(
            "SELECT relname FROM pg_class \
             WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' \
             AND NOT relispartition AND relname <> '_sqlx_migrations' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("catalog read");
        let whole: Vec<String> = rows.iter().map(|r| r.get("relname")).collect();
        let mut expected = UNPARTITIONED_TABLES.map(str::to_owned).to_vec();
        expected.sort();
        assert_eq!(whole, expected, "tables not partitioned by org_id");
    }
    drop(conn);
    fixture.cleanup().await;
}
