//! The `tagd` binary's library half: choosing the backend from the database URL, resolving
//! the admin token, starting the server with graceful shutdown, and the logging set-up. The
//! binary (`main.rs`) is only the command line over these.
#![forbid(unsafe_code)]

pub mod bulk;
pub mod cli;
pub mod logging;
pub mod server;

use std::sync::Arc;
use tagd_core::secrets::{generate_secret, sha256_hex};
use tagd_core::{Error, Result, Store};

/// The default database: a SQLite file in the working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tagd.db";

/// Opens the store the URL names: `postgres://` / `postgresql://` select PostgreSQL,
/// `sqlite:` selects SQLite. Migrations run before this returns.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(tagd_postgres::open(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(tagd_sqlite::open(url).await?))
    } else {
        Err(Error::invalid(
            "database",
            "must start with sqlite:, postgres:// or postgresql://",
        ))
    }
}

/// `tagd log-versions`: makes the PostgreSQL database at `url` make change-log versions by
/// `scheme` (docs/SCALING.md); answers the JSON line to print.
pub async fn set_log_versions(url: &str, scheme: tagd_postgres::VersionScheme) -> Result<String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::invalid(
            "database",
            "log versions are chosen on PostgreSQL only (SQLite always counts them per organization)",
        ));
    }
    let driver = tagd_postgres::PgDriver::connect(url).await?;
    let driver = driver.use_version_scheme(scheme).await?;
    driver.close().await;
    let name = tagd_postgres::scheme_name(scheme);
    Ok(serde_json::json!({ "log_versions": name }).to_string())
}

/// Where the admin token came from.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminToken {
    /// `TAGD_ADMIN_TOKEN` was set.
    FromEnvironment,
    /// A token generated on an earlier start; its hash is in the database.
    Stored,
    /// Generated now; the caller shows it once.
    Generated(String),
}

/// Shortest admin token an operator may set: 32 characters (the generated one is 64 hex
/// characters, 256 bits). A random token of that length cannot be guessed in any number of
/// tries the throttle allows.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// The SHA-256 of the admin token to accept, generating and storing one on first start when
/// the operator set none. Only the hash is ever stored. A token the operator sets must be at
/// least [`MIN_ADMIN_TOKEN_CHARS`] characters.
pub async fn resolve_admin_token(
    store: &dyn Store,
    from_env: Option<&str>,
) -> Result<(String, AdminToken)> {
    if let Some(token) = from_env.filter(|t| !t.trim().is_empty()) {
        let token = token.trim();
        if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(Error::invalid(
                "TAGD_ADMIN_TOKEN",
                format!(
                    "must be at least {MIN_ADMIN_TOKEN_CHARS} characters (try `openssl rand -hex 32`)"
                ),
            ));
        }
        return Ok((sha256_hex(token), AdminToken::FromEnvironment));
    }
    if let Some(hash) = store.admin_token_hash().await? {
        return Ok((hash, AdminToken::Stored));
    }
    let token = generate_secret();
    let hash = sha256_hex(&token);
    if store.init_admin_token_hash(&hash).await? {
        return Ok((hash, AdminToken::Generated(token)));
    }
    // Another process generated one at the same moment: accept that one.
    let hash = store
        .admin_token_hash()
        .await?
        .ok_or_else(|| Error::internal("admin token vanished"))?;
    Ok((hash, AdminToken::Stored))
}
