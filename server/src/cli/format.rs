//! `ollama`'s text formats: `HumanBytes`, relative times, and tablewriter's borderless tables.

use std::fmt::Write as _;

/// Decimal sizes as `format.HumanBytes`: `13 GB`, `1.5 KB`, `1 KB`, `999 B`.
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
pub fn human_bytes(b: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1_000_000_000_000, "TB"), (1_000_000_000, "GB"), (1_000_000, "MB"), (1000, "KB")];
    let Some(&(scale, unit)) = UNITS.iter().find(|(s, _)| b >= *s) else {
        return format!("{b} B");
    };
    let value = b as f64 / scale as f64;
    if value >= 10.0 || value.fract() == 0.0 {
        format!("{} {unit}", value.trunc())
    } else {
        format!("{value:.1} {unit}")
    }
}

/// `format.HumanTime`: `<duration> ago`, `… from now`, or `Forever` beyond 20 years ahead.
#[must_use]
pub fn human_time(t: chrono::DateTime<chrono::FixedOffset>, now: chrono::DateTime<chrono::Utc>) -> String {
    let d = now.signed_duration_since(t);
    if d.num_seconds() < 0 {
        if -d.num_days() > 20 * 365 {
            return "Forever".to_owned();
        }
        return format!("{} from now", human_duration(-d));
    }
    format!("{} ago", human_duration(d))
}

#[expect(clippy::cast_precision_loss, clippy::cast_possible_truncation, reason = "hours rounded as Go's math.Round")]
fn human_duration(d: chrono::TimeDelta) -> String {
    let seconds = d.num_seconds();
    match seconds {
        ..1 => return "Less than a second".to_owned(),
        1 => return "1 second".to_owned(),
        2..60 => return format!("{seconds} seconds"),
        _ => {}
    }
    let minutes = d.num_minutes();
    match minutes {
        1 => return "About a minute".to_owned(),
        2..60 => return format!("{minutes} minutes"),
        _ => {}
    }
    let hours = (d.num_milliseconds() as f64 / 3_600_000.0).round() as i64;
    if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 14 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 60 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", d.num_hours() / 24 / 365)
    }
}

/// tablewriter 0.0.5 without borders: each cell left-aligned and padded to its column's widest
/// cell plus 4 spaces; a header's last cell gets 1 space after padding instead of 4.
#[must_use]
pub fn table(header: Option<&[&str]>, rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).chain(header.map(<[&str]>::len)).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    let all = header.map(|h| h.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    for row in all.iter().chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |row: &[String], last_pad: usize| {
        for (i, w) in widths.iter().enumerate() {
            let cell = row.get(i).map_or("", String::as_str);
            let pad = if i + 1 == cols { last_pad } else { 4 };
            let _ = write!(out, "{cell:<w$}{:pad$}", "");
        }
        out.push('\n');
    };
    if let Some(h) = &all {
        line(h, 1);
    }
    for row in rows {
        line(row, 4);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1 KB");
        assert_eq!(human_bytes(1024), "1.0 KB");
        assert_eq!(human_bytes(1500), "1.5 KB");
        assert_eq!(human_bytes(13_000_000_000), "13 GB");
        assert_eq!(human_bytes(12_345_678), "12 MB");
    }

    #[test]
    fn times() {
        let now = chrono::Utc::now();
        let ago = |secs: i64| human_time((now - chrono::TimeDelta::seconds(secs)).fixed_offset(), now);
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(5), "5 seconds ago");
        assert_eq!(ago(90), "About a minute ago");
        assert_eq!(ago(24 * 3600), "24 hours ago");
        assert_eq!(ago(3 * 24 * 3600), "3 days ago");
        assert_eq!(ago(20 * 24 * 3600), "2 weeks ago");
    }

    #[test]
    fn ollama_table() {
        let rows = [vec!["model1".into(), "sha256:abc12".into(), "1.0 KB".into(), "24 hours ago".into()]];
        assert_eq!(
            table(Some(&["NAME", "ID", "SIZE", "MODIFIED"]), &rows),
            "NAME      ID              SIZE      MODIFIED     \nmodel1    sha256:abc12    1.0 KB    24 hours ago    \n"
        );
        let rows = [
            vec![String::new(), "architecture".into(), "test".into()],
            vec![String::new(), "parameters".into(), "7B".into()],
        ];
        assert_eq!(table(None, &rows), "    architecture    test    \n    parameters      7B      \n");
    }
}
