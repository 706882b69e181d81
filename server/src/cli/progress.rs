//! Progress on stderr: indicatif spinners and bars on a terminal; otherwise each line printed
//! once as plain text, so logs and tests see what happened without escape codes.

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
