//! `tagd import` and `tagd export` as an operator runs them: files with good and bad rows,
//! summaries, error reports with line numbers, re-runs that change nothing, and an export
//! that imports back unchanged; on SQLite always and on PostgreSQL when configured.

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tagd_core::*;
use tagd_store_tests::harness::Fixture;
use tagd_store_tests::suite::exported_history;

/// An organization with a group of each attribute, an inactive group and a user `u0`.
struct Setup {
    corp_id: String,
    org: OrgId,
    flag: TagGroup,
    number: TagGroup,
    text: TagGroup,
    dir: tempfile::TempDir,
}

async fn setup(fixture: &Fixture) -> Setup {
    let store = &fixture.store;
    let org = store.create_org("Acme").await.expect("org");
    let group = |name: &str, variable: &str, attribute: &str| {
        let fields = TagGroupFields::parse(name, variable, "", attribute, "follow_up")
            .expect("valid fields");
        let store = store.clone();
        async move {
            store
                .create_tag_group(org.id, &fields, &Executor::operator(), &Recorder::none())
                .await
                .expect("group")
        }
    };
    let flag = group("VIP", "vip", "define").await;
    let number = group("Spend", "spend", "number").await;
    let text = group("City", "city", "string").await;
    let old = group("Old", "old", "number").await;
    store
        .set_tag_group_active(
            org.id,
            &old.entity_id,
            false,
            &Executor::operator(),
            &Recorder::none(),
        )
        .await
        .expect("deactivated");
    store
        .create_user(
            org.id,
            &UserId::parse("u0").expect("valid"),
            &Recorder::none(),
        )
        .await
        .expect("user");
    Setup {
        corp_id: org.corp_id.to_string(),
        org: org.id,
        flag,
        number,
        text,
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

fn tagd(fixture: &Fixture, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .arg("--database")
        .arg(&fixture.url)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tagd runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        pipe.write_all(input).expect("input written");
    }
    child.wait_with_output().expect("tagd finishes")
}

/// The JSON summary a successful run printed on stdout.
fn summary(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "tagd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON summary on stdout")
}

/// `(rows_read, applied, assignments_applied, users_created, unchanged, refused)`.
fn counts(summary: &Value) -> [u64; 6] {
    [
        "rows_read",
        "applied",
        "assignments_applied",
        "users_created",
        "unchanged",
        "refused",
    ]
    .map(|k| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {summary}"))
    })
}

fn json_lines(text: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// `(line, code)` of each entry of an error report.
fn refusals(entries: &[Value]) -> Vec<(u64, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().expect("line"),
                e["code"].as_str().expect("code").to_owned(),
            )
        })
        .collect()
}

/// Every live assignment of the organization with its version and history length.
async fn state(fixture: &Fixture, org: OrgId) -> Vec<(String, String, String, i64, usize)> {
    let store = &fixture.store;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .export_assignments(org, after, 100)
            .await
            .expect("export page");
        for row in &page {
            let history = exported_history(store, org, row).await;
            out.push((
                row.user_id.to_string(),
                row.variable_name.to_string(),
                row.value.to_text(),
                row.version,
                history.len(),
            ));
        }
        match page.last() {
            Some(last) if page.len() == 100 => after = Some(last.key),
            _ => break,
        }
    }
    out
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

async fn a_csv_import_loads_good_rows_reports_bad_ones_and_a_rerun_changes_nothing(
    fixture: &Fixture,
) {
    let s = setup(fixture).await;
    let csv = format!(
        "user_id,tags_group_id,variable_name,value\n\
         c1,{flag},,True\n\
         c1,,spend,12.5\n\
         c2,,,\n\
         \"c3\",{text},city,\"Pune, MH\"\n\
         bad user,,vip,True\n\
         c4,,nope,1\n\
         c4,,old,1\n\
         c4,,spend,lots\n\
         c4,{flag},spend,True\n\
         u0,,,\n\
         c5,,vip,\n\
         c6,,city,\"two\nlines\"\n\
         c7,,vip,0\n",
        flag = s.flag.entity_id,
        text = s.text.entity_id,
    );
    let file = s.dir.path().join("users.csv");
    std::fs::write(&file, csv).expect("written");
    let args = [
        "import",
        "--corp-id",
        &s.corp_id,
        "--batch-size",
        "3",
        "--progress-every",
        "5",
        path_str(&file),
    ];
    let first = tagd(fixture, &args, None);
    let report = summary(&first);
    assert_eq!(counts(&report), [13, 6, 5, 5, 1, 6], "{report}");
    assert_eq!(report["batches"], 5);
    assert_eq!(report["format"], "csv");
    assert!(report["rows_per_sec"].as_f64().is_some() && report["elapsed_secs"].is_number());
    let errors_path = s.dir.path().join("users.csv.errors.ndjson");
    assert_eq!(report["errors_file"], path_str(&errors_path));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("tagd import: 6 rows"), "{stderr}");
    assert!(stderr.contains("tagd import: done, 13 rows"), "{stderr}");

    let errors = json_lines(&std::fs::read(&errors_path).expect("error report"));
    let expected = [
        (6, "invalid_parameter"),
        (7, "group_not_found"),
        (8, "group_inactive"),
        (9, "invalid_value"),
        (10, "group_mismatch"),
        (12, "invalid_value"),
    ]
    .map(|(l, c)| (l, c.to_owned()));
    assert_eq!(refusals(&errors), expected);
    assert_eq!(errors[0]["row"]["user_id"], "bad user");
    assert_eq!(errors[3]["row"]["value"], "lots");
    assert!(errors[1]["reason"]
        .as_str()
        .expect("reason")
        .contains("not found"));

    let store = &fixture.store;
    let c1 = store
        .list_user_assignments(s.org, &UserId::parse("c1").expect("valid"))
        .await
        .expect("c1 registered");
    assert_eq!(c1.len(), 2);
    assert!(c1
        .iter()
        .all(|a| a.source == Source::Import && a.executor == Executor::operator()));
    let c6 = store
        .list_user_assignments(s.org, &UserId::parse("c6").expect("valid"))
        .await
        .expect("c6 registered");
    assert_eq!(c6[0].value, TagValue::String("two\nlines".into()));
    assert_eq!(
        store
            .find_user(s.org, &UserId::parse("c4").expect("valid"))
            .await
            .expect("query"),
        None,
        "refused rows register nobody"
    );
    let before = state(fixture, s.org).await;
    assert_eq!(before.len(), 5);
    assert!(before.iter().all(|(_, _, _, v, h)| (*v, *h) == (0, 1)));

    let again = summary(&tagd(fixture, &args, None));
    assert_eq!(counts(&again), [13, 0, 0, 0, 7, 6], "{again}");
    assert_eq!(
        state(fixture, s.org).await,
        before,
        "the re-run changed nothing"
    );
    let errors_again = json_lines(&std::fs::read(&errors_path).expect("error report"));
    assert_eq!(
        refusals(&errors_again),
        expected,
        "the report is rewritten, not appended"
    );

    // A file without refusals leaves no report behind.
    let clean = s.dir.path().join("clean.csv");
    std::fs::write(&clean, "user_id\nz1\nz2\n").expect("written");
    let report = summary(&tagd(
        fixture,
        &["import", "--corp-id", &s.corp_id, path_str(&clean)],
        None,
    ));
    assert_eq!(counts(&report), [2, 2, 0, 2, 0, 0]);
    assert_eq!(report["errors_file"], Value::Null);
    assert!(!s.dir.path().join("clean.csv.errors.ndjson").exists());
}

async fn an_ndjson_import_from_stdin_reports_refusals_on_stderr(fixture: &Fixture) {
    let s = setup(fixture).await;
    let input = format!(
        "{{\"user_id\":\"n1\",\"variable_name\":\"vip\",\"value\":\"true\"}}\n\
         {{\"user_id\":\"n1\",\"tags_group_id\":\"{number}\",\"value\":\"7\",\"note\":1}}\n\
         \n\
         {{\"user_id\":\"n2\"}}\n\
         {{\"user_id\":\"n3\",\"variable_name\":\"spend\",\"value\":7}}\n\
         not json\n\
         {{\"user_id\":\"n4\",\"variable_name\":\"city\"}}\n\
         {{\"user_id\":\"n5\",\"variable_name\":\"city\",\"value\":\"\"}}\n",
        number = s.number.entity_id,
    );
    let args = ["import", "--corp-id", &s.corp_id, "--format", "ndjson", "-"];
    let output = tagd(fixture, &args, Some(input.as_bytes()));
    let report = summary(&output);
    assert_eq!(counts(&report), [7, 4, 3, 3, 0, 3], "{report}");
    assert_eq!(report["errors_file"], Value::Null);
    let errors = json_lines(&output.stderr);
    assert_eq!(
        refusals(&errors),
        [
            (5, "invalid_parameter"),
            (6, "malformed"),
            (7, "missing_value")
        ]
        .map(|(l, c)| (l, c.to_owned()))
    );
    let n1 = fixture
        .store
        .list_user_assignments(s.org, &UserId::parse("n1").expect("valid"))
        .await
        .expect("n1 registered");
    let values: Vec<TagValue> = n1.iter().map(|a| a.value.clone()).collect();
    assert_eq!(values, vec![TagValue::Define(true), TagValue::Number(7.0)]);

    // The same rows again: nothing changes.
    let again = summary(&tagd(fixture, &args, Some(input.as_bytes())));
    assert_eq!(counts(&again), [7, 0, 0, 0, 4, 3], "{again}");

    // Reading stdin, the format cannot come from a file name.
    let refused = tagd(
        fixture,
        &["import", "--corp-id", &s.corp_id, "-"],
        Some(b"{}"),
    );
    assert!(!refused.status.success());
}

async fn export_then_import_round_trips_and_changes_nothing(fixture: &Fixture) {
    let s = setup(fixture).await;
    let store = &fixture.store;
    let v5 = AssignCommand {
        expiry: None,
        tags_group_id: s.text.entity_id.clone(),
        user_id: UserId::parse("u0").expect("valid"),
        raw_value: "Pune, \"MH\"\nIndia".into(),
        executor: Executor::operator(),
        source: Source::OpenApi,
    };
    store
        .assign(s.org, &v5, &Recorder::none())
        .await
        .expect("assigned");
    // Cells a spreadsheet would run as formulas: exported as text, imported back as they were.
    for (user, value) in [
        ("@evil", "=HYPERLINK(\"http://x\",\"y\")"),
        ("-dash", "-2+3"),
    ] {
        let user_id = UserId::parse(user).expect("valid");
        store
            .create_user(s.org, &user_id, &Recorder::none())
            .await
            .expect("user");
        let command = AssignCommand {
            user_id,
            raw_value: value.into(),
            ..v5.clone()
        };
        store
            .assign(s.org, &command, &Recorder::none())
            .await
            .expect("assigned");
    }
    let mut input = String::new();
    for i in 0..250 {
        input.push_str(&format!(
            "{{\"user_id\":\"r{i}\",\"variable_name\":\"vip\",\"value\":\"{}\"}}\n\
             {{\"user_id\":\"r{i}\",\"variable_name\":\"spend\",\"value\":\"{}.{i}\"}}\n",
            i % 3 == 0,
            i * 1000
        ));
    }
    input.push_str("{\"user_id\":\"lonely\"}\n{\"user_id\":\"r7\",\"variable_name\":\"spend\",\"value\":\"-0.000001\"}\n");
    let loaded = summary(&tagd(
        fixture,
        &["import", "--corp-id", &s.corp_id, "--format", "ndjson", "-"],
        Some(input.as_bytes()),
    ));
    assert_eq!(counts(&loaded), [502, 502, 501, 251, 0, 0], "{loaded}");
    store
        .remove_assignment(
            s.org,
            &s.flag.entity_id,
            &UserId::parse("r1").expect("valid"),
            &Executor::operator(),
            Source::OpenApi,
            &Recorder::none(),
        )
        .await
        .expect("removed");
    let before = state(fixture, s.org).await;
    assert_eq!(before.len(), 502, "500 imported, one removed, three by v5");

    // CSV to a file.
    let csv = s.dir.path().join("export.csv");
    let exported = summary(&tagd(
        fixture,
        &["export", "--corp-id", &s.corp_id, path_str(&csv)],
        None,
    ));
    assert_eq!(
        (
            &exported["assignments"],
            &exported["users_without_assignments"],
            &exported["rows_written"]
        ),
        (&Value::from(502), &Value::from(1), &Value::from(503)),
        "{exported}"
    );
    assert!(!s.dir.path().join("export.csv.partial").exists());
    let text = std::fs::read_to_string(&csv).expect("export written");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("user_id,tags_group_id,variable_name,attribute,value,version,source,mtime")
    );
    assert!(
        text.contains("u0,") && text.contains("\"Pune, \"\"MH\"\"\nIndia\",0,open_api,20"),
        "{text}"
    );
    assert!(
        text.ends_with("lonely,,,,,,,\n"),
        "users without assignments come last"
    );
    assert!(
        text.contains("'@evil,") && text.contains("\"'=HYPERLINK(") && text.contains(",'-2+3,"),
        "formula cells are neutralized: {text}"
    );
    assert!(text.contains(",-0.000001,"), "a plain number is left alone");

    // NDJSON to stdout, with the summary on stderr.
    let output = tagd(
        fixture,
        &["export", "--corp-id", &s.corp_id, "--format", "ndjson"],
        None,
    );
    assert!(output.status.success());
    let rows = json_lines(&output.stdout);
    assert_eq!(rows.len(), 503);
    let spend = rows
        .iter()
        .find(|r| r["user_id"] == "r7" && r["variable_name"] == "spend")
        .expect("r7's spend");
    assert_eq!(
        (
            &spend["attribute"],
            &spend["value"],
            &spend["version"],
            &spend["source"]
        ),
        (
            &Value::from("number"),
            &Value::from("-0.000001"),
            &Value::from(1),
            &Value::from("import")
        )
    );
    let summary_line = json_lines(&output.stderr).pop().expect("summary on stderr");
    assert_eq!(summary_line["rows_written"], 503);
    let ndjson = s.dir.path().join("export.ndjson");
    std::fs::write(&ndjson, &output.stdout).expect("written");

    for file in [&csv, &ndjson] {
        let again = summary(&tagd(
            fixture,
            &["import", "--corp-id", &s.corp_id, path_str(file)],
            None,
        ));
        assert_eq!(counts(&again), [503, 0, 0, 0, 503, 0], "{file:?}: {again}");
        assert_eq!(
            state(fixture, s.org).await,
            before,
            "{file:?} changed nothing"
        );
    }
}

async fn unknown_organizations_and_unreadable_input_fail_with_a_json_error(fixture: &Fixture) {
    let s = setup(fixture).await;
    let file = s.dir.path().join("rows.csv");
    std::fs::write(&file, "user_id\nx1\n").expect("written");
    let nobody = "0123456789abcdef0123456789abcdef";
    let cases: [(Vec<&str>, &str); 5] = [
        (
            vec!["import", "--corp-id", nobody, path_str(&file)],
            "organization not found",
        ),
        (
            vec!["import", "--corp-id", &s.corp_id, "/nonexistent/rows.csv"],
            "cannot open",
        ),
        (
            vec!["import", "--corp-id", &s.corp_id, "rows.txt"],
            "--format",
        ),
        (
            vec!["export", "--corp-id", nobody, "--format", "csv"],
            "organization not found",
        ),
        (
            vec!["export", "--corp-id", &s.corp_id, "out.txt"],
            "--format",
        ),
    ];
    for (args, message) in cases {
        let output = tagd(fixture, &args, None);
        assert!(!output.status.success(), "{args:?} succeeded");
        let error: Value = serde_json::from_slice(&output.stderr).expect("a JSON error");
        assert!(
            error["error"].as_str().expect("message").contains(message),
            "{args:?}: {error}"
        );
    }
    let no_user_column = s.dir.path().join("bad.csv");
    std::fs::write(&no_user_column, "id,value\n1,2\n").expect("written");
    let output = tagd(
        fixture,
        &["import", "--corp-id", &s.corp_id, path_str(&no_user_column)],
        None,
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("user_id column"));
    assert_eq!(
        fixture
            .store
            .find_user(s.org, &UserId::parse("x1").expect("valid"))
            .await
            .expect("query"),
        None
    );
}

/// `tagd segment export` writes what `segments/query` would page through, in both formats, from
/// a filter file, stdin or a saved segment; a bad filter fails with a JSON error naming it.
async fn a_segment_export_writes_every_member_once_in_registration_order(fixture: &Fixture) {
    let s = setup(fixture).await;
    let store = &fixture.store;
    let mut vips = Vec::new();
    for i in 1..=25 {
        let user = UserId::parse(&format!("m{i:02}")).expect("valid");
        store
            .create_user(s.org, &user, &Recorder::none())
            .await
            .expect("user");
        if i % 3 != 0 {
            let command = AssignCommand {
                expiry: None,
                tags_group_id: s.flag.entity_id.clone(),
                user_id: user.clone(),
                raw_value: "True".into(),
                executor: Executor::operator(),
                source: Source::Import,
            };
            store
                .assign(s.org, &command, &Recorder::none())
                .await
                .expect("assigned");
            vips.push(user.as_str().to_owned());
        }
    }
    let filter = s.dir.path().join("vip.json");
    std::fs::write(&filter, r#"{"tag": "vip"}"#).expect("written");
    let csv = s.dir.path().join("vip.csv");
    let args = [
        "segment",
        "export",
        "--corp-id",
        &s.corp_id,
        "--filter",
        path_str(&filter),
    ];
    let output = tagd(fixture, &[&args[..], &[path_str(&csv)]].concat(), None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(summary(&output)["members"], Value::from(vips.len()));
    let written = std::fs::read_to_string(&csv).expect("written");
    let expected: Vec<&str> = std::iter::once("user_id")
        .chain(vips.iter().map(String::as_str))
        .collect();
    assert_eq!(written.lines().collect::<Vec<_>>(), expected);

    let saved = store
        .create_segment(
            s.org,
            &tagd_core::saved_segments::SegmentFields::parse(
                "Not VIP",
                "",
                serde_json::json!({"not": {"tag": "vip"}}),
            )
            .expect("valid"),
            &Recorder::none(),
        )
        .await
        .expect("saved");
    let output = tagd(
        fixture,
        &[
            "segment",
            "export",
            "--corp-id",
            &s.corp_id,
            "--segment-id",
            saved.entity_id.as_str(),
            "--format",
            "ndjson",
        ],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ids: Vec<String> = json_lines(&output.stdout)
        .iter()
        .map(|line| line["user_id"].as_str().expect("user_id").to_owned())
        .collect();
    let mut others: Vec<String> = vec!["u0".into()];
    others.extend((1..=25).filter(|i| i % 3 == 0).map(|i| format!("m{i:02}")));
    assert_eq!(ids, others);

    let from_stdin = tagd(
        fixture,
        &[
            "segment",
            "export",
            "--corp-id",
            &s.corp_id,
            "--filter",
            "-",
        ],
        Some(br#"{"tag": "gold"}"#),
    );
    assert!(!from_stdin.status.success());
    let error: Value = serde_json::from_slice(&from_stdin.stderr).expect("a JSON error");
    assert!(
        error["error"].as_str().expect("message").contains("`gold`"),
        "{error}"
    );
}

/// `tagd history export` writes an organization's (or one user's) tag changes newest first,
/// as CSV with a header or as typed NDJSON; `--since` leaves older changes out.
async fn a_history_export_writes_every_change_newest_first(fixture: &Fixture) {
    let s = setup(fixture).await;
    let store = &fixture.store;
    for (user, value) in [("u0", "1"), ("u0", "2.5"), ("h1", "7")] {
        let user = UserId::parse(user).expect("valid");
        let _ = store.create_user(s.org, &user, &Recorder::none()).await;
        let command = AssignCommand {
            expiry: None,
            tags_group_id: s.number.entity_id.clone(),
            user_id: user,
            raw_value: value.into(),
            executor: Executor::operator(),
            source: Source::Import,
        };
        store
            .assign(s.org, &command, &Recorder::none())
            .await
            .expect("assigned");
    }
    let csv = s.dir.path().join("history.csv");
    let args = ["history", "export", "--corp-id", &s.corp_id, path_str(&csv)];
    let output = tagd(fixture, &args, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(summary(&output)["changes"], Value::from(3));
    let written = std::fs::read_to_string(&csv).expect("written");
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(
        lines[0],
        "version,op,tags_group_id,variable_name,user_id,old_value,new_value,executor_id,source,time,expires_at"
    );
    let cells: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    let seen: Vec<(&str, &str, &str, &str)> =
        cells.iter().map(|c| (c[1], c[4], c[5], c[6])).collect();
    assert_eq!(
        seen,
        [
            ("assign", "h1", "", "7"),
            ("assign", "u0", "1", "2.5"),
            ("assign", "u0", "", "1")
        ]
    );

    let args = [
        "history",
        "export",
        "--corp-id",
        &s.corp_id,
        "--user-id",
        "u0",
        "--format",
        "ndjson",
    ];
    let output = tagd(fixture, &args, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = json_lines(&output.stdout);
    let values: Vec<(Value, Value)> = rows
        .iter()
        .map(|r| (r["old_value"].clone(), r["new_value"].clone()))
        .collect();
    assert_eq!(
        values,
        [
            (Value::from(1.0), Value::from(2.5)),
            (Value::Null, Value::from(1.0))
        ]
    );
    let args = [
        "history",
        "export",
        "--corp-id",
        &s.corp_id,
        "--since",
        "2999-01-01 00:00:00",
        "--format",
        "ndjson",
    ];
    let output = tagd(fixture, &args, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(json_lines(&output.stdout).is_empty());
    let args = [
        "history",
        "export",
        "--corp-id",
        &s.corp_id,
        "--since",
        "yesterday",
    ];
    assert!(!tagd(fixture, &args, None).status.success());
}

/// PostgreSQL writes batches of disjoint users at once; a user's rows still apply in file
/// order, whichever batches they fall in.
async fn rows_of_one_user_in_many_batches_apply_in_file_order(fixture: &Fixture) {
    let s = setup(fixture).await;
    let csv = "user_id,variable_name,value\n\
               a,spend,1\nb,spend,1\n\
               c,spend,1\nd,spend,1\n\
               a,spend,2\nc,spend,2\n\
               e,spend,1\na,spend,3\n\
               f,spend,1\ng,spend,1\n\
               a,spend,3\nb,spend,x\n";
    let file = s.dir.path().join("spread.csv");
    std::fs::write(&file, csv).expect("written");
    let errors = s.dir.path().join("spread.errors.ndjson");
    let args = [
        "import",
        "--corp-id",
        &s.corp_id,
        "--batch-size",
        "2",
        "--progress-every",
        "0",
        "--errors",
        path_str(&errors),
        path_str(&file),
    ];
    let done = summary(&tagd(fixture, &args, None));
    assert_eq!(counts(&done), [12, 10, 10, 7, 1, 1]);
    let reported = json_lines(&std::fs::read(&errors).expect("an error report"));
    assert_eq!(refusals(&reported), vec![(13, "invalid_value".to_owned())]);
    let mut got = state(fixture, s.org).await;
    got.sort();
    let row = |u: &str, v: &str, version: i64| {
        (
            u.into(),
            "spend".into(),
            v.into(),
            version,
            version as usize + 1,
        )
    };
    assert_eq!(
        got,
        vec![
            row("a", "3", 2),
            row("b", "1", 0),
            row("c", "2", 1),
            row("d", "1", 0),
            row("e", "1", 0),
            row("f", "1", 0),
            row("g", "1", 0),
        ]
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fixture) = tagd_store_tests::harness::sqlite().await else {
                        return;
                    };
                    super::$name(&fixture).await;
                    fixture.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fixture) = tagd_store_tests::harness::postgres().await else {
                        return;
                    };
                    super::$name(&fixture).await;
                    fixture.cleanup().await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_csv_import_loads_good_rows_reports_bad_ones_and_a_rerun_changes_nothing,
    an_ndjson_import_from_stdin_reports_refusals_on_stderr,
    export_then_import_round_trips_and_changes_nothing,
    unknown_organizations_and_unreadable_input_fail_with_a_json_error,
    a_segment_export_writes_every_member_once_in_registration_order,
    a_history_export_writes_every_change_newest_first,
    rows_of_one_user_in_many_batches_apply_in_file_order,
);
