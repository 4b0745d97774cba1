use super::*;
use std::sync::Mutex;
use tagd_core::bulk::{GroupRef, ImportAssignment, ImportRow};
use tagd_core::log::{ChangeKind, ChangeSink, LogEntry, Subject};

/// Every entry of the organization's log up to its head now, read in pages of `page`. On
/// PostgreSQL a reader stops below the oldest transaction still running anywhere in the
/// cluster (other tests' included), so this reads on until it has passed the head.
pub(crate) async fn whole_log(store: &DynStore, org: OrgId, page: usize) -> Vec<LogEntry> {
    log_after(store, org, 0, page).await
}

/// The entries after `after` up to the organization's head now, as [`whole_log`] reads them.
async fn log_after(store: &DynStore, org: OrgId, mut after: i64, page: usize) -> Vec<LogEntry> {
    let head = store.log_head(org).await.expect("head");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut entries = Vec::new();
    loop {
        let read = store.read_log(org, after, page).await.expect("log read");
        let full = read.entries.len() == page;
        entries.extend(read.entries);
        assert!(read.safe_version >= after, "the cursor never goes back");
        after = read.safe_version;
        if !full && after >= head {
            return entries;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log never reached its head"
        );
        if !full {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

fn kinds(entries: &[LogEntry]) -> Vec<ChangeKind> {
    entries.iter().map(|e| e.change.kind).collect()
}

/// Keeps what a store tells its sink.
#[derive(Default)]
struct Heard(Mutex<Vec<(OrgId, LogEntry)>>);

impl ChangeSink for Heard {
    fn committed(&self, org: OrgId, entries: &[LogEntry]) {
        let mut heard = self.0.lock().expect("not poisoned");
        heard.extend(entries.iter().map(|e| (org, e.clone())));
    }
}

pub async fn every_change_is_logged_in_order_with_strictly_increasing_versions(store: DynStore) {
    let w = world(&store, "Acme").await;
    assign(&store, w.org.id, &w.number, "u1", "10")
        .await
        .expect("assigned");
    assign(&store, w.org.id, &w.number, "u1", "11")
        .await
        .expect("re-assigned");
    remove(&store, w.org.id, &w.number, "u1")
        .await
        .expect("removed");
    set_active(&store, w.org.id, &w.text, false)
        .await
        .expect("deactivated");
    set_active(&store, w.org.id, &w.text, true)
        .await
        .expect("activated");
    let renamed = fields("Spend", "lifetime_spend", Attribute::Number, "follow_up");
    update(&store, w.org.id, &w.number, &renamed, None)
        .await
        .expect("edited");
    let gold = fields("Gold", "gold", Attribute::Define, "label");
    store
        .create_tag_group(w.org.id, &gold, &v2_executor(), &Recorder::none())
        .await
        .expect("label made through v2");
    relabel(&store, w.org.id, "u1", &["Gold"], &[])
        .await
        .expect("labelled");

    let log = whole_log(&store, w.org.id, 100).await;
    use ChangeKind::*;
    assert_eq!(
        kinds(&log),
        [
            UserCreated,
            GroupCreated,
            GroupCreated,
            GroupCreated,
            TagAssigned,
            TagAssigned,
            TagRemoved,
            GroupDeactivated,
            GroupActivated,
            GroupUpdated,
            LabelCreated,
            TagAssigned,
        ]
    );
    assert!(log.windows(2).all(|w| w[0].version < w[1].version));
    let head = store.log_head(w.org.id).await.expect("head");
    assert_eq!(Some(head), log.last().map(|e| e.version));
    let Subject::Tag(reassigned) = &log[5].change.subject else {
        panic!("a tag entry: {:?}", log[5]);
    };
    assert_eq!(reassigned.value, Some(TagValue::Number(11.0)));
    assert_eq!(reassigned.old_value.as_deref(), Some("10"));
    assert_eq!(reassigned.version, 1);
    let Subject::Tag(removed) = &log[6].change.subject else {
        panic!("a tag entry: {:?}", log[6]);
    };
    assert_eq!((removed.value.as_ref(), removed.version), (None, 2));
}

pub async fn a_write_that_changes_nothing_logs_nothing(store: DynStore) {
    let w = world(&store, "Acme").await;
    let before = store.log_head(w.org.id).await.expect("head");
    assert!(remove(&store, w.org.id, &w.flag, "u1")
        .await
        .expect("no-op")
        .is_none());
    set_active(&store, w.org.id, &w.flag, true)
        .await
        .expect("already active");
    let refused = assign(&store, w.org.id, &w.number, "u1", "lots").await;
    assert!(refused.is_err());
    assert_eq!(store.log_head(w.org.id).await.expect("head"), before);
}

pub async fn the_log_reads_in_pages_that_resume_where_they_stopped(store: DynStore) {
    let w = world(&store, "Acme").await;
    for i in 0..7 {
        assign(&store, w.org.id, &w.number, "u1", &i.to_string())
            .await
            .expect("assigned");
    }
    let whole = whole_log(&store, w.org.id, 1000).await;
    assert_eq!(whole.len(), 11);
    for page in [1, 2, 3, 10] {
        assert_eq!(
            whole_log(&store, w.org.id, page).await,
            whole,
            "pages of {page}"
        );
    }
    let last = whole.last().expect("entries").version;
    let after_end = store.read_log(w.org.id, last, 10).await.expect("read");
    assert!(after_end.entries.is_empty());
    assert!(after_end.safe_version >= last, "no entry waits below it");
}

pub async fn an_import_logs_its_new_users_and_assignments(store: DynStore) {
    let w = world(&store, "Acme").await;
    let row = |user_id: &str, value: &str| ImportRow {
        user_id: user(user_id),
        assignment: Some(ImportAssignment {
            group: GroupRef::Id(w.number.entity_id.clone()),
            raw_value: value.into(),
        }),
    };
    let rows = [row("u1", "1"), row("u2", "2"), row("u2", "3")];
    let before = store.log_head(w.org.id).await.expect("head");
    store
        .import_batch(w.org.id, &rows, &Executor::operator())
        .await
        .expect("imported");
    let entries = log_after(&store, w.org.id, before, 100).await;
    use ChangeKind::*;
    assert_eq!(
        kinds(&entries),
        [UserCreated, TagAssigned, TagAssigned, TagAssigned]
    );
}

pub async fn the_sink_hears_exactly_the_entries_the_log_reads_back(store: DynStore) {
    let heard = Arc::new(Heard::default());
    store.subscribe(heard.clone());
    let w = world(&store, "Acme").await;
    let other = world(&store, "Other").await;
    assign(&store, w.org.id, &w.number, "u1", "1250.5")
        .await
        .expect("assigned");
    assign(&store, w.org.id, &w.text, "u1", "Pune")
        .await
        .expect("assigned");
    label_group(&store, w.org.id, "Gold", "gold").await;
    relabel(&store, w.org.id, "u1", &["Gold", "Silver"], &[])
        .await
        .expect("labelled");
    remove(&store, w.org.id, &w.text, "u1")
        .await
        .expect("removed");
    assign(&store, other.org.id, &other.flag, "u1", "True")
        .await
        .expect("assigned");

    let heard = heard.0.lock().expect("not poisoned").clone();
    for org in [w.org.id, other.org.id] {
        let mine: Vec<LogEntry> = heard
            .iter()
            .filter(|(o, _)| *o == org)
            .map(|(_, e)| e.clone())
            .collect();
        assert_eq!(mine, whole_log(&store, org, 100).await, "org {org:?}");
    }
}

pub async fn one_organizations_log_holds_nothing_of_another(store: DynStore) {
    let a = world(&store, "Acme").await;
    let b = world(&store, "Other").await;
    assign(&store, a.org.id, &a.number, "u1", "1")
        .await
        .expect("assigned");
    let a_log = whole_log(&store, a.org.id, 100).await;
    let b_log = whole_log(&store, b.org.id, 100).await;
    assert_eq!(b_log.len(), 4, "b's user and three groups only");
    let b_groups: Vec<i64> = b_log
        .iter()
        .filter_map(|e| match &e.change.subject {
            Subject::Group(g) => Some(g.id),
            _ => None,
        })
        .collect();
    assert!(b_groups
        .iter()
        .all(|g| *g != a.number.id && *g != a.flag.id && *g != a.text.id));
    assert_eq!(a_log.len(), 5);
}

pub async fn a_reader_following_concurrent_writers_misses_nothing_and_never_goes_back(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    for i in 0..8 {
        let id = user(&format!("w{i}"));
        store
            .create_user(w.org.id, &id, &Recorder::none())
            .await
            .expect("user");
    }
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (store, group) = (store.clone(), w.number.clone());
            let org = w.org.id;
            tokio::spawn(async move {
                for n in 0..25 {
                    let value = (i * 100 + n).to_string();
                    assign(&store, org, &group, &format!("w{i}"), &value)
                        .await
                        .expect("assigned");
                }
            })
        })
        .collect();
    // Follows the log while the writers run: every page starts above the cursor.
    let mut followed = Vec::new();
    let mut after = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        let page = store.read_log(w.org.id, after, 7).await.expect("read");
        for entry in &page.entries {
            assert!(entry.version > after, "{} after {after}", entry.version);
            after = entry.version;
        }
        followed.extend(page.entries);
        after = after.max(page.safe_version);
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let whole = whole_log(&store, w.org.id, 1000).await;
    let rest: Vec<LogEntry> = whole
        .iter()
        .filter(|e| e.version > after)
        .cloned()
        .collect();
    followed.extend(rest);
    assert_eq!(followed.len(), 4 + 8 + 200);
    assert_eq!(followed, whole, "followed entry by entry, nothing missed");
}

pub async fn a_saved_segments_saves_and_deletion_are_logged_with_the_segment(store: DynStore) {
    use tagd_core::saved_segments::SegmentFields;
    let w = world(&store, "Acme").await;
    let before = store.log_head(w.org.id).await.expect("head");
    let fields = |name: &str| {
        SegmentFields::parse(name, "", serde_json::json!({"tag": "vip"})).expect("valid")
    };
    let saved = store
        .create_segment(w.org.id, &fields("VIP"), &Recorder::none())
        .await
        .expect("saved");
    store
        .update_segment(
            w.org.id,
            &saved.entity_id,
            &fields("VIPs"),
            Some(0),
            &Recorder::none(),
        )
        .await
        .expect("updated");
    store
        .delete_segment(w.org.id, &saved.entity_id, &Recorder::none())
        .await
        .expect("deleted");
    let entries = log_after(&store, w.org.id, before, 2).await;
    assert_eq!(
        kinds(&entries),
        [
            ChangeKind::SegmentSaved,
            ChangeKind::SegmentSaved,
            ChangeKind::SegmentDeleted
        ]
    );
    for entry in &entries {
        let Subject::Segment(segment) = &entry.change.subject else {
            panic!("not a segment entry: {entry:?}");
        };
        // Entries name the segment's row as it is now: renamed, then deleted.
        assert_eq!(
            (
                &segment.entity_id,
                segment.name.as_str(),
                segment.is_deleted
            ),
            (&saved.entity_id, "VIPs", true)
        );
    }
}

pub async fn a_follower_left_behind_by_an_organization_visits_it_again_until_it_is_reached(
    store: DynStore,
) {
    use tagd_core::log::Backlog;
    let w = world(&store, "Acme").await;
    let org = w.org.id;
    assign(&store, org, &w.number, "u1", "1")
        .await
        .expect("assigned");
    let head = store.log_head(org).await.expect("head");
    let mut backlog = Backlog::default();
    let first = backlog.due(store.as_ref()).await.expect("due");
    assert!(first.contains(&(org, head)), "{first:?}");
    // Not reached (a round given up): due again though nothing was written since.
    let again = backlog.due(store.as_ref()).await.expect("due");
    assert!(again.contains(&(org, head)), "{again:?}");
    // Postponed: not due until the wait has passed.
    backlog.later(org, std::time::Duration::from_secs(3600));
    let postponed = backlog.due(store.as_ref()).await.expect("due");
    assert!(!postponed.iter().any(|(o, _)| *o == org), "{postponed:?}");
    // Reached, then written again: due with the new head.
    backlog.reached(org, head);
    assign(&store, org, &w.number, "u1", "2")
        .await
        .expect("assigned");
    let newer = store.log_head(org).await.expect("head");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // On PostgreSQL the write shows once the horizon passes it.
        let due = backlog.due(store.as_ref()).await.expect("due");
        if due.contains(&(org, newer)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{due:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
