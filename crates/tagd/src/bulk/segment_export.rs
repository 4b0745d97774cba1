//! `tagd segment export`: every member of a saved segment or of a filter, in registration
//! order, as CSV (a `user_id` header, one id a line) or NDJSON (`{"user_id": ...}` a line),
//! streamed in pages from the database, with progress on stderr.

use super::export::{complete, leave_no_partial_file, open_output, partial_path, OutputArgs};
use super::formats::Format;
use super::progress::{rate, Progress};
use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::{self, Write};
use std::path::PathBuf;
use tagd_core::segments::{self, Filter};
use tagd_core::timefmt::now_unix;
use tagd_core::{operator, ExternalId, Store};

/// Members read from the database per round trip.
const PAGE: usize = 10_000;

#[derive(Subcommand, Debug)]
pub enum SegmentCommand {
    /// Write every member of a saved segment, or of a filter, as CSV (unless `--format` or
    /// the file's extension says NDJSON) with progress on stderr.
    Export(SegmentExportArgs),
}

#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("audience").required(true).args(["segment_id", "filter"])))]
pub struct SegmentExportArgs {
    /// The organization.
    #[arg(long)]
    pub corp_id: String,
    /// A saved segment.
    #[arg(long)]
    pub segment_id: Option<String>,
    /// A JSON file holding a filter (API.md §4.11); `-` reads it from stdin.
    #[arg(long)]
    pub filter: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `tagd segment export` reports when it is done.
#[derive(Debug, Default, Serialize)]
pub struct SegmentExportSummary {
    pub corp_id: String,
    pub format: &'static str,
    pub file: Option<String>,
    pub members: u64,
    pub elapsed_secs: f64,
    pub members_per_sec: f64,
}

fn read_filter(args: &SegmentExportArgs) -> anyhow::Result<Filter> {
    if let Some(id) = &args.segment_id {
        let id = ExternalId::parse("segment_id", id)?;
        return Ok(Filter::Segment {
            path: "segment_id".into(),
            id,
        });
    }
    let path = args
        .filter
        .as_ref()
        .ok_or_else(|| anyhow!("give --segment-id or --filter"))?;
    let text = if path.as_os_str() == "-" {
        io::read_to_string(io::stdin()).context("cannot read the filter from stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).context("the filter is not valid JSON")?;
    Ok(segments::parse(&json, "filter")?)
}

/// Runs the export and returns its summary; a failed export leaves no partial file.
pub async fn run(
    store: &dyn Store,
    args: &SegmentExportArgs,
) -> anyhow::Result<SegmentExportSummary> {
    leave_no_partial_file(&args.output, write_members(store, args).await)
}

async fn write_members(
    store: &dyn Store,
    args: &SegmentExportArgs,
) -> anyhow::Result<SegmentExportSummary> {
    let org = operator::org_by_corp_id(store, &args.corp_id).await?;
    let filter = read_filter(args)?;
    let node = segments::resolve_in_store(store, org.id, &filter, now_unix(), None).await?;
    let target = args.output.file.clone().filter(|f| f.as_os_str() != "-");
    let format = Format::choose(args.output.format, target.as_deref()).unwrap_or(Format::Csv);
    let partial = target.as_deref().map(partial_path);
    let mut output = open_output(partial.as_deref())?;
    if format == Format::Csv {
        output
            .write_all(b"user_id\n")
            .context("cannot write the export")?;
    }
    let mut progress = Progress::new("segment export", None, args.output.progress_every);
    let mut summary = SegmentExportSummary {
        corp_id: org.corp_id.to_string(),
        format: format.as_str(),
        file: target.as_ref().map(|p| p.display().to_string()),
        ..SegmentExportSummary::default()
    };
    let mut after = 0;
    loop {
        let page = store
            .segment_members(org.id, &node, after, PAGE)
            .await
            .context("cannot read the members")?;
        for member in &page {
            let id = member.user_id.as_str();
            match format {
                // User ids hold no comma, quote or line break: nothing to quote.
                Format::Csv => writeln!(output, "{id}"),
                Format::Ndjson => writeln!(output, "{}", serde_json::json!({ "user_id": id })),
            }
            .context("cannot write the export")?;
        }
        summary.members += page.len() as u64;
        progress.update(summary.members, 0, "members");
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.user_ref,
            _ => break,
        }
    }
    output.flush().context("cannot write the export")?;
    drop(output);
    complete(partial.as_deref(), target.as_deref())?;
    progress.finish(summary.members, "members");
    let elapsed = progress.elapsed();
    summary.elapsed_secs = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    summary.members_per_sec = rate(summary.members, elapsed).round();
    Ok(summary)
}
