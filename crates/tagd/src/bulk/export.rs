//! `tagd export`: streams an organization's live assignments, then its users without any,
//! page by page (by key), in the format `tagd import` reads.

use super::formats::{self, Format};
use super::progress::{rate, Progress};
use anyhow::{anyhow, Context};
use clap::Args;
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use tagd_core::bulk::EXPORT_PAGE_ROWS;
use tagd_core::{operator, Store};

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The organization to export.
    #[arg(long)]
    pub corp_id: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where an export writes, in what format, and how it shows progress.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// `csv` or `ndjson`; by default from FILE's extension (.csv, .ndjson, .jsonl).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// When stderr is not a terminal, print a progress line every this many rows (0: only
    /// at the end).
    #[arg(long, default_value_t = 100_000)]
    pub progress_every: u64,
    /// The file to write (replaced only once the export is complete); stdout by default.
    pub file: Option<PathBuf>,
}

/// What `tagd export` reports when it is done (on stdout when writing a file, else stderr).
#[derive(Debug, Default, Serialize)]
pub struct ExportSummary {
    pub corp_id: String,
    pub format: &'static str,
    pub file: Option<String>,
    /// Live assignments written.
    pub assignments: u64,
    /// Users without a live assignment, written as rows with only `user_id`.
    pub users_without_assignments: u64,
    pub rows_written: u64,
    pub elapsed_secs: f64,
    pub rows_per_sec: f64,
}

/// Runs an export and returns its summary.
pub async fn run(store: &dyn Store, args: &ExportArgs) -> anyhow::Result<ExportSummary> {
    leave_no_partial_file(&args.output, write_export(store, args).await)
}

/// `result` of an export to `output`; when it failed, the partial file it was writing is
/// removed, so a failed export leaves nothing behind.
pub(crate) fn leave_no_partial_file<T>(
    output: &OutputArgs,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    if result.is_err() {
        if let Some(file) = output.file.as_ref().filter(|f| f.as_os_str() != "-") {
            let _ = std::fs::remove_file(partial_path(file));
        }
    }
    result
}

/// Where a file export is written until it is complete.
pub(crate) fn partial_path(target: &std::path::Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Where an export writes: its partial file (see [`partial_path`]), else stdout.
pub(crate) fn open_output(partial: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match partial {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 18,
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 18, io::stdout())),
    })
}

/// Gives a finished file export its name.
pub(crate) fn complete(
    partial: Option<&std::path::Path>,
    target: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if let (Some(partial), Some(target)) = (partial, target) {
        std::fs::rename(partial, target).with_context(|| {
            format!(
                "cannot rename {} to {}",
                partial.display(),
                target.display()
            )
        })?;
    }
    Ok(())
}

async fn write_export(store: &dyn Store, args: &ExportArgs) -> anyhow::Result<ExportSummary> {
    let org = operator::org_by_corp_id(store, &args.corp_id).await?;
    let to_stdout = args
        .output
        .file
        .as_deref()
        .is_none_or(|f| f == std::path::Path::new("-"));
    let format = Format::choose(
        args.output.format,
        args.output.file.as_deref().filter(|_| !to_stdout),
    )
    .map_err(|e| anyhow!(e))?;
    // A file is written beside its final name and renamed when complete, so a failed export
    // never leaves a truncated file that looks whole.
    let target = args.output.file.clone().filter(|_| !to_stdout);
    let partial = target.as_deref().map(partial_path);
    let output = open_output(partial.as_deref())?;
    let mut sink = formats::sink(format, output).context("cannot write the export")?;
    let mut summary = ExportSummary {
        corp_id: org.corp_id.to_string(),
        format: format.as_str(),
        file: target.as_ref().map(|p| p.display().to_string()),
        ..ExportSummary::default()
    };
    let mut progress = Progress::new("export", None, args.output.progress_every);
    let detail = |s: &ExportSummary| {
        format!(
            "{} assignments, {} users without assignments",
            s.assignments, s.users_without_assignments
        )
    };

    let mut after = None;
    loop {
        let page = store
            .export_assignments(org.id, after, EXPORT_PAGE_ROWS)
            .await
            .context("cannot read the assignments")?;
        for row in &page {
            sink.assignment(row).context("cannot write the export")?;
        }
        summary.assignments += page.len() as u64;
        progress.update(summary.assignments, 0, &detail(&summary));
        match page.last() {
            Some(last) if page.len() as i64 == EXPORT_PAGE_ROWS => after = Some(last.key),
            _ => break,
        }
    }
    let mut after = None;
    loop {
        let page = store
            .export_users_without_assignments(org.id, after, EXPORT_PAGE_ROWS)
            .await
            .context("cannot read the users")?;
        for user in &page {
            sink.user(user).context("cannot write the export")?;
        }
        summary.users_without_assignments += page.len() as u64;
        let rows = summary.assignments + summary.users_without_assignments;
        progress.update(rows, 0, &detail(&summary));
        match page.last() {
            Some(last) if page.len() as i64 == EXPORT_PAGE_ROWS => after = Some(last.key),
            _ => break,
        }
    }
    sink.finish().context("cannot write the export")?;
    drop(sink);
    complete(partial.as_deref(), target.as_deref())?;
    summary.rows_written = summary.assignments + summary.users_without_assignments;
    progress.finish(summary.rows_written, &detail(&summary));
    let elapsed = progress.elapsed();
    summary.elapsed_secs = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    summary.rows_per_sec = rate(summary.rows_written, elapsed).round();
    Ok(summary)
}
