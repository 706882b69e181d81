//! HTTP to one registry repository (blocking `ureq`, rustls): every request of a push or pull
//! goes through [`Client::send`], which answers a `401` once by authenticating as the
//! `WWW-Authenticate` challenge asks — `Basic` with the credentials, or `Bearer realm=…,
//! service=…,scope=…` by fetching a token from the realm (with the credentials, if any) — and
//! retries. Credentials come from the server's environment (`KILN_REGISTRY_USER` and
//! `KILN_REGISTRY_PASSWORD`) or docker's `config.json` (`auths`, per host); they are never logged
//! nor put in a message.

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{RegistryError, Remote};

/// Environment variables holding the registry user and password.
pub const USER_VAR: &str = "KILN_REGISTRY_USER";
/// See [`USER_VAR`].
pub const PASSWORD_VAR: &str = "KILN_REGISTRY_PASSWORD";

/// Bytes of a registry's error body kept for a message.
const ERROR_BODY: u64 = 4 << 10;
/// The largest token response read.
const TOKEN_BODY: u64 = 1 << 20;

/// A user and password, and where they came from (for messages; the secret never is).
#[derive(Clone)]
pub struct Credentials {
    user: String,
    password: String,
    source: &'static str,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Credentials {
    /// The credentials for `host`: the environment's if set (for every registry), else the
    /// `auths` entry of docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`) for the host.
    #[must_use]
    pub fn for_host(host: &str) -> Option<Self> {
        if let (Ok(user), Ok(password)) = (std::env::var(USER_VAR), std::env::var(PASSWORD_VAR))
            && !user.is_empty()
        {
            return Some(Self { user, password, source: "KILN_REGISTRY_USER and KILN_REGISTRY_PASSWORD" });
        }
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
        let bytes = std::fs::read(dir.join("config.json")).ok()?;
        Self::from_docker_config(&bytes, host)
    }

    /// The `auths` entry for `host` of a docker `config.json`: `auth` (base64 `user:password`)
    /// or `username` + `password`; keys may carry a scheme (`https://host`).
    fn from_docker_config(bytes: &[u8], host: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let auths = v.get("auths")?.as_object()?;
        let entry = auths.iter().find_map(|(k, e)| {
            let key = k.split_once("://").map_or(k.as_str(), |(_, rest)| rest).trim_end_matches('/');
            key.eq_ignore_ascii_case(host).then_some(e)
        })?;
        let source = "docker's config.json";
        if let Some(auth) = entry.get("auth").and_then(serde_json::Value::as_str) {
            let raw = STANDARD.decode(auth.trim()).ok()?;
            let (user, password) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
            return Some(Self { user: user.to_owned(), password: password.to_owned(), source });
        }
        let user = entry.get("username")?.as_str()?.to_owned();
        let password = entry.get("password")?.as_str()?.to_owned();
        Some(Self { user, password, source })
    }

    fn basic(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.user, self.password)))
    }
}

/// A request body.
pub enum Body<'a> {
    /// None.
    Empty,
    /// Bytes in memory (a manifest) with their content type.
    Bytes(&'a [u8], &'a str),
    /// `len` bytes of a file from `offset`, streamed; `progress` hears the bytes sent so far in
    /// this attempt and may stop the upload by returning `false`.
    File {
        /// The file.
        file: &'a std::fs::File,
        /// Where the range starts.
        offset: u64,
        /// Its length.
        len: u64,
        /// Bytes sent (of this range) → keep going?
        progress: &'a mut dyn FnMut(u64) -> bool,
    },
}

/// A byte range of a file as a `Read`, with positioned reads (the file's cursor is untouched, so
/// a retry starts over cleanly).
struct FileRange<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
    sent: u64,
    progress: &'a mut dyn FnMut(u64) -> bool,
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        if !(self.progress)(self.sent) {
            return Err(std::io::Error::other("cancelled"));
        }
        let want = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "blob file shorter than its size"));
        }
        self.pos += n as u64;
        self.sent += n as u64;
        Ok(n)
    }
}

/// HTTP to one repository, with the authorization it has earned so far.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    /// The repository.
    pub remote: Remote,
    insecure: bool,
    creds: Option<Credentials>,
    /// The `Authorization` value in use (a `Bearer` token or `Basic`), once a 401 asked for one.
    auth: Option<String>,
}

/// What one attempt came to.
enum Attempt {
    Done(Box<ureq::Response>),
    Challenge(String),
}

impl Client {
    /// A client for the repository `name` names.
    #[must_use]
    pub fn new(name: &kiln_core::ModelName, insecure: bool) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            // A registry that sends nothing for this long has stalled: the pull retries (resumes).
            .timeout_read(Duration::from_secs(60))
            .timeout_write(Duration::from_secs(60))
            .redirects(10)
            .user_agent(&format!("kiln/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent,
            remote: Remote::new(name, insecure),
            insecure,
            creds: Credentials::for_host(&name.host),
            auth: None,
        }
    }

    /// Sends `method url` with `headers` and `body`, authenticating and retrying once on a 401.
    /// A status ≥ 400 is [`RegistryError::Status`] (404 included: callers that expect one match
    /// on it).
    ///
    /// # Errors
    /// Transport errors, a status ≥ 400, a refused authentication.
    pub fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
    ) -> Result<ureq::Response, RegistryError> {
        let mut challenged = false;
        loop {
            match self.attempt(method, url, headers, &mut body)? {
                Attempt::Done(r) => return Ok(*r),
                Attempt::Challenge(c) if !challenged => {
                    challenged = true;
                    self.authorize(&c)?;
                }
                Attempt::Challenge(_) => return Err(self.unauthorized()),
            }
        }
    }

    fn attempt(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &mut Body<'_>,
    ) -> Result<Attempt, RegistryError> {
        let mut req = self.agent.request(method, url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        if let Some(a) = &self.auth {
            req = req.set("Authorization", a);
        }
        let result = match body {
            Body::Empty if matches!(method, "POST" | "PUT" | "PATCH") => req.set("Content-Length", "0").call(),
            Body::Empty => req.call(),
            Body::Bytes(b, ct) => req.set("Content-Type", ct).send_bytes(b),
            Body::File { file, offset, len, progress } => {
                let reader = FileRange { file, pos: *offset, end: *offset + *len, sent: 0, progress: &mut **progress };
                req.set("Content-Type", "application/octet-stream").set("Content-Length", &len.to_string()).send(reader)
            }
        };
        match result {
            Ok(r) => Ok(Attempt::Done(Box::new(r))),
            Err(ureq::Error::Status(401, r)) => {
                Ok(Attempt::Challenge(r.header("www-authenticate").unwrap_or("").to_owned()))
            }
            Err(ureq::Error::Status(code, r)) => Err(status_error(code, r)),
            Err(ureq::Error::Transport(t)) => Err(self.transport(&t)),
        }
    }

    fn transport(&self, t: &ureq::Transport) -> RegistryError {
        let hint = if self.insecure { "" } else { " (if the registry speaks plain http, send \"insecure\": true)" };
        RegistryError::Transport(format!("{}: {t}{hint}", self.remote.host))
    }

    fn unauthorized(&self) -> RegistryError {
        let host = &self.remote.host;
        RegistryError::Unauthorized(match &self.creds {
            Some(c) => format!(
                "the registry {host} refused the credentials from {} (401 Unauthorized): check the user name and password, and that they may access {}",
                c.source, self.remote.repo
            ),
            None => format!(
                "the registry {host} requires credentials (401 Unauthorized): set {USER_VAR} and {PASSWORD_VAR} in the environment of kiln serve, or log in with docker login"
            ),
        })
    }

    /// Answers a `WWW-Authenticate` challenge: sets the `Authorization` the next attempt sends.
    fn authorize(&mut self, challenge: &str) -> Result<(), RegistryError> {
        let parsed = kiln_core::challenge::Challenge::parse(challenge);
        if parsed.scheme.eq_ignore_ascii_case("basic") {
            let creds = self.creds.as_ref().ok_or_else(|| self.unauthorized())?;
            self.auth = Some(creds.basic());
            return Ok(());
        }
        if !parsed.scheme.eq_ignore_ascii_case("bearer") {
            return Err(RegistryError::Unauthorized(format!(
                "the registry {} asks for an authentication kiln does not speak: {}",
                self.remote.host,
                kiln_core::error::clip(challenge)
            )));
        }
        let get = |k: &str| parsed.param(k);
        let realm =
            get("realm").ok_or_else(|| RegistryError::Unauthorized("a Bearer challenge without a realm".into()))?;
        let mut url = url::Url::parse(realm).map_err(|e| {
            RegistryError::Unauthorized(format!("the token realm {}: {e}", kiln_core::error::clip(realm)))
        })?;
        if url.scheme() != "https" && !(url.scheme() == "http" && self.insecure) {
            return Err(RegistryError::Unauthorized(format!(
                "the token realm {} is not https (allowed only with \"insecure\": true)",
                kiln_core::error::clip(realm)
            )));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = get("service") {
                q.append_pair("service", s);
            }
            if let Some(s) = get("scope") {
                for scope in s.split(' ').filter(|s| !s.is_empty()) {
                    q.append_pair("scope", scope);
                }
            }
        }
        let mut req = self.agent.get(url.as_str());
        if let Some(c) = &self.creds {
            req = req.set("Authorization", &c.basic());
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(401 | 403, _)) => return Err(self.unauthorized()),
            Err(ureq::Error::Status(code, r)) => return Err(status_error(code, r)),
            Err(ureq::Error::Transport(t)) => return Err(self.transport(&t)),
        };
        let mut text = String::new();
        resp.into_reader()
            .take(TOKEN_BODY)
            .read_to_string(&mut text)
            .map_err(|e| RegistryError::Transport(format!("token: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RegistryError::Unauthorized(format!("the token realm answered no JSON: {e}")))?;
        let token = ["token", "access_token"]
            .iter()
            .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str).filter(|t| !t.is_empty()))
            .ok_or_else(|| RegistryError::Unauthorized("the token realm answered no token".into()))?;
        self.auth = Some(format!("Bearer {token}"));
        Ok(())
    }

    /// Resolves an upload `Location` (absolute or relative) against the registry.
    ///
    /// # Errors
    /// When it is no URL.
    pub fn resolve(&self, location: &str) -> Result<url::Url, RegistryError> {
        let base = url::Url::parse(&self.remote.base).map_err(|e| RegistryError::Transport(e.to_string()))?;
        base.join(location).map_err(|e| {
            RegistryError::Transport(format!(
                "the registry sent a bad Location {}: {e}",
                kiln_core::error::clip(location)
            ))
        })
    }
}

/// `<code>: <body>` with the body clipped (Ollama's wording).
fn status_error(code: u16, r: ureq::Response) -> RegistryError {
    let mut body = String::new();
    let _ = r.into_reader().take(ERROR_BODY).read_to_string(&mut body);
    let body = body.trim();
    RegistryError::Status { code, body: if body.is_empty() { http_reason(code).to_owned() } else { body.to_owned() } }
}

fn http_reason(code: u16) -> &'static str {
    axum::http::StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry that asks for a Bearer token (realm on itself) and a token endpoint that
    /// wants the basic credentials: the request is retried once with the token.
    #[test]
    fn bearer_challenge_fetches_a_token_with_the_credentials_and_retries() {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let realm = format!("http://{addr}/token");
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let (conn, _) = listener.accept().expect("accept");
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).expect("read");
                    if line.trim().is_empty() {
                        break;
                    }
                    head.push(line.trim().to_owned());
                }
                let auth = head
                    .iter()
                    .find_map(|h| h.strip_prefix("authorization: ").or_else(|| h.strip_prefix("Authorization: ")));
                let reply = match (head[0].split(' ').nth(1).unwrap_or(""), auth) {
                    (p, Some(a)) if p.starts_with("/token?") && a == "Basic dTpwdw==" => {
                        let body = r#"{"token":"t0k"}"#;
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    }
                    (_, Some("Bearer t0k")) => {
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_owned()
                    }
                    _ => format!(
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"reg\",scope=\"repository:ns/m:pull,push\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                };
                seen.push(head[0].clone());
                (&conn).write_all(reply.as_bytes()).expect("write");
            }
            seen
        });
        let name = kiln_core::ModelName::parse(&format!("{addr}/ns/m:v1")).expect("name");
        let mut c = Client::new(&name, true);
        c.creds = Some(Credentials { user: "u".into(), password: "pw".into(), source: "test" });
        let url = c.remote.manifest_url();
        let r = c.send("GET", &url, &[], Body::Empty).expect("authorized");
        assert_eq!(r.into_string().expect("body"), "ok");
        let seen = server.join().expect("server");
        assert_eq!(seen[0], "GET /v2/ns/m/manifests/v1 HTTP/1.1");
        assert_eq!(seen[1], "GET /token?service=reg&scope=repository%3Ans%2Fm%3Apull%2Cpush HTTP/1.1");
        assert_eq!(seen[2], "GET /v2/ns/m/manifests/v1 HTTP/1.1");
    }

    #[test]
    fn docker_config_entries() {
        let cfg = br#"{"auths":{"https://reg.example:5000":{"auth":"dXNlcjpwYTpzcw=="},"other":{"username":"u","password":"p"}}}"#;
        let c = Credentials::from_docker_config(cfg, "reg.example:5000").expect("entry");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("user", "pa:ss"));
        let c = Credentials::from_docker_config(cfg, "other").expect("entry");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("u", "p"));
        assert!(Credentials::from_docker_config(cfg, "nowhere").is_none());
        let c = Credentials::from_docker_config(cfg, "reg.example:5000").expect("entry");
        assert!(!format!("{c:?}").contains("pa:ss"), "Debug never shows the secret");
    }
}
