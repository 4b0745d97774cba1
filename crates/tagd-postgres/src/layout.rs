//! How the schema's tables are laid out: plain (the default), or every organization-owned
//! table hash-partitioned by `org_id`.
//!
//! The partitioned layout is the proof, run in CI, that the schema is ready for a distribution
//! by organization (Citus, docs/SCALING.md): PostgreSQL refuses a primary key or unique
//! constraint of a partitioned table that lacks the partition column, exactly Citus's rule for
//! a distributed table, and the whole PostgreSQL test suite then runs on it. The migrations are
//! rewritten as they are applied; their checksums stay those of the files, so a server started
//! without the layout later reads the same schema as migrated.

use std::borrow::Cow;

/// The tables that stay whole: the global ones (no `org_id`; reference tables on Citus) and
/// the three whose login key (app id, Basic user name, token hash) is unique across
/// organizations, because authentication finds the organization through them.
pub const UNPARTITIONED_TABLES: [&str; 5] = [
    "settings",
    "organizations",
    "apps",
    "basic_credentials",
    "tokens",
];

/// The tables' layout on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    #[default]
    Plain,
    /// Every organization-owned table but the login tables `PARTITION BY HASH (org_id)` into
    /// this many partitions, named `<table>_p<remainder>`.
    HashPartitioned { partitions: u32 },
}

impl Layout {
    /// The migration text `sql` laid out this way.
    pub fn apply<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        match *self {
            Layout::Plain => Cow::Borrowed(sql),
            Layout::HashPartitioned { partitions } => Cow::Owned(partitioned(sql, partitions)),
        }
    }
}

/// `sql` with each `CREATE TABLE` of an organization-owned table partitioned by `org_id`.
/// The migrations end every `CREATE TABLE` with `);` at the start of a line, which is what
/// this looks for; a statement written otherwise is left plain and the catalog test, which
/// checks that every organization-owned table is partitioned, names it.
fn partitioned(sql: &str, partitions: u32) -> String {
    const CREATE: &str = "CREATE TABLE ";
    const END: &str = "\n);";
    let mut out = String::with_capacity(sql.len() * 2);
    let mut rest = sql;
    while let Some(start) = rest.find(CREATE) {
        let after_keyword = &rest[start + CREATE.len()..];
        let name: String = after_keyword
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let Some(end) = after_keyword.find(END) else {
            break;
        };
        let statement_end = start + CREATE.len() + end + END.len();
        if UNPARTITIONED_TABLES.contains(&name.as_str()) {
            out.push_str(&rest[..statement_end]);
        } else {
            out.push_str(&rest[..statement_end - 1]);
            out.push_str(" PARTITION BY HASH (org_id);");
            for remainder in 0..partitions {
                out.push_str(&format!(
                    "\nCREATE TABLE {name}_p{remainder} PARTITION OF {name} \
                     FOR VALUES WITH (MODULUS {partitions}, REMAINDER {remainder});"
                ));
            }
        }
        rest = &rest[statement_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organization_owned_table_is_partitioned_and_a_login_table_is_not() {
        let sql = "CREATE TABLE apps (\n    org_id BIGINT,\n    UNIQUE (app_id)\n);\n\
                   CREATE TABLE users (\n    org_id BIGINT,\n    PRIMARY KEY (org_id, id)\n);\n\
                   CREATE INDEX users_x ON users (org_id);\n";
        let laid_out = Layout::HashPartitioned { partitions: 2 }.apply(sql);
        assert_eq!(
            laid_out,
            "CREATE TABLE apps (\n    org_id BIGINT,\n    UNIQUE (app_id)\n);\n\
             CREATE TABLE users (\n    org_id BIGINT,\n    PRIMARY KEY (org_id, id)\n) \
             PARTITION BY HASH (org_id);\n\
             CREATE TABLE users_p0 PARTITION OF users FOR VALUES WITH (MODULUS 2, REMAINDER 0);\n\
             CREATE TABLE users_p1 PARTITION OF users FOR VALUES WITH (MODULUS 2, REMAINDER 1);\n\
             CREATE INDEX users_x ON users (org_id);\n"
        );
    }

    #[test]
    fn the_plain_layout_leaves_the_text_as_written() {
        let sql = "CREATE TABLE users (\n    org_id BIGINT\n);\n";
        assert!(matches!(Layout::Plain.apply(sql), Cow::Borrowed(s) if s == sql));
    }
}
