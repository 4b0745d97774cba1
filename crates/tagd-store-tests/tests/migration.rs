//! Migration 0004 turns the assignment history into the change log: every history row is
//! kept, in order, with versions 1..N per organization, and (on SQLite) the organization's
//! counter starts after them. Run on a database built with the migrations before it.

use sqlx::{Connection, Executor, Row};
use tagd_store_tests::harness::POSTGRES_URL_VAR;

const BEFORE_SQLITE: [&str; 3] = [
    include_str!("../../tagd-sqlite/migrations/0001_init.sql"),
    include_str!("../../tagd-sqlite/migrations/0002_idempotency.sql"),
    include_str!("../../tagd-sqlite/migrations/0003_security.sql"),
];
const CHANGE_LOG_SQLITE: &str = include_str!("../../tagd-sqlite/migrations/0004_change_log.sql");
const BEFORE_POSTGRES: [&str; 3] = [
    include_str!("../../tagd-postgres/migrations/0001_init.sql"),
    include_str!("../../tagd-postgres/migrations/0002_idempotency.sql"),
    include_str!("../../tagd-postgres/migrations/0003_security.sql"),
];
const CHANGE_LOG_POSTGRES: &str =
    include_str!("../../tagd-postgres/migrations/0004_change_log.sql");

/// Two organizations; in the first, one assignment assigned, re-assigned and removed, and
/// another assigned once; in the second, one assignment.
const HISTORY: &str = "
INSERT INTO organizations (id, corp_id, name, ctime) VALUES
  (1, '0123456789abcdef0123456789abcdef', 'Acme', 100),
  (2, 'fedcba9876543210fedcba9876543210', 'Other', 100);
INSERT INTO users (id, org_id, user_id, ctime) VALUES (1, 1, 'u1', 100), (2, 2, 'u1', 100);
INSERT INTO tag_groups (id, org_id, entity_id, name, variable_name, description, attribute,
  category, ctime, mtime) VALUES
  (1, 1, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'Spend', 'spend', '', 'number', 'c', 100, 100),
  (2, 1, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'VIP', 'vip', '', 'define', 'c', 100, 100),
  (3, 2, 'cccccccccccccccccccccccccccccccc', 'VIP', 'vip', '', 'define', 'c', 100, 100);
INSERT INTO tag_assignments (id, org_id, entity_id, user_ref, group_ref, number_value,
  define_value, executor_kind, executor_ref, executor_name, source, version, ctime, mtime,
  is_deleted) VALUES
  (1, 1, 'dddddddddddddddddddddddddddddddd', 1, 1, 2, NULL, 'app', 1, 'app1', 'open_api', 2,
   101, 103, TRUE),
  (2, 1, 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', 1, 2, NULL, TRUE, 'app', 1, 'app1', 'open_api', 0,
   102, 102, FALSE),
  (3, 2, 'ffffffffffffffffffffffffffffffff', 2, 3, NULL, TRUE, 'credential', 4, 'loyalty',
   'v2_api', 0, 104, 104, FALSE);
INSERT INTO assignment_history (id, org_id, assignment_ref, version, executor_kind,
  executor_ref, executor_name, source, old_value, new_value, at) VALUES
  (1, 1, 1, 0, 'app', 1, 'app1', 'open_api', NULL, '1', 101),
  (2, 1, 2, 0, 'app', 1, 'app1', 'open_api', NULL, 'True', 102),
  (3, 1, 1, 1, 'app', 1, 'app1', 'open_api', '1', '2', 102),
  (4, 2, 3, 0, 'credential', 4, 'loyalty', 'v2_api', NULL, 'True', 104),
  (5, 1, 1, 2, 'app', 1, 'app1', 'open_api', '2', NULL, 103);
";

const LOG: &str = "SELECT org_id, version, kind, assignment_ref, subject_version, \
     CAST(old_value AS TEXT) AS old_value, CAST(new_value AS TEXT) AS new_value, at \
     FROM change_log ORDER BY org_id, version";

type LogRow = (
    i64,
    i64,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    i64,
);

fn expected() -> Vec<LogRow> {
    let row = |org, version, kind: &str, a, v, old: Option<&str>, new: Option<&str>, at| {
        let text = |t: Option<&str>| t.map(str::to_owned);
        (
            org,
            version,
            kind.to_owned(),
            a,
            v,
            text(old),
            text(new),
            at,
        )
    };
    vec![
        row(1, 1, "tag.assigned", 1, 0, None, Some("1"), 101),
        row(1, 2, "tag.assigned", 2, 0, None, Some("True"), 102),
        row(1, 3, "tag.assigned", 1, 1, Some("1"), Some("2"), 102),
        row(1, 4, "tag.removed", 1, 2, Some("2"), None, 103),
        row(2, 1, "tag.assigned", 3, 0, None, Some("True"), 104),
    ]
}

fn log_row<R: Row>(row: &R) -> LogRow
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    (
        row.get("org_id"),
        row.get("version"),
        row.get("kind"),
        row.get("assignment_ref"),
        row.get("subject_version"),
        row.get("old_value"),
        row.get("new_value"),
        row.get("at"),
    )
}

#[tokio::test]
async fn on_sqlite_the_migration_keeps_every_history_row_as_a_log_entry() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("opens");
    for sql in BEFORE_SQLITE {
        conn.execute(sqlx::raw_sql(sql))
            .await
            .expect("earlier migration");
    }
    conn.execute(sqlx::raw_sql(HISTORY)).await.expect("history");
    conn.execute(sqlx::raw_sql(CHANGE_LOG_SQLITE))
        .await
        .expect("0004 applies");
    let rows = sqlx::query(LOG).fetch_all(&mut conn).await.expect("log");
    let log: Vec<LogRow> = rows.iter().map(log_row).collect();
    assert_eq!(log, expected());
    let counters: Vec<(i64, i64)> =
        sqlx::query_as("SELECT org_id, version FROM org_versions ORDER BY org_id")
            .fetch_all(&mut conn)
            .await
            .expect("counters");
    assert_eq!(
        counters,
        [(1, 4), (2, 1)],
        "the next version follows the copied ones"
    );
}

#[tokio::test]
async fn on_postgres_the_migration_keeps_every_history_row_as_a_log_entry() {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("{POSTGRES_URL_VAR} is not set: PostgreSQL test not run");
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connects");
    let schema = format!("tagd_migration_{:016x}", rand::random::<u64>());
    conn.execute(format!("CREATE SCHEMA {schema}; SET search_path TO {schema}").as_str())
        .await
        .expect("schema");
    for sql in BEFORE_POSTGRES {
        conn.execute(sqlx::raw_sql(sql))
            .await
            .expect("earlier migration");
    }
    conn.execute(sqlx::raw_sql(HISTORY)).await.expect("history");
    conn.execute(sqlx::raw_sql(CHANGE_LOG_POSTGRES))
        .await
        .expect("0004 applies");
    let rows = sqlx::query(LOG).fetch_all(&mut conn).await.expect("log");
    let log: Vec<LogRow> = rows.iter().map(log_row).collect();
    let head: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint << 20")
        .fetch_one(&mut conn)
        .await
        .expect("a transaction id");
    let _ = conn
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await;
    assert_eq!(log, expected());
    assert!(head > 4, "versions to come are above the copied ones");
}
