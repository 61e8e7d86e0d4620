//! The [`Client`] and its calls, one per API endpoint.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;
use superserver_wire::{
    CreateSandboxRequest, ExecRequest, ExecResult, FileList, FileWritten, RunRequest, SandboxInfo, SandboxList,
    StatusResponse, StreamEvent, NDJSON,
};

use crate::auth::Auth;
use crate::error::{api_error, chain, from_body, parse_retry_after, ClientError, Result};
use crate::ndjson::LineSplitter;

/// Address the server listens on by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7070";

const JSON: &str = "application/json";
/// How long to wait for a TCP connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to keep reading a stream after its result, so that the connection
/// goes back to the pool once the server ends the body (it should at once).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// What `GET /v1/sandboxes/{id}/files?path=…` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// The exact bytes of a regular file.
    File(Bytes),
    /// The listing of a directory.
    Dir(FileList),
}

/// A handle on one SuperServer.
///
/// Cheap to clone: clones share one keep-alive connection pool, so reuse one
/// client for many calls rather than building one per call. Its `Debug` form
/// never shows the API key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// The base URL as shown in messages (no trailing slash).
    shown: String,
    /// Whether the server's host is this machine's loopback.
    loopback: bool,
    /// What goes into the `Authorization` header.
    auth: Auth,
}

impl Client {
    /// A client for the server at `base_url`, e.g. `http://127.0.0.1:7070`.
    ///
    /// No connection is made yet; an unreachable server shows up as
    /// [`ClientError::Connect`] on the first call.
    pub fn new(base_url: &str) -> Result<Self> {
        let invalid = |reason: &str| ClientError::InvalidUrl { url: base_url.to_owned(), reason: reason.to_owned() };
        let mut base = Url::parse(base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        let Some(host) = base.host_str() else {
            return Err(invalid("it has no host"));
        };
        let loopback = is_loopback(host);
        base.set_query(None);
        base.set_fragment(None);
        let shown = base.as_str().trim_end_matches('/').to_owned();

        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("superserver-client/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // A proxy from the environment cannot reach this machine's loopback.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| invalid(&format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { http, base, shown, loopback, auth: Auth::None })
    }

    /// This client, sending `Authorization: Bearer <key>` with every request.
    ///
    /// Surrounding white space is dropped; an empty key sends no header. A
    /// key that cannot go into an HTTP header (control characters such as a
    /// line break) makes every call fail with [`ClientError::InvalidApiKey`];
    /// no message ever shows the key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.auth = Auth::bearer(key.into());
        self
    }

    /// Whether an API key is set (valid or not; an empty one is no key).
    pub fn has_api_key(&self) -> bool {
        !matches!(self.auth, Auth::None)
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.shown
    }

    /// Whether the server is on this machine's loopback (`localhost`,
    /// `127.0.0.0/8`, `::1`, or `0.0.0.0` / `::`, which connect locally).
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// `POST /v1/run`: runs one command in a fresh sandbox and waits for it.
    pub async fn run(&self, req: &RunRequest) -> Result<ExecResult> {
        let rb = self.request(Method::POST, &["v1", "run"]).json(req);
        self.call_json(rb, "POST /v1/run").await
    }

    /// `POST /v1/run`, streamed: `on_event` sees each stdout and stderr chunk as
    /// the command writes it, then the final result, which is returned.
    pub async fn run_stream(&self, req: &RunRequest, on_event: impl FnMut(&StreamEvent)) -> Result<ExecResult> {
        let rb = self.request(Method::POST, &["v1", "run"]).json(req);
        self.call_stream(rb, "POST /v1/run", on_event).await
    }

    /// `POST /v1/sandboxes`: creates a persistent sandbox.
    pub async fn create_sandbox(&self, req: &CreateSandboxRequest) -> Result<SandboxInfo> {
        let rb = self.request(Method::POST, &["v1", "sandboxes"]).json(req);
        self.call_json(rb, "POST /v1/sandboxes").await
    }

    /// `GET /v1/sandboxes`: the running sandboxes, or all known ones with `all`.
    pub async fn list_sandboxes(&self, all: bool) -> Result<SandboxList> {
        let mut rb = self.request(Method::GET, &["v1", "sandboxes"]);
        if all {
            rb = rb.query(&[("all", "true")]);
        }
        self.call_json(rb, "GET /v1/sandboxes").await
    }

    /// `GET /v1/sandboxes/{id}`.
    pub async fn get_sandbox(&self, id: &str) -> Result<SandboxInfo> {
        let rb = self.request(Method::GET, &["v1", "sandboxes", id]);
        self.call_json(rb, "GET /v1/sandboxes/{id}").await
    }

    /// `DELETE /v1/sandboxes/{id}`: destroys the sandbox; returns its final record.
    pub async fn delete_sandbox(&self, id: &str) -> Result<SandboxInfo> {
        let rb = self.request(Method::DELETE, &["v1", "sandboxes", id]);
        self.call_json(rb, "DELETE /v1/sandboxes/{id}").await
    }

    /// `POST /v1/sandboxes/{id}/exec`: runs a command in a persistent sandbox.
    pub async fn exec(&self, id: &str, req: &ExecRequest) -> Result<ExecResult> {
        let rb = self.request(Method::POST, &["v1", "sandboxes", id, "exec"]).json(req);
        self.call_json(rb, "POST /v1/sandboxes/{id}/exec").await
    }

    /// `POST /v1/sandboxes/{id}/exec`, streamed like [`run_stream`](Self::run_stream).
    pub async fn exec_stream(
        &self,
        id: &str,
        req: &ExecRequest,
        on_event: impl FnMut(&StreamEvent),
    ) -> Result<ExecResult> {
        let rb = self.request(Method::POST, &["v1", "sandboxes", id, "exec"]).json(req);
        self.call_stream(rb, "POST /v1/sandboxes/{id}/exec", on_event).await
    }

    /// `PUT /v1/sandboxes/{id}/files?path=…`: writes a file (mode default 0o644).
    pub async fn put_file(
        &self,
        id: &str,
        path: &str,
        bytes: impl Into<Bytes>,
        mode: Option<u32>,
    ) -> Result<FileWritten> {
        let mut query = vec![("path", path.to_owned())];
        if let Some(mode) = mode {
            query.push(("mode", format!("{mode:o}")));
        }
        let rb = self
            .request(Method::PUT, &["v1", "sandboxes", id, "files"])
            .query(&query)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes.into());
        self.call_json(rb, "PUT /v1/sandboxes/{id}/files").await
    }

    /// `GET /v1/sandboxes/{id}/files?path=…`: a file's bytes or a directory's listing.
    pub async fn get_file(&self, id: &str, path: &str) -> Result<FileContent> {
        let rb = self.request(Method::GET, &["v1", "sandboxes", id, "files"]).query(&[("path", path)]);
        let resp = self.send(rb).await?;
        let is_json = content_type(&resp).is_some_and(|ct| ct == JSON);
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if is_json {
            let list = decode(&body, "GET /v1/sandboxes/{id}/files")?;
            Ok(FileContent::Dir(list))
        } else {
            Ok(FileContent::File(body))
        }
    }

    /// `GET /v1/sandboxes/{id}/files?path=…&list=true`: a directory's listing.
    pub async fn list_files(&self, id: &str, path: &str) -> Result<FileList> {
        let rb =
            self.request(Method::GET, &["v1", "sandboxes", id, "files"]).query(&[("path", path), ("list", "true")]);
        self.call_json(rb, "GET /v1/sandboxes/{id}/files?list=true").await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusResponse> {
        let rb = self.request(Method::GET, &["v1", "status"]);
        self.call_json(rb, "GET /v1/status").await
    }

    /// `GET /healthz`: the server's short health text when it is up.
    pub async fn healthz(&self) -> Result<String> {
        let resp = self.send(self.request(Method::GET, &["healthz"])).await?;
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        Ok(String::from_utf8_lossy(&body).trim().to_owned())
    }

    /// A request to the endpoint at `segments` (each one percent-encoded),
    /// with the API key when one is set.
    pub(crate) fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let rb = self.http.request(method, self.url(segments));
        match &self.auth {
            Auth::Bearer(value) => rb.header(AUTHORIZATION, value.clone()),
            Auth::None | Auth::Invalid(_) => rb,
        }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("Client::new accepts only http(s) URLs, which always have a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Sends a request; a non-2xx answer becomes [`ClientError::Api`].
    pub(crate) async fn send(&self, rb: RequestBuilder) -> Result<Response> {
        if let Auth::Invalid(reason) = self.auth {
            return Err(ClientError::InvalidApiKey { reason });
        }
        let resp = rb.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        // An unreadable error body still leaves the status to report.
        let body = resp.bytes().await.unwrap_or_default();
        Err(api_error(status.as_u16(), status.canonical_reason(), &body, retry_after))
    }

    pub(crate) async fn call_json<T: DeserializeOwned>(&self, rb: RequestBuilder, what: &str) -> Result<T> {
        let resp = self.send(rb.header(ACCEPT, JSON)).await?;
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        decode(&body, what)
    }

    /// Sends a request that answers with text (e.g. CSV) and returns it;
    /// bytes that are not UTF-8 are replaced.
    pub(crate) async fn call_text(&self, rb: RequestBuilder, accept: &str) -> Result<String> {
        let resp = self.send(rb.header(ACCEPT, accept)).await?;
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn call_stream(
        &self,
        rb: RequestBuilder,
        what: &str,
        mut on_event: impl FnMut(&StreamEvent),
    ) -> Result<ExecResult> {
        let resp = self.send(rb.header(ACCEPT, NDJSON)).await?;
        let status = resp.status().as_u16();
        if content_type(&resp).is_some_and(|ct| ct == JSON) {
            // A server that does not stream answers with the plain result.
            let body = resp.bytes().await.map_err(|e| self.transport(e))?;
            let result: ExecResult = decode(&body, what)?;
            on_event(&StreamEvent::Result(result.clone()));
            return Ok(result);
        }
        let broken = |e: reqwest::Error| {
            ClientError::Stream(format!("the connection broke off before the result ({})", chain(&e)))
        };
        read_events(resp.bytes_stream(), status, broken, &mut on_event).await
    }

    /// Classifies a transport error: no connection at all, or a failed exchange.
    fn transport(&self, source: reqwest::Error) -> ClientError {
        let url = self.shown.clone();
        if source.is_connect() {
            ClientError::Connect { url, source }
        } else {
            ClientError::Transport { url, source }
        }
    }
}

/// Reads NDJSON [`StreamEvent`]s from a byte stream until the final result.
///
/// Every event goes to `on_event`. An `error` event becomes
/// [`ClientError::Api`] with `status`; a stream that ends without a result,
/// or holds a line that is not an event, is a [`ClientError::Stream`].
pub(crate) async fn read_events<S, E>(
    mut body: S,
    status: u16,
    transport: impl Fn(E) -> ClientError,
    on_event: &mut impl FnMut(&StreamEvent),
) -> Result<ExecResult>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
{
    let mut lines = LineSplitter::new();
    loop {
        let chunk = match body.next().await {
            Some(chunk) => chunk.map_err(&transport)?,
            None => break,
        };
        lines.push(&chunk);
        while let Some(line) = lines.next_line() {
            if let Some(done) = handle_line(&line, status, on_event)? {
                drain(body).await;
                return Ok(done);
            }
        }
    }
    if let Some(line) = lines.finish() {
        if let Some(done) = handle_line(&line, status, on_event)? {
            return Ok(done);
        }
    }
    Err(ClientError::Stream(
        "the server closed the stream before sending the result; \
         the server may have stopped or crashed (see its log)"
            .into(),
    ))
}

/// Handles one line; `Some` when it carried the final result.
fn handle_line(line: &[u8], status: u16, on_event: &mut impl FnMut(&StreamEvent)) -> Result<Option<ExecResult>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let event: StreamEvent = serde_json::from_slice(line).map_err(|e| {
        let shown: String = String::from_utf8_lossy(line).chars().take(200).collect();
        ClientError::Stream(format!("not an event: {e}: {shown}"))
    })?;
    on_event(&event);
    match event {
        StreamEvent::Stdout { .. } | StreamEvent::Stderr { .. } => Ok(None),
        StreamEvent::Result(result) => Ok(Some(result)),
        StreamEvent::Error { error } => Err(from_body(status, error, None)),
    }
}

/// Reads what follows the result (normally just the end of the body) so the
/// connection can be reused; gives up after [`DRAIN_TIMEOUT`].
async fn drain<S: Stream + Unpin>(mut body: S) {
    let rest = async { while body.next().await.is_some() {} };
    // A timeout only costs the reuse of this one connection.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, rest).await;
}

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| ClientError::Decode { what: what.to_owned(), source })
}

/// The media type of an answer, without parameters, lowercased.
fn content_type(resp: &Response) -> Option<String> {
    let value = resp.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or(value);
    Some(media.trim().to_ascii_lowercase())
}

/// Whether `host` is this machine: `localhost`, a loopback address, or the
/// unspecified address (`0.0.0.0`, `::`), which connects locally.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::stream;

    use super::*;

    fn chunks(parts: &[&str]) -> impl Stream<Item = std::result::Result<Bytes, Infallible>> + Unpin {
        let owned: Vec<_> = parts.iter().map(|p| Ok(Bytes::copy_from_slice(p.as_bytes()))).collect();
        stream::iter(owned)
    }

    async fn read(parts: &[&str]) -> (Result<ExecResult>, Vec<StreamEvent>) {
        let mut seen = Vec::new();
        let res =
            read_events(chunks(parts), 200, |e: Infallible| match e {}, &mut |ev: &StreamEvent| seen.push(ev.clone()))
                .await;
        (res, seen)
    }

    #[tokio::test]
    async fn events_split_across_chunks_reach_the_callback() {
        let (res, seen) = read(&[
            "{\"type\":\"stdout\",\"da",
            "ta\":\"hello\\n\"}\n{\"type\":\"stderr\",\"data\":\"oops\"}\n{\"type\":\"res",
            "ult\",\"execution_id\":\"ex_1\",\"sandbox_id\":\"sb_1\",\"exit_code\":3,\"signal\":null,",
            "\"stdout\":\"hello\\n\",\"stderr\":\"oops\",\"stdout_truncated\":false,\"stderr_truncated\":false,",
            "\"stdout_bytes\":6,\"stderr_bytes\":4,\"timed_out\":false,\"oom_killed\":false,",
            "\"duration_ms\":12.5,\"cpu_ms\":1.0,\"peak_memory_bytes\":1024}\n",
        ])
        .await;
        let result = res.expect("stream has a result");
        assert_eq!(result.exit_code, Some(3));
        assert_eq!(result.execution_id, "ex_1");
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], StreamEvent::Stdout { data: "hello\n".into() });
        assert_eq!(seen[1], StreamEvent::Stderr { data: "oops".into() });
        assert!(matches!(seen[2], StreamEvent::Result(_)));
    }

    #[tokio::test]
    async fn result_without_trailing_newline_is_accepted() {
        let line = serde_json::to_string(&StreamEvent::Result(ExecResult { exit_code: Some(0), ..Default::default() }))
            .unwrap();
        let (res, _) = read(&[&line]).await;
        assert_eq!(res.unwrap().exit_code, Some(0));
    }

    #[tokio::test]
    async fn stream_without_result_is_a_stream_error() {
        let (res, seen) = read(&["{\"type\":\"stdout\",\"data\":\"partial\"}\n"]).await;
        assert!(matches!(res, Err(ClientError::Stream(_))), "{res:?}");
        assert_eq!(seen.len(), 1);
    }

    #[tokio::test]
    async fn error_event_is_an_api_error() {
        let (res, _) = read(&[
            "\n{\"type\":\"error\",\"error\":{\"code\":\"capacity_exhausted\",\"message\":\"too many sandboxes\"}}\n",
        ])
        .await;
        match res {
            Err(ClientError::Api { status, code, message }) => {
                assert_eq!(status, 200);
                assert_eq!(code, "capacity_exhausted");
                assert_eq!(message, "too many sandboxes");
            }
            other => panic!("expected Api error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn garbage_line_is_a_stream_error() {
        let (res, _) = read(&["<html>\n"]).await;
        let err = res.expect_err("garbage is refused");
        assert!(matches!(err, ClientError::Stream(_)));
        assert!(err.to_string().contains("<html>"), "{err}");
    }

    #[test]
    fn urls_keep_a_base_path_and_escape_ids() {
        let c = Client::new("http://127.0.0.1:7070/prefix/").unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:7070/prefix");
        let u = c.url(&["v1", "sandboxes", "a/b?c", "files"]);
        assert_eq!(u.as_str(), "http://127.0.0.1:7070/prefix/v1/sandboxes/a%2Fb%3Fc/files");
        let plain = Client::new(DEFAULT_URL).unwrap();
        assert_eq!(plain.url(&["v1", "run"]).as_str(), "http://127.0.0.1:7070/v1/run");
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in ["", "127.0.0.1:7070", "ftp://host/", "not a url"] {
            let err = Client::new(bad).expect_err(bad);
            assert!(matches!(err, ClientError::InvalidUrl { .. }), "{bad}: {err:?}");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost"));
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("0.0.0.0"));
        assert!(is_loopback("[::]"));
        assert!(!is_loopback("example.com"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
