//! Intercepted HTTPS: the sandbox's TLS is terminated with a certificate of
//! the installation's authority for the name it asked for, every request is
//! decided with its method and path, and allowed ones go on over the
//! proxy's own TLS connection to the real host, whose certificate is
//! verified.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::*;

/// Bytes already read from a stream, handed out again before it reads on.
pub(super) struct Prefixed<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = buf.remaining().min(self.prefix.len());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Conn {
    /// Whether TLS to `name` is to be intercepted (interception being
    /// configured): the sandbox holds secrets (whose placeholders must be
    /// seen wherever they go), or the policy decides the host's requests by
    /// method or path.
    pub(super) fn interceptable(&self, name: Option<&str>) -> bool {
        let Some(name) = name else { return false };
        self.state.proxy.tls.is_some()
            && (self.state.holds_secrets()
                || self.state.proxy.cfg.intercept_all
                || self.state.policy.read().unwrap_or_else(|e| e.into_inner()).needs_request_view(name))
    }

    /// Serves an intercepted connection to `dest` (which has a name).
    pub(super) async fn intercept(mut self, dest: Dest) {
        let Some(tls) = self.state.proxy.tls.clone() else { return };
        let Some(name) = dest.name.clone() else { return };
        self.draft.protocol = "https";
        // The upstream's address passes the same checks as any other.
        let Some(upstream_tcp) = self.open(&dest, false).await else { return };
        let Conn { state, started, mut draft, client, buf } = self;
        let io = Prefixed { prefix: buf, inner: client };
        let mut client = match tokio_rustls::TlsAcceptor::from(tls.server.clone()).accept(io).await {
            Ok(s) => s,
            Err(e) => {
                let why = format!("TLS with the sandbox failed ({e}); does it trust the SuperServer CA?");
                return state.finish(draft, EgressDecision::Deny, &why, started);
            }
        };
        // The first request decides whether anything goes upstream.
        let mut buf = BytesMut::new();
        let head = loop {
            match http::parse(&buf) {
                Parsed::Complete(h) => break h,
                Parsed::Invalid(why) => {
                    let _ = client
                        .write_all(&http::refusal(400, "Bad Request", &format!("superserver egress: {why}")))
                        .await;
                    return state.finish(draft, EgressDecision::Deny, &why, started);
                }
                Parsed::Partial => match http::fill(&mut client, &mut buf).await {
                    Ok(n) if n > 0 => {}
                    _ => return,
                },
            }
        };
        draft.method = Some(head.method.clone());
        draft.path = Some(head.path.clone());
        let target = Target {
            name: Some(&name),
            port: Some(dest.port),
            method: Some(&head.method),
            path: Some(&head.path),
            ..Default::default()
        };
        let verdict = match head.host.as_deref() {
            Some(host) if host != name => Err(format!("domain fronting: Host {host} on a connection to {name}")),
            _ => decide(&state, "https", &target).await,
        };
        let rule = match verdict {
            Ok(rule) => rule,
            Err(why) => {
                let msg = format!("superserver egress: {name} {} {} is not allowed ({why})", head.method, head.path);
                let _ = client.write_all(&http::refusal(403, "Forbidden", &msg)).await;
                let _ = client.shutdown().await;
                return state.finish(draft, EgressDecision::Deny, &why, started);
            }
        };
        let upstream = match tls.upstream.connect(&name, upstream_tcp).await {
            Ok(s) => s,
            Err(e) => {
                let why = format!("upstream TLS: {e}");
                let _ =
                    client.write_all(&http::refusal(502, "Bad Gateway", &format!("superserver egress: {why}"))).await;
                let _ = client.shutdown().await;
                return state.finish(draft, EgressDecision::Allow, &format!("upstream failed: {why}"), started);
            }
        };
        let client = tokio::io::split(client);
        let upstream = tokio::io::split(upstream);
        carry::carry(&state, client, upstream, buf, true, false, &dest, draft, &rule, started).await;
    }
}
