//! The command line (API.md §8): `serve`, and the operator's operations of §6 working
//! directly on the database and printing JSON.

use crate::DEFAULT_DATABASE_URL;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use tagd_core::timefmt::format_unix;
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
    /// Cap on each organization's tag groups (labels included) unless the organization has
    /// its own (`org limits`, `PUT /admin/v1/orgs/{corp_id}/limits`).
    #[arg(long, global = true, env = "TAGD_MAX_TAG_GROUPS_PER_ORG", default_value_t = tagd_core::DEFAULT_MAX_TAG_GROUPS,
          value_parser = clap::value_parser!(i64).range(0..=tagd_core::MAX_TAG_GROUPS_LIMIT))]
    pub max_tag_groups_per_org: i64,
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
    /// Segments (audiences): export a saved segment's or a filter's members.
    #[command(subcommand)]
    Segment(crate::bulk::segment_export::SegmentCommand),
    /// History: export the tag changes of an organization or of one user.
    #[command(subcommand)]
    History(crate::bulk::history_export::HistoryCommand),
    /// How a PostgreSQL database makes change-log versions: `transaction-id` (the default,
    /// one PostgreSQL) or `counter` (a row per organization, for Citus; docs/SCALING.md).
    /// Stop every server first: each reads the choice when it starts.
    LogVersions(LogVersionsArgs),
}

#[derive(Args, Debug)]
pub struct LogVersionsArgs {
    #[arg(value_enum)]
    pub scheme: LogVersionsScheme,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogVersionsScheme {
    /// The writing transaction's id: no lock between writers; one PostgreSQL only.
    TransactionId,
    /// A counter row per organization: writers of one organization queue on it until commit.
    Counter,
}

impl From<LogVersionsScheme> for tagd_postgres::VersionScheme {
    fn from(scheme: LogVersionsScheme) -> Self {
        match scheme {
            LogVersionsScheme::TransactionId => tagd_postgres::VersionScheme::TransactionId,
            LogVersionsScheme::Counter => tagd_postgres::VersionScheme::Counter,
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TAGD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The HTTP layer's settings (limits, caches, timeouts, proxies).
    #[command(flatten)]
    pub http: tagd_http::HttpConfig,
    /// Log format: `auto` (JSON unless stdout is a terminal), `json` or `text`.
    #[arg(long, env = "TAGD_LOG_FORMAT", default_value = "auto")]
    pub log_format: String,
    /// Bearer token of the admin API, at least 32 characters; generated on first start (and
    /// printed once) when not set. Prefer the environment variable.
    #[arg(long, env = "TAGD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Serve the admin API on this address only (not on --listen).
    #[arg(long, env = "TAGD_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organization; prints its corp_id.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List every organization.
    List,
    /// One organization with counts of what it holds.
    Show {
        #[arg(long)]
        corp_id: String,
    },
    /// Refuse every credential of the organization (its data is kept); a running server
    /// follows within its --token-cache-secs and --basic-auth-cache-secs.
    Disable {
        #[arg(long)]
        corp_id: String,
    },
    /// Accept the organization's credentials again.
    Enable {
        #[arg(long)]
        corp_id: String,
    },
    /// Read, or with --max-tag-groups set, the organization's cap on tag groups.
    Limits {
        #[arg(long)]
        corp_id: String,
        /// A number, or `default` to take the server's --max-tag-groups-per-org again.
        #[arg(long)]
        max_tag_groups: Option<String>,
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
    /// List the organization's apps (never a secret).
    List {
        #[arg(long)]
        corp_id: String,
    },
    /// Give the app a new secret, printed once; the old one and its tokens stop working.
    RotateSecret {
        #[arg(long)]
        corp_id: String,
        #[arg(long)]
        app_id: String,
    },
    /// Delete the app and its tokens.
    Delete {
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
    /// List the organization's Basic credentials (never a password).
    List {
        #[arg(long)]
        corp_id: String,
    },
    /// Replace a credential's password; the old one is refused from then on.
    SetPassword {
        #[arg(long)]
        corp_id: String,
        #[arg(long)]
        username: String,
        /// The new password; prefer the environment variable.
        #[arg(long, env = "TAGD_CREDENTIAL_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Delete a credential.
    Delete {
        #[arg(long)]
        corp_id: String,
        #[arg(long)]
        username: String,
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

fn org_json(org: &tagd_core::Organization) -> Value {
    json!({
        "corp_id": org.corp_id,
        "name": org.name,
        "ctime": format_unix(org.ctime),
        "disabled": org.disabled,
        "max_tag_groups": org.max_tag_groups,
    })
}

fn app_json(app: &tagd_core::App) -> Value {
    json!({"app_id": app.app_id, "name": app.name, "ctime": format_unix(app.ctime)})
}

fn limits_json(limits: &operator::TagGroupLimits) -> Value {
    json!({
        "max_tag_groups": limits.max_tag_groups,
        "is_default": limits.is_default,
        "tag_groups": limits.tag_groups,
    })
}

async fn run_org(store: &dyn Store, command: OrgCommand) -> Result<Value> {
    Ok(match command {
        OrgCommand::Create { name } => {
            let org = operator::create_org(store, &name).await?;
            json!({"corp_id": org.corp_id, "name": org.name})
        }
        OrgCommand::List => Value::Array(store.list_orgs().await?.iter().map(org_json).collect()),
        OrgCommand::Show { corp_id } => {
            let (org, counts) = operator::describe_org(store, &corp_id).await?;
            let mut shown = org_json(&org);
            shown["counts"] = json!({
                "users": counts.users,
                "tag_groups": counts.tag_groups,
                "live_assignments": counts.live_assignments,
                "apps": counts.apps,
                "basic_credentials": counts.basic_credentials,
            });
            shown
        }
        OrgCommand::Disable { corp_id } => {
            org_json(&operator::set_org_disabled(store, &corp_id, true).await?)
        }
        OrgCommand::Enable { corp_id } => {
            org_json(&operator::set_org_disabled(store, &corp_id, false).await?)
        }
        OrgCommand::Limits {
            corp_id,
            max_tag_groups: None,
        } => limits_json(&operator::limits(store, &corp_id).await?),
        OrgCommand::Limits {
            corp_id,
            max_tag_groups: Some(raw),
        } => {
            let max = match raw.trim() {
                "default" => None,
                number => Some(number.parse::<i64>().map_err(|_| {
                    tagd_core::Error::invalid("max-tag-groups", "must be a number or `default`")
                })?),
            };
            limits_json(&operator::set_limits(store, &corp_id, max).await?)
        }
    })
}

/// Runs one operator command against the store and returns the JSON it prints.
pub async fn run_admin(store: &dyn Store, command: Command) -> Result<Value> {
    Ok(match command {
        // Not operator commands: `main` runs them.
        Command::Serve(_)
        | Command::Import(_)
        | Command::Export(_)
        | Command::Segment(_)
        | Command::History(_)
        | Command::LogVersions(_) => {
            json!(null)
        }
        Command::Org(command) => run_org(store, command).await?,
        Command::App(AppCommand::Create { corp_id, name }) => {
            let (app, secret) = operator::create_app(store, &corp_id, &name).await?;
            json!({"app_id": app.app_id, "app_secret": secret, "corp_id": corp_id, "name": app.name})
        }
        Command::App(AppCommand::RevokeTokens { corp_id, app_id }) => {
            let revoked = operator::revoke_app_tokens(store, &corp_id, &app_id).await?;
            json!({"app_id": app_id, "revoked": revoked})
        }
        Command::App(AppCommand::List { corp_id }) => {
            let apps = operator::list_apps(store, &corp_id).await?;
            Value::Array(apps.iter().map(app_json).collect())
        }
        Command::App(AppCommand::RotateSecret { corp_id, app_id }) => {
            let (app, secret) = operator::rotate_app_secret(store, &corp_id, &app_id).await?;
            json!({"app_id": app.app_id, "app_secret": secret, "corp_id": corp_id, "name": app.name})
        }
        Command::App(AppCommand::Delete { corp_id, app_id }) => {
            operator::delete_app(store, &corp_id, &app_id).await?;
            json!({"deleted": app_id})
        }
        Command::Credential(CredentialCommand::List { corp_id }) => {
            let credentials = operator::list_basic_credentials(store, &corp_id).await?;
            Value::Array(
                credentials
                    .iter()
                    .map(|c| json!({"username": c.username, "ctime": format_unix(c.ctime)}))
                    .collect(),
            )
        }
        Command::Credential(CredentialCommand::SetPassword {
            corp_id,
            username,
            password,
        }) => {
            let credential =
                operator::set_basic_password(store, &corp_id, &username, password.as_bytes())
                    .await?;
            json!({"username": credential.username, "corp_id": corp_id})
        }
        Command::Credential(CredentialCommand::Delete { corp_id, username }) => {
            operator::delete_basic_credential(store, &corp_id, &username).await?;
            json!({"deleted": username})
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
