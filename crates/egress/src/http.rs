//! HTTP/1.x requests on a connection the proxy can read: the head of each
//! request (so every request on a kept-alive connection is decided, not only
//! the first) and the framing of its body.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    /// The request target as sent (origin-form `/path`, or absolute-form
    /// `http://host/path` towards a proxy, or `host:port` for CONNECT).
    pub target: String,
    /// The path (and query) part of the target.
    pub path: String,
    /// The `Host` header, lower case, without its port.
    pub host: Option<String>,
    /// Length of the head in bytes, the blank line included.
    pub len: usize,
    pub body: Body,
}

/// The outcome of parsing the start of a buffer.
#[derive(Debug)]
pub enum Parsed {
    Complete(Head),
    Partial,
    Invalid(String),
}

const METHODS: &[&str] = &["GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "];

/// Whether `buf` starts like an HTTP request (or could, given more bytes).
pub fn looks_like_http(buf: &[u8]) -> bool {
    METHODS.iter().any(|m| {
        let n = m.len().min(buf.len());
        buf[..n] == m.as_bytes()[..n]
    }) && !buf.is_empty()
}

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Parsed::Invalid("request head too large".into())
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(e) => return Parsed::Invalid(format!("malformed request: {e}")),
    };
    let method = req.method.unwrap_or_default().to_string();
    let target = req.path.unwrap_or_default().to_string();
    let mut host = None;
    let mut length = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value).trim().to_string();
        if h.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Parsed::Invalid("more than one Host header".into());
            }
            host = Some(strip_port(&value).to_ascii_lowercase());
        } else if h.name.eq_ignore_ascii_case("content-length") {
            match value.parse::<u64>() {
                Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return Parsed::Invalid("bad or conflicting Content-Length".into()),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.to_ascii_lowercase().ends_with("chunked") {
                return Parsed::Invalid(format!("unsupported Transfer-Encoding `{value}`"));
            }
            chunked = true;
        }
    }
    // Both framings at once is how requests are smuggled past proxies.
    let body = match (chunked, length) {
        (true, Some(_)) => return Parsed::Invalid("both Content-Length and Transfer-Encoding".into()),
        (true, None) => Body::Chunked,
        (false, Some(0) | None) => Body::None,
        (false, Some(n)) => Body::Length(n),
    };
    let path = origin_path(&target);
    Parsed::Complete(Head { method, target, path, host, len, body })
}

/// `host` of `host:port` (or of `[v6]:port`).
pub fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// The path part of a request target.
fn origin_path(target: &str) -> String {
    match target.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        },
        None => target.to_string(),
    }
}

/// Reads more bytes into `buf`; `Ok(0)` at the end of the stream.
pub async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut) -> std::io::Result<usize> {
    buf.reserve(16 * 1024);
    r.read_buf(buf).await
}

/// Largest request body held whole, and inspected, before any of it is
/// forwarded; a longer one goes on in pieces as it is inspected (and is cut
/// off, incomplete, if a piece is refused).
pub const HOLD_BODY: usize = 1 << 20;

/// What a connection's filter makes of one request.
pub enum Action {
    /// Send this head (its framing headers are the pump's to set) and this
    /// body (or, for an incomplete one, its first part).
    Send { head: Vec<u8>, body: Vec<u8> },
    /// End the connection before this request.
    Stop,
}

/// Decides and rewrites the requests of a connection.
pub trait Filter {
    /// A request: its head as received and its body, all of it when
    /// `complete`, otherwise what came first (the rest follows through
    /// [`Filter::more`]).
    fn request(&mut self, head: &Head, raw: &[u8], body: &[u8], complete: bool) -> Action;
    /// More of an incomplete body: what to send on, or `None` to end the
    /// connection with the request unfinished.
    fn more(&mut self, piece: &[u8]) -> Option<Vec<u8>>;
    /// The end of an incomplete body: what was held back, or `None` to end
    /// the connection with the request unfinished.
    fn end(&mut self) -> Option<Vec<u8>>;
}

/// Reads a request body piece by piece, without its framing.
enum BodyReader {
    Done,
    Length(u64),
    Chunked { left: u64 },
}

impl BodyReader {
    fn new(body: Body) -> Self {
        match body {
            Body::None => Self::Done,
            Body::Length(n) => Self::Length(n),
            Body::Chunked => Self::Chunked { left: 0 },
        }
    }

    /// The next piece of the body; `None` at its end.
    async fn piece<R: AsyncRead + Unpin>(
        &mut self,
        client: &mut R,
        buf: &mut BytesMut,
    ) -> std::io::Result<Option<BytesMut>> {
        let left = match self {
            Self::Done => return Ok(None),
            Self::Length(left) => left,
            Self::Chunked { left } => {
                if *left == 0 {
                    let line = read_line(client, buf).await?;
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end().split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(text, 16)
                        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
                    if size == 0 {
                        // Trailers, up to the blank line (not passed on).
                        loop {
                            let t = read_line(client, buf).await?;
                            if t == b"\r\n" || t == b"\n" {
                                break;
                            }
                        }
                        *self = Self::Done;
                        return Ok(None);
                    }
                    *left = size;
                }
                left
            }
        };
        if buf.is_empty() && fill(client, buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let take = (buf.len() as u64).min(*left) as usize;
        let piece = buf.split_to(take);
        *left -= take as u64;
        if *left == 0 {
            match self {
                Self::Length(_) => *self = Self::Done,
                Self::Chunked { .. } => {
                    let crlf = read_line(client, buf).await?;
                    if crlf != b"\r\n" && crlf != b"\n" {
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "chunk without its line end"));
                    }
                }
                Self::Done => {}
            }
        }
        Ok(Some(piece))
    }
}

/// Whether a head asks for `100 Continue` before its body.
fn expects_continue(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
    text.split('\n').any(|l| l.starts_with("expect:") && l.contains("100-continue"))
}

/// How a forwarded body is framed.
enum Framing {
    Length(usize),
    Chunked,
}

/// `head` with its framing headers replaced.
fn set_framing(head: &[u8], framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 32);
    for line in head.split_inclusive(|b| *b == b'\n') {
        let lower = String::from_utf8_lossy(line).to_ascii_lowercase();
        if lower.starts_with("content-length:") || lower.starts_with("transfer-encoding:") {
            continue;
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        out.extend_from_slice(line);
    }
    match framing {
        Framing::Length(n) => out.extend_from_slice(format!("Content-Length: {n}\r\n\r\n").as_bytes()),
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n"),
    }
    out
}

async fn write_chunk<W: AsyncWrite + Unpin>(upstream: &mut W, data: &[u8]) -> std::io::Result<u64> {
    if data.is_empty() {
        return Ok(0);
    }
    let size = format!("{:x}\r\n", data.len());
    upstream.write_all(size.as_bytes()).await?;
    upstream.write_all(data).await?;
    upstream.write_all(b"\r\n").await?;
    Ok((size.len() + data.len() + 2) as u64)
}

/// Forwards requests from `client` to `upstream` until either side ends or
/// the filter stops it. `buf` holds bytes already read. Bodies up to
/// [`HOLD_BODY`] are read whole before the filter sees them; longer ones
/// (and those whose client waits for `100 Continue`) go on chunked, piece by
/// piece. Returns the bytes forwarded.
pub async fn pump<R, W, F>(client: &mut R, buf: &mut BytesMut, upstream: &mut W, filter: &mut F) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: Filter,
{
    let mut sent = 0u64;
    loop {
        let head = loop {
            match parse(buf) {
                Parsed::Complete(h) => break h,
                Parsed::Partial => {
                    if fill(client, buf).await? == 0 {
                        return Ok(sent);
                    }
                }
                Parsed::Invalid(why) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why)),
            }
        };
        let raw = buf.split_to(head.len);
        let mut reader = BodyReader::new(head.body);
        let mut held = Vec::new();
        let mut complete = head.body == Body::None;
        if !complete && !expects_continue(&raw) {
            complete = true;
            while let Some(piece) = reader.piece(client, buf).await? {
                held.extend_from_slice(&piece);
                if held.len() >= HOLD_BODY {
                    complete = matches!(reader, BodyReader::Done);
                    break;
                }
            }
        }
        let (out_head, out_body) = match filter.request(&head, &raw, &held, complete) {
            Action::Stop => return Ok(sent),
            Action::Send { head: h, body: b } => (h, b),
        };
        if complete {
            let framed = if head.body == Body::None && out_body.is_empty() {
                out_head
            } else {
                set_framing(&out_head, Framing::Length(out_body.len()))
            };
            upstream.write_all(&framed).await?;
            upstream.write_all(&out_body).await?;
            sent += (framed.len() + out_body.len()) as u64;
            continue;
        }
        let framed = set_framing(&out_head, Framing::Chunked);
        upstream.write_all(&framed).await?;
        sent += framed.len() as u64;
        sent += write_chunk(upstream, &out_body).await?;
        while let Some(piece) = reader.piece(client, buf).await? {
            let Some(out) = filter.more(&piece) else { return Ok(sent) };
            sent += write_chunk(upstream, &out).await?;
        }
        let Some(out) = filter.end() else { return Ok(sent) };
        sent += write_chunk(upstream, &out).await?;
        upstream.write_all(b"0\r\n\r\n").await?;
        sent += 5;
    }
}

/// One line, its ending included.
async fn read_line<R: AsyncRead + Unpin>(client: &mut R, buf: &mut BytesMut) -> std::io::Result<Vec<u8>> {
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            return Ok(buf.split_to(i + 1).to_vec());
        }
        if buf.len() > 4096 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "chunk header too long"));
        }
        if fill(client, buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// `raw` (the bytes of `head`) with an absolute-form target turned into
/// origin-form, as an origin server expects it.
pub fn origin_form(raw: &[u8], head: &Head) -> Vec<u8> {
    let line_end = raw.iter().position(|b| *b == b'\n').unwrap_or(raw.len());
    let line = String::from_utf8_lossy(&raw[..line_end]);
    let fixed = line.replacen(&head.target, &head.path, 1);
    let mut out = fixed.into_bytes();
    out.extend_from_slice(&raw[line_end..]);
    out
}

/// A short plain-text HTTP response that ends the connection.
pub fn refusal(status: u16, reason: &str, message: &str) -> Vec<u8> {
    let body = format!("{message}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\nx-superserver-egress: denied\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let Parsed::Complete(h) =
            parse(b"POST /v1/x?y=1 HTTP/1.1\r\nHost: API.example.com:8080\r\nContent-Length: 3\r\n\r\nabc")
        else {
            panic!()
        };
        assert_eq!(
            (h.method.as_str(), h.path.as_str(), h.host.as_deref()),
            ("POST", "/v1/x?y=1", Some("api.example.com"))
        );
        assert_eq!(h.body, Body::Length(3));
        let Parsed::Complete(h) = parse(b"GET http://a.example.com/p HTTP/1.1\r\nHost: a.example.com\r\n\r\n") else {
            panic!()
        };
        assert_eq!(h.path, "/p");
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost: a"), Parsed::Partial));
        for bad in [
            &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        ] {
            assert!(matches!(parse(bad), Parsed::Invalid(_)), "{}", String::from_utf8_lossy(bad));
        }
        assert!(looks_like_http(b"GE") && looks_like_http(b"GET /") && !looks_like_http(b"\x16\x03\x01"));
        assert!(!looks_like_http(b"SSH-2.0"));
    }

    /// Records the paths and stops at `/deny`; upper-cases bodies.
    #[derive(Default)]
    struct Upper {
        seen: Vec<(String, bool)>,
    }

    impl Filter for Upper {
        fn request(&mut self, head: &Head, raw: &[u8], body: &[u8], complete: bool) -> Action {
            self.seen.push((head.path.clone(), complete));
            if head.path == "/deny" {
                return Action::Stop;
            }
            Action::Send { head: raw.to_vec(), body: body.to_ascii_uppercase() }
        }
        fn more(&mut self, piece: &[u8]) -> Option<Vec<u8>> {
            Some(piece.to_ascii_uppercase())
        }
        fn end(&mut self) -> Option<Vec<u8>> {
            Some(b"!".to_vec())
        }
    }

    #[tokio::test]
    async fn pump_filters_every_request_and_reframes_bodies() {
        let input = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nPUT /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nxyGET /deny HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut client = &input[..];
        let mut out = Vec::new();
        let mut filter = Upper::default();
        let mut buf = BytesMut::new();
        pump(&mut client, &mut buf, &mut out, &mut filter).await.unwrap();
        let seen: Vec<_> = filter.seen.iter().map(|(p, c)| format!("{p}:{c}")).collect();
        assert_eq!(seen, ["/a:true", "/b:true", "/c:false", "/deny:true"]);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nABCDEGET /b HTTP/1.1\r\nHost: h\r\n\r\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nXY\r\n1\r\n!\r\n0\r\n\r\n"),
            "{text}"
        );
        assert!(!text.contains("/deny"), "{text}");
    }

    #[tokio::test]
    async fn long_bodies_go_on_in_pieces() {
        let body = vec![b'a'; 4 * HOLD_BODY + 10];
        let mut input = format!("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        input.extend_from_slice(&body);
        let mut client = &input[..];
        let mut out = Vec::new();
        let mut filter = Upper::default();
        pump(&mut client, &mut BytesMut::new(), &mut out, &mut filter).await.unwrap();
        assert_eq!(filter.seen, [("/big".to_string(), false)]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Transfer-Encoding: chunked") && !text.contains("Content-Length"));
        assert_eq!(text.matches('A').count(), 4 * HOLD_BODY + 10);
        assert!(text.ends_with("1\r\n!\r\n0\r\n\r\n"));
    }
}
