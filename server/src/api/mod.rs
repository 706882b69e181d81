//! Endpoint handlers, one file per group of routes.

pub mod blobs;
pub mod create;
pub mod models;
pub mod registry;
pub mod version;

/// RFC 3339 with nanoseconds (trailing zeros trimmed) and the local offset, as Go prints times.
#[must_use]
pub fn format_time(t: std::time::SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Local> = t.into();
    let mut s = dt.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    let off = dt.offset().local_minus_utc();
    if off == 0 {
        s.push('Z');
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let off = off.abs();
        s.push_str(&format!("{sign}{:02}:{:02}", off / 3600, off % 3600 / 60));
    }
    s
}
