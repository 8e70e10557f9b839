//! A small HTTP/1.1 client for one LXD endpoint that keeps one idle connection for reuse.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{
    HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, UPGRADE, USER_AGENT,
};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::runtime::Runtime;

use crate::endpoint::Endpoint;
use crate::error::{chain, Error, Stage};
use crate::sftp::{self, FileTail};
use crate::stream::Stream;

const USER_AGENT_VALUE: &str = concat!("garm-provider-lxd/", env!("CARGO_PKG_VERSION"));

/// The largest response body the client reads; a longer one fails the request unread.
///
/// The biggest answer the provider legitimately reads is an instance listing (recursion=1, or
/// recursion=2 with only state.network on LXD >= 6.7). Measured on LXD 5.0.2: 5,000 instances
/// of one pool, each with an 11 KB user data (LXD repeats it in `expanded_config`), list in
/// 116 MB, 23.2 KB an instance (docs/security.md). 256 MiB leaves 2.3 times that, and still
/// bounds what a hostile or broken server can make one provider process hold.
pub const MAX_BODY_BYTES: usize = 256 << 20;

/// Status and body of one HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The body, de-chunked: the whole of it unless a byte limit cut it.
    pub body: Bytes,
}

/// One HTTP/1.1 connection and the flag its stream raises when a byte arrives.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: Connection<TokioIo<Stream>, Full<Bytes>>,
    received: Arc<AtomicBool>,
}

/// Why reading a response failed: the connection, or a body longer than the cap.
enum ReadError {
    Http(hyper::Error),
    TooLarge,
}

impl From<hyper::Error> for ReadError {
    fn from(err: hyper::Error) -> Self {
        ReadError::Http(err)
    }
}

/// How a request on a connection failed: before any response byte (the server may have closed
/// an idle keep-alive connection; safe to resend on a new one) or after.
enum Failure {
    Early(Error),
    Late(Error),
}

/// Method, target and body of a request, reusable for the one retry.
struct Prepared {
    method: Method,
    uri: Uri,
    body: Option<Bytes>,
    limit: Option<usize>,
}

/// A thread-safe client for one endpoint; each call blocks until its response is complete.
pub struct Client {
    // Declared before `runtime` so that an idle connection is dropped while its runtime lives.
    idle: Mutex<Option<Conn>>,
    runtime: Runtime,
    endpoint: Endpoint,
    timeout: Duration,
    max_body: usize,
}

impl Client {
    /// A client for `endpoint` whose requests default to the deadline `timeout`.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Result<Self, Error> {
        // A current-thread runtime starts no worker threads; concurrent callers of `block_on`
        // take turns driving its I/O, which is what tokio documents for this scheduler.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::connection(endpoint.display(), Stage::Connect, &e))?;
        Ok(Client {
            idle: Mutex::new(None),
            runtime,
            endpoint,
            timeout,
            max_body: MAX_BODY_BYTES,
        })
    }

    /// The same client with another body cap (tests use a small one).
    pub fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Send one request and read the whole response, all within `timeout` (or the default).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
        timeout: Option<Duration>,
    ) -> Result<Response, Error> {
        self.request_bounded(method, path, body, timeout, None)
    }

    /// Like `request`, but keep at most `limit` bytes of the body (when given) and stop reading
    /// there: bodies that the other end controls (files inside an instance) can be endless.
    pub fn request_bounded(
        &self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
        timeout: Option<Duration>,
        limit: Option<usize>,
    ) -> Result<Response, Error> {
        let prepared = Prepared {
            method: Method::from_bytes(method.as_bytes())
                .map_err(|_| Error::Invalid(format!("invalid HTTP method {method:?}")))?,
            uri: parse_path(&self.endpoint.full_path(path), path)?,
            body,
            limit,
        };
        let after = timeout.unwrap_or(self.timeout);
        self.runtime.block_on(async {
            match tokio::time::timeout(after, self.send(&prepared)).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout {
                    endpoint: self.endpoint.display().to_owned(),
                    method: prepared.method.to_string(),
                    path: path.to_owned(),
                    after,
                }),
            }
        })
    }

    /// Read the last `max` bytes of the regular file `file` of an instance over LXD's SFTP
    /// endpoint `sftp_path` (`/1.0/instances/<name>/sftp`, query included), on a connection
    /// of its own, all within `timeout` (or the default). See `sftp::read_tail`.
    pub fn read_file_tail(
        &self,
        sftp_path: &str,
        file: &str,
        max: usize,
        timeout: Option<Duration>,
        lstat_first: bool,
    ) -> Result<FileTail, Error> {
        let uri = parse_path(&self.endpoint.full_path(sftp_path), sftp_path)?;
        let after = timeout.unwrap_or(self.timeout);
        let path = sftp_path.split('?').next().unwrap_or_default();
        self.runtime.block_on(async {
            let work = async {
                let mut io = self.upgrade(uri, "sftp").await?;
                sftp::read_tail(&mut io, file, max, lstat_first)
                    .await
                    .map_err(|detail| Error::Sftp {
                        endpoint: self.endpoint.display().to_owned(),
                        path: path.to_owned(),
                        detail,
                    })
            };
            match tokio::time::timeout(after, work).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout {
                    endpoint: self.endpoint.display().to_owned(),
                    method: "GET".into(),
                    path: path.to_owned(),
                    after,
                }),
            }
        })
    }

    /// Open a new connection, ask for `protocol` on `uri`, and return the upgraded stream.
    async fn upgrade(&self, uri: Uri, protocol: &'static str) -> Result<TokioIo<Upgraded>, Error> {
        let stream = self.endpoint.open(Arc::new(AtomicBool::new(false))).await?;
        let (mut sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::connection(self.endpoint.display(), Stage::Connect, &e))?;
        let mut driver = driver.with_upgrades();
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.endpoint.host_header().clone());
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static(protocol));
        // As in `exchange`: the connection is polled next to the request; it ends (Ok) when it
        // hands its stream over to the upgrade.
        let mut ended: Option<hyper::Result<()>> = None;
        let outcome = {
            let mut work = pin!(async {
                sender.ready().await?;
                let mut response = sender.send_request(request).await?;
                let status = response.status();
                if status != StatusCode::SWITCHING_PROTOCOLS {
                    let (body, _) =
                        read_body(response.into_body(), None, Some(64 << 10), self.max_body)
                            .await?;
                    return Ok(Err((status.as_u16(), body)));
                }
                Ok(Ok(hyper::upgrade::on(&mut response).await?))
            });
            poll_fn(|cx| {
                if ended.is_none() {
                    if let Poll::Ready(result) = Pin::new(&mut driver).poll(cx) {
                        ended = Some(result);
                    }
                }
                work.as_mut().poll(cx)
            })
            .await
        };
        let path = uri.path().to_owned();
        match outcome {
            Ok(Ok(upgraded)) => Ok(TokioIo::new(upgraded)),
            Ok(Err((status, body))) => Err(Error::Sftp {
                endpoint: self.endpoint.display().to_owned(),
                path,
                detail: refusal(status, &body),
            }),
            Err(ReadError::TooLarge) => Err(Error::Sftp {
                endpoint: self.endpoint.display().to_owned(),
                path,
                detail: "the refusal is too large".into(),
            }),
            Err(ReadError::Http(err)) => {
                let err = match ended {
                    Some(Err(conn_err)) if err.is_canceled() => conn_err,
                    _ => err,
                };
                Err(self.http_error(&err))
            }
        }
    }

    async fn send(&self, prepared: &Prepared) -> Result<Response, Error> {
        // A request the server may not see twice (POST creates an instance) never goes on a
        // reused connection: if that connection died as we sent, we could not know whether the
        // server took it, so it could not be resent.
        let idempotent = !matches!(prepared.method, Method::POST | Method::PATCH);
        let reused = if idempotent {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).take()
        } else {
            None
        };
        if let Some(mut conn) = reused {
            if conn.is_open().await {
                match self.exchange(&mut conn, prepared).await {
                    Ok((response, reusable)) => {
                        self.release(conn, reusable);
                        return Ok(response);
                    }
                    Err(Failure::Late(err)) => return Err(err),
                    // The server closed the idle connection as we sent: resend once, below.
                    Err(Failure::Early(_)) => {}
                }
            }
        }
        let mut conn = self.connect().await?;
        match self.exchange(&mut conn, prepared).await {
            Ok((response, reusable)) => {
                self.release(conn, reusable);
                Ok(response)
            }
            Err(Failure::Early(err) | Failure::Late(err)) => Err(err),
        }
    }

    fn release(&self, conn: Conn, reusable: bool) {
        if reusable {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.is_none() {
                *idle = Some(conn);
            }
        }
    }

    async fn connect(&self) -> Result<Conn, Error> {
        let received = Arc::new(AtomicBool::new(false));
        let stream = self.endpoint.open(received.clone()).await?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::connection(self.endpoint.display(), Stage::Connect, &e))?;
        Ok(Conn {
            sender,
            driver,
            received,
        })
    }

    fn build(&self, prepared: &Prepared) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(prepared.body.clone().unwrap_or_default()));
        *request.method_mut() = prepared.method.clone();
        *request.uri_mut() = prepared.uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.endpoint.host_header().clone());
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if prepared.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        request
    }

    /// Run one request/response on `conn`, driving the connection while waiting.
    async fn exchange(
        &self,
        conn: &mut Conn,
        prepared: &Prepared,
    ) -> Result<(Response, bool), Failure> {
        conn.received.store(false, Ordering::Relaxed);
        let request = self.build(prepared);
        let Conn {
            sender,
            driver,
            received,
        } = conn;
        // No task is spawned for the connection: it is polled here, next to the request, and
        // only while a request runs. Its own result matters only if it ends first.
        let mut ended: Option<hyper::Result<()>> = None;
        let outcome = {
            let mut work = pin!(async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status().as_u16();
                let length = response
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                let (body, complete) =
                    read_body(response.into_body(), length, prepared.limit, self.max_body).await?;
                Ok::<_, ReadError>((Response { status, body }, complete))
            });
            poll_fn(|cx| {
                if ended.is_none() {
                    if let Poll::Ready(result) = Pin::new(&mut *driver).poll(cx) {
                        ended = Some(result);
                    }
                }
                work.as_mut().poll(cx)
            })
            .await
        };
        match outcome {
            // A body left unread makes the connection useless for the next request.
            Ok((response, complete)) => {
                Ok((response, complete && ended.is_none() && !sender.is_closed()))
            }
            // The rest of the body is never read: the connection is dropped, not reused.
            Err(ReadError::TooLarge) => Err(Failure::Late(Error::TooLarge {
                endpoint: self.endpoint.display().to_owned(),
                method: prepared.method.to_string(),
                path: prepared.uri.path().to_owned(),
                limit: self.max_body,
            })),
            Err(ReadError::Http(err)) => {
                // A request cancelled because the connection failed: the connection's error
                // says why.
                let err = match ended {
                    Some(Err(conn_err)) if err.is_canceled() => conn_err,
                    _ => err,
                };
                let err = self.http_error(&err);
                if received.load(Ordering::Relaxed) {
                    Err(Failure::Late(err))
                } else {
                    Err(Failure::Early(err))
                }
            }
        }
    }

    fn http_error(&self, err: &hyper::Error) -> Error {
        if err.is_parse() {
            Error::Protocol {
                endpoint: self.endpoint.display().to_owned(),
                detail: chain(err),
            }
        } else {
            Error::connection(self.endpoint.display(), Stage::Exchange, err)
        }
    }
}

impl Conn {
    /// Whether an idle connection is still usable: polling it notices a close by the server.
    async fn is_open(&mut self) -> bool {
        let driver = &mut self.driver;
        let pending = poll_fn(|cx| Poll::Ready(Pin::new(&mut *driver).poll(cx).is_pending())).await;
        pending && !self.sender.is_closed()
    }
}

/// Read a body: all of it, at most `max` bytes, failing as soon as it is known to be longer
/// (from its Content-Length before reading, or once the bytes read pass `max`); or, with `keep`,
/// only its first `keep` bytes, the rest never read. Returns whether all of it was read. Memory
/// stays within the limit plus one frame (hyper's read buffer) whatever the server sends.
async fn read_body(
    mut body: Incoming,
    length: Option<u64>,
    keep: Option<usize>,
    max: usize,
) -> Result<(Bytes, bool), ReadError> {
    let declared = length.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let limit = keep.map_or(max, |keep| keep.min(max));
    if keep.is_none() && declared.is_some_and(|n| n > max) {
        return Err(ReadError::TooLarge);
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let room = limit - buffer.len();
            if data.len() > room {
                if keep.is_none() {
                    return Err(ReadError::TooLarge);
                }
                buffer.extend_from_slice(&data[..room]);
                return Ok((buffer.freeze(), false));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok((buffer.freeze(), true))
}

/// Why LXD did not upgrade: its error message (one line, bounded), else the HTTP status.
fn refusal(status: u16, body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .filter(|m| !m.trim().is_empty());
    match message {
        Some(message) => {
            let line: String = message
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            format!("HTTP {status}: {line}")
        }
        None => format!("HTTP {status}"),
    }
}

fn parse_path(full: &str, path: &str) -> Result<Uri, Error> {
    if !path.starts_with('/') {
        return Err(Error::Invalid(format!(
            "request path {path:?} must start with '/'"
        )));
    }
    full.parse::<Uri>()
        .map_err(|_| Error::Invalid(format!("invalid request path {path:?}")))
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
