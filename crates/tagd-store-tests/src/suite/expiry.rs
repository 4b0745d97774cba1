//! Expiry and history (API.md §11): an expired value is gone from every read at once, the
//! sweep records each expiry exactly once (also when two sweep together, and not when a
//! write came first), and history reads the log back newest first.
//!
//! Expiries in the past are written through the store directly (the API refuses them), so
//! these tests need no clock and no sleep: the value is expired the moment it is written.

use super::log::whole_log;
use super::*;
use tagd_core::expiry::RequestedExpiry;
use tagd_core::history::HistoryFilter;
use tagd_core::log::{ChangeKind, Subject};
use tagd_core::timefmt::now_unix;

/// Far enough ahead that no test outlives it.
const LATER: i64 = 3_600;

async fn assign_expiring(
    store: &DynStore,
    org: OrgId,
    (group, user_id, value): (&TagGroup, &str, &str),
    expires_at: i64,
) -> Assignment {
    let command = AssignCommand {
        expiry: Some(RequestedExpiry::At(expires_at)),
        ..assign_command(group, user_id, value)
    };
    store
        .assign(org, &command, &Recorder::none())
        .await
        .expect("assigned")
}

/// The tag entries of the organization's log, as (kind, assignment version, executor name).
async fn tag_entries(store: &DynStore, org: OrgId) -> Vec<(ChangeKind, i64, String)> {
    whole_log(store, org, 1000)
        .await
        .into_iter()
        .filter_map(|e| match e.change.subject {
            Subject::Tag(tag) => Some((e.change.kind, tag.version, tag.executor.name)),
            _ => None,
        })
        .collect()
}

/// A sweep round in steps of three (so the cursor is used), answering how many it recorded.
async fn sweep_all(store: &DynStore) -> usize {
    let (mut recorded, mut after) = (0, None);
    loop {
        let step = store.expire_due(now_unix(), after, 3).await.expect("swept");
        recorded += step.recorded;
        match step.next {
            Some(next) => after = Some(next),
            None => return recorded,
        }
    }
}

pub async fn an_expired_value_is_gone_from_every_read_before_any_sweep(store: DynStore) {
    let w = world(&store, "Acme").await;
    let org = w.org.id;
    let now = now_unix();
    let kept = assign_expiring(&store, org, (&w.number, "u1", "7"), now + LATER).await;
    assert_eq!(kept.expires_at, Some(now + LATER));
    assign_expiring(&store, org, (&w.flag, "u1", "True"), now - 1).await;
    let listed = store
        .list_user_assignments(org, &user("u1"))
        .await
        .expect("listed");
    assert_eq!(
        listed
            .iter()
            .map(|a| (a.variable_name.as_str(), a.expires_at))
            .collect::<Vec<_>>(),
        [("lifetime_spend", Some(now + LATER))]
    );
    assert_eq!(
        store
            .org_counts(org)
            .await
            .expect("counts")
            .live_assignments,
        1
    );
    // A removal of what has expired removes nothing: the expiry is the sweep's to record.
    assert_eq!(
        remove(&store, org, &w.flag, "u1").await.expect("removed"),
        None
    );
}

pub async fn the_sweep_records_each_expiry_once_and_a_second_sweep_finds_nothing(store: DynStore) {
    let w = world(&store, "Acme").await;
    let org = w.org.id;
    let past = now_unix() - 5;
    for i in 0..20 {
        let id = format!("e{i}");
        store
            .create_user(org, &user(&id), &Recorder::none())
            .await
            .expect("user");
        assign_expiring(&store, org, (&w.text, &id, "Pune"), past).await;
    }
    assign_expiring(&store, org, (&w.text, "u1", "Pune"), now_unix() + LATER).await;
    // Two sweeps at once: each expiry is recorded by exactly one of them.
    let (a, b) = tokio::join!(sweep_all(&store), sweep_all(&store));
    let again = sweep_all(&store).await;
    assert_eq!((a + b + again, again), (20, 0));
    let expired: Vec<_> = tag_entries(&store, org)
        .await
        .into_iter()
        .filter(|(kind, ..)| *kind == ChangeKind::TagExpired)
        .collect();
    assert_eq!(expired.len(), 20);
    assert!(expired
        .iter()
        .all(|(_, version, who)| *version == 1 && who == "system"));
    let history = store
        .tag_history(
            org,
            &HistoryFilter {
                user: Some(user("e3")),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .expect("history");
    let rows: Vec<_> = history
        .iter()
        .map(|r| {
            (
                r.kind,
                r.old_value.clone(),
                r.new_value.clone(),
                r.executor_id.as_str(),
                r.at,
            )
        })
        .collect();
    let pune = Some(TagValue::String("Pune".into()));
    assert_eq!(
        rows,
        [
            (ChangeKind::TagExpired, pune.clone(), None, "system", past),
            (
                ChangeKind::TagAssigned,
                None,
                pune,
                w.number.updated_by.name.as_str(),
                history[1].at
            ),
        ]
    );
    assert_eq!(history[0].source, Source::System);
}

pub async fn a_write_that_finds_an_expired_value_records_the_expiry_first_and_the_sweep_leaves_it(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    let org = w.org.id;
    assign_expiring(&store, org, (&w.number, "u1", "1"), now_unix() - 1).await;
    let renewed = assign(&store, org, &w.number, "u1", "2")
        .await
        .expect("assigned");
    assert_eq!((renewed.version, renewed.expires_at), (2, None));
    assert_eq!(sweep_all(&store).await, 0, "the re-assign came first");
    let entries = tag_entries(&store, org).await;
    let kinds: Vec<_> = entries.iter().map(|(k, v, _)| (*k, *v)).collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::TagAssigned, 0),
            (ChangeKind::TagExpired, 1),
            (ChangeKind::TagAssigned, 2)
        ]
    );
    let history = store
        .tag_history(org, &HistoryFilter::default(), None, 10)
        .await
        .expect("history");
    assert_eq!(history[0].old_value, None, "the expired value was gone");
    let listed = store
        .list_user_assignments(org, &user("u1"))
        .await
        .expect("listed");
    assert_eq!(listed[0].value, TagValue::Number(2.0));
}

pub async fn a_group_default_expiry_applies_to_assignments_that_bring_none(store: DynStore) {
    use tagd_core::expiry::ExpiryPolicy;
    let org = store.create_org("Acme").await.expect("org").id;
    store
        .create_user(org, &user("u1"), &Recorder::none())
        .await
        .expect("user");
    let mut trial = fields("Trial", "trial", Attribute::Define, "campaign");
    trial.expiry = Some(ExpiryPolicy::Relative { days: 2 });
    let trial = create_group(&store, org, &trial).await.expect("created");
    assert_eq!(trial.expiry, ExpiryPolicy::Relative { days: 2 });
    let before = now_unix();
    let a = assign(&store, org, &trial, "u1", "True")
        .await
        .expect("assigned");
    let at = a.expires_at.expect("the default applies");
    assert!((before + 2 * 86_400..=now_unix() + 2 * 86_400).contains(&at));
    // Its own expiry wins over the default.
    let own = assign_expiring(&store, org, (&trial, "u1", "False"), before + 60).await;
    assert_eq!(own.expires_at, Some(before + 60));
    // An update without an expiry keeps the default; one with an expiry replaces it.
    let mut edit = fields("Trial", "trial", Attribute::Define, "campaign");
    let none = Recorder::none();
    let kept = store
        .update_tag_group(org, &trial.entity_id, &edit, None, &app_executor(), &none)
        .await
        .expect("updated");
    assert_eq!(kept.expiry, ExpiryPolicy::Relative { days: 2 });
    edit.expiry = Some(ExpiryPolicy::None);
    let cleared = store
        .update_tag_group(org, &trial.entity_id, &edit, None, &app_executor(), &none)
        .await
        .expect("updated");
    assert_eq!(cleared.expiry, ExpiryPolicy::None);
    let a = assign(&store, org, &trial, "u1", "True")
        .await
        .expect("assigned");
    assert_eq!(a.expires_at, None, "re-assigning sets the expiry anew");
}

pub async fn history_pages_newest_first_per_user_and_per_group_within_one_organization(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    let other = world(&store, "Globex").await;
    let org = w.org.id;
    for value in ["1", "2", "3"] {
        assign(&store, org, &w.number, "u1", value)
            .await
            .expect("assigned");
    }
    assign(&store, org, &w.text, "u1", "Pune")
        .await
        .expect("assigned");
    remove(&store, org, &w.number, "u1").await.expect("removed");
    assign(&store, other.org.id, &other.number, "u1", "9")
        .await
        .expect("assigned");

    let of_user = HistoryFilter {
        user: Some(user("u1")),
        ..Default::default()
    };
    let first = store
        .tag_history(org, &of_user, None, 3)
        .await
        .expect("page");
    let rest = store
        .tag_history(org, &of_user, Some(first[2].version), 3)
        .await
        .expect("page");
    let ops: Vec<_> = first
        .iter()
        .chain(&rest)
        .map(|r| (r.kind, r.variable_name.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            (ChangeKind::TagRemoved, "lifetime_spend"),
            (ChangeKind::TagAssigned, "city"),
            (ChangeKind::TagAssigned, "lifetime_spend"),
            (ChangeKind::TagAssigned, "lifetime_spend"),
            (ChangeKind::TagAssigned, "lifetime_spend"),
        ]
    );
    let versions: Vec<i64> = first.iter().chain(&rest).map(|r| r.version).collect();
    assert!(
        versions.windows(2).all(|w| w[0] > w[1]),
        "newest first, none twice"
    );
    assert_eq!(first[0].old_value, Some(TagValue::Number(3.0)));

    let of_group = HistoryFilter {
        group: Some(w.text.entity_id.clone()),
        ..Default::default()
    };
    let city = store
        .tag_history(org, &of_group, None, 100)
        .await
        .expect("page");
    assert_eq!(city.len(), 1);
    // Another organization's group and user are not found here.
    let foreign_group = HistoryFilter {
        group: Some(other.number.entity_id.clone()),
        ..Default::default()
    };
    assert_eq!(
        store.tag_history(org, &foreign_group, None, 10).await,
        Err(Error::GroupNotFound)
    );
    let stranger = HistoryFilter {
        user: Some(user("nobody")),
        ..Default::default()
    };
    assert_eq!(
        store.tag_history(org, &stranger, None, 10).await,
        Err(Error::UserNotFound)
    );
    let all = store
        .tag_history(org, &HistoryFilter::default(), None, 100)
        .await
        .expect("all");
    assert_eq!(
        all.len(),
        5,
        "the other organization's change is not among them"
    );
}
