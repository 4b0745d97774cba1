//! The verification side of the crash test: with no server running, the store opened
//! directly and the database read with SQL must agree with what the client was told.

use super::*;

#[derive(Default)]
pub(super) struct Summary {
    pub(super) lost: usize,
    pub(super) duplicates: usize,
    pub(super) pending_with_effect: usize,
    pub(super) response_mismatches: usize,
    pub(super) problems: Vec<String>,
}

impl Summary {
    pub(super) fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    pub(super) fn assert_clean(&self) {
        assert!(
            self.problems.is_empty(),
            "{} problem(s): lost={} duplicates={} recorded_response_mismatches={}\n{}",
            self.problems.len(),
            self.lost,
            self.duplicates,
            self.response_mismatches,
            self.problems.join("\n")
        );
    }
}

/// Facts read with SQL while no server runs.
pub(super) struct Facts {
    /// Assignments whose user or group is missing.
    pub(super) orphans: i64,
    /// Assignments whose version is not their history count minus one.
    pub(super) version_mismatches: i64,
    /// History entries per user id (`u{i}`).
    pub(super) history: BTreeMap<String, i64>,
    /// Idempotency keys of the organization: key → (status, body).
    pub(super) keys: BTreeMap<String, (Option<i64>, Option<String>)>,
}

pub(super) const ORG_ID: &str = "SELECT id FROM organizations WHERE corp_id = $1";
pub(super) const ORPHANS: &str = "SELECT COUNT(*) FROM tag_assignments a \
     LEFT JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
     LEFT JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
     WHERE u.id IS NULL OR g.id IS NULL";
pub(super) const VERSION_MISMATCHES: &str = "SELECT COUNT(*) FROM tag_assignments a \
     WHERE a.version <> (SELECT COUNT(*) - 1 FROM change_log h \
                         WHERE h.org_id = a.org_id AND h.assignment_ref = a.id)";
pub(super) const HISTORY_PER_USER: &str = "SELECT u.user_id, COUNT(h.version) FROM change_log h \
     JOIN tag_assignments a ON a.org_id = h.org_id AND a.id = h.assignment_ref \
     JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
     WHERE h.org_id = $1 GROUP BY u.user_id";
pub(super) const KEYS: &str = "SELECT key, status, body FROM idempotency_keys WHERE org_id = $1";
/// Stands for the lease running out: open claims of the organization become abandoned.
pub(super) const EXPIRE_LEASES: &str =
    "UPDATE idempotency_keys SET locked_until = 0 WHERE org_id = $1 AND status IS NULL";

/// The same queries on either connection type.
macro_rules! read_facts {
    ($conn:expr, $org:expr) => {{
        let conn = $conn;
        let orphans = sqlx::query_scalar(ORPHANS)
            .fetch_one(&mut *conn)
            .await
            .expect("orphans");
        let version_mismatches = sqlx::query_scalar(VERSION_MISMATCHES)
            .fetch_one(&mut *conn)
            .await
            .expect("versions");
        let history: Vec<(String, i64)> = sqlx::query_as(HISTORY_PER_USER)
            .bind($org.0)
            .fetch_all(&mut *conn)
            .await
            .expect("history");
        let keys: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(KEYS)
            .bind($org.0)
            .fetch_all(&mut *conn)
            .await
            .expect("keys");
        Facts {
            orphans,
            version_mismatches,
            history: history.into_iter().collect(),
            keys: keys.into_iter().map(|(k, s, b)| (k, (s, b))).collect(),
        }
    }};
}

/// Runs `$body` on a new connection `$conn` to `$db` (of either type; SQLite read-only if asked),
/// closes it, and gives the body's value.
macro_rules! with_connection {
    ($db:expr, read_only: $read_only:expr, |$conn:ident| $body:expr) => {
        match $db {
            Db::Sqlite { url } => {
                let mut $conn = Db::sqlite(url, $read_only).await;
                let value = $body;
                $conn.close().await.expect("closed");
                value
            }
            Db::Postgres { url, .. } => {
                let mut $conn = Db::postgres(url).await;
                let value = $body;
                $conn.close().await.expect("closed");
                value
            }
        }
    };
}

impl Db {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres { .. } => "postgres",
        }
    }

    pub(super) fn url(&self) -> &str {
        match self {
            Db::Sqlite { url } | Db::Postgres { url, .. } => url,
        }
    }

    pub(super) async fn sqlite(url: &str, read_only: bool) -> sqlx::SqliteConnection {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .expect("SQLite URL")
            .read_only(read_only);
        sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("SQLite connects")
    }

    pub(super) async fn postgres(url: &str) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(url)
            .await
            .expect("PostgreSQL connects")
    }

    pub(super) async fn org_id(&self, corp_id: &str) -> OrgId {
        let id: i64 = with_connection!(self, read_only: true, |conn| {
            sqlx::query_scalar(ORG_ID)
                .bind(corp_id)
                .fetch_one(&mut conn)
                .await
        })
        .expect("the organization");
        OrgId(id)
    }

    pub(super) async fn facts(&self, org: OrgId) -> Facts {
        match self {
            Db::Sqlite { url } => {
                let mut conn = Db::sqlite(url, true).await;
                let facts = read_facts!(&mut conn, org);
                conn.close().await.expect("closed");
                facts
            }
            Db::Postgres { url, .. } => {
                let mut conn = Db::postgres(url).await;
                let schema: String = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(&mut conn)
                    .await
                    .expect("schema");
                assert!(
                    schema.starts_with("tagd_test_"),
                    "the fixture's schema: {schema}"
                );
                let facts = read_facts!(&mut conn, org);
                conn.close().await.expect("closed");
                facts
            }
        }
    }

    /// Makes every open claim of `org` abandoned; how many there were.
    pub(super) async fn expire_leases(&self, org: OrgId) -> usize {
        let done = with_connection!(self, read_only: false, |conn| {
            sqlx::query(EXPIRE_LEASES)
                .bind(org.0)
                .execute(&mut conn)
                .await
                .expect("leases expired")
                .rows_affected()
        });
        usize::try_from(done).expect("a count")
    }

    /// SQLite: `PRAGMA integrity_check` is `ok`. PostgreSQL: `bt_index_check` (amcheck, with
    /// `heapallindexed`) passes on every btree index of the schema (on a partitioned schema,
    /// every partition's: a partitioned index has no pages of its own). What was checked.
    pub(super) async fn integrity(&self) -> String {
        match self {
            Db::Sqlite { url } => {
                let store = tagd_sqlite::open(url).await.expect("SQLite opens");
                let verdict = store
                    .driver()
                    .integrity_check()
                    .await
                    .expect("integrity_check");
                store.driver().close().await;
                assert_eq!(verdict, "ok", "PRAGMA integrity_check");
                "integrity_check=ok".to_owned()
            }
            Db::Postgres { url, admin_url, .. } => {
                let mut conn = Db::postgres(url).await;
                let schema: String = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(&mut conn)
                    .await
                    .expect("schema");
                conn.close().await.expect("closed");
                let mut admin = Db::postgres(admin_url).await;
                sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
                    .execute(&mut admin)
                    .await
                    .expect("amcheck");
                let indexes: Vec<String> = sqlx::query_scalar(
                    "SELECT c.oid::regclass::text FROM pg_index i \
                     JOIN pg_class c ON c.oid = i.indexrelid \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     JOIN pg_am am ON am.oid = c.relam \
                     WHERE n.nspname = $1 AND am.amname = 'btree' \
                     AND c.relkind = 'i' ORDER BY 1",
                )
                .bind(&schema)
                .fetch_all(&mut admin)
                .await
                .expect("indexes");
                assert!(
                    indexes.len() >= 10,
                    "the schema's btree indexes: {indexes:?}"
                );
                for index in &indexes {
                    let check = format!(
                        "SELECT bt_index_check('{}'::regclass, true)",
                        index.replace('\'', "''")
                    );
                    sqlx::raw_sql(&check)
                        .execute(&mut admin)
                        .await
                        .unwrap_or_else(|e| panic!("bt_index_check({index}): {e}"));
                }
                admin.close().await.expect("closed");
                format!("amcheck_btree_indexes_ok={}", indexes.len())
            }
        }
    }
}

/// Before the leases expire: a pending write has had no second effect (at most one history
/// entry; tagd's design says none) and its key is still an open claim.
pub(super) fn check_pending(run: &Run, facts: &Facts, s: &mut Summary) {
    for (i, write) in run.writes.iter().enumerate() {
        if *write != Write::Pending {
            continue;
        }
        let entries = facts.history.get(&format!("u{i}")).copied().unwrap_or(0);
        if entries > 1 {
            s.duplicates += 1;
            s.problem(format!("duplicate: pending w{i} applied {entries} times"));
        }
        if entries == 1 {
            s.pending_with_effect += 1;
        }
        let key = facts.keys.get(&format!("w{i}"));
        if !matches!(key, Some((None, None))) {
            s.problem(format!(
                "pending w{i}: its key is {key:?}, not an open claim"
            ));
        }
    }
}

/// Through the store: every acknowledged write is live with its value, under the entity id
/// its answer named, with exactly one history entry; an unsent write left nothing.
pub(super) async fn check_store(db: &Db, run: &Run, org: OrgId, s: &mut Summary) {
    match db {
        Db::Sqlite { url } => {
            let store = tagd_sqlite::open(url).await.expect("SQLite opens");
            check_store_with(&store, run, org, s).await;
            store.driver().close().await;
        }
        Db::Postgres { store, .. } => check_store_with(store.as_ref(), run, org, s).await,
    }
}

pub(super) async fn check_store_with(store: &dyn Store, run: &Run, org: OrgId, s: &mut Summary) {
    let corp_id = CorpId::parse("corp_id", &run.tenant.corp_id).expect("corp_id");
    let found = store.find_org_by_corp_id(&corp_id).await.expect("query");
    assert_eq!(found.map(|o| o.id), Some(org), "the organization");
    for (i, write) in run.writes.iter().enumerate() {
        let user = UserId::parse(&format!("u{i}")).expect("user id");
        let live = store
            .list_user_assignments(org, &user)
            .await
            .expect("assignments");
        let mut entries = 0;
        for assignment in &live {
            entries += store
                .assignment_history(org, &assignment.entity_id)
                .await
                .expect("history")
                .len();
        }
        match write {
            Write::Acknowledged(body) => {
                let sent: Value = serde_json::from_slice(body).expect("JSON body");
                match live.as_slice() {
                    [] => {
                        s.lost += 1;
                        s.problem(format!("lost: acknowledged w{i} has no assignment"));
                    }
                    [a] => {
                        if a.value != TagValue::Number(i as f64) {
                            s.problem(format!("w{i}: value {:?}", a.value));
                        }
                        if sent["data"].as_str() != Some(a.entity_id.as_str()) {
                            s.problem(format!(
                                "w{i}: answered {} for {}",
                                sent["data"],
                                a.entity_id.as_str()
                            ));
                        }
                    }
                    more => s.problem(format!("w{i}: {} live assignments", more.len())),
                }
                if entries > 1 {
                    s.duplicates += 1;
                    s.problem(format!("duplicate: w{i} has {entries} history entries"));
                }
            }
            Write::Unsent => {
                if !live.is_empty() || entries != 0 {
                    s.problem(format!("stray: unsent w{i} has an assignment"));
                }
            }
            Write::NotDelivered | Write::Unanswered | Write::Pending => {
                s.problem(format!("w{i} left {write:?} after the last server"));
            }
        }
    }
}

/// With SQL: the references and versions hold, each acknowledged write has one history entry
/// and its key holds the response the client saw, byte for byte; unsent writes left no key.
pub(super) fn check_facts(run: &Run, facts: &Facts, s: &mut Summary) {
    if facts.orphans != 0 {
        s.problem(format!(
            "{} assignments without user or group",
            facts.orphans
        ));
    }
    if facts.version_mismatches != 0 {
        s.problem(format!(
            "{} assignments whose version is not count(history) - 1",
            facts.version_mismatches
        ));
    }
    for (i, write) in run.writes.iter().enumerate() {
        let entries = facts.history.get(&format!("u{i}")).copied().unwrap_or(0);
        let key = facts.keys.get(&format!("w{i}"));
        match write {
            Write::Acknowledged(body) => {
                if entries != 1 {
                    s.problem(format!(
                        "SQL: acknowledged w{i} has {entries} history entries"
                    ));
                }
                let body = String::from_utf8_lossy(body).into_owned();
                if key != Some(&(Some(200), Some(body.clone()))) {
                    s.response_mismatches += 1;
                    s.problem(format!("w{i}: recorded {key:?}, client saw {body}"));
                }
            }
            Write::Unsent => {
                if entries != 0 || key.is_some() {
                    s.problem(format!(
                        "stray: unsent w{i}: {entries} entries, key {key:?}"
                    ));
                }
            }
            Write::NotDelivered | Write::Unanswered | Write::Pending => {}
        }
    }
}
