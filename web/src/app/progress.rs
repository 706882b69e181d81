//! Live progress of a create: one bar per step with bytes (hashing, upload, each digest the
//! server reports), a line per file of a folder, the outcome, and the log of status lines.

use leptos::prelude::*;

/// One progress bar: a digest (or an upload / hash step) with bytes done of total.
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    key: String,
    label: String,
    total: f64,
    done: f64,
    started_ms: f64,
    now_ms: f64,
}

impl Bar {
    fn rate(&self) -> String {
        let secs = (self.now_ms - self.started_ms) / 1000.0;
        if secs <= 0.0 { String::new() } else { format!("{:.1} MB/s", self.done / secs / 1e6) }
    }

    fn percent(&self) -> f64 {
        if self.total > 0.0 { (self.done / self.total * 100.0).round() } else { 0.0 }
    }
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

/// What the progress area shows; cheap to copy into every callback of a create.
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress {
    bars: RwSignal<Vec<Bar>>,
    /// (file key, what is happening to it) for a folder's files.
    files: RwSignal<Vec<(String, String)>>,
    log: RwSignal<Vec<String>>,
    outcome: RwSignal<Option<Result<String, String>>>,
}

impl Progress {
    pub(super) fn new() -> Self {
        Self {
            bars: RwSignal::new(Vec::new()),
            files: RwSignal::new(Vec::new()),
            log: RwSignal::new(Vec::new()),
            outcome: RwSignal::new(None),
        }
    }

    /// Empties the area for a new create.
    pub(super) fn clear(self) {
        self.bars.set(Vec::new());
        self.files.set(Vec::new());
        self.log.set(Vec::new());
        self.outcome.set(None);
    }

    /// Moves the bar `key` (added on first sight) to `done` of `total` bytes.
    pub(super) fn set_bar(self, key: &str, label: &str, done: f64, total: f64) {
        self.bars.update(|bars| {
            let t = js_sys::Date::now();
            if let Some(b) = bars.iter_mut().find(|b| b.key == key) {
                label.clone_into(&mut b.label);
                b.done = done;
                b.total = total;
                b.now_ms = t;
            } else {
                bars.push(Bar { key: key.into(), label: label.into(), total, done, started_ms: t, now_ms: t });
            }
        });
    }

    /// Sets the detail line of the file `key` (added on first sight).
    pub(super) fn file_line(self, key: &str, text: &str) {
        self.files.update(|files| match files.iter_mut().find(|(k, _)| k == key) {
            Some((_, t)) => text.clone_into(t),
            None => files.push((key.to_owned(), text.to_owned())),
        });
    }

    /// Adds a log line unless it repeats the last one (the server repeats a status per chunk).
    pub(super) fn log(self, line: &str) {
        self.log.update(|l| {
            if l.last().map(String::as_str) != Some(line) {
                l.push(line.to_owned());
            }
        });
    }

    /// Shows how the create ended.
    pub(super) fn finish(self, outcome: Result<String, String>) {
        self.outcome.set(Some(outcome));
    }
}

/// The bars, the outcome and the status log.
#[component]
pub(super) fn ProgressArea(progress: Progress) -> impl IntoView {
    let Progress { bars, files, log, outcome } = progress;
    view! {
        <div class="progress" aria-live="polite">
            <For each=move || bars.get() key=|b| b.key.clone() let:b>
                <ProgressRow bars=bars key=b.key />
            </For>
            <Show when=move || files.with(|f| !f.is_empty())>
                <ul class="files" aria-label="Files">
                    {move || files.get().into_iter().map(|(k, t)| view! { <li><code>{k}</code>" — "{t}</li> }).collect_view()}
                </ul>
            </Show>
            {move || outcome.get().map(|o| match o {
                Ok(m) => view! { <p class="ok" role="status">{m}</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
            })}
            <ol class="log" aria-label="Status log">
                {move || log.get().into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}
            </ol>
        </div>
    }
}

#[component]
fn ProgressRow(bars: RwSignal<Vec<Bar>>, key: String) -> impl IntoView {
    let bar = Memo::new(move |_| bars.with(|b| b.iter().find(|b| b.key == key).cloned()));
    move || {
        bar.get().map(|b| {
            let figures = format!("{} / {} ({}%) {}", mb(b.done), mb(b.total), b.percent(), b.rate());
            // Steps without a layer yet (converting, quantizing) carry the all-zero placeholder.
            let digest = b.key.trim_start_matches("sha256:");
            let shown = if digest.bytes().all(|c| c == b'0') { String::new() } else { b.key.clone() };
            view! {
                <div class="bar">
                    <div class="bar-label">{b.label.clone()}" "<span class="digest">{shown}</span></div>
                    <progress role="progressbar" max=b.total value=b.done aria-label=b.label.clone()
                        aria-valuemin="0" aria-valuemax=b.total aria-valuenow=b.done></progress>
                    <div class="bar-figures">{figures}</div>
                </div>
            }
        })
    }
}
