//! `tagd history export`: an organization's tag changes (API.md §4.13), one user's or all,
//! newest first, optionally only those since a time, as CSV or NDJSON, streamed in pages
//! from the database with progress on stderr.

use super::export::{complete, leave_no_partial_file, open_output, partial_path, OutputArgs};
use super::formats::Format;
use super::progress::{rate, Progress};
use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::Write;
use tagd_core::history::{op_name, HistoryFilter, HistoryRow, MAX_HISTORY_LIMIT};
use tagd_core::timefmt::{format_unix, parse_time};
use tagd_core::{operator, Store, TagValue, UserId};

#[derive(Subcommand, Debug)]
pub enum HistoryCommand {
    /// Write the organization's tag changes (or one user's), newest first, as CSV (unless
    /// `--format` or the file's extension says NDJSON) with progress on stderr.
    Export(HistoryExportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct HistoryExportArgs {
    /// The organization.
    #[arg(long)]
    pub corp_id: String,
    /// Only this user's changes.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Only changes made at or after this time (`YYYY-MM-DD HH:MM:SS`, UTC).
    #[arg(long)]
    pub since: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `tagd history export` reports when it is done.
#[derive(Debug, Default, Serialize)]
pub struct HistoryExportSummary {
    pub corp_id: String,
    pub format: &'static str,
    pub file: Option<String>,
    pub changes: u64,
    pub elapsed_secs: f64,
    pub changes_per_sec: f64,
}

/// The CSV header; NDJSON lines carry the same keys, values typed.
const COLUMNS: [&str; 11] = [
    "version",
    "op",
    "tags_group_id",
    "variable_name",
    "user_id",
    "old_value",
    "new_value",
    "executor_id",
    "source",
    "time",
    "expires_at",
];

/// Runs the export and returns its summary; a failed export leaves no partial file.
pub async fn run(
    store: &dyn Store,
    args: &HistoryExportArgs,
) -> anyhow::Result<HistoryExportSummary> {
    leave_no_partial_file(&args.output, write_changes(store, args).await)
}

fn filter_of(args: &HistoryExportArgs) -> anyhow::Result<HistoryFilter> {
    let since = args
        .since
        .as_deref()
        .map(|t| {
            parse_time(t).ok_or_else(|| anyhow!("--since must be YYYY-MM-DD HH:MM:SS, not `{t}`"))
        })
        .transpose()?;
    Ok(HistoryFilter {
        user: args.user_id.as_deref().map(UserId::parse).transpose()?,
        group: None,
        since,
    })
}

fn text(value: Option<&TagValue>) -> String {
    value.map(TagValue::to_text).unwrap_or_default()
}

fn typed(value: Option<&TagValue>) -> serde_json::Value {
    value.map_or(serde_json::Value::Null, TagValue::to_json)
}

fn write_row(output: &mut dyn Write, format: Format, row: &HistoryRow) -> anyhow::Result<()> {
    let expires_at = row.expires_at.map(format_unix);
    match format {
        Format::Csv => {
            let mut csv = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut *output);
            csv.write_record([
                row.version.to_string(),
                op_name(row.kind).to_owned(),
                row.tags_group_id.to_string(),
                row.variable_name.to_string(),
                row.user_id.to_string(),
                text(row.old_value.as_ref()),
                text(row.new_value.as_ref()),
                row.executor_id.clone(),
                row.source.as_str().to_owned(),
                format_unix(row.at),
                expires_at.unwrap_or_default(),
            ])?;
            csv.flush()?;
        }
        Format::Ndjson => {
            let line = serde_json::json!({
                "version": row.version, "op": op_name(row.kind),
                "tags_group_id": row.tags_group_id.as_str(),
                "variable_name": row.variable_name.as_str(), "user_id": row.user_id.as_str(),
                "old_value": typed(row.old_value.as_ref()),
                "new_value": typed(row.new_value.as_ref()),
                "executor_id": row.executor_id, "source": row.source.as_str(),
                "time": format_unix(row.at), "expires_at": expires_at,
            });
            writeln!(output, "{line}")?;
        }
    }
    Ok(())
}

async fn write_changes(
    store: &dyn Store,
    args: &HistoryExportArgs,
) -> anyhow::Result<HistoryExportSummary> {
    let org = operator::org_by_corp_id(store, &args.corp_id).await?;
    let filter = filter_of(args)?;
    let target = args.output.file.clone().filter(|f| f.as_os_str() != "-");
    let format = Format::choose(args.output.format, target.as_deref()).unwrap_or(Format::Csv);
    let partial = target.as_deref().map(partial_path);
    let mut output = open_output(partial.as_deref())?;
    if format == Format::Csv {
        writeln!(output, "{}", COLUMNS.join(",")).context("cannot write the export")?;
    }
    let mut progress = Progress::new("history export", None, args.output.progress_every);
    let mut summary = HistoryExportSummary {
        corp_id: org.corp_id.to_string(),
        format: format.as_str(),
        file: target.as_ref().map(|p| p.display().to_string()),
        ..HistoryExportSummary::default()
    };
    let mut before = None;
    loop {
        let page = store
            .tag_history(org.id, &filter, before, MAX_HISTORY_LIMIT)
            .await
            .context("cannot read the history")?;
        for row in &page {
            write_row(output.as_mut(), format, row).context("cannot write the export")?;
        }
        summary.changes += page.len() as u64;
        progress.update(summary.changes, 0, "changes");
        match page.last() {
            Some(last) if page.len() == MAX_HISTORY_LIMIT => before = Some(last.version),
            _ => break,
        }
    }
    output.flush().context("cannot write the export")?;
    drop(output);
    complete(partial.as_deref(), target.as_deref())?;
    progress.finish(summary.changes, "changes");
    let elapsed = progress.elapsed();
    summary.elapsed_secs = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    summary.changes_per_sec = rate(summary.changes, elapsed).round();
    Ok(summary)
}
