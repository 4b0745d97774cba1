//! The hot paths touch one partition (issue 17, docs/SCALING.md): on a schema whose
//! organization-owned tables are hash-partitioned by `org_id`, PostgreSQL's `auto_explain`
//! sends back the plan of every statement the store runs, and each plan that reads a
//! partitioned table reads only the partitions of the organization it serves. Plans are generic
//! (`plan_cache_mode=force_generic_plan`), so a partition is pruned from the statement's
//! parameters, as a distributed database routes a statement to one shard, not from values
//! the planner happened to see.

use serde_json::{json, Value};
use sqlx::{Connection, Row};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tagd_core::history::HistoryFilter;
use tagd_core::*;
use tagd_postgres::{Layout, UNPARTITIONED_TABLES};
use tagd_store_tests::harness::{postgres_laid_out, POSTGRES_URL_VAR};
use tagd_store_tests::suite::{
    app_executor, assign_command, create_group, fields, label_group, relabel, user,
};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const PARTITIONS: u32 = 4;

/// Server settings of every connection of the store under test: each statement's generic
/// plan, as JSON, sent to the client as a notice.
const EXPLAIN_EVERY_STATEMENT: &str = "options=-c%20session_preload_libraries%3Dauto_explain\
    %20-c%20auto_explain.log_min_duration%3D0%20-c%20auto_explain.log_level%3Dnotice\
    %20-c%20auto_explain.log_format%3Djson%20-c%20plan_cache_mode%3Dforce_generic_plan";

/// The notices sqlx reports (it logs each through `tracing`).
#[derive(Clone, Default)]
struct Notices(Arc<Mutex<Vec<String>>>);

impl Notices {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

impl<S: tracing::Subscriber> Layer<S> for Notices {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::postgres::notice" {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        self.0.lock().expect("not poisoned").push(message.0);
    }
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_empty() {
            self.0 = format!("{value:?}");
        }
    }
}

/// A statement's text and the tables and partitions its plan reads.
struct Plan {
    query: String,
    relations: BTreeSet<String>,
}

/// The plans among `notices` (auto_explain's `duration: … plan:` followed by JSON).
fn plans(notices: Vec<String>) -> Vec<Plan> {
    notices
        .iter()
        .filter_map(|notice| notice.find("plan:").map(|at| &notice[at + 5..]))
        .map(|json| {
            let plan: Value = serde_json::from_str(json.trim()).expect("auto_explain JSON");
            let mut relations = BTreeSet::new();
            collect_relations(&plan["Plan"], &mut relations);
            Plan {
                query: plan["Query Text"].as_str().unwrap_or_default().to_owned(),
                relations,
            }
        })
        .collect()
}

/// The relations `node` and its children read. A `ModifyTable` node names the partitioned
/// table it writes: an inserted row goes to the partition of its own `org_id`, and the rows
/// an update or delete changes are those its child scans read, which are counted.
fn collect_relations(node: &Value, into: &mut BTreeSet<String>) {
    if let Some(name) = node["Relation Name"].as_str() {
        if node["Node Type"] != "ModifyTable" {
            into.insert(name.to_owned());
        }
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        collect_relations(child, into);
    }
}

/// `(table, remainder)` when `relation` is a partition `<table>_p<remainder>`.
fn partition_of(relation: &str) -> Option<(&str, u32)> {
    let (table, remainder) = relation.rsplit_once("_p")?;
    Some((table, remainder.parse().ok()?))
}

/// Fails, naming the statement, when a plan of `phase` reads a partition other than
/// `remainder`; answers how many plans read a partition.
fn assert_one_partition(phase: &str, plans: &[Plan], remainder: u32) -> usize {
    let mut reading = 0;
    for plan in plans {
        let partitions: Vec<(&str, u32)> = plan
            .relations
            .iter()
            .filter_map(|r| partition_of(r))
            .collect();
        let strays: Vec<&(&str, u32)> =
            partitions.iter().filter(|(_, r)| *r != remainder).collect();
        assert!(
            strays.is_empty(),
            "{phase}: a statement reads partitions {strays:?} of other organizations \
             (this one's: _p{remainder}):\n{}\nreads {:?}",
            plan.query,
            plan.relations
        );
        if !partitions.is_empty() {
            reading += 1;
        }
    }
    reading
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_statement_of_the_hot_paths_reads_one_partition_of_a_partitioned_schema() {
    let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("{POSTGRES_URL_VAR} is not set: PostgreSQL test not run");
        return;
    };
    let notices = Notices::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(notices.clone()))
        .expect("the only subscriber of this test binary");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}{EXPLAIN_EVERY_STATEMENT}");
    let layout = Layout::HashPartitioned {
        partitions: PARTITIONS,
    };
    let fixture = postgres_laid_out(&url, layout).await.expect("configured");
    let store = fixture.store.clone();

    // Two organizations in different partitions, each with users, groups and tags.
    let mut orgs = Vec::new();
    for name in ["Acme", "Globex", "Initech", "Umbrella"] {
        let org = store.create_org(name).await.expect("org created");
        for id in ["u1", "u2", "u3"] {
            store
                .create_user(org.id, &user(id), &Recorder::none())
                .await
                .expect("user created");
        }
        orgs.push(org);
    }
    let mut conn = sqlx::PgConnection::connect(&fixture.url)
        .await
        .expect("connects");
    let mut remainders = Vec::new();
    for org in &orgs {
        let partition: String = sqlx::query(
            "SELECT tableoid::regclass::text AS p FROM users WHERE org_id = $1 LIMIT 1",
        )
        .bind(org.id.0)
        .fetch_one(&mut conn)
        .await
        .expect("a user row")
        .get("p");
        remainders.push(partition_of(&partition).expect("a partition").1);
    }
    let other = (1..orgs.len())
        .find(|&i| remainders[i] != remainders[0])
        .expect("four organizations fill at least two of four partitions");
    let (org, remainder) = (orgs[0].id, remainders[0]);
    for org in [orgs[0].id, orgs[other].id] {
        let (vip, town) = (
            fields("VIP", "vip", Attribute::Define, "c"),
            fields("City", "city", Attribute::String, "c"),
        );
        let flag = create_group(&store, org, &vip)
            .await
            .expect("group created");
        let city = create_group(&store, org, &town)
            .await
            .expect("group created");
        for id in ["u1", "u2"] {
            for (group, value) in [(&flag, "true"), (&city, "Pune")] {
                let command = assign_command(group, id, value);
                store
                    .assign(org, &command, &Recorder::none())
                    .await
                    .expect("assigned");
            }
        }
    }
    for name in ["Gold", "Silver"] {
        label_group(&store, org, name, &name.to_lowercase()).await;
    }
    relabel(&store, org, "u1", &["Silver"], &[])
        .await
        .expect("labelled");
    let groups = store.all_groups(org).await.expect("groups");
    let flag = groups
        .iter()
        .find(|g| g.variable_name.as_str() == "vip")
        .expect("vip");
    let city = groups
        .iter()
        .find(|g| g.variable_name.as_str() == "city")
        .expect("city");
    notices.take();

    let mut phases: Vec<(&str, Vec<Plan>)> = Vec::new();
    // Assign, reassign, remove, and a batch.
    for value in ["true", "false"] {
        let command = assign_command(flag, "u3", value);
        store
            .assign(org, &command, &Recorder::none())
            .await
            .expect("assigned");
    }
    store
        .remove_assignment(
            org,
            &city.entity_id,
            &user("u1"),
            &app_executor(),
            Source::OpenApi,
            &Recorder::none(),
        )
        .await
        .expect("removed");
    let batch = [
        assign_command(city, "u2", "Mumbai"),
        assign_command(city, "u3", "Goa"),
    ];
    store
        .assign_batch(org, &batch, &Recorder::none())
        .await
        .expect("batch");
    phases.push(("assign", plans(notices.take())));

    let listed = store
        .list_user_assignments(org, &user("u2"))
        .await
        .expect("listed");
    store
        .list_user_labels(org, &user("u2"))
        .await
        .expect("labels listed");
    phases.push(("list", plans(notices.take())));

    let warnings = relabel(&store, org, "u1", &["Gold", "Bronze"], &["Silver"])
        .await
        .expect("labelled");
    assert_eq!(warnings.len(), 1, "Bronze is not a label: {warnings:?}");
    phases.push(("changeLabels", plans(notices.take())));

    let filter =
        json!({"all": [{"tag": "vip"}, {"not": {"tag": "city", "op": "prefix", "value": "Pu"}}]});
    let filter = segments::parse(&filter, "filter").expect("a valid filter");
    store.log_head(org).await.expect("head");
    let node = segments::resolve_in_store(store.as_ref(), org, &filter, 0, None)
        .await
        .expect("resolved");
    let page = store.segment_page(org, &node, 0, 10).await.expect("page");
    assert!(page.count > 0, "the segment has members: {page:?}");
    store
        .segment_holds(org, &node, page.members[0].user_ref)
        .await
        .expect("holds");
    phases.push(("segment fallback", plans(notices.take())));

    let of_user = HistoryFilter {
        user: Some(user("u3")),
        ..Default::default()
    };
    let of_group = HistoryFilter {
        group: Some(city.entity_id.clone()),
        ..Default::default()
    };
    for filter in [&of_user, &of_group, &HistoryFilter::default()] {
        store
            .tag_history(org, filter, None, 10)
            .await
            .expect("history");
    }
    store
        .assignment_history(org, &listed[0].entity_id)
        .await
        .expect("assignment history");
    store.change_feed(org, 0, 10).await.expect("feed");
    phases.push(("history", plans(notices.take())));

    // The control: the followers' question "which organizations moved since V" spans every
    // organization by design (a background read, multi-shard on Citus too), and the capture
    // sees it read more than one partition.
    store.log_heads(0).await.expect("heads");
    let control = plans(notices.take());
    let spread = control.iter().map(|plan| {
        let partitions = plan.relations.iter().filter_map(|r| partition_of(r));
        let tables: BTreeSet<&str> = partitions.clone().map(|(table, _)| table).collect();
        partitions.count() - tables.len()
    });
    assert!(
        spread.max() > Some(0),
        "the log heads read one partition per table only"
    );

    for (phase, plans) in &phases {
        assert!(!plans.is_empty(), "{phase}: no plan was captured");
        let reading = assert_one_partition(phase, plans, remainder);
        assert!(reading > 0, "{phase}: no statement read a partition");
        for plan in plans {
            for relation in &plan.relations {
                let table = partition_of(relation).map_or(relation.as_str(), |(t, _)| t);
                assert!(
                    partition_of(relation).is_some() || UNPARTITIONED_TABLES.contains(&table),
                    "{phase}: a statement reads {relation}, which is neither a partition nor \
                     a whole table:\n{}",
                    plan.query
                );
            }
        }
    }
    drop(conn);
    fixture.cleanup().await;
}
