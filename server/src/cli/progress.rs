//! Progress on stderr: indicatif spinners and bars on a terminal; otherwise each line printed
//! once as plain text, so logs and tests see what happened without escape codes.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Ollama's spinner frames, then a blank for a stopped spinner.
const FRAMES: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", " "];

/// The screen of lines.
#[derive(Debug)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

/// One spinner or bar.
#[derive(Debug, Clone)]
pub struct Line {
    bar: Option<ProgressBar>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    #[must_use]
    pub fn new() -> Self {
        let multi =
            std::io::stderr().is_terminal().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self { multi }
    }

    /// A spinner `<message> <frame>`.
    #[must_use]
    pub fn spinner(&self, message: &str) -> Line {
        let Some(multi) = &self.multi else {
            eprintln!("{message}");
            return Line { bar: None };
        };
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{msg} {spinner}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .tick_strings(FRAMES),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Line { bar: Some(bar) }
    }

    /// A bar over `total` (bytes when `bytes`): `<message> <pct>% ▕███▏ cur/total rate eta`.
    #[must_use]
    pub fn bar(&self, message: &str, total: u64, bytes: bool) -> Line {
        let Some(multi) = &self.multi else {
            eprintln!("{message}");
            return Line { bar: None };
        };
        let bar = multi.add(ProgressBar::new(total));
        let template = if bytes {
            "{msg} {percent:>3}% ▕{wide_bar}▏ {decimal_bytes:>8}/{decimal_total_bytes:>8}  {decimal_bytes_per_sec}  {eta}"
        } else {
            "{msg} {percent:>3}% ▕{wide_bar}▏ {eta}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("█ "),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Line { bar: Some(bar) }
    }
}

impl Line {
    /// Adds `n` to the position.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Sets the position (and the total when it changed).
    pub fn set(&self, position: u64, total: u64) {
        if let Some(b) = &self.bar {
            if b.length() != Some(total) {
                b.set_length(total);
            }
            b.set_position(position);
        }
    }

    /// Stops the line; it stays on screen in its last state.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// An NDJSON progress stream drawn as Ollama's CLI draws it (`kiln create`, `pull`, `push`): a
/// status is a spinner line, a new one when the text changes, which first finishes every line
/// before it; progress of a key (a digest, a layer) is a bar, which stops the spinner.
#[derive(Debug)]
pub struct StreamView<'a> {
    progress: &'a Progress,
    spinner: Option<(String, Line)>,
    bars: BTreeMap<String, Line>,
}

impl<'a> StreamView<'a> {
    /// Nothing drawn yet.
    #[must_use]
    pub fn new(progress: &'a Progress) -> Self {
        Self { progress, spinner: None, bars: BTreeMap::new() }
    }

    /// A status line; the current one again changes nothing.
    pub fn status(&mut self, status: &str) {
        if self.spinner.as_ref().is_some_and(|(text, _)| text == status) {
            return;
        }
        for b in self.bars.values() {
            b.finish();
        }
        if let Some((_, s)) = self.spinner.take() {
            s.finish();
        }
        self.spinner = Some((status.to_owned(), self.progress.spinner(status)));
    }

    /// `completed` of `total` for `key`, on its bar (made with `label` the first time; byte
    /// counts when `bytes`).
    pub fn bar(&mut self, key: &str, label: &str, completed: u64, total: u64, bytes: bool) {
        if let Some((_, s)) = self.spinner.take() {
            s.finish();
        }
        let progress = self.progress;
        let bar = self.bars.entry(key.to_owned()).or_insert_with(|| progress.bar(label, total, bytes));
        bar.set(completed, total);
    }

    /// Stops every line; they stay on screen in their last state.
    pub fn finish(self) {
        for b in self.bars.values() {
            b.finish();
        }
        if let Some((_, s)) = self.spinner {
            s.finish();
        }
    }
}
