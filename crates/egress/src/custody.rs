//! Secret custody inside the proxy.
//!
//! A sandbox holding a secret sees only a placeholder in its environment.
//! On the way out the proxy puts the real value in place of the placeholder
//! (and into the secret's configured header) on requests to the secret's
//! bound hosts; a placeholder in any form going anywhere else is a leak and
//! the request is stopped. On the way back, the value in any of its forms is
//! masked byte for byte (lengths stay valid), so a server echoing it does
//! not hand it to the sandbox.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::{EgressError, Result};

/// A custody secret as one sandbox holds it.
#[derive(Clone)]
pub struct BoundSecret {
    pub name: String,
    /// The real value; never sent into the sandbox.
    pub value: String,
    /// What the sandbox sees instead (unique to the sandbox).
    pub placeholder: String,
    /// Names (`api.example.com`) or `*.suffix` patterns the value may go to.
    pub hosts: Vec<String>,
    /// The header the value is sent in, e.g. `Authorization`.
    pub header: Option<String>,
    /// The header's value, with `{value}` where the secret goes, e.g.
    /// `Bearer {value}`; the bare value without one.
    pub template: Option<String>,
}

impl std::fmt::Debug for BoundSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundSecret")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("placeholder", &self.placeholder)
            .field("hosts", &self.hosts)
            .field("header", &self.header)
            .field("template", &self.template)
            .finish()
    }
}

/// A fresh placeholder for the secret `name`: recognisable, unique, and
/// made only of characters no encoding changes.
pub fn new_placeholder(name: &str) -> Result<String> {
    let mut random = [0u8; 16];
    getrandom::getrandom(&mut random)
        .map_err(|e| EgressError::Config(format!("no randomness for a secret placeholder: {e}")))?;
    Ok(format!("ssph_{}_{}", name.to_ascii_lowercase(), hex::encode(random)))
}

/// Whether `host` is one of `patterns` (exact names or `*.suffix`).
pub fn host_matches(patterns: &[String], host: &str) -> bool {
    patterns.iter().any(|p| match p.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => p == host,
    })
}

/// The custody secrets of one sandbox, ready to search for.
pub struct Custody {
    secrets: Vec<BoundSecret>,
    /// Every form of every placeholder; `form_owner[i]` is pattern i's secret.
    forms: AhoCorasick,
    form_owner: Vec<usize>,
    longest_form: usize,
    /// Raw placeholders; pattern i is secret i.
    raw: AhoCorasick,
    /// Every form of every value (to mask in responses).
    values: AhoCorasick,
    value_forms: Vec<Vec<u8>>,
    /// Bytes a value form can start with.
    value_starts: [bool; 256],
    longest_value: usize,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody").field("secrets", &self.secrets).finish_non_exhaustive()
    }
}

fn automaton<I, P>(patterns: I) -> Result<AhoCorasick>
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .map_err(|e| EgressError::Config(format!("secret custody: {e}")))
}

impl Custody {
    pub fn new(secrets: Vec<BoundSecret>) -> Result<Self> {
        let mut forms = Vec::new();
        let mut form_owner = Vec::new();
        let mut values = Vec::new();
        for (i, s) in secrets.iter().enumerate() {
            if s.value.len() < 4 || s.placeholder.len() < 8 {
                return Err(EgressError::Config(format!("secret {}: value or placeholder too short", s.name)));
            }
            for (f, _) in crate::dlp::encodings(&s.placeholder) {
                forms.push(f);
                form_owner.push(i);
            }
            values.extend(crate::dlp::encodings(&s.value).into_iter().map(|(f, _)| f));
        }
        let longest_form = forms.iter().map(Vec::len).max().unwrap_or(0);
        let longest_value = values.iter().map(Vec::len).max().unwrap_or(0);
        let mut value_starts = [false; 256];
        for v in &values {
            if let Some(b) = v.first() {
                value_starts[usize::from(*b)] = true;
            }
        }
        Ok(Self {
            raw: automaton(secrets.iter().map(|s| s.placeholder.as_bytes()))?,
            forms: automaton(&forms)?,
            form_owner,
            longest_form,
            values: automaton(&values)?,
            value_forms: values,
            value_starts,
            longest_value,
            secrets,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn secrets(&self) -> &[BoundSecret] {
        &self.secrets
    }

    /// Whether some secret may go to `host`.
    pub fn binds(&self, host: Option<&str>) -> bool {
        host.is_some_and(|h| self.secrets.iter().any(|s| host_matches(&s.hosts, h)))
    }

    /// The first secret whose placeholder `data` carries, in any form,
    /// that may not go to `host`.
    pub fn leak(&self, data: &[u8], host: Option<&str>) -> Option<&str> {
        self.forms.find_iter(data).find_map(|m| {
            let s = &self.secrets[self.form_owner[m.pattern().as_usize()]];
            let bound = host.is_some_and(|h| host_matches(&s.hosts, h));
            (!bound).then_some(s.name.as_str())
        })
    }

    /// Whether `data` carries a placeholder in any form.
    pub fn mentions(&self, data: &[u8]) -> bool {
        !self.is_empty() && self.forms.is_match(data)
    }

    /// `data` with the raw placeholders of the secrets bound to `host`
    /// replaced by their values.
    pub fn substitute<'a>(&self, data: &'a [u8], host: &str) -> Cow<'a, [u8]> {
        self.replace(data, |s| host_matches(&s.hosts, host))
    }

    /// `data` with the raw placeholders of the secrets `which` selects
    /// replaced by their values.
    fn replace<'a>(&self, data: &'a [u8], which: impl Fn(&BoundSecret) -> bool) -> Cow<'a, [u8]> {
        if self.is_empty() || !self.raw.is_match(data) {
            return Cow::Borrowed(data);
        }
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut at = 0;
        for m in self.raw.find_iter(data) {
            let s = &self.secrets[m.pattern().as_usize()];
            out.extend_from_slice(&data[at..m.start()]);
            if which(s) {
                out.extend_from_slice(s.value.as_bytes());
            } else {
                out.extend_from_slice(&data[m.start()..m.end()]);
            }
            at = m.end();
        }
        out.extend_from_slice(&data[at..]);
        Cow::Owned(out)
    }

    /// `data` with every form of every placeholder blanked, so that content
    /// scanning does not take a placeholder for a secret.
    pub fn mask_placeholders<'a>(&self, data: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.mentions(data) {
            return Cow::Borrowed(data);
        }
        let mut out = data.to_vec();
        for m in self.forms.find_iter(data) {
            out[m.start()..m.end()].fill(b'x');
        }
        Cow::Owned(out)
    }

    /// A request head to `host` as it goes upstream: each bound secret's
    /// header set from its template (when the sandbox sent it with the
    /// placeholder, or did not send it at all), placeholders inside Basic
    /// credentials and anywhere else replaced, and responses asked for
    /// uncompressed so that echoes of a value can be masked. Values holding
    /// line breaks are never put into a head.
    pub fn rewrite_head(&self, raw: &[u8], host: &str) -> Vec<u8> {
        let bound: Vec<&BoundSecret> = self.secrets.iter().filter(|s| host_matches(&s.hosts, host)).collect();
        if bound.is_empty() {
            return raw.to_vec();
        }
        let head_safe = |s: &BoundSecret| !s.value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
        let mut lines = raw.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let request_line = lines.next().unwrap_or_default();
        let mut out: Vec<Vec<u8>> = vec![request_line.to_vec()];
        let mut present = vec![false; bound.len()];
        for line in lines.take_while(|l| !l.is_empty()) {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                out.push(line.to_vec());
                continue;
            };
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
            let value = String::from_utf8_lossy(&line[colon + 1..]).trim().to_string();
            if name.eq_ignore_ascii_case("accept-encoding") {
                continue;
            }
            let mut new_value = None;
            for (i, s) in bound.iter().enumerate() {
                if s.header.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&name)) {
                    present[i] = true;
                    if value.contains(&s.placeholder) && head_safe(s) {
                        new_value = Some(header_value(s));
                    }
                }
            }
            if new_value.is_none()
                && (name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization"))
            {
                new_value = self.basic_credentials(&value, host, &head_safe);
            }
            match new_value {
                Some(v) => out.push(format!("{name}: {v}").into_bytes()),
                None => out.push(line.to_vec()),
            }
        }
        for (i, s) in bound.iter().enumerate() {
            if let (false, Some(h)) = (present[i], &s.header) {
                if head_safe(s) {
                    out.push(format!("{h}: {}", header_value(s)).into_bytes());
                }
            }
        }
        out.push(b"Accept-Encoding: identity".to_vec());
        let mut head = out.join(&b"\r\n"[..]);
        head.extend_from_slice(b"\r\n\r\n");
        // Placeholders elsewhere in the head, for values that fit in one.
        self.replace(&head, |s| host_matches(&s.hosts, host) && head_safe(s)).into_owned()
    }

    /// `Basic <base64 user:password>` with placeholders replaced inside.
    fn basic_credentials(&self, value: &str, host: &str, head_safe: &dyn Fn(&BoundSecret) -> bool) -> Option<String> {
        let (scheme, b64) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = STANDARD.decode(b64.trim()).ok()?;
        if !self.raw.is_match(&decoded) {
            return None;
        }
        let all_safe = self.raw.find_iter(&decoded).all(|m| head_safe(&self.secrets[m.pattern().as_usize()]));
        if !all_safe {
            return None;
        }
        let replaced = self.substitute(&decoded, host);
        Some(format!("{scheme} {}", STANDARD.encode(replaced.as_ref())))
    }

    /// A body on its way to `host` (`None`: no name known).
    pub fn body(self: &Arc<Self>, host: Option<String>) -> BodyStream {
        BodyStream { custody: self.clone(), host, substitute: true, tail: Vec::new() }
    }

    /// Bytes of another protocol on their way to `host`: checked for
    /// placeholders going where they may not, never rewritten.
    pub fn check_only(self: &Arc<Self>, host: Option<String>) -> BodyStream {
        BodyStream { custody: self.clone(), host, substitute: false, tail: Vec::new() }
    }

    /// Masks values in a response stream.
    pub fn redactor(self: &Arc<Self>) -> Redactor {
        Redactor { custody: self.clone(), tail: Vec::new() }
    }
}

fn header_value(s: &BoundSecret) -> String {
    match &s.template {
        Some(t) => t.replace("{value}", &s.value),
        None => s.value.clone(),
    }
}

/// A placeholder was about to leave for a host its secret is not bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The secret's name.
    pub secret: String,
}

/// A request body passing through in pieces: placeholders are checked
/// (and, for a bound host, replaced) across piece boundaries.
pub struct BodyStream {
    custody: Arc<Custody>,
    host: Option<String>,
    substitute: bool,
    tail: Vec<u8>,
}

impl BodyStream {
    /// The next piece; returns what can go on now (the end of the piece is
    /// held back until the next one shows whether a placeholder spans them).
    pub fn push(&mut self, chunk: &[u8]) -> std::result::Result<Vec<u8>, Leak> {
        self.tail.extend_from_slice(chunk);
        self.drain(false)
    }

    /// What was held back, at the end of the body.
    pub fn finish(&mut self) -> std::result::Result<Vec<u8>, Leak> {
        self.drain(true)
    }

    fn drain(&mut self, all: bool) -> std::result::Result<Vec<u8>, Leak> {
        let c = &self.custody;
        if c.is_empty() {
            return Ok(std::mem::take(&mut self.tail));
        }
        if let Some(secret) = c.leak(&self.tail, self.host.as_deref()) {
            return Err(Leak { secret: secret.to_string() });
        }
        let mut cut = if all { self.tail.len() } else { self.tail.len().saturating_sub(c.longest_form - 1) };
        // A raw placeholder starting before the cut is replaced whole.
        for m in c.raw.find_iter(&self.tail) {
            if m.start() < cut {
                cut = cut.max(m.end());
            }
        }
        let rest = self.tail.split_off(cut);
        let done = std::mem::replace(&mut self.tail, rest);
        Ok(match &self.host {
            Some(h) if self.substitute => c.substitute(&done, h).into_owned(),
            _ => done,
        })
    }
}

/// Masks every form of every value in a stream, byte for byte.
pub struct Redactor {
    custody: Arc<Custody>,
    tail: Vec<u8>,
}

impl Redactor {
    /// The next piece; returns what can go on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.tail.extend_from_slice(chunk);
        self.drain(false)
    }

    /// What was held back, at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        self.drain(true)
    }

    /// Whether bytes are held back (the start of what may be a value).
    pub fn holding(&self) -> bool {
        !self.tail.is_empty()
    }

    fn drain(&mut self, all: bool) -> Vec<u8> {
        let c = &self.custody;
        if c.is_empty() {
            return std::mem::take(&mut self.tail);
        }
        let len = self.tail.len();
        let found: Vec<(usize, usize)> = c.values.find_iter(&self.tail).map(|m| (m.start(), m.end())).collect();
        let mut done = 0;
        for (start, end) in found {
            self.tail[start..end].fill(b'*');
            done = end;
        }
        // Hold back only an ending that could be the start of a value.
        let mut cut = len;
        if !all {
            let window = len.saturating_sub(c.longest_value.saturating_sub(1)).max(done);
            cut = (window..len)
                .find(|&i| {
                    c.value_starts[usize::from(self.tail[i])]
                        && c.value_forms.iter().any(|v| v.len() > len - i && v.starts_with(&self.tail[i..]))
                })
                .unwrap_or(len);
        }
        let rest = self.tail.split_off(cut);
        std::mem::replace(&mut self.tail, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custody() -> Arc<Custody> {
        let s = BoundSecret {
            name: "API_TOKEN".into(),
            value: "real-token-0123456789".into(),
            placeholder: "ssph_api_token_00112233445566778899aabbccddeeff".into(),
            hosts: vec!["api.example.com".into(), "*.svc.example.com".into()],
            header: Some("Authorization".into()),
            template: Some("Bearer {value}".into()),
        };
        Arc::new(Custody::new(vec![s]).unwrap())
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn hosts_match_exactly_or_by_suffix() {
        let p = vec!["api.example.com".to_string(), "*.svc.example.com".to_string()];
        assert!(host_matches(&p, "api.example.com") && host_matches(&p, "a.svc.example.com"));
        assert!(!host_matches(&p, "svc.example.com") && !host_matches(&p, "evilapi.example.com"));
        assert!(!host_matches(&p, "api.example.com.evil.net") && !host_matches(&p, "xsvc.example.com"));
    }

    #[test]
    fn head_for_a_bound_host_gets_the_value() {
        let c = custody();
        let ph = &c.secrets()[0].placeholder;
        let raw = format!(
            "GET /v1/x?key={ph} HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer {ph}\r\nAccept-Encoding: gzip\r\nX-Other: {ph}\r\n\r\n"
        );
        let out = text(&c.rewrite_head(raw.as_bytes(), "api.example.com"));
        assert!(!out.contains(ph.as_str()), "{out}");
        assert!(out.contains("Authorization: Bearer real-token-0123456789\r\n"), "{out}");
        assert!(out.contains("?key=real-token-0123456789 ") && out.contains("X-Other: real-token-0123456789"));
        assert!(out.contains("Accept-Encoding: identity") && !out.contains("gzip"), "{out}");
        assert!(out.ends_with("\r\n\r\n"));
    }

    #[test]
    fn configured_header_is_added_when_absent_and_left_when_the_sandbox_sends_its_own() {
        let c = custody();
        let out = text(&c.rewrite_head(b"GET / HTTP/1.1\r\nHost: a.svc.example.com\r\n\r\n", "a.svc.example.com"));
        assert!(out.contains("Authorization: Bearer real-token-0123456789"), "{out}");
        let own = b"GET / HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer mine\r\n\r\n";
        let out = text(&c.rewrite_head(own, "api.example.com"));
        assert!(out.contains("Authorization: Bearer mine") && !out.contains("real-token"), "{out}");
        let other = b"GET / HTTP/1.1\r\nHost: other.example.com\r\n\r\n";
        assert_eq!(c.rewrite_head(other, "other.example.com"), other.to_vec());
    }

    #[test]
    fn basic_credentials_carry_the_value() {
        let mut s = custody().secrets()[0].clone();
        s.header = None;
        let c = Custody::new(vec![s.clone()]).unwrap();
        let creds = STANDARD.encode(format!("x-access-token:{}", s.placeholder));
        let raw = format!("GET / HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Basic {creds}\r\n\r\n");
        let out = text(&c.rewrite_head(raw.as_bytes(), "api.example.com"));
        let want = STANDARD.encode("x-access-token:real-token-0123456789");
        assert!(out.contains(&format!("Authorization: Basic {want}")), "{out}");
    }

    #[test]
    fn placeholders_to_other_hosts_are_leaks_in_any_form() {
        let c = custody();
        let ph = c.secrets()[0].placeholder.clone();
        assert_eq!(c.leak(ph.as_bytes(), Some("api.example.com")), None);
        for form in [ph.clone(), STANDARD.encode(format!("u:{ph}")), hex::encode(&ph)] {
            let body = format!("data={form}&x=1");
            assert_eq!(c.leak(body.as_bytes(), Some("evil.example.net")), Some("API_TOKEN"), "{form}");
            assert_eq!(c.leak(body.as_bytes(), None), Some("API_TOKEN"));
        }
        assert_eq!(c.leak(b"nothing here", Some("evil.example.net")), None);
    }

    #[test]
    fn bodies_are_substituted_and_checked_across_pieces() {
        let c = custody();
        let ph = c.secrets()[0].placeholder.clone();
        let body = format!("{{\"token\":\"{ph}\",\"again\":\"{ph}\"}}").into_bytes();
        for split in 1..body.len() {
            let mut s = c.body(Some("api.example.com".into()));
            let mut out = s.push(&body[..split]).unwrap();
            out.extend(s.push(&body[split..]).unwrap());
            out.extend(s.finish().unwrap());
            assert_eq!(text(&out), "{\"token\":\"real-token-0123456789\",\"again\":\"real-token-0123456789\"}");
            let mut s = c.body(Some("evil.example.net".into()));
            let first = s.push(&body[..split]);
            let leaked = first.is_err() || s.push(&body[split..]).is_err() || s.finish().is_err();
            assert!(leaked, "split at {split}");
        }
    }

    #[test]
    fn responses_are_masked_in_place() {
        let c = custody();
        let echo = format!(
            "{{\"auth\":\"Bearer real-token-0123456789\",\"b64\":\"{}\"}}",
            STANDARD.encode("real-token-0123456789")
        )
        .into_bytes();
        for split in 1..echo.len() {
            let mut r = c.redactor();
            let mut out = r.push(&echo[..split]);
            out.extend(r.push(&echo[split..]));
            out.extend(r.finish());
            assert_eq!(out.len(), echo.len());
            let t = text(&out);
            assert!(!t.contains("real-token") && !t.contains("cmVhbC10b2tlbi0wMTIzNDU2Nzg5"), "{t}");
        }
    }

    #[test]
    fn only_what_could_start_a_value_is_held_back() {
        let c = custody();
        let mut r = c.redactor();
        assert_eq!(r.push(b"HTTP/1.1 200 OK\r\n\r\n{}\n"), b"HTTP/1.1 200 OK\r\n\r\n{}\n");
        assert!(!r.holding());
        assert_eq!(r.push(b"x real-tok"), b"x ");
        assert!(r.holding());
        assert_eq!(r.push(b"EN"), b"real-tokEN");
    }

    #[test]
    fn debug_never_shows_a_value() {
        let c = custody();
        assert!(!format!("{c:?}").contains("real-token"));
    }
}
