//! The `tagd` binary as an operator runs it: CLI subcommands printing JSON, `serve` on SQLite
//! and PostgreSQL, and a clean exit on SIGTERM.

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tagd_store_tests::harness;

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

#[test]
fn the_cli_creates_organizations_apps_credentials_and_users_and_prints_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let org = tagd(&db, &["org", "create", "--name", "Acme"]);
    let corp_id = org["corp_id"].as_str().expect("corp_id").to_owned();
    assert_eq!(corp_id.len(), 32);
    let app = tagd(
        &db,
        &["app", "create", "--corp-id", &corp_id, "--name", "crm"],
    );
    assert_eq!(app["app_secret"].as_str().map(str::len), Some(64));
    let cred = tagd(
        &db,
        &[
            "credential",
            "create",
            "--corp-id",
            &corp_id,
            "--username",
            "loyalty",
            "--password",
            "pw-123",
        ],
    );
    assert_eq!(cred["username"], "loyalty");
    let first = tagd(
        &db,
        &[
            "user",
            "create",
            "--corp-id",
            &corp_id,
            "--user-id",
            "564663098",
        ],
    );
    let second = tagd(
        &db,
        &[
            "user",
            "create",
            "--corp-id",
            &corp_id,
            "--user-id",
            "564663098",
        ],
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

struct Server {
    child: Child,
    address: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_server(database: &str) -> Server {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            database,
        ])
        .env("TAGD_ADMIN_TOKEN", "binary-test-token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tagd serve starts");
    let address = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Server { child, address };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tagd serve did not listen within 30 s");
}

impl Server {
    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tagd did not stop within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn create_org_over_http(server: &Server) -> Value {
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/admin/v1/orgs", server.address))
        .bearer_auth("binary-test-token")
        .json(&serde_json::json!({"name": "Acme"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn serve_on_sqlite_answers_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("serve.db").display());
    let server = start_server(&db);
    let ready: Value = reqwest::get(format!("{}/readyz", server.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ready["database"], "sqlite");
    create_org_over_http(&server).await;
    assert!(server.terminate().success(), "SIGTERM drains and exits 0");
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
    let server = start_server(&fixture.url);
    let ready: Value = reqwest::get(format!("{}/readyz", server.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ready["database"], "postgres");
    let org = create_org_over_http(&server).await;
    let corp_id =
        tagd_core::ExternalId::parse("corp_id", org["corp_id"].as_str().expect("id")).expect("hex");
    assert!(
        fixture
            .store
            .find_org_by_corp_id(&corp_id)
            .await
            .expect("query")
            .is_some(),
        "written to PostgreSQL"
    );
    assert!(server.terminate().success());
    fixture.cleanup().await;
}
