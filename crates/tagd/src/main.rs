#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;
use tagd::cli::{Cli, Command};
use tagd::{logging, open_store, resolve_admin_token, server, AdminToken};
use tagd_http::HttpConfig;

/// mimalloc rather than the system allocator: a request allocates and frees many small
/// strings (a fifth of a read's time went to glibc's malloc and free), and the index's load
/// leaves freed blocks that glibc keeps in the process while mimalloc gives them back
/// (docs/BENCHMARKS.md, issue 12).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tagd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Command::Serve(args) = &cli.command {
        logging::init(&args.log_format);
    }
    if let Command::LogVersions(args) = &cli.command {
        let line = tagd::set_log_versions(&cli.database, args.scheme.into()).await;
        let line = line.map_err(|e| serde_json::json!({"error": e.to_string()}).to_string())?;
        println!("{line}");
        return Ok(());
    }
    let store = open_store(&cli.database)
        .await
        .map_err(|e| format!("tagd: cannot open the database: {e}"))?;
    store.set_default_max_tag_groups(cli.max_tag_groups_per_org);
    match cli.command {
        Command::Serve(args) => {
            let (admin_token_hash, origin) =
                resolve_admin_token(store.as_ref(), args.admin_token.as_deref())
                    .await
                    .map_err(|e| format!("tagd: cannot set up the admin token: {e}"))?;
            if let AdminToken::Generated(token) = origin {
                // Printed once, to the terminal only; it is never logged and only its hash is kept.
                eprintln!("tagd: generated admin token (shown once, keep it): {token}");
            }
            let listener = tokio::net::TcpListener::bind(&args.listen)
                .await
                .map_err(|e| format!("tagd: cannot listen on {}: {e}", args.listen))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            let admin_listener = match &args.admin_listen {
                Some(address) => Some(
                    tokio::net::TcpListener::bind(address)
                        .await
                        .map_err(|e| format!("tagd: cannot listen on {address}: {e}"))?,
                ),
                None => None,
            };
            tracing::info!(listen = %local, admin_listen = ?args.admin_listen,
                backend = store.backend(), "tagd serving");
            let config = HttpConfig {
                admin_token_hash,
                ..args.http.clone()
            };
            server::serve_split(
                listener,
                admin_listener,
                store,
                config,
                server::shutdown_signal(),
            )
            .await
            .map_err(|e| format!("tagd: server error: {e}"))?;
            tracing::info!("tagd stopped");
            Ok(())
        }
        Command::Import(args) => {
            let summary = tagd::bulk::import::run(store.clone(), &args)
                .await
                .map_err(error_json)?;
            println!("{}", summary_json(&summary)?);
            Ok(())
        }
        Command::Segment(tagd::bulk::segment_export::SegmentCommand::Export(args)) => {
            let summary = tagd::bulk::segment_export::run(store.as_ref(), &args)
                .await
                .map_err(error_json)?;
            print_export_summary(&summary, summary.file.is_some())
        }
        Command::History(tagd::bulk::history_export::HistoryCommand::Export(args)) => {
            let summary = tagd::bulk::history_export::run(store.as_ref(), &args)
                .await
                .map_err(error_json)?;
            print_export_summary(&summary, summary.file.is_some())
        }
        Command::Export(args) => {
            let summary = tagd::bulk::export::run(store.as_ref(), &args)
                .await
                .map_err(error_json)?;
            print_export_summary(&summary, summary.file.is_some())
        }
        command => {
            let output = tagd::cli::run_admin(store.as_ref(), command).await;
            match output {
                Ok(value) => {
                    println!("{value}");
                    Ok(())
                }
                Err(e) => Err(serde_json::json!({"error": e.to_string()}).to_string()),
            }
        }
    }
}

/// An error as the other commands print it: `{"error": "..."}`, with its causes.
fn error_json(e: anyhow::Error) -> String {
    serde_json::json!({"error": format!("{e:#}")}).to_string()
}

/// A summary as one JSON line, its fields in their declared order.
fn summary_json(summary: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string(summary).map_err(|e| error_json(e.into()))
}

/// An export's summary: on stdout when the rows went to a file, else on stderr (stdout holds
/// the rows).
fn print_export_summary(summary: &impl serde::Serialize, to_file: bool) -> Result<(), String> {
    let line = summary_json(summary)?;
    if to_file {
        println!("{line}");
    } else {
        eprintln!("{line}");
    }
    Ok(())
}
