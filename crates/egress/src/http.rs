//! HTTP/1.x requests on a connection the proxy can read: the head of each
//! request (so every request on a kept-alive connection is decided, not only
//! the first) and the framing of its body.

use bytes::{Buf, BytesMut};
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

/// What the checker says of a request on the connection.
pub enum Check {
    Forward,
    /// Forward this head instead of the one received.
    Replace(Vec<u8>),
    /// Stop: the request is not let through (the reason is the caller's).
    Stop,
}

/// Forwards requests from `client` to `upstream` until either side ends,
/// calling `check` with each head first. `buf` holds bytes already read.
/// Returns the bytes forwarded.
pub async fn pump<R, W, F>(client: &mut R, buf: &mut BytesMut, upstream: &mut W, mut check: F) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: FnMut(&Head, &[u8]) -> Check,
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
        match check(&head, &buf[..head.len]) {
            Check::Stop => return Ok(sent),
            Check::Forward => upstream.write_all(&buf[..head.len]).await?,
            Check::Replace(bytes) => upstream.write_all(&bytes).await?,
        }
        sent += head.len as u64;
        buf.advance(head.len);
        sent += match head.body {
            Body::None => 0,
            Body::Length(n) => copy_exact(client, buf, upstream, n).await?,
            Body::Chunked => copy_chunked(client, buf, upstream).await?,
        };
    }
}

/// Forwards exactly `n` body bytes.
async fn copy_exact<R, W>(client: &mut R, buf: &mut BytesMut, upstream: &mut W, n: u64) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut left = n;
    while left > 0 {
        if buf.is_empty() && fill(client, buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let take = (buf.len() as u64).min(left) as usize;
        upstream.write_all(&buf[..take]).await?;
        buf.advance(take);
        left -= take as u64;
    }
    Ok(n)
}

/// Forwards a chunked body, its last chunk and trailers included.
async fn copy_chunked<R, W>(client: &mut R, buf: &mut BytesMut, upstream: &mut W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut sent = 0;
    loop {
        let line = read_line(client, buf).await?;
        let size_text = String::from_utf8_lossy(&line);
        let size_text = size_text.trim_end().split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
        upstream.write_all(&line).await?;
        sent += line.len() as u64;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let t = read_line(client, buf).await?;
                upstream.write_all(&t).await?;
                sent += t.len() as u64;
                if t == b"\r\n" || t == b"\n" {
                    return Ok(sent);
                }
            }
        }
        sent += copy_exact(client, buf, upstream, size).await?;
        let crlf = read_line(client, buf).await?;
        upstream.write_all(&crlf).await?;
        sent += crlf.len() as u64;
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

    #[tokio::test]
    async fn pump_checks_every_request() {
        let input = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /deny HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut client = &input[..];
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let mut buf = BytesMut::new();
        pump(&mut client, &mut buf, &mut out, |h, _| {
            seen.push(h.path.clone());
            if h.path == "/deny" {
                Check::Stop
            } else {
                Check::Forward
            }
        })
        .await
        .unwrap();
        assert_eq!(seen, ["/a", "/b", "/deny"]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("3\r\nabc\r\n0\r\n\r\nGET /b") && !text.contains("/deny"), "{text}");
    }
}
