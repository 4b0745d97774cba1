//! `spawn_app`: a tagd server on 127.0.0.1:0 over a fresh store, with typed request helpers.

use reqwest::{Client, Response};
use serde_json::Value;
use std::sync::Arc;
use tagd_core::secrets::sha256_hex;
use tagd_core::Store;
use tagd_http::HttpConfig;
use tagd_store_tests::harness::{self, Fixture};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub store: Arc<dyn Store>,
    fixture: Fixture,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Serves the app on a fresh store of `backend` (or `None` when that backend is not configured).
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let fixture = match backend {
        Backend::Sqlite => harness::sqlite().await,
        Backend::Postgres => harness::postgres().await,
    }?;
    Some(serve_store(fixture).await)
}

pub async fn serve_store(fixture: Fixture) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port 0 binds");
    let address = format!("http://{}", listener.local_addr().expect("bound address"));
    let config = HttpConfig::new(sha256_hex(ADMIN_TOKEN));
    let (stop, stopped) = oneshot::channel::<()>();
    let store = fixture.store.clone();
    let server = tokio::spawn(tagd::server::serve(
        listener,
        store.clone(),
        config,
        async {
            let _ = stopped.await;
        },
    ));
    TestApp {
        address,
        client: Client::new(),
        store,
        fixture,
        stop,
        server,
    }
}

impl TestApp {
    /// The URL another connection (or a `tagd` process) reaches this app's database with.
    pub fn database_url(&self) -> &str {
        &self.fixture.url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// POST with the admin token.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates an organization through the admin API and returns its corp_id.
    pub async fn create_org(&self, name: &str) -> String {
        let response = self
            .admin_post("/admin/v1/orgs", &serde_json::json!({"name": name}))
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("JSON body");
        body["corp_id"].as_str().expect("corp_id").to_owned()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.fixture.cleanup().await;
    }
}

/// Generates one `#[tokio::test]` per backend for each named `async fn(&TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite)
                        .await
                        .expect("SQLite always runs");
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await
                    else {
                        return;
                    };
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
    };
}

/// Another server over the same store as a [`TestApp`], with its own [`HttpConfig`] (a short
/// token lifetime, say). Stop it before the app it shares the store with.
pub struct ExtraServer {
    pub address: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl ExtraServer {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// The configuration `serve_store` uses, with another v5 token lifetime.
pub fn config_with_token_ttl(token_ttl_secs: i64) -> HttpConfig {
    HttpConfig {
        token_ttl_secs,
        ..HttpConfig::new(sha256_hex(ADMIN_TOKEN))
    }
}

/// A v5 answer: the HTTP status and the JSON body (a JSON string holding the text when the
/// body is not JSON).
pub type V5Answer = (u16, Value);

async fn v5_answer(response: Response) -> V5Answer {
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// One organization as a v5 client sees it: its corp_id, one app and that app's token. Every
/// request carries `Authorization: Bearer <token>` and `X-APP-ID: <app_id>`; `with_auth` makes
/// a copy that sends other ones (to probe tenancy).
#[derive(Clone)]
pub struct V5Org {
    pub corp_id: String,
    pub app_id: String,
    pub app_secret: String,
    pub token: String,
    client: Client,
    address: String,
}

impl TestApp {
    /// Serves this app's store a second time, on another port, with `config`.
    pub async fn serve_alongside(&self, config: HttpConfig) -> ExtraServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port 0 binds");
        let address = format!("http://{}", listener.local_addr().expect("bound address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(tagd::server::serve(
            listener,
            self.store.clone(),
            config,
            async {
                let _ = stopped.await;
            },
        ));
        ExtraServer {
            address,
            stop,
            server,
        }
    }

    /// Creates an app of `corp_id` through the admin API: (app_id, app_secret).
    pub async fn create_app(&self, corp_id: &str, name: &str) -> (String, String) {
        let response = self
            .admin_post(
                &format!("/admin/v1/orgs/{corp_id}/apps"),
                &serde_json::json!({"name": name}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("JSON body");
        (
            body["app_id"].as_str().expect("app_id").to_owned(),
            body["app_secret"].as_str().expect("app_secret").to_owned(),
        )
    }

    /// An organization with one app and a token from `POST /api/v5/auth/token`.
    pub async fn v5_org(&self, name: &str) -> V5Org {
        let corp_id = self.create_org(name).await;
        let (app_id, app_secret) = self.create_app(&corp_id, &format!("{name} app")).await;
        let response = self
            .client
            .post(self.url("/api/v5/auth/token"))
            .json(&serde_json::json!({"app_id": app_id, "app_secret": app_secret}))
            .send()
            .await
            .expect("request sent");
        let (status, body) = v5_answer(response).await;
        assert_eq!(status, 200, "{body}");
        let token = body["data"]["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        V5Org {
            corp_id,
            app_id,
            app_secret,
            token,
            client: self.client.clone(),
            address: self.address.clone(),
        }
    }
}

impl V5Org {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A copy that sends `token` and `app_id` instead of its own.
    pub fn with_auth(&self, token: &str, app_id: &str) -> V5Org {
        V5Org {
            token: token.to_owned(),
            app_id: app_id.to_owned(),
            ..self.clone()
        }
    }

    /// A copy that talks to another server (over the same store).
    pub fn at(&self, address: &str) -> V5Org {
        V5Org {
            address: address.to_owned(),
            ..self.clone()
        }
    }

    /// POST a JSON body with this org's token and app id.
    pub async fn post(&self, path: &str, body: &Value) -> V5Answer {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("X-APP-ID", &self.app_id)
            .json(body)
            .send()
            .await
            .expect("request sent");
        v5_answer(response).await
    }

    /// GET `path_with_query` with this org's token and app id.
    pub async fn get(&self, path_with_query: &str) -> V5Answer {
        let response = self
            .client
            .get(self.url(path_with_query))
            .bearer_auth(&self.token)
            .header("X-APP-ID", &self.app_id)
            .send()
            .await
            .expect("request sent");
        v5_answer(response).await
    }

    /// A request with exactly `headers` (no token or app id unless listed) and a raw body.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> V5Answer {
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        v5_answer(request.send().await.expect("request sent")).await
    }

    /// Registers `user_id` through `POST /api/v5/user/create`.
    pub async fn create_user(&self, user_id: &str) {
        let body = serde_json::json!({"corp_id": self.corp_id, "user_id": user_id});
        let (status, answer) = self.post("/api/v5/user/create", &body).await;
        assert_eq!(
            (status, &answer["code"]),
            (200, &Value::from(0)),
            "{answer}"
        );
    }

    /// Creates a tag group; its entity id.
    pub async fn create_group(
        &self,
        name: &str,
        variable_name: &str,
        attribute: &str,
        category: &str,
    ) -> String {
        let body = serde_json::json!({
            "name": name, "variable_name": variable_name, "description": "",
            "attribute": attribute, "category": category, "corp_id": self.corp_id,
        });
        let (status, answer) = self.post("/api/v5/entity/tags/group/create", &body).await;
        assert_eq!(status, 200, "{answer}");
        answer["data"]["tags_group_id"]
            .as_str()
            .expect("tags_group_id")
            .to_owned()
    }

    /// Assigns `value` of `group` to `user_id`; the assignment's entity id.
    pub async fn assign(&self, group: &str, user_id: &str, value: &str) -> String {
        let (status, answer) = self.assign_answer(group, user_id, value).await;
        assert_eq!(status, 200, "{answer}");
        answer["data"].as_str().expect("assignment id").to_owned()
    }

    pub async fn assign_answer(&self, group: &str, user_id: &str, value: &str) -> V5Answer {
        let body = serde_json::json!({
            "corp_id": self.corp_id, "tags_group_id": group, "user_id": user_id, "value": value,
        });
        self.post("/api/v5/entity/user/tags/assign", &body).await
    }

    /// The whole `data` of the group list of `category` (one page of up to 1,000 rows).
    pub async fn groups(&self, category: &str) -> Value {
        let (status, answer) = self
            .get(&format!(
                "/api/v5/entity/tags/group/list?corp_id={}&category={category}&start_index=0&step=1000",
                self.corp_id
            ))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer["data"].clone()
    }

    /// The whole `data` of `user_id`'s tag list.
    pub async fn user_tags(&self, user_id: &str) -> Value {
        let (status, answer) = self
            .get(&format!(
                "/api/v5/entity/user/tags/list?corp_id={}&user_id={user_id}",
                self.corp_id
            ))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer["data"].clone()
    }
}

/// A TCP proxy in front of PostgreSQL that the test can cut, to stop "the database" without
/// stopping the shared server.
pub struct CuttableProxy {
    pub port: u16,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    acceptor: JoinHandle<()>,
}

impl CuttableProxy {
    pub async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let tasks: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = tasks.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().expect("lock").push(task);
            }
        });
        CuttableProxy {
            port,
            tasks,
            acceptor,
        }
    }

    pub fn cut(&self) {
        self.acceptor.abort();
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }
}
