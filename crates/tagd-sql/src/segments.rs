//! Segments compiled to SQL: one `EXISTS` per leaf over the organization's users, every value
//! a bound parameter. The same tree the index evaluates (`tagd_core::segments`), with the same
//! rules: a test applies to a live value only, strings compare by their bytes.

use crate::driver::{Param, SqlConn};
use tagd_core::segments::{Comparison, Condition, Member, Node, SegmentPage, Test};
use tagd_core::{Attribute, OrgId, Result, TagValue, UserId};

use crate::internal;
use crate::records::sql::LIVE;

/// A filter as a SQL condition on `u` (a row of `users`), with its parameters.
struct Compiled<'a> {
    params: Vec<Param<'a>>,
    /// Appended to a string column so comparisons order by bytes.
    binary: &'static str,
}

impl<'a> Compiled<'a> {
    /// `node` as a condition on `u`, `$1` bound to `org`.
    fn of(binary: &'static str, org: OrgId, node: &'a Node) -> (Self, String) {
        let mut compiled = Compiled {
            params: vec![Param::Int(org.0)],
            binary,
        };
        let condition = compiled.node(node);
        (compiled, condition)
    }

    fn bind(&mut self, param: Param<'a>) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn node(&mut self, node: &'a Node) -> String {
        match node {
            Node::All(children) if children.is_empty() => "1 = 1".into(),
            Node::Any(children) if children.is_empty() => "1 = 0".into(),
            Node::All(children) => self.join(children, " AND "),
            Node::Any(children) => self.join(children, " OR "),
            Node::Not(child) => format!("NOT ({})", self.node(child)),
            Node::Leaf(condition) => self.leaf(condition),
        }
    }

    fn join(&mut self, children: &'a [Node], with: &str) -> String {
        let parts: Vec<String> = children.iter().map(|c| self.node(c)).collect();
        format!("({})", parts.join(with))
    }

    fn value(&mut self, value: &'a TagValue) -> String {
        self.bind(match value {
            TagValue::Define(on) => Param::Bool(*on),
            TagValue::Number(n) => Param::OptFloat(Some(*n)),
            TagValue::String(s) => Param::Text(s),
        })
    }

    fn leaf(&mut self, condition: &'a Condition) -> String {
        let group = self.bind(Param::Int(condition.group_ref));
        let mut sql = format!(
            "EXISTS (SELECT 1 FROM tag_assignments a WHERE a.org_id = $1 AND a.user_ref = u.id \
             AND a.group_ref = {group} AND {LIVE}"
        );
        let column = match condition.attribute {
            Attribute::Define => "a.define_value".to_owned(),
            Attribute::Number => "a.number_value".to_owned(),
            Attribute::String => format!("a.string_value{}", self.binary),
        };
        match &condition.test {
            Test::Exists => {}
            Test::Compare(comparison, value) => {
                let op = match comparison {
                    Comparison::Eq => "=",
                    Comparison::Ne => "<>",
                    Comparison::Lt => "<",
                    Comparison::Lte => "<=",
                    Comparison::Gt => ">",
                    Comparison::Gte => ">=",
                };
                let value = self.value(value);
                sql += &format!(" AND {column} {op} {value}");
            }
            Test::Between(low, high) => {
                let (low, high) = (self.value(low), self.value(high));
                sql += &format!(" AND {column} >= {low} AND {column} <= {high}");
            }
            Test::In(values) => {
                let list: Vec<String> = values.iter().map(|v| self.value(v)).collect();
                sql += &format!(" AND {column} IN ({})", list.join(", "));
            }
            Test::Prefix(prefix) => {
                let prefix = self.bind(Param::Text(prefix));
                sql += &format!(" AND substr(a.string_value, 1, length({prefix})) = {prefix}");
            }
        }
        if let Some(from) = condition.mtime.from {
            sql += &format!(" AND a.mtime >= {}", self.bind(Param::Int(from)));
        }
        if let Some(until) = condition.mtime.until {
            sql += &format!(" AND a.mtime < {}", self.bind(Param::Int(until)));
        }
        sql + ")"
    }
}

/// One page of the members of `node`, and the count of all of them.
pub(crate) async fn page(
    conn: &mut dyn SqlConn,
    binary: &'static str,
    org: OrgId,
    node: &Node,
    after_ref: i64,
    limit: usize,
) -> Result<SegmentPage> {
    let (compiled, condition) = Compiled::of(binary, org, node);
    let count_sql =
        format!("SELECT COUNT(*) AS n FROM users u WHERE u.org_id = $1 AND {condition}");
    let count = conn
        .fetch_optional(&count_sql, &compiled.params)
        .await
        .map_err(internal)?
        .map_or(Ok(0), |row| row.int("n"))?;
    let (mut members, mut has_more) = (Vec::new(), false);
    if limit > 0 {
        // One more than asked tells whether another page follows.
        members = members_after(conn, compiled, &condition, after_ref, limit + 1).await?;
        has_more = members.len() > limit;
        members.truncate(limit);
    }
    Ok(SegmentPage {
        count: u64::try_from(count).unwrap_or(0),
        members,
        has_more,
    })
}

/// The members of `node` registered after `after_ref`, at most `limit`, without a count.
pub(crate) async fn members(
    conn: &mut dyn SqlConn,
    binary: &'static str,
    org: OrgId,
    node: &Node,
    after_ref: i64,
    limit: usize,
) -> Result<Vec<Member>> {
    let (compiled, condition) = Compiled::of(binary, org, node);
    members_after(conn, compiled, &condition, after_ref, limit).await
}

async fn members_after<'a>(
    conn: &mut dyn SqlConn,
    mut compiled: Compiled<'a>,
    condition: &str,
    after_ref: i64,
    limit: usize,
) -> Result<Vec<Member>> {
    let after = compiled.bind(Param::Int(after_ref));
    let take = compiled.bind(Param::Int(limit as i64));
    let sql = format!(
        "SELECT u.id, u.user_id FROM users u WHERE u.org_id = $1 AND u.id > {after} \
         AND {condition} ORDER BY u.id LIMIT {take}"
    );
    let rows = conn
        .fetch_all(&sql, &compiled.params)
        .await
        .map_err(internal)?;
    rows.iter()
        .map(|row| {
            Ok(Member {
                user_ref: row.int("id")?,
                user_id: UserId::from_trusted(row.text("user_id")?),
            })
        })
        .collect()
}

/// Whether `node` holds for one user.
pub(crate) async fn holds(
    conn: &mut dyn SqlConn,
    binary: &'static str,
    org: OrgId,
    node: &Node,
    user_ref: i64,
) -> Result<bool> {
    let (mut compiled, condition) = Compiled::of(binary, org, node);
    let user = compiled.bind(Param::Int(user_ref));
    let sql = format!(
        "SELECT 1 AS hit FROM users u WHERE u.org_id = $1 AND u.id = {user} AND {condition}"
    );
    let row = conn
        .fetch_optional(&sql, &compiled.params)
        .await
        .map_err(internal)?;
    Ok(row.is_some())
}
