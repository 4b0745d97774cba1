//! The `tagd` binary as an operator runs it: CLI subcommands printing JSON, `serve` on SQLite
//! and PostgreSQL, and a clean exit on SIGTERM.

use serde_json::Value;
use std::process::Command;
use support::process::{free_port, TagdProcess, ADMIN_TOKEN};
use tagd_store_tests::harness;

#[path = "support/mod.rs"]
mod support;

fn tagd(database: &str, args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .arg("--database")
        .arg(database)
        .args(args)
        .output()
        .expect("tagd runs");
    assert!(
        output.status.success(),
        "tagd {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("tagd prints JSON")
}

/// [`tagd`] with `line` split at spaces, for commands none of whose arguments holds one.
fn tagd_line(database: &str, line: &str) -> Value {
    tagd(database, &line.split(' ').collect::<Vec<_>>())
}

#[test]
fn the_cli_creates_organizations_apps_credentials_and_users_and_prints_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let org = tagd(&db, &["org", "create", "--name", "Acme"]);
    let corp_id = org["corp_id"].as_str().expect("corp_id").to_owned();
    assert_eq!(corp_id.len(), 32);
    let app = tagd_line(&db, &format!("app create --corp-id {corp_id} --name crm"));
    assert_eq!(app["app_secret"].as_str().map(str::len), Some(64));
    let cred = tagd_line(
        &db,
        &format!("credential create --corp-id {corp_id} --username loyalty --password pw-123"),
    );
    assert_eq!(cred["username"], "loyalty");
    let first = tagd_line(
        &db,
        &format!("user create --corp-id {corp_id} --user-id 564663098"),
    );
    let second = tagd_line(
        &db,
        &format!("user create --corp-id {corp_id} --user-id 564663098"),
    );
    assert_eq!(
        (first["created"].as_bool(), second["created"].as_bool()),
        (Some(true), Some(false))
    );

    let refused = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args([
            "--database",
            &db,
            "user",
            "create",
            "--corp-id",
            "nope",
            "--user-id",
            "x",
        ])
        .output()
        .expect("tagd runs");
    assert!(!refused.status.success());
    let error: Value = serde_json::from_slice(&refused.stderr).expect("JSON error on stderr");
    assert!(error["error"]
        .as_str()
        .expect("message")
        .contains("corp_id"));
}

/// Creates an organization through the server's admin API; the answer's JSON.
async fn create_org_over_http(server: &TagdProcess) -> Value {
    let admin = server.admin(reqwest::Client::new());
    admin
        .created("/admin/v1/orgs", &serde_json::json!({"name": "Acme"}))
        .await
}

/// The server's `GET /readyz` answer.
async fn readyz(server: &TagdProcess) -> Value {
    reqwest::get(format!("{}/readyz", server.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn serve_on_sqlite_answers_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("serve.db").display());
    let server = TagdProcess::start(&db, &[], None).await;
    assert_eq!(readyz(&server).await["database"], "sqlite");
    create_org_over_http(&server).await;
    assert!(
        server.terminate().await.success(),
        "SIGTERM drains and exits 0"
    );
    assert!(
        dir.path().join("serve.db").exists(),
        "the database file was created"
    );
}

#[tokio::test]
async fn serve_with_a_postgres_url_serves_the_same_api_from_postgresql() {
    let Some(fixture) = harness::postgres().await else {
        return;
    };
    let server = TagdProcess::start(&fixture.url, &[], None).await;
    assert_eq!(readyz(&server).await["database"], "postgres");
    let org = create_org_over_http(&server).await;
    let corp_id =
        tagd_core::CorpId::parse("corp_id", org["corp_id"].as_str().expect("id")).expect("hex");
    assert!(
        fixture
            .store
            .find_org_by_corp_id(&corp_id)
            .await
            .expect("query")
            .is_some(),
        "written to PostgreSQL"
    );
    assert!(server.terminate().await.success());
    fixture.cleanup().await;
}

#[test]
fn an_admin_token_under_32_characters_is_refused_at_start_and_help_names_the_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("short.db").display());
    let output = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .env("TAGD_ADMIN_TOKEN", "x")
        .output()
        .expect("tagd runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 32 characters"), "{stderr}");
    let help = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args(["serve", "--help"])
        .env("TAGD_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("tagd runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for setting in [
        "TAGD_ADMIN_TOKEN",
        "TAGD_ADMIN_LISTEN",
        "TAGD_TRUSTED_PROXIES",
        "TAGD_PASSWORD_VERIFIERS",
        "TAGD_MAX_TAG_GROUPS_PER_ORG",
    ] {
        assert!(help.contains(setting), "{setting} missing from --help");
    }
    assert!(!help.contains(ADMIN_TOKEN), "no token value is shown");
}

#[tokio::test]
async fn with_admin_listen_the_admin_api_is_served_there_and_not_on_the_public_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("split.db").display());
    let admin_port = free_port();
    let admin_address = format!("127.0.0.1:{admin_port}");
    let server = TagdProcess::start(&db, &["--admin-listen", &admin_address], None).await;
    let client = reqwest::Client::new();
    let create = |base: String| {
        client
            .post(format!("{base}/admin/v1/orgs"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"name": "Acme"}))
            .send()
    };
    let public = create(server.address.clone()).await.expect("sent");
    assert_eq!(public.status(), 404, "no admin API on --listen");
    let admin = create(format!("http://{admin_address}"))
        .await
        .expect("sent");
    assert_eq!(admin.status(), 201);
    let v2_on_admin = client
        .get(format!("http://{admin_address}/v2/organization/labels"))
        .send()
        .await
        .expect("sent");
    assert_eq!(v2_on_admin.status(), 404, "the dialects stay on --listen");
    let ready = client
        .get(format!("{}/readyz", server.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 200);
    assert!(
        server.terminate().await.success(),
        "both addresses drain and exit 0"
    );
}

#[test]
fn the_cli_lists_rotates_deletes_disables_and_caps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("ops.db").display());
    let corp_id = tagd(&db, &["org", "create", "--name", "Acme"])["corp_id"]
        .as_str()
        .expect("corp_id")
        .to_owned();
    let app = tagd_line(&db, &format!("app create --corp-id {corp_id} --name crm"));
    let app_id = app["app_id"].as_str().expect("app_id").to_owned();
    let listed = tagd(&db, &["app", "list", "--corp-id", &corp_id]);
    assert_eq!(listed[0]["app_id"], app_id.as_str());
    assert!(!listed
        .to_string()
        .contains(app["app_secret"].as_str().expect("secret")));
    let rotated = tagd_line(
        &db,
        &format!("app rotate-secret --corp-id {corp_id} --app-id {app_id}"),
    );
    assert_ne!(rotated["app_secret"], app["app_secret"]);
    tagd_line(
        &db,
        &format!("credential create --corp-id {corp_id} --username loyalty --password a"),
    );
    tagd_line(
        &db,
        &format!("credential set-password --corp-id {corp_id} --username loyalty --password b"),
    );
    let credentials = tagd(&db, &["credential", "list", "--corp-id", &corp_id]);
    assert_eq!(credentials[0]["username"], "loyalty");
    assert!(!credentials.to_string().contains("argon2"));
    let disabled = tagd(&db, &["org", "disable", "--corp-id", &corp_id]);
    assert_eq!(disabled["disabled"], true);
    let shown = tagd(&db, &["org", "show", "--corp-id", &corp_id]);
    assert_eq!(
        (
            shown["disabled"].as_bool(),
            shown["counts"]["apps"].as_i64()
        ),
        (Some(true), Some(1))
    );
    tagd(&db, &["org", "enable", "--corp-id", &corp_id]);
    let capped = tagd_line(
        &db,
        &format!("org limits --corp-id {corp_id} --max-tag-groups 5"),
    );
    assert_eq!(
        (
            capped["max_tag_groups"].as_i64(),
            capped["is_default"].as_bool()
        ),
        (Some(5), Some(false))
    );
    let default = tagd_line(
        &db,
        &format!("org limits --corp-id {corp_id} --max-tag-groups default"),
    );
    assert_eq!(default["max_tag_groups"], 10_000);
    let orgs = tagd(&db, &["org", "list"]);
    assert_eq!(orgs.as_array().map(Vec::len), Some(1));
    tagd_line(
        &db,
        &format!("app delete --corp-id {corp_id} --app-id {app_id}"),
    );
    tagd_line(
        &db,
        &format!("credential delete --corp-id {corp_id} --username loyalty"),
    );
    assert_eq!(
        tagd(&db, &["app", "list", "--corp-id", &corp_id]),
        serde_json::json!([])
    );
    assert_eq!(
        tagd(&db, &["credential", "list", "--corp-id", &corp_id]),
        serde_json::json!([])
    );
}

/// The README's settings table against `tagd serve --help`: every flag the server takes is in
/// the table with its variable and default, and every row names a real flag with the default
/// clap applies. The defaults live once, in code; this keeps the README from drifting.
#[test]
fn the_readme_settings_table_matches_serve_help() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let help = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args(["serve", "--help"])
        .env("TAGD_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("tagd runs");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let lines: Vec<&str> = help.lines().collect();
    // The help of one flag: its line and the lines up to the next flag.
    let section = |flag: &str| -> String {
        let start = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{flag} ")) || l.trim() == flag)
            .unwrap_or_else(|| panic!("{flag} is not in `tagd serve --help`"));
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.trim_start().starts_with("--") || l.trim_start().starts_with("-h"))
            .map_or(lines.len(), |n| start + 1 + n);
        lines[start..end].join(" ")
    };
    let mut documented = Vec::new();
    for row in readme.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (flag, env, default) = (
            cells[1].trim_matches('`'),
            cells[2].trim_matches('`'),
            cells[3],
        );
        let text = section(flag);
        assert!(
            text.contains(&format!("[env: {env}")),
            "{flag}: {env} not in {text}"
        );
        match default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) {
            Some(value) => assert!(
                text.contains(&format!("[default: {value}]")),
                "{flag}: README says {value}, help says {text}"
            ),
            None => assert!(!text.contains("[default:"), "{flag}: README says {default}"),
        }
        documented.push(flag.to_owned());
    }
    for line in &lines {
        // An option's own line starts with it; descriptions mention flags mid-sentence.
        let Some(flag) = line
            .trim_start()
            .strip_prefix("--")
            .and_then(|rest| rest.split([' ', '=']).next())
            .map(|name| format!("--{name}"))
        else {
            continue;
        };
        if flag != "--help" {
            assert!(
                documented.contains(&flag),
                "{flag} is missing from the README table"
            );
        }
    }
}
