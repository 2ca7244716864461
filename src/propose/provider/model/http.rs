//! A streamed HTTP POST whose caller always stays in control: a connect
//! timeout, a total deadline, cancellation, and bounded reads.
//!
//! reqwest's blocking client has per-operation timeouts, not a total one,
//! and a blocked read cannot be interrupted. So the request runs on a
//! worker thread that sends each line of the body through a channel; the
//! caller waits on the channel in short slices, checking the deadline and
//! the cancel flag between them. When the caller gives up, it drops the
//! channel: the worker's next send fails, it drops the response, and the
//! connection closes (which is how llama.cpp and Ollama learn to stop
//! generating).
//!
//! Invariants: no input makes these functions panic; a line longer than
//! [`MAX_LINE_BYTES`] or a body longer than [`MAX_BODY_BYTES`] is an error,
//! never an allocation beyond that limit.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::propose::provider::Cancel;

/// The longest line of a streamed body (an SSE event or an NDJSON frame).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// The most bytes of one response body.
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// The most bytes of an error body kept for the message.
const MAX_ERROR_BYTES: u64 = 64 * 1024;

/// Why a streamed request gave no (more) lines.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpError {
    /// Nothing listens there, or the name does not resolve.
    Connect(String),
    /// The server answered an HTTP error before any output.
    Status { status: u16, body: String },
    /// The total deadline passed.
    Timeout,
    /// The user asked to stop (Ctrl-C).
    Cancelled,
    /// The connection broke or the body was malformed.
    Broken(String),
}

enum Event {
    Line(String),
    Failed(HttpError),
}

/// The lines of a streamed response body.
pub struct Lines {
    rx: Receiver<Event>,
    deadline: Instant,
    cancel: Cancel,
    done: bool,
}

impl Lines {
    /// The next line (without its line ending), `None` at the end of the body.
    pub fn next_line(&mut self) -> Result<Option<String>, HttpError> {
        if self.done {
            return Ok(None);
        }
        loop {
            if self.cancel.is_set() {
                self.done = true;
                return Err(HttpError::Cancelled);
            }
            let now = Instant::now();
            if now >= self.deadline {
                self.done = true;
                return Err(HttpError::Timeout);
            }
            let slice = (self.deadline - now).min(Duration::from_millis(100));
            match self.rx.recv_timeout(slice) {
                Ok(Event::Line(l)) => return Ok(Some(l)),
                Ok(Event::Failed(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }
}

/// A POST of `body` (JSON) to `url`, streamed line by line. `bearer` is
/// sent as `Authorization: Bearer`. The first line (or the HTTP error) must
/// come before `deadline`; so must the last.
pub fn post_lines(
    url: &str,
    body: &serde_json::Value,
    bearer: Option<String>,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Lines, HttpError> {
    let (tx, rx) = mpsc::sync_channel::<Event>(256);
    let url = url.to_string();
    let body = serde_json::to_vec(body).map_err(|e| HttpError::Broken(format!("cannot encode the request: {e}")))?;
    let total = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name("model-http".into())
        .spawn(move || {
            let fail = |tx: &mpsc::SyncSender<Event>, e| {
                let _ = tx.send(Event::Failed(e));
            };
            let client = match reqwest::blocking::Client::builder()
                .connect_timeout(total.min(Duration::from_secs(10)))
                .timeout(total)
                .build()
            {
                Ok(c) => c,
                Err(e) => return fail(&tx, HttpError::Connect(format!("cannot make an HTTP client: {e}"))),
            };
            let mut req = client.post(&url).header("content-type", "application/json").body(body);
            if let Some(key) = bearer {
                req = req.bearer_auth(key);
            }
            let response = match req.send() {
                Ok(r) => r,
                Err(e) if e.is_timeout() => return fail(&tx, HttpError::Timeout),
                Err(e) if e.is_connect() => {
                    return fail(&tx, HttpError::Connect(format!("cannot connect to {url}: {}", root_cause(&e))));
                }
                Err(e) => {
                    return fail(&tx, HttpError::Broken(format!("the request to {url} failed: {}", root_cause(&e))));
                }
            };
            let status = response.status();
            if !status.is_success() {
                let mut text = String::new();
                let _ = response.take(MAX_ERROR_BYTES).read_to_string(&mut text);
                return fail(&tx, HttpError::Status { status: status.as_u16(), body: text });
            }
            let mut reader = BufReader::new(response.take(MAX_BODY_BYTES as u64 + 1));
            let mut total_read = 0usize;
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let read = (&mut reader).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut buf);
                match read {
                    Ok(0) => return,
                    Ok(n) => {
                        total_read += n;
                        if total_read > MAX_BODY_BYTES {
                            return fail(
                                &tx,
                                HttpError::Broken(format!("the answer is larger than {MAX_BODY_BYTES} bytes")),
                            );
                        }
                        if n > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
                            return fail(
                                &tx,
                                HttpError::Broken(format!(
                                    "a line of the answer is longer than {MAX_LINE_BYTES} bytes"
                                )),
                            );
                        }
                        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            buf.pop();
                        }
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        if tx.send(Event::Line(line)).is_err() {
                            return; // the caller gave up: dropping the response closes the connection
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return fail(&tx, HttpError::Timeout),
                    Err(e) => return fail(&tx, HttpError::Broken(format!("the connection broke mid-answer: {e}"))),
                }
            }
        })
        .map_err(|e| HttpError::Broken(format!("cannot start the HTTP thread: {e}")))?;
    Ok(Lines { rx, deadline, cancel: cancel.clone(), done: false })
}

/// A GET of JSON with a short deadline (for a server's model list).
pub fn get_json(url: &str, bearer: Option<&str>, timeout: Duration) -> Result<serde_json::Value, HttpError> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| HttpError::Connect(e.to_string()))?;
    let mut req = client.get(url);
    if let Some(key) = bearer {
        req = req.bearer_auth(key);
    }
    let response = req.send().map_err(|e| HttpError::Connect(root_cause(&e)))?;
    let status = response.status();
    let mut text = String::new();
    response.take(MAX_ERROR_BYTES * 16).read_to_string(&mut text).map_err(|e| HttpError::Broken(e.to_string()))?;
    if !status.is_success() {
        return Err(HttpError::Status { status: status.as_u16(), body: text });
    }
    serde_json::from_str(&text).map_err(|e| HttpError::Broken(e.to_string()))
}

/// Whether something accepts TCP connections at the URL's host and port
/// within `timeout` (a cheap availability probe; no request is sent).
pub fn reachable(url: &str, timeout: Duration) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let addrs = parsed.socket_addrs(|| None).map_err(|e| format!("cannot resolve {url}: {e}"))?;
    let mut last = String::from("no address");
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(format!("nothing answers at {url} ({last})"))
}

/// The innermost cause of an error, which names what went wrong.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
