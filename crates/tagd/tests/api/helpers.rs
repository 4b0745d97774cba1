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

pub use crate::support::client::{AdminClient, V5Answer, V5Org};

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

/// [`spawn_app`] with a configuration of the test's own.
pub async fn spawn_app_with(backend: Backend, config: HttpConfig) -> Option<TestApp> {
    let fixture = match backend {
        Backend::Sqlite => harness::sqlite().await,
        Backend::Postgres => harness::postgres().await,
    }?;
    Some(serve_store_with(fixture, config).await)
}

pub async fn serve_store(fixture: Fixture) -> TestApp {
    serve_store_with(fixture, HttpConfig::new(sha256_hex(ADMIN_TOKEN))).await
}

pub async fn serve_store_with(fixture: Fixture, config: HttpConfig) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port 0 binds");
    let address = format!("http://{}", listener.local_addr().expect("bound address"));
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
        self.admin().post(path, body).await
    }

    /// Creates an organization through the admin API and returns its corp_id.
    pub async fn create_org(&self, name: &str) -> String {
        self.admin().create_org(name).await
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.fixture.cleanup().await;
    }
}

/// Like [`on_both_backends`], with the servers configured by `$config` (an expression giving
/// an `HttpConfig`), in modules `$sqlite` and `$postgres`.
#[macro_export]
macro_rules! on_both_backends_with {
    ($config:expr; $sqlite:ident, $postgres:ident; $($name:ident),* $(,)?) => {
        mod $sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $config)
                        .await
                        .expect("SQLite always runs");
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
        mod $postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, $config).await
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

/// The default configuration (what `serve_store` uses).
pub fn default_config() -> HttpConfig {
    HttpConfig::new(sha256_hex(ADMIN_TOKEN))
}

/// The configuration `serve_store` uses, with another v5 token lifetime.
pub fn config_with_token_ttl(token_ttl_secs: i64) -> HttpConfig {
    HttpConfig {
        token_ttl_secs,
        ..HttpConfig::new(sha256_hex(ADMIN_TOKEN))
    }
}

impl TestApp {
    /// Serves this app's store a second time, on another port, with `config`.
    pub async fn serve_alongside(&self, config: HttpConfig) -> ExtraServer {
        serve_extra(self.store.clone(), config).await
    }

    /// Serves this app's database through a store of its own, as another tagd server over the
    /// same database would (its own connections, its own index).
    pub async fn serve_other_server(&self, config: HttpConfig) -> ExtraServer {
        let store = tagd::open_store(self.database_url())
            .await
            .expect("a second store opens");
        serve_extra(store, config).await
    }
}

/// Serves `store` on another port.
async fn serve_extra(store: Arc<dyn Store>, config: HttpConfig) -> ExtraServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port 0 binds");
    let address = format!("http://{}", listener.local_addr().expect("bound address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(tagd::server::serve(listener, store, config, async {
        let _ = stopped.await;
    }));
    ExtraServer {
        address,
        stop,
        server,
    }
}

impl TestApp {
    /// This app's admin API.
    pub fn admin(&self) -> AdminClient {
        AdminClient::new(self.client.clone(), &self.address, ADMIN_TOKEN)
    }

    /// Creates an app of `corp_id` through the admin API: (app_id, app_secret).
    pub async fn create_app(&self, corp_id: &str, name: &str) -> (String, String) {
        self.admin().create_app(corp_id, name).await
    }

    /// An organization with one app and a token from `POST /api/v5/auth/token`.
    pub async fn v5_org(&self, name: &str) -> V5Org {
        self.admin().v5_org(name).await
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
        self.drop_connections();
    }

    /// Breaks every connection open now; new ones still go through.
    pub fn drop_connections(&self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }
}

/// Serves a fresh database of the PostgreSQL server at `url` through a [`CuttableProxy`], so a
/// test can stop "the database" under a running app.
pub async fn serve_postgres_behind_proxy(url: &str) -> (TestApp, CuttableProxy) {
    let target = url::Url::parse(url).expect("URL");
    let host = format!(
        "{}:{}",
        target.host_str().unwrap_or("127.0.0.1"),
        target.port().unwrap_or(5432)
    );
    let proxy = CuttableProxy::start(host).await;
    let mut via_proxy = target;
    via_proxy.set_host(Some("127.0.0.1")).expect("host");
    via_proxy.set_port(Some(proxy.port)).expect("port");
    let fixture = harness::postgres_at(via_proxy.as_str())
        .await
        .expect("PostgreSQL via proxy");
    (serve_store(fixture).await, proxy)
}
