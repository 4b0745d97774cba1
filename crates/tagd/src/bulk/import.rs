//! `tagd import`: streams a CSV or NDJSON file into one organization, in batches of one
//! transaction each. A reader thread parses the next batch while the current one is written;
//! neither ever holds more than two batches.

use super::formats::{self, Format};
use super::progress::{rate, Progress};
use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde::Serialize;
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tagd_core::bulk::{
    ImportOutcome, ImportReport, ImportRow, RawRow, Refusal, DEFAULT_BATCH_ROWS, MAX_BATCH_ROWS,
};
use tagd_core::{operator, Error, Executor, OrgId, Store, UserId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Tries of a batch the database answered "busy" (locked, deadlock, serialization).
const BUSY_TRIES: u32 = 4;

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The organization to load into.
    #[arg(long)]
    pub corp_id: String,
    /// `csv` or `ndjson`; by default from FILE's extension (.csv, .ndjson, .jsonl).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where refused rows are reported, one JSON line each with its line number and reason
    /// (`-`: stderr). Default: `<FILE>.errors.ndjson`, written only when a row is refused,
    /// or stderr when FILE is `-`.
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// Rows applied in one transaction.
    #[arg(long, default_value_t = DEFAULT_BATCH_ROWS as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH_ROWS as u64))]
    pub batch_size: u64,
    /// When stderr is not a terminal, print a progress line every this many rows (0: only
    /// at the end).
    #[arg(long, default_value_t = 100_000)]
    pub progress_every: u64,
    /// The file to read; `-` reads standard input.
    pub file: PathBuf,
}

/// What `tagd import` prints on stdout when it is done.
#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub corp_id: String,
    pub format: &'static str,
    /// Every row read: `applied + unchanged + refused`.
    pub rows_read: u64,
    /// Rows that changed something: a value set or a user registered.
    pub applied: u64,
    /// Of those, the rows that set a value (new version, history entry).
    pub assignments_applied: u64,
    /// Users registered by this import (by user rows and by assignment rows).
    pub users_created: u64,
    /// Rows with nothing to do: the value was live already, or the user registered.
    pub unchanged: u64,
    pub refused: u64,
    pub batches: u64,
    /// The error report, when a row was refused.
    pub errors_file: Option<String>,
    pub elapsed_secs: f64,
    pub rows_per_sec: f64,
}

impl ImportSummary {
    fn detail(&self) -> String {
        format!(
            "{} applied, {} unchanged, {} refused",
            self.applied, self.unchanged, self.refused
        )
    }
}

/// One batch as the reader thread hands it over.
struct Batch {
    /// Rows to apply, with their line numbers.
    rows: Vec<ImportRow>,
    lines: Vec<u64>,
    /// Rows refused while reading: line, fields (when they could be read), reason.
    refused: Vec<(u64, Option<RawRow>, Refusal)>,
    bytes_read: u64,
}

impl Batch {
    fn len(&self) -> usize {
        self.rows.len() + self.refused.len()
    }
}

/// Reads `input` into batches of `size` rows and sends them; an I/O error is sent and ends
/// the reading. Runs on its own thread (blocking reads).
fn read_batches(
    format: Format,
    input: Box<dyn Read + Send>,
    size: usize,
    sender: &mpsc::Sender<io::Result<Batch>>,
) -> io::Result<()> {
    let mut source = formats::rows(format, BufReader::with_capacity(1 << 18, input))?;
    loop {
        let mut batch = Batch {
            rows: Vec::with_capacity(size),
            lines: Vec::with_capacity(size),
            refused: Vec::new(),
            bytes_read: 0,
        };
        let mut done = false;
        while batch.len() < size {
            let Some(read) = source.next_row()? else {
                done = true;
                break;
            };
            match read.fields {
                Err(refusal) => batch.refused.push((read.line, None, refusal)),
                Ok(fields) => match ImportRow::parse(&fields) {
                    Ok(row) => {
                        batch.rows.push(row);
                        batch.lines.push(read.line);
                    }
                    Err(refusal) => batch.refused.push((read.line, Some(fields), refusal)),
                },
            }
        }
        batch.bytes_read = source.bytes_read();
        if batch.len() > 0 && sender.blocking_send(Ok(batch)).is_err() {
            return Ok(()); // the importer stopped
        }
        if done {
            return Ok(());
        }
    }
}

/// Where refused rows go.
enum ErrorReport {
    File {
        path: PathBuf,
        /// Opened at the first refusal (or at once when the operator named the file).
        out: Option<BufWriter<File>>,
    },
    Stderr,
}

impl ErrorReport {
    /// The report the operator named (created now, so it never holds an older run's rows),
    /// or `<input>.errors.ndjson`, where an older report is removed now and a new one made
    /// only when a row is refused.
    fn open(asked: Option<&Path>, input: &Path, stdin: bool) -> anyhow::Result<Self> {
        let create = |path: &Path| {
            File::create(path)
                .map(BufWriter::new)
                .with_context(|| format!("cannot create the error report {}", path.display()))
        };
        match asked {
            Some(path) if path == Path::new("-") => Ok(ErrorReport::Stderr),
            Some(path) => Ok(ErrorReport::File {
                path: path.to_owned(),
                out: Some(create(path)?),
            }),
            None if stdin => Ok(ErrorReport::Stderr),
            None => {
                let mut name = input.as_os_str().to_owned();
                name.push(".errors.ndjson");
                let path = PathBuf::from(name);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| {
                            format!("cannot remove the old error report {}", path.display())
                        })
                    }
                    _ => {}
                }
                Ok(ErrorReport::File { path, out: None })
            }
        }
    }

    fn write(
        &mut self,
        progress: &Progress,
        line: u64,
        row: Option<&RawRow>,
        refusal: &Refusal,
    ) -> anyhow::Result<()> {
        let mut entry =
            json!({"line": line, "code": refusal.code(), "reason": refusal.to_string()});
        if let Some(row) = row {
            entry["row"] = serde_json::to_value(row)?;
        }
        match self {
            ErrorReport::File { path, out } => {
                let out = match out {
                    Some(out) => out,
                    None => {
                        out.insert(BufWriter::new(File::create(&*path).with_context(|| {
                            format!("cannot create the error report {}", path.display())
                        })?))
                    }
                };
                writeln!(out, "{entry}")
                    .with_context(|| format!("cannot write the error report {}", path.display()))
            }
            ErrorReport::Stderr => {
                progress.println(&entry.to_string());
                Ok(())
            }
        }
    }

    /// Flushes the report; returns its path when it holds anything.
    fn close(self, refused: u64) -> anyhow::Result<Option<String>> {
        match self {
            ErrorReport::File {
                path,
                out: Some(mut out),
            } => {
                out.flush()
                    .with_context(|| format!("cannot write the error report {}", path.display()))?;
                Ok((refused > 0).then(|| path.display().to_string()))
            }
            ErrorReport::File { out: None, .. } | ErrorReport::Stderr => Ok(None),
        }
    }
}

/// The batches being written, oldest first. Batches of disjoint users may be written at once
/// (the store's [`Bulk::import_streams`]): no pair is in two of them, so the order between
/// them does not matter, and their outcomes are still taken in file order.
struct Writing {
    store: Arc<dyn Store>,
    org: OrgId,
    streams: usize,
    running: VecDeque<Running>,
}

struct Running {
    users: HashSet<UserId>,
    task: JoinHandle<(Batch, tagd_core::Result<ImportReport>)>,
}

impl Writing {
    fn new(store: Arc<dyn Store>, org: OrgId, streams: usize) -> Self {
        Writing {
            store,
            org,
            streams: streams.max(1),
            running: VecDeque::new(),
        }
    }

    /// Starts writing `batch`, or hands it back while there is no room or it names a user
    /// of a batch being written.
    fn start(&mut self, batch: Batch, executor: &Executor) -> Result<(), Batch> {
        let users: HashSet<UserId> = batch.rows.iter().map(|r| r.user_id.clone()).collect();
        let busy = self.running.len() >= self.streams
            || self.running.iter().any(|r| !r.users.is_disjoint(&users));
        if busy && !self.running.is_empty() {
            return Err(batch);
        }
        let (store, org, executor) = (self.store.clone(), self.org, executor.clone());
        let task = tokio::spawn(async move {
            let outcome = if batch.rows.is_empty() {
                Ok(ImportReport::default())
            } else {
                apply(store.as_ref(), org, &batch.rows, &executor).await
            };
            (batch, outcome)
        });
        self.running.push_back(Running { users, task });
        Ok(())
    }

    /// The oldest batch and its outcome, once written; `None` when none is running.
    async fn finish_first(&mut self) -> Option<(Batch, tagd_core::Result<ImportReport>)> {
        let running = self.running.pop_front()?;
        Some(match running.task.await {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        })
    }

    /// Waits for every batch still running; says what became of them, for an error message.
    async fn finish_all(&mut self) -> String {
        let (mut loaded, mut failed) = (0, 0);
        while let Some((batch, outcome)) = self.finish_first().await {
            match outcome {
                Ok(_) => loaded += batch.rows.len(),
                Err(_) => failed += 1,
            }
        }
        match (loaded, failed) {
            (0, 0) => String::new(),
            (n, 0) => format!(", and {n} rows of the batch written beside it"),
            (n, _) => format!(", and {n} rows of batches written beside it (another failed)"),
        }
    }
}

/// Applies a batch, trying again (after a pause) while the database answers "busy": the
/// failed transaction rolled back, so a new try starts clean.
async fn apply(
    store: &dyn Store,
    org: OrgId,
    rows: &[ImportRow],
    executor: &Executor,
) -> tagd_core::Result<ImportReport> {
    let mut tries = 0;
    loop {
        tries += 1;
        match store.import_batch(org, rows, executor).await {
            Err(Error::Busy(_)) if tries < BUSY_TRIES => {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

/// Runs an import and returns its summary. Errors are I/O errors, an unknown organization
/// or a database failure; refused rows are not errors.
pub async fn run(store: Arc<dyn Store>, args: &ImportArgs) -> anyhow::Result<ImportSummary> {
    let org = operator::org_by_corp_id(store.as_ref(), &args.corp_id).await?;
    let stdin = args.file == Path::new("-");
    let format = Format::choose(args.format, (!stdin).then_some(args.file.as_path()))
        .map_err(|e| anyhow!(e))?;
    let (input, total): (Box<dyn Read + Send>, Option<u64>) = if stdin {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut report = ErrorReport::open(args.errors.as_deref(), &args.file, stdin)?;
    let size = usize::try_from(args.batch_size).unwrap_or(DEFAULT_BATCH_ROWS);
    let (sender, mut batches) = mpsc::channel(1);
    let reader = std::thread::spawn(move || {
        if let Err(e) = read_batches(format, input, size, &sender) {
            let _ = sender.blocking_send(Err(e));
        }
    });

    let executor = Executor::operator();
    let mut summary = ImportSummary {
        corp_id: org.corp_id.to_string(),
        format: format.as_str(),
        ..ImportSummary::default()
    };
    let mut progress = Progress::new("import", total, args.progress_every);
    let mut writing = Writing::new(store.clone(), org.id, store.import_streams());
    let mut next = batches.recv().await;
    loop {
        // Start batches while there is room and the next shares no user with those running.
        loop {
            match next.take() {
                Some(Ok(batch)) => match writing.start(batch, &executor) {
                    Ok(()) => next = batches.recv().await,
                    Err(waiting) => {
                        next = Some(Ok(waiting));
                        break;
                    }
                },
                other => {
                    next = other;
                    break;
                }
            }
        }
        let Some((batch, outcome)) = writing.finish_first().await else {
            match next {
                Some(Err(e)) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot read {} after {} rows ({} applied)",
                            args.file.display(),
                            summary.rows_read,
                            summary.applied
                        )
                    })
                }
                _ => break,
            }
        };
        let mut refused = batch.refused;
        if !batch.rows.is_empty() {
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(e) => {
                    // The batches started after it run on; what they did is reported.
                    let after = writing.finish_all().await;
                    return Err(e).with_context(|| {
                        format!(
                            "the batch starting at line {} failed; {} rows before it were \
                             loaded{after}",
                            batch.lines.first().copied().unwrap_or(0),
                            summary.rows_read
                        )
                    });
                }
            };
            if outcome.outcomes.len() != batch.rows.len() {
                bail!(
                    "the store answered {} outcomes for {} rows",
                    outcome.outcomes.len(),
                    batch.rows.len()
                );
            }
            summary.users_created += outcome.users_created;
            for ((row, line), result) in batch.rows.iter().zip(&batch.lines).zip(outcome.outcomes) {
                match result {
                    ImportOutcome::Applied => {
                        summary.applied += 1;
                        if row.assignment.is_some() {
                            summary.assignments_applied += 1;
                        }
                    }
                    ImportOutcome::Unchanged => summary.unchanged += 1,
                    ImportOutcome::Refused(why) => refused.push((*line, Some(row.to_raw()), why)),
                }
            }
        }
        refused.sort_by_key(|(line, _, _)| *line);
        for (line, row, why) in &refused {
            report.write(&progress, *line, row.as_ref(), why)?;
        }
        summary.refused += refused.len() as u64;
        summary.rows_read = summary.applied + summary.unchanged + summary.refused;
        summary.batches += 1;
        progress.update(summary.rows_read, batch.bytes_read, &summary.detail());
    }
    // The channel closed: the reader is done (its errors came through the channel).
    let _ = reader.join();
    if summary.applied > 0 {
        // Maintenance only: the rows are in; a failure here is worth a line, not an error.
        if let Err(e) = store.import_finished(org.id).await {
            progress.println(&format!(
                "tagd import: the database's statistics were not refreshed: {e}"
            ));
        }
    }
    summary.errors_file = report.close(summary.refused)?;
    progress.finish(summary.rows_read, &summary.detail());
    let elapsed = progress.elapsed();
    summary.elapsed_secs = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    summary.rows_per_sec = rate(summary.rows_read, elapsed).round();
    Ok(summary)
}
