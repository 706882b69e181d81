//! HTTP to the server at `OLLAMA_HOST` (blocking `ureq`): JSON calls, blob HEAD and streamed
//! uploads, and the NDJSON create stream. Errors are worded as `ollama`'s client words them.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A request that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No server at the address.
    #[error("could not connect to the server at {url}: {reason} (start it with `kiln serve`, or set OLLAMA_HOST)")]
    Connect {
        /// The server's base URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// A JSON call answered an error: the server's `error` text, as `ollama` shows it.
    #[error("{0}")]
    Server(String),
    /// A streamed call answered HTTP ≥ 400 before streaming: `<status line>: <error>`.
    #[error("{status}: {message}")]
    Status {
        /// `400 Bad Request`.
        status: String,
        /// The server's `error` text.
        message: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {what}: {reason}")]
    Decode {
        /// The endpoint.
        what: String,
        /// Why it did not decode.
        reason: String,
    },
}

/// The server's address and a connection pool.
#[derive(Debug)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// The `error` text of an error body, or the body itself.
fn error_text(resp: ureq::Response) -> (u16, String, String) {
    let status = resp.status();
    let line = format!("{status} {}", resp.status_text());
    let body = resp.into_string().unwrap_or_default();
    let msg = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    (status, line, msg)
}

impl Client {
    /// The client for `OLLAMA_HOST` (parsed as `kiln serve` parses it; default
    /// `127.0.0.1:11434`).
    ///
    /// # Errors
    /// When `OLLAMA_HOST` names no address.
    pub fn from_env() -> Result<Self, ClientError> {
        let raw = std::env::var("OLLAMA_HOST").unwrap_or_default();
        let addr = crate::config::parse_host(&raw)
            .map_err(|e| ClientError::Connect { url: format!("OLLAMA_HOST={raw}"), reason: e.to_string() })?;
        // No overall timeout: a create of a large model streams for minutes.
        let agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).build();
        Ok(Self { base: format!("http://{addr}"), agent })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn transport(&self, e: &ureq::Transport) -> ClientError {
        ClientError::Connect { url: self.base.clone(), reason: e.to_string() }
    }

    fn call(&self, req: ureq::Request, body: Option<Value>) -> Result<ureq::Response, ClientError> {
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match result {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(_, resp)) => Err(ClientError::Server(error_text(resp).2)),
            Err(ureq::Error::Transport(t)) => Err(self.transport(&t)),
        }
    }

    fn decode<T: DeserializeOwned>(resp: ureq::Response, what: &str) -> Result<T, ClientError> {
        resp.into_json().map_err(|e| ClientError::Decode { what: what.to_owned(), reason: e.to_string() })
    }

    /// `GET path` decoded as `T`.
    ///
    /// # Errors
    /// Connection, server or decoding errors.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Self::decode(self.call(self.agent.get(&self.url(path)), None)?, path)
    }

    /// `method path` with a JSON body, decoded as `T`.
    ///
    /// # Errors
    /// Connection, server or decoding errors.
    pub fn send<T: DeserializeOwned>(&self, method: &str, path: &str, body: &impl Serialize) -> Result<T, ClientError> {
        let body =
            serde_json::to_value(body).map_err(|e| ClientError::Decode { what: path.into(), reason: e.to_string() })?;
        Self::decode(self.call(self.agent.request(method, &self.url(path)), Some(body))?, path)
    }

    /// `method path` with a JSON body; the answer's body is ignored.
    ///
    /// # Errors
    /// Connection or server errors.
    pub fn send_unit(&self, method: &str, path: &str, body: &impl Serialize) -> Result<(), ClientError> {
        let body =
            serde_json::to_value(body).map_err(|e| ClientError::Decode { what: path.into(), reason: e.to_string() })?;
        self.call(self.agent.request(method, &self.url(path)), Some(body)).map(drop)
    }

    /// `HEAD /api/blobs/<digest>`: whether the server has the blob.
    ///
    /// # Errors
    /// Connection errors, or an answer other than 200/404.
    pub fn has_blob(&self, digest: &str) -> Result<bool, ClientError> {
        match self.agent.head(&self.url(&format!("/api/blobs/{digest}"))).call() {
            Ok(_) => Ok(true),
            Err(ureq::Error::Status(404, _)) => Ok(false),
            Err(ureq::Error::Status(_, resp)) => Err(ClientError::Server(error_text(resp).2)),
            Err(ureq::Error::Transport(t)) => Err(self.transport(&t)),
        }
    }

    /// `POST /api/blobs/<digest>` with `len` bytes streamed from `body`.
    ///
    /// # Errors
    /// Connection or server errors (a digest mismatch, a full disk).
    pub fn upload_blob(&self, digest: &str, len: u64, body: impl Read) -> Result<(), ClientError> {
        // A Content-Length (not chunked): the server checks the size and reserves the space.
        let req = self.agent.post(&self.url(&format!("/api/blobs/{digest}"))).set("Content-Length", &len.to_string());
        match req.send(body) {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(_, resp)) => Err(ClientError::Server(error_text(resp).2)),
            Err(ureq::Error::Transport(t)) => Err(self.transport(&t)),
        }
    }

    /// `POST path` streamed: each NDJSON line is given to `each`. An HTTP error before the stream
    /// is `<status line>: <error>`; an `{"error"}` line is its text.
    ///
    /// # Errors
    /// Connection, server or stream errors, or the first error `each` returns.
    pub fn stream(&self, path: &str, body: &impl Serialize, mut each: impl FnMut(&Value)) -> Result<(), ClientError> {
        let body =
            serde_json::to_value(body).map_err(|e| ClientError::Decode { what: path.into(), reason: e.to_string() })?;
        let resp = match self.agent.post(&self.url(path)).send_json(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, resp)) => {
                let (_, status, message) = error_text(resp);
                return Err(ClientError::Status { status, message });
            }
            Err(ureq::Error::Transport(t)) => return Err(self.transport(&t)),
        };
        for line in BufReader::new(resp.into_reader()).lines() {
            let line = line.map_err(|e| ClientError::Decode { what: path.into(), reason: e.to_string() })?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line)
                .map_err(|e| ClientError::Decode { what: path.into(), reason: format!("{e}: {line}") })?;
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                return Err(ClientError::Server(e.to_owned()));
            }
            each(&v);
        }
        Ok(())
    }
}
