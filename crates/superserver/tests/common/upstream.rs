//! A plain HTTP server on loopback standing in for an internet host: it
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! answers every request with `upstream <name>: METHOD PATH` and remembers
//! what it received.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub struct Upstream {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Self {
        Self::serve(name, None).await
    }

    /// The same over TLS, with a certificate for `host` signed by `ca`.
    pub async fn start_tls(name: &'static str, host: &str, ca: &TestCa) -> Self {
        Self::serve(name, Some(ca.acceptor(host))).await
    }

    async fn serve(name: &'static str, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else { return };
                let log = log.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(s).await {
                                answer(name, s, log).await;
                            }
                        }
                        None => answer(name, s, log).await,
                    }
                });
            }
        });
        Self { port, seen }
    }

    /// The paths received so far.
    pub fn paths(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|s| s.path.clone()).collect()
    }
}

/// Answers the requests of one connection.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    name: &str,
    mut s: S,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buf = Vec::new();
    loop {
        // One request at a time on a kept-alive connection.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let path = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let len: usize =
            headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        buf.drain(..head_end);
        // Only a complete request counts: a connection cut mid-body is not one.
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let Some(line_end) = read_until(&mut s, &mut buf, b"\r\n").await else { return };
                let size = usize::from_str_radix(String::from_utf8_lossy(&buf[..line_end]).trim(), 16).unwrap();
                buf.drain(..line_end + 2);
                while buf.len() < size + 2 {
                    if !read_more(&mut s, &mut buf).await {
                        return;
                    }
                }
                body.extend_from_slice(&buf[..size]);
                buf.drain(..size + 2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            while buf.len() < len {
                if !read_more(&mut s, &mut buf).await {
                    return;
                }
            }
            buf.drain(..len).collect()
        };
        // `/echo…` answers with what it received, as servers that echo do.
        let reply = if path.starts_with("/echo") {
            format!("upstream {name}: {head}{}", String::from_utf8_lossy(&body))
        } else {
            format!("upstream {name}: {method} {path}\n")
        };
        log.lock().unwrap().push(Seen { method, path, headers, body });
        let resp =
            format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{reply}", reply.len());
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_more<S: tokio::io::AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Where `needle` starts in `buf`, reading more until it is there.
async fn read_until<S: tokio::io::AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>, needle: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(needle.len()).position(|w| w == needle) {
            return Some(i);
        }
        if !read_more(s, buf).await {
            return None;
        }
    }
}

/// A certificate authority of the test's own, standing in for a public one.
pub struct TestCa {
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let cert = params.self_signed(&key).unwrap();
        Self { pem: cert.pem(), issuer: rcgen::Issuer::new(params, key) }
    }

    fn acceptor(&self, host: &str) -> tokio_rustls::TlsAcceptor {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec![host.to_string()]).unwrap().signed_by(&key, &self.issuer).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg))
    }
}
