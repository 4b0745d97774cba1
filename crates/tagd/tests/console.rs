//! The operator console in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, `fantoccini`), against `tagd serve` on SQLite.
//!
//! Runs when `TAGD_TEST_CHROMEDRIVER` names the chromedriver binary (`.ci/run` installs
//! Debian's `chromium` and `chromium-driver` and sets it; a missing driver then fails the
//! test); otherwise it prints a note and returns. With `TAGD_CONSOLE_SCREENSHOTS=<folder>` it
//! also saves each page at 1280 and 360 px wide there (the README's are in docs/console/).

#[path = "support/mod.rs"]
mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::process::{free_port, TagdProcess, ADMIN_TOKEN};

const DRIVER_VAR: &str = "TAGD_TEST_CHROMEDRIVER";
const SCREENSHOTS_VAR: &str = "TAGD_CONSOLE_SCREENSHOTS";

/// chromedriver on a free port, killed when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_driver(binary: &str) -> Driver {
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{DRIVER_VAR}={binary} does not start: {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver(child, port)
}

/// A headless Chromium at 1280 px wide.
async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    let chromium =
        std::env::var("TAGD_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,900"]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a browser session")
}

/// Saves the page at 1280 and 360 px wide as `<name>-1280.png` and `<name>-360.png` in the
/// screenshot folder, when one is given.
async fn screenshots(browser: &Client, name: &str) {
    let Ok(folder) = std::env::var(SCREENSHOTS_VAR) else {
        return;
    };
    for width in [1280u32, 360] {
        browser
            .set_window_size(width, 900)
            .await
            .expect("window resized");
        let png = browser.screenshot().await.expect("a screenshot");
        let path = PathBuf::from(&folder).join(format!("{name}-{width}.png"));
        std::fs::write(&path, png).expect("screenshot written");
    }
    browser
        .set_window_size(1280, 900)
        .await
        .expect("window resized");
}

/// The text of the element `css` selects, waited for.
async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} shows: {e}"))
        .text()
        .await
        .expect("text")
}

async fn fill(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("cleared");
    field.send_keys(text).await.expect("typed");
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("clicked");
}

/// Marks the page in the browser, so that [`until_new_page`] can tell when another replaced it.
async fn mark_page(browser: &Client) {
    browser
        .execute("window.__tagdOldPage = true;", vec![])
        .await
        .expect("script ran");
}

/// Waits until the marked page has been replaced by a loaded one (a form's answer, or the
/// page it redirected to): the click that sent the form returns before that.
async fn until_new_page(browser: &Client, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let loaded = browser
            .execute(
                "return window.__tagdOldPage === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .expect("script ran");
        if loaded == serde_json::Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not load a new page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the button `css` that sends a form, and waits for the answer's page.
async fn submit(browser: &Client, css: &str) {
    mark_page(browser).await;
    click(browser, css).await;
    until_new_page(browser, css).await;
}

/// Types `text` into the field `css` and presses Enter (the keyboard alone sends the form),
/// then waits for the answer's page.
async fn fill_and_enter(browser: &Client, css: &str, text: &str) {
    mark_page(browser).await;
    fill(browser, css, &format!("{text}\u{E007}")).await;
    until_new_page(browser, css).await;
}

/// Whether `app_id`/`secret` get a v5 token from `server`.
async fn issues_token(server: &TagdProcess, app_id: &str, secret: &str) -> bool {
    let answer = reqwest::Client::new()
        .post(server.url("/api/v5/auth/token"))
        .json(&json!({"app_id": app_id, "app_secret": secret}))
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = answer.json().await.expect("JSON");
    body["code"] == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_manages_an_organization_finds_a_user_counts_an_audience_and_signs_out(
) {
    let Ok(driver_binary) = std::env::var(DRIVER_VAR) else {
        eprintln!("{DRIVER_VAR} is not set: the console's browser test is not run");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("console.db").display());
    let server = TagdProcess::start(&database, &["--webhook-allow-private"], None).await;
    // An organization with a tagged user and a webhook endpoint, made through the APIs.
    let admin = server.admin(reqwest::Client::new());
    let acme = admin.v5_org("Acme").await;
    let vip = acme.create_group("VIP", "vip", "define", "crm").await;
    for user in ["u1", "u2", "u3"] {
        acme.create_user(user).await;
    }
    acme.assign(&vip, "u1", "True").await;
    let (status, body) = acme
        .post(
            "/api/v5/webhooks/create",
            &json!({"corp_id": acme.corp_id, "url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let driver = start_driver(&driver_binary).await;
    let browser = browser(&driver).await;
    let console = |path: &str| server.url(path);

    // Signed out, the console sends the browser to sign in; a wrong token is refused in words
    // beside the field; the right one, typed and sent with Enter alone, signs in.
    browser.goto(&console("/console")).await.expect("opened");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/console/sign-in"));
    screenshots(&browser, "sign-in").await;
    fill_and_enter(&browser, "#token", "not-the-admin-token").await;
    let refused = text_of(&browser, "#token-error").await;
    assert!(
        refused.contains("not this server's admin token"),
        "{refused}"
    );
    fill_and_enter(&browser, "#token", ADMIN_TOKEN).await;
    let heading = text_of(&browser, "main h1").await;
    assert_eq!(heading, "Organizations");
    let listed = text_of(&browser, "main table").await;
    assert!(listed.contains("Acme"), "{listed}");
    screenshots(&browser, "organizations").await;

    // Create an organization and an app; the secret is shown once and issues tokens.
    fill(&browser, "#org-name", "Globex").await;
    submit(&browser, "form[action='/console/orgs'] button").await;
    assert_eq!(text_of(&browser, "main h1").await, "Globex");
    fill(&browser, "#app-name", "loyalty").await;
    submit(&browser, "form[action$='/apps'] button").await;
    let first_secret = text_of(&browser, "#shown-secret").await;
    let app_id = text_of(&browser, "#shown-app-id").await;
    assert!(issues_token(&server, &app_id, &first_secret).await);
    screenshots(&browser, "organization").await;

    // Rotate it: a new secret, and the old one no longer issues tokens.
    submit(&browser, "form[action$='/rotate'] button").await;
    let second_secret = text_of(&browser, "#shown-secret").await;
    assert_ne!(first_secret, second_secret);
    assert!(!issues_token(&server, &app_id, &first_secret).await);
    assert!(issues_token(&server, &app_id, &second_secret).await);
    // Reloading the page does not show the secret again.
    browser.refresh().await.expect("reloaded");
    assert!(browser.find(Locator::Css("#shown-secret")).await.is_err());

    // A v2 credential, then a new password for it: the old one is refused from then on.
    fill(&browser, "#cred-user", "loyalty").await;
    fill(&browser, "#cred-password", "first-password").await;
    submit(&browser, "form[action$='/credentials'] button").await;
    assert_eq!(
        basic_status(&server, "loyalty", "first-password").await,
        200
    );
    click(&browser, "details.password summary").await;
    fill(
        &browser,
        "details.password input[name=password]",
        "second-password",
    )
    .await;
    submit(&browser, "details.password button").await;
    assert_eq!(
        basic_status(&server, "loyalty", "first-password").await,
        401
    );
    assert_eq!(
        basic_status(&server, "loyalty", "second-password").await,
        200
    );

    // An error in words beside its field: a tag group with a bad variable name.
    fill(&browser, "#group-name", "Bad").await;
    browser
        .execute(
            "document.getElementById('group-variable').removeAttribute('pattern');",
            vec![],
        )
        .await
        .expect("script ran");
    fill(&browser, "#group-variable", "not a name").await;
    submit(&browser, "form[action$='/groups'] button").await;
    let group_error = text_of(&browser, "#group-error").await;
    assert!(group_error.contains("variable_name"), "{group_error}");

    // Look a user up in Acme: their tags and history.
    let acme_page = console(&format!("/console/orgs/{}/user?user_id=u1", acme.corp_id));
    browser.goto(&acme_page).await.expect("opened");
    let tags = text_of(&browser, "#user-tags").await;
    assert!(tags.contains("VIP") && tags.contains("True"), "{tags}");
    let history = text_of(&browser, "#user-history").await;
    assert!(history.contains("tag.assigned"), "{history}");
    screenshots(&browser, "user").await;

    // Build an audience: the exact count follows the conditions as they change, with the
    // filter they make; a filter typed as JSON is used instead, and its errors are words.
    let segments = console(&format!("/console/orgs/{}/segments", acme.corp_id));
    browser.goto(&segments).await.expect("opened");
    browser
        .find(Locator::Css("#tag0"))
        .await
        .expect("the first condition's tag")
        .select_by_value("vip")
        .await
        .expect("vip chosen");
    wait_for_text(&browser, "#count", "1").await;
    click(&browser, "#not0").await;
    wait_for_text(&browser, "#count", "2").await;
    let composed = text_of(&browser, "#composed").await;
    assert_eq!(composed, r#"{"not":{"tag":"vip"}}"#);
    fill(&browser, "#filter", r#"{"tag": "nope"}"#).await;
    let error = text_of(&browser, "#count-error").await;
    assert!(error.contains("nope"), "{error}");
    fill(&browser, "#filter", "").await;
    wait_for_text(&browser, "#count", "2").await;
    click(&browser, "#not0").await;
    wait_for_text(&browser, "#count", "1").await;
    screenshots(&browser, "segments").await;
    fill(&browser, "#segment-name", "VIPs").await;
    submit(
        &browser,
        "#segment-form button[type=submit]:not([formaction])",
    )
    .await;
    let saved = text_of(&browser, "main p.notice").await;
    assert!(saved.contains("Saved as segment VIPs"), "{saved}");
    let listed = text_of(&browser, "main").await;
    assert!(listed.contains(r#"{"tag":"vip"}"#), "{listed}");
    // A reload shows the page again, without saving twice or repeating the notice.
    browser.refresh().await.expect("reloaded");
    assert!(browser.find(Locator::Css("main p.notice")).await.is_err());

    let webhooks = console(&format!("/console/orgs/{}/webhooks", acme.corp_id));
    browser.goto(&webhooks).await.expect("opened");
    let page = text_of(&browser, "main").await;
    assert!(page.contains("127.0.0.1:9/hook"), "{page}");
    fill(&browser, "#hook-url", "http://127.0.0.1:9/console-hook").await;
    submit(&browser, "form[action$='/webhooks'] button").await;
    let secret = text_of(&browser, "#shown-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let page = text_of(&browser, "main").await;
    assert!(page.contains("127.0.0.1:9/console-hook"), "{page}");
    fill(
        &browser,
        "main form[action$='/replay'] input[name=from_version]",
        "1",
    )
    .await;
    submit(&browser, "main form[action$='/replay'] button").await;
    let replayed = text_of(&browser, "#flash").await;
    assert!(replayed.contains("from version 1"), "{replayed}");
    screenshots(&browser, "webhooks").await;

    // A form whose CSRF token is not the session's is refused, and changes nothing.
    browser
        .goto(&console("/console/orgs"))
        .await
        .expect("opened");
    fill(&browser, "#org-name", "Forged").await;
    browser
        .execute(
            "document.querySelector(\"form[action='/console/orgs'] input[name=csrf]\").value = 'forged';",
            vec![],
        )
        .await
        .expect("script ran");
    submit(&browser, "form[action='/console/orgs'] button").await;
    assert_eq!(text_of(&browser, "main h1").await, "Form refused");
    let orgs = admin.get_json("/admin/v1/orgs").await;
    assert!(!orgs.to_string().contains("Forged"), "{orgs}");

    // Sign out: the session ends, and the console asks to sign in again.
    browser
        .goto(&console("/console/orgs"))
        .await
        .expect("opened");
    submit(&browser, "header form button").await;
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/console/sign-in"));
    browser
        .goto(&console("/console/orgs"))
        .await
        .expect("opened");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/console/sign-in"));

    browser.close().await.expect("closed");
    drop(driver);
    server.terminate().await;
}

/// The status of a v2 request with Basic `user`:`password`.
async fn basic_status(server: &TagdProcess, user: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .get(server.url("/v2/organization/labels"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

/// Waits until the element `css` shows exactly `expected`.
async fn wait_for_text(browser: &Client, css: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            if element.text().await.is_ok_and(|t| t == expected) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{css} never showed {expected}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_console_lives_on_the_admin_address_behind_a_strict_session_cookie_and_csrf_tokens(
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("console.db").display());
    console_over_http(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_console_lives_on_the_admin_address_behind_a_strict_session_cookie_and_csrf_tokens(
) {
    let Some(fixture) = tagd_store_tests::harness::postgres().await else {
        return;
    };
    console_over_http(&fixture.url).await;
    fixture.cleanup().await;
}

/// A signed-in operator's browser, seen as HTTP: every request sends the session cookie.
struct SignedIn {
    client: reqwest::Client,
    address: String,
    cookie: String,
}

impl SignedIn {
    async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.address);
        let request = self.client.get(url).header("cookie", &self.cookie);
        request.send().await.expect("sent")
    }

    /// POST of `form` (URL-encoded, as a browser sends it).
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let url = format!("{}{path}", self.address);
        let request = self.client.post(url).header("cookie", &self.cookie);
        request.form(form).send().await.expect("sent")
    }
}

/// The console over plain HTTP, on a server over `database` (a fresh one).
async fn console_over_http(database: &str) {
    let admin_port = free_port();
    let admin_listen = format!("127.0.0.1:{admin_port}");
    let server = TagdProcess::start(database, &["--admin-listen", &admin_listen], None).await;
    let admin_address = format!("http://{admin_listen}");
    let console = |path: &str| format!("{admin_address}{path}");
    let client = http();

    // Not on the public address at all.
    let public = client
        .get(server.url("/console/sign-in"))
        .send()
        .await
        .expect("sent");
    assert_eq!(public.status(), 404);

    // Signed out: every page sends the browser to sign in.
    let page = client
        .get(console("/console/orgs"))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/console/sign-in");

    // A sign-in posted from another site is refused before it counts as a failed login.
    let cross = client
        .post(console("/console/sign-in"))
        .header("origin", "http://elsewhere.example")
        .form(&[("token", "wrong")])
        .send()
        .await
        .expect("sent");
    assert_eq!(cross.status(), 403);

    // A wrong token: refused in words, no cookie.
    let wrong = client
        .post(console("/console/sign-in"))
        .form(&[("token", "wrong")])
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(wrong
        .text()
        .await
        .expect("text")
        .contains("not this server&#39;s admin token"));

    // The right one: a session cookie that scripts cannot read and other sites cannot send.
    let signed_in = client
        .post(console("/console/sign-in"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .expect("sent");
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .expect("text")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let operator = SignedIn {
        client: client.clone(),
        address: admin_address.clone(),
        cookie: cookie.split(';').next().expect("name=value").to_owned(),
    };

    // Pages are not cached, framed, or allowed scripts from elsewhere.
    let orgs = operator.get("/console/orgs").await;
    assert_eq!(orgs.status(), 200);
    assert_eq!(orgs.headers()["x-frame-options"], "DENY");
    assert_eq!(orgs.headers()["cache-control"], "no-store");
    let policy = orgs.headers()["content-security-policy"]
        .to_str()
        .expect("text");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    let html = orgs.text().await.expect("text");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();

    // A form without the session's CSRF token changes nothing; with it, it works.
    let forged = operator
        .post("/console/orgs", &[("csrf", "forged"), ("name", "Forged")])
        .await;
    assert_eq!(forged.status(), 403);
    let created = operator
        .post(
            "/console/orgs",
            &[("csrf", csrf.as_str()), ("name", "Acme")],
        )
        .await;
    assert_eq!(created.status(), 303);
    let admin =
        support::client::AdminClient::new(reqwest::Client::new(), &admin_address, ADMIN_TOKEN);
    let names = admin.get_json("/admin/v1/orgs").await.to_string();
    assert!(
        names.contains("Acme") && !names.contains("Forged"),
        "{names}"
    );

    // A segment's members as CSV: every user of the organization here.
    let corp_id = admin.get_json("/admin/v1/orgs").await[0]["corp_id"]
        .as_str()
        .expect("corp_id")
        .to_owned();
    for user in ["u1", "u2"] {
        let path = format!("/admin/v1/orgs/{corp_id}/users");
        admin.created(&path, &json!({"user_id": user})).await;
    }
    let export = operator
        .post(
            &format!("/console/orgs/{corp_id}/segments/export"),
            &[("csrf", csrf.as_str()), ("filter", r#"{"all": []}"#)],
        )
        .await;
    assert_eq!(export.status(), 200);
    assert!(export.headers()["content-disposition"]
        .to_str()
        .expect("text")
        .starts_with("attachment"));
    assert_eq!(export.text().await.expect("text"), "user_id\nu1\nu2\n");

    // One organization's page cannot act on another's tag group: the group is not found
    // there, and stays as it was.
    let other = operator
        .post(
            "/console/orgs",
            &[("csrf", csrf.as_str()), ("name", "Globex")],
        )
        .await;
    let globex = other.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let group = [
        ("csrf", csrf.as_str()),
        ("name", "VIP"),
        ("variable_name", "vip"),
        ("attribute", "define"),
        ("category", "crm"),
    ];
    let made = operator.post(&format!("{globex}/groups"), &group).await;
    assert_eq!(made.status(), 303);
    let page = operator.get(&globex).await.text().await.expect("text");
    let group_id = page
        .split("/groups/")
        .nth(1)
        .map(|rest| rest[..32].to_owned())
        .expect("the group's id in Globex's page");
    let crossed = operator
        .post(
            &format!("/console/orgs/{corp_id}/groups/{group_id}/deactivate"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(crossed.status(), 404);
    let page = operator.get(&globex).await.text().await.expect("text");
    assert!(
        page.contains("badge\">active"),
        "Globex's group is still active"
    );

    // An organization that does not exist is a page that says so.
    let missing = operator
        .get(&format!("/console/orgs/{}", "0".repeat(32)))
        .await;
    assert_eq!(missing.status(), 404);

    // Signed out, the same cookie is worth nothing.
    let out = operator
        .post("/console/sign-out", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(out.status(), 303);
    let after = operator.get("/console/orgs").await;
    assert_eq!(after.status(), 303);
    server.terminate().await;
}
