//! Network guards (`shared/spec/ollama-api.md` §1): the `Host` check against DNS rebinding when
//! kiln listens on loopback, and CORS origins like Ollama's (`OLLAMA_ORIGINS` adds to the
//! defaults).

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::state::AppState;

/// Whether `host` (a `Host` header value, port included or not) may reach a loopback server.
#[must_use]
pub fn host_allowed(host: &str, machine: Option<&str>) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or("")
    } else {
        host
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_unspecified() || v4.is_link_local(),
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
                    || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_private())
            }
        };
    }
    name == "localhost"
        || machine.is_some_and(|m| m.eq_ignore_ascii_case(&name))
        || [".localhost", ".local", ".internal"].iter().any(|s| name.ends_with(s))
}

/// This machine's hostname (Linux), for the `Host` check.
#[must_use]
pub fn machine_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Middleware: refuse requests whose `Host` could be a rebinding attack (403, empty body).
pub async fn check_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.loopback {
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if !host_allowed(host, state.hostname.as_deref()) {
            tracing::warn!(host, "refused a request whose Host header does not name this machine");
            return (StatusCode::FORBIDDEN, Body::empty()).into_response();
        }
    }
    next.run(req).await
}

/// Middleware: an error answer to a request that carried a body says `Connection: close`. The
/// handler may have answered before reading that body (a malformed digest, a 413), and hyper then
/// closes the connection; without the header a keep-alive client would reuse it and see a
/// transport error on its next request instead of a clean answer.
pub async fn close_after_unread_body(req: Request, next: Next) -> Response {
    let has_body = req.headers().get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let mut res = next.run(req).await;
    if has_body && (res.status().is_client_error() || res.status().is_server_error()) {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// `*` matches any run of characters; everything else literally (case-insensitive).
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.to_ascii_lowercase(), s.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == s;
    }
    let mut rest = s.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(at) = rest.find(part) {
            rest = &rest[at + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// Ollama's default origins plus `extra` (from `OLLAMA_ORIGINS`).
#[must_use]
pub fn allowed_origins(extra: &str) -> Vec<String> {
    let mut v = Vec::new();
    for host in ["localhost", "127.0.0.1", "0.0.0.0"] {
        for scheme in ["http", "https"] {
            v.push(format!("{scheme}://{host}"));
            v.push(format!("{scheme}://{host}:*"));
        }
    }
    v.extend(["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"].map(String::from));
    v.extend(extra.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from));
    v
}

/// Whether an `Origin` is allowed.
#[must_use]
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|p| glob(p, origin))
}

/// The CORS layer for `OLLAMA_ORIGINS`.
pub fn cors(extra: &str) -> CorsLayer {
    let allowed = allowed_origins(extra);
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| origin_allowed(o, &allowed))
        }))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ])
        .allow_headers(
            [
                "authorization",
                "content-type",
                "user-agent",
                "accept",
                "x-requested-with",
                "openai-beta",
                "x-stainless-arch",
                "x-stainless-async",
                "x-stainless-custom-poll-interval",
                "x-stainless-helper-method",
                "x-stainless-lang",
                "x-stainless-os",
                "x-stainless-package-version",
                "x-stainless-poll-helper",
                "x-stainless-retry-count",
                "x-stainless-runtime",
                "x-stainless-runtime-version",
                "x-stainless-timeout",
            ]
            .map(header::HeaderName::from_static),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "localhost",
            "localhost:11434",
            "127.0.0.1:11434",
            "[::1]:11434",
            "10.1.2.3",
            "192.168.0.9:80",
            "0.0.0.0",
            "foo.localhost",
            "box.local",
            "svc.internal",
            "myhost",
            "",
            "LOCALHOST",
        ] {
            assert!(host_allowed(ok, Some("myhost")), "{ok}");
        }
        for bad in ["evil.com", "evil.com:11434", "8.8.8.8", "localhost.evil.com", "[2001:db8::1]:80", "internal"] {
            assert!(!host_allowed(bad, Some("myhost")), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let a = allowed_origins("https://example.com, chrome-extension://*");
        for ok in [
            "http://localhost",
            "http://localhost:5173",
            "https://127.0.0.1:8080",
            "app://x",
            "file://",
            "https://example.com",
            "chrome-extension://abc",
        ] {
            assert!(origin_allowed(ok, &a), "{ok}");
        }
        for bad in ["https://evil.com", "http://localhost.evil.com", "https://example.com.evil", "null"] {
            assert!(!origin_allowed(bad, &a), "{bad}");
        }
    }
}
