//! The sandbox's resolver, on the wire: parsing one query and building its
//! answer. Only what a stub resolver sends is understood (one question, no
//! compression in it); anything else is answered `FORMERR` or `NOTIMP`.

/// Record types the resolver answers.
pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// Response codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
}

/// One parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// Lower case, without the trailing dot.
    pub name: String,
    pub qtype: u16,
    /// The question section as received, echoed in the answer.
    question: Vec<u8>,
    /// The query's opcode and recursion-desired bits.
    flags: u16,
}

/// Why a packet is not a query we can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Too short or not a query at all: dropped without an answer.
    Garbage,
    /// A query we answer with this code (with the id).
    Answer { id: u16, rcode: Rcode },
}

/// Parses a DNS query packet.
pub fn parse(packet: &[u8]) -> Result<Query, ParseError> {
    if packet.len() < 12 {
        return Err(ParseError::Garbage);
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & 0x8000 != 0 {
        return Err(ParseError::Garbage); // a response, not a query
    }
    let formerr = ParseError::Answer { id, rcode: Rcode::FormErr };
    if (flags >> 11) & 0xf != 0 {
        return Err(ParseError::Answer { id, rcode: Rcode::NotImp });
    }
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    if qdcount != 1 {
        return Err(formerr);
    }
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *packet.get(pos).ok_or(formerr.clone())? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return Err(formerr); // compression pointers have no place in a question
        }
        let label = packet.get(pos..pos + len).ok_or(formerr.clone())?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += len;
    }
    let tail = packet.get(pos..pos + 4).ok_or(formerr.clone())?;
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    let qclass = u16::from_be_bytes([tail[2], tail[3]]);
    if qclass != CLASS_IN {
        return Err(ParseError::Answer { id, rcode: Rcode::NotImp });
    }
    pos += 4;
    Ok(Query { id, name: labels.join("."), qtype, question: packet[12..pos].to_vec(), flags: flags & 0x7900 })
}

/// The answer to `q`: `addr` as its one A record (for A queries), or an
/// empty answer or error `rcode`.
pub fn answer(q: &Query, rcode: Rcode, addr: Option<std::net::Ipv4Addr>) -> Vec<u8> {
    let record = addr.filter(|_| rcode == Rcode::NoError && q.qtype == TYPE_A);
    let mut out = Vec::with_capacity(12 + q.question.len() + 16);
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR, the query's opcode and RD, RA, the code.
    let flags = 0x8000 | q.flags | 0x0080 | rcode as u16;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&u16::from(record.is_some()).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&q.question);
    if let Some(ip) = record {
        out.extend_from_slice(&[0xc0, 0x0c]); // the name, by pointer to the question
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// An answer with only a code, for a packet that did not parse into a query.
pub fn error_answer(id: u16, rcode: Rcode) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(0x8080u16 | rcode as u16).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out
}

/// Whether `name` looks like data smuggled out through DNS: a very long
/// name or label, or a long label of random-looking letters and digits
/// (hex, base32). Real host names have short or word-like labels.
pub fn looks_like_tunnelling(name: &str) -> bool {
    if name.len() > 120 {
        return true;
    }
    name.split('.').any(|label| {
        let digits = label.bytes().filter(u8::is_ascii_digit).count();
        label.len() >= 50 || label.len() >= 20 && !label.contains('-') && digits >= 4 && entropy(label) > 3.5
    })
}

/// Shannon entropy of `s` in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts.iter().filter(|c| **c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).log2()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p
    }

    #[test]
    fn a_query_round_trips() {
        let q = parse(&query("API.Example.com", TYPE_A)).unwrap();
        assert_eq!((q.id, q.name.as_str(), q.qtype), (0x1234, "api.example.com", TYPE_A));
        let a = answer(&q, Rcode::NoError, Some(std::net::Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0xf, 0);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1, "one answer");
        assert_eq!(&a[a.len() - 4..], &[198, 18, 0, 1]);
        let nx = answer(&q, Rcode::NxDomain, None);
        assert_eq!(nx[3] & 0xf, 3);
        assert_eq!(u16::from_be_bytes([nx[6], nx[7]]), 0);
    }

    #[test]
    fn aaaa_gets_an_empty_answer() {
        let q = parse(&query("api.example.com", TYPE_AAAA)).unwrap();
        let a = answer(&q, Rcode::NoError, Some(std::net::Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 0);
    }

    #[test]
    fn malformed_packets() {
        assert_eq!(parse(&[1, 2, 3]), Err(ParseError::Garbage));
        let mut p = query("a.b", TYPE_A);
        p.truncate(p.len() - 3);
        assert!(matches!(parse(&p), Err(ParseError::Answer { rcode: Rcode::FormErr, .. })));
        let mut p = query("a.b", TYPE_A);
        p[12] = 0xc0; // a pointer
        assert!(matches!(parse(&p), Err(ParseError::Answer { rcode: Rcode::FormErr, .. })));
    }

    #[test]
    fn tunnelling_heuristic() {
        assert!(!looks_like_tunnelling("api.example.com"));
        assert!(!looks_like_tunnelling("storage.googleapis.com"));
        assert!(!looks_like_tunnelling("very-long-but-wordy-service-name.internal.example.com"));
        assert!(!looks_like_tunnelling("my-loadbalancer-1234567890.us-west-2.elb.amazonaws.com"));
        assert!(looks_like_tunnelling("mzxw6ytboi4tanbvgy3tqojqgezdgnbvgy3tqojq.t.example.com"));
        assert!(looks_like_tunnelling("9e107d9d372bb6826bd81d3542a419d6.example.com"));
        assert!(looks_like_tunnelling("a8f3k2j9x7q1w5e4r6t0y8u2.example.com"));
        let long = format!("{}.example.com", ["abc"; 40].join("."));
        assert!(looks_like_tunnelling(&long));
    }
}
