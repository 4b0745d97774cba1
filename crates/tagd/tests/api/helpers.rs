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
    let config = HttpConfig {
        admin_token_hash: sha256_hex(ADMIN_TOKEN),
        token_ttl_secs: 7200,
    };
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
