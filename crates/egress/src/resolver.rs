//! The sandbox's resolver: answers only names the policy lets it reach,
//! each with an address of its own from the hand-out range, so that a
//! connection to that address later says which name it is for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use superserver_wire::{EgressDecision, OnUnknown};
use tokio::net::UdpSocket;

use crate::dns::{self, ParseError, Rcode};
use crate::policy::{is_dns_name, Verdict};
use crate::session::{Draft, SessionState};

/// Serves `sock` until the session ends.
pub(crate) async fn serve(state: Arc<SessionState>, sock: UdpSocket) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 4096];
    loop {
        let received = tokio::select! {
            r = sock.recv_from(&mut buf) => r,
            () = state.cancel.cancelled() => return,
        };
        let Ok((n, peer)) = received else { continue };
        let packet = buf[..n].to_vec();
        let (state, sock) = (state.clone(), sock.clone());
        tokio::spawn(async move {
            if let Some(reply) = answer(&state, &packet).await {
                let _ = sock.send_to(&reply, peer).await;
            }
        });
    }
}

/// The reply to one packet, and its audit event.
async fn answer(state: &SessionState, packet: &[u8]) -> Option<Vec<u8>> {
    let started = Instant::now();
    let q = match dns::parse(packet) {
        Ok(q) => q,
        Err(ParseError::Garbage) => return None,
        Err(ParseError::Answer { id, rcode }) => return Some(dns::error_answer(id, rcode)),
    };
    let draft = Draft { protocol: "dns", name: Some(q.name.clone()), ..Default::default() };
    let deny = |rule: &str, rcode: Rcode| {
        state.finish(draft.clone(), EgressDecision::Deny, rule, started);
        Some(dns::answer(&q, rcode, None))
    };
    if dns::looks_like_tunnelling(&q.name) {
        return deny("dns tunnelling", Rcode::Refused);
    }
    if !is_dns_name(&q.name) {
        return deny("not a host name", Rcode::NxDomain);
    }
    let verdict = state.policy.read().unwrap_or_else(|e| e.into_inner()).decide_name(&q.name);
    let on_unknown = state.policy.read().unwrap_or_else(|e| e.into_inner()).on_unknown;
    let rule = match verdict {
        Verdict::Deny(rule) => return deny(&rule, Rcode::NxDomain),
        Verdict::Unknown if on_unknown == OnUnknown::Deny => return deny("default deny", Rcode::NxDomain),
        Verdict::Unknown => "ask".to_string(),
        Verdict::Allow(rule) => rule,
    };
    // A name that does not exist upstream does not exist here either.
    if let Err(e) = state.proxy.resolver.resolve(&q.name, 0).await {
        tracing::debug!(name = %q.name, error = %e, "an allowed name does not resolve");
        state.finish(draft, EgressDecision::Allow, &rule, started);
        return Some(dns::answer(&q, Rcode::NxDomain, None));
    }
    let Some(addr) = state.address_for(&q.name) else {
        return deny("resolver addresses exhausted", Rcode::Refused);
    };
    let mut draft = draft;
    draft.address = Some(SocketAddr::from((addr, 0)).ip().to_string());
    state.finish(draft, EgressDecision::Allow, &rule, started);
    Some(dns::answer(&q, Rcode::NoError, Some(addr)))
}
