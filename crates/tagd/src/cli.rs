//! The command line (API.md §8): `serve`, and the operator's operations of §6 working
//! directly on the database and printing JSON.

use crate::DEFAULT_DATABASE_URL;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use tagd_core::{operator, Result, Store};

#[derive(Parser, Debug)]
#[command(
    name = "tagd",
    version,
    about = "Customer labels and typed tags: v2 labels and v5 tag groups over one model"
)]
pub struct Cli {
    /// Database URL: `sqlite://FILE` (created if missing) or `postgres://...`.
    #[arg(long, global = true, env = "TAGD_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// v5 API clients (app id and secret).
    #[command(subcommand)]
    App(AppCommand),
    /// v2 Basic credentials.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Users (v2 customers).
    #[command(subcommand)]
    User(UserCommand),
    /// Tag groups (operator-only settings).
    #[command(subcommand)]
    Group(GroupCommand),
    /// Load users and assignments of one organization from a CSV or NDJSON file; prints a
    /// JSON summary.
    Import(crate::bulk::import::ImportArgs),
    /// Write every live assignment (and every user without one) of an organization as CSV
    /// or NDJSON, in the format `import` reads.
    Export(crate::bulk::export::ExportArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TAGD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Lifetime of v5 access tokens, in seconds.
    #[arg(long, env = "TAGD_TOKEN_TTL_SECS", default_value_t = 7200,
          value_parser = clap::value_parser!(i64).range(1..=31_536_000))]
    pub token_ttl_secs: i64,
    /// How long a successful v2 Basic verification is remembered, in seconds; 0 disables it.
    #[arg(long, env = "TAGD_BASIC_AUTH_CACHE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub basic_auth_cache_secs: u64,
    /// How long a valid v5 token is remembered without a database lookup, in seconds; a
    /// revoked token keeps working at most this long. 0 disables it.
    #[arg(long, env = "TAGD_TOKEN_CACHE_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub token_cache_secs: u64,
    /// Requests a second each organization may make on average (per process).
    #[arg(long, env = "TAGD_RATE_LIMIT_PER_SEC", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_sec: u32,
    /// Requests an organization may make in a burst (per process).
    #[arg(long, env = "TAGD_RATE_LIMIT_BURST", default_value_t = 4000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Failed authentications a client address may make a minute before it gets 429.
    #[arg(long, env = "TAGD_AUTH_FAILURES_PER_MINUTE", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failures_per_minute: u32,
    /// Longest a request may run before it is cut short and rolled back, in seconds.
    #[arg(long, env = "TAGD_REQUEST_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_secs: u64,
    /// Log format: `auto` (JSON unless stdout is a terminal), `json` or `text`.
    #[arg(long, env = "TAGD_LOG_FORMAT", default_value = "auto")]
    pub log_format: String,
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organization; prints its corp_id.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Create an app; prints its app_id and its secret, which is shown only this once.
    Create {
        #[arg(long)]
        corp_id: String,
        #[arg(long)]
        name: String,
    },
    /// Revoke every token of an app; a running server stops accepting them within its
    /// `--token-cache-secs` (the admin API's revoke-tokens stops them at once).
    RevokeTokens {
        #[arg(long)]
        corp_id: String,
        #[arg(long)]
        app_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CredentialCommand {
    /// Create a Basic credential for the v2 API: from a user name and password, or from the
    /// `Basic ...` header value a client already sends.
    Create {
        #[arg(long)]
        corp_id: String,
        #[arg(
            long,
            required_unless_present = "basic_header",
            conflicts_with = "basic_header"
        )]
        username: Option<String>,
        /// The password; prefer the environment variable, which stays out of shell history.
        #[arg(
            long,
            env = "TAGD_CREDENTIAL_PASSWORD",
            hide_env_values = true,
            required_unless_present = "basic_header"
        )]
        password: Option<String>,
        /// An `Authorization` header value, `Basic <base64 of user:password>`.
        #[arg(long)]
        basic_header: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Register a user; idempotent.
    Create {
        #[arg(long)]
        corp_id: String,
        #[arg(long)]
        user_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Lock a tag group: its definition and activation can no longer change.
    Lock {
        #[arg(long)]
        corp_id: String,
        #[arg(long)]
        entity_id: String,
    },
    /// Unlock a tag group.
    Unlock {
        #[arg(long)]
        corp_id: String,
        #[arg(long)]
        entity_id: String,
    },
}

/// Runs one operator command against the store and returns the JSON it prints.
pub async fn run_admin(store: &dyn Store, command: Command) -> Result<Value> {
    Ok(match command {
        // Not operator commands: `main` runs them.
        Command::Serve(_) | Command::Import(_) | Command::Export(_) => json!(null),
        Command::Org(OrgCommand::Create { name }) => {
            let org = operator::create_org(store, &name).await?;
            json!({"corp_id": org.corp_id, "name": org.name})
        }
        Command::App(AppCommand::Create { corp_id, name }) => {
            let (app, secret) = operator::create_app(store, &corp_id, &name).await?;
            json!({"app_id": app.app_id, "app_secret": secret, "corp_id": corp_id, "name": app.name})
        }
        Command::App(AppCommand::RevokeTokens { corp_id, app_id }) => {
            let revoked = operator::revoke_app_tokens(store, &corp_id, &app_id).await?;
            json!({"app_id": app_id, "revoked": revoked})
        }
        Command::Credential(CredentialCommand::Create {
            corp_id,
            username,
            password,
            basic_header,
        }) => {
            let cred = match (basic_header, username, password) {
                (Some(header), _, _) => {
                    operator::create_basic_credential_from_header(store, &corp_id, &header).await?
                }
                (None, Some(user), Some(password)) => {
                    operator::create_basic_credential(store, &corp_id, &user, password.as_bytes())
                        .await?
                }
                _ => {
                    return Err(tagd_core::Error::invalid(
                        "username",
                        "give --username and --password, or --basic-header",
                    ))
                }
            };
            json!({"username": cred.username, "corp_id": corp_id})
        }
        Command::Group(command) => {
            let (corp_id, entity_id, locked) = match command {
                GroupCommand::Lock { corp_id, entity_id } => (corp_id, entity_id, true),
                GroupCommand::Unlock { corp_id, entity_id } => (corp_id, entity_id, false),
            };
            let group = operator::set_group_locked(store, &corp_id, &entity_id, locked).await?;
            json!({"entity_id": group.entity_id, "locked": group.is_locked})
        }
        Command::User(UserCommand::Create { corp_id, user_id }) => {
            let (user, created) = operator::create_user(store, &corp_id, &user_id).await?;
            json!({"user_id": user.user_id, "corp_id": corp_id, "created": created})
        }
    })
}
