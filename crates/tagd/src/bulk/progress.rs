//! Progress on stderr: a live bar when stderr is a terminal, plain lines every N rows (and at
//! the end) when it is not, so logs of scheduled jobs stay readable.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<ProgressBar>,
    verb: &'static str,
    every: u64,
    next_line: u64,
    started: Instant,
}

/// Rows a second over `elapsed`, 0 when no time passed.
pub fn rate(rows: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        rows as f64 / secs
    } else {
        0.0
    }
}

impl Progress {
    /// `total_bytes` sizes the bar (a file); without it (a pipe) a spinner counts rows.
    /// `every` is the plain-line interval in rows (0: only the final line).
    pub fn new(verb: &'static str, total_bytes: Option<u64>, every: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let (bar, template) = match total_bytes {
                Some(total) => (
                    ProgressBar::new(total),
                    "{spinner} {elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {msg}",
                ),
                None => (
                    ProgressBar::new_spinner(),
                    "{spinner} {elapsed_precise} {msg}",
                ),
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            verb,
            every,
            next_line: every,
            started: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// `rows` done so far, `bytes` of the input consumed, `detail` for the reader.
    pub fn update(&mut self, rows: u64, bytes: u64, detail: &str) {
        let rate = rate(rows, self.elapsed());
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(format!("{rows} rows, {detail}, {rate:.0} rows/s"));
            }
            None if self.every > 0 && rows >= self.next_line => {
                eprintln!(
                    "tagd {}: {rows} rows, {detail}, {rate:.0} rows/s",
                    self.verb
                );
                self.next_line = (rows / self.every + 1) * self.every;
            }
            None => {}
        }
    }

    /// Prints `text` on stderr without tearing the bar.
    pub fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Removes the bar and prints the final line.
    pub fn finish(&self, rows: u64, detail: &str) {
        let elapsed = self.elapsed();
        let text = format!(
            "tagd {}: done, {rows} rows, {detail}, {:.1} s, {:.0} rows/s",
            self.verb,
            elapsed.as_secs_f64(),
            rate(rows, elapsed)
        );
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{text}");
    }
}
