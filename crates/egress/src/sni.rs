//! The server name of a TLS ClientHello, read from the first bytes of a
//! connection without consuming them.

/// What the first bytes of a TLS connection say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// A complete ClientHello, with its server name if it carries one.
    Complete(Option<String>),
    /// A ClientHello that has not fully arrived yet: read more.
    Partial,
    /// Not a TLS ClientHello.
    NotTls,
}

/// Whether `buf` starts like a TLS handshake record.
pub fn is_tls(buf: &[u8]) -> bool {
    buf.len() >= 3 && buf[0] == 0x16 && buf[1] == 0x03
}

/// Parses the ClientHello at the start of `buf` (the first record only).
pub fn client_hello(buf: &[u8]) -> Hello {
    if buf.len() < 5 {
        return if buf.is_empty() || is_tls(buf) || buf[0] == 0x16 { Hello::Partial } else { Hello::NotTls };
    }
    if !is_tls(buf) {
        return Hello::NotTls;
    }
    let len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
    let Some(record) = buf.get(5..5 + len) else { return Hello::Partial };
    match parse_hello(record) {
        Some(name) => Hello::Complete(name),
        None => Hello::NotTls,
    }
}

/// `Some(server name or None)` for a well-formed ClientHello, `None` for a
/// malformed one.
fn parse_hello(h: &[u8]) -> Option<Option<String>> {
    let mut r = Reader(h);
    if r.u8()? != 1 {
        return None; // not a ClientHello
    }
    let n = r.u24()?;
    let body = r.take(n)?;
    let mut r = Reader(body);
    r.take(2 + 32)?; // version, random
    let n = r.u8()? as usize;
    r.take(n)?; // session id
    let n = r.u16()? as usize;
    r.take(n)?; // cipher suites
    let n = r.u8()? as usize;
    r.take(n)?; // compression methods
    if r.0.is_empty() {
        return Some(None); // no extensions
    }
    let n = r.u16()? as usize;
    let mut exts = Reader(r.take(n)?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let n = exts.u16()? as usize;
        let data = exts.take(n)?;
        if kind == 0 {
            let mut s = Reader(data);
            let n = s.u16()? as usize;
            let mut list = Reader(s.take(n)?);
            while !list.0.is_empty() {
                let name_type = list.u8()?;
                let n = list.u16()? as usize;
                let name = list.take(n)?;
                if name_type == 0 {
                    let name = std::str::from_utf8(name).ok()?;
                    return Some(Some(name.trim_end_matches('.').to_ascii_lowercase()));
                }
            }
        }
    }
    Some(None)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3).map(|b| (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ClientHello record, with an SNI extension when `name` is set.
    pub(crate) fn hello(name: Option<&str>) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(n) = name {
            let mut sni = Vec::new();
            sni.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
            sni.push(0);
            sni.extend_from_slice(&(n.len() as u16).to_be_bytes());
            sni.extend_from_slice(n.as_bytes());
            exts.extend_from_slice(&0u16.to_be_bytes());
            exts.extend_from_slice(&(sni.len() as u16).to_be_bytes());
            exts.extend_from_slice(&sni);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn reads_the_server_name() {
        assert_eq!(client_hello(&hello(Some("API.example.com"))), Hello::Complete(Some("api.example.com".into())));
        assert_eq!(client_hello(&hello(None)), Hello::Complete(None));
    }

    #[test]
    fn partial_and_garbage() {
        let h = hello(Some("api.example.com"));
        for cut in [0, 1, 4, 10, h.len() - 1] {
            assert_eq!(client_hello(&h[..cut]), Hello::Partial, "cut at {cut}");
        }
        assert_eq!(client_hello(b"GET / HTTP/1.1\r\n"), Hello::NotTls);
        let mut bad = h.clone();
        bad[5] = 2; // a ServerHello
        assert_eq!(client_hello(&bad), Hello::NotTls);
    }
}
