//! Connections held for a person's decision (`on_unknown = "ask"`).
//!
//! Pending requests live in memory only: each is tied to a connection the
//! proxy holds open, which a restart closes anyway. Decided ones are kept
//! for a while so the dashboard and the CLI can show what happened; the
//! decision itself is in the egress audit event and the audit log.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use superserver_egress::{ApprovalAnswer, ApprovalAsk, Approver};
use superserver_wire::{Approval, ApprovalDecision, ApprovalState};
use tokio::sync::{broadcast, oneshot};

use crate::ids;
use crate::service::now_ms;

/// Decided approvals kept for listing.
const KEEP_DECIDED: usize = 500;

struct Pending {
    approval: Approval,
    reply: oneshot::Sender<(ApprovalAnswer, String)>,
}

#[derive(Default)]
struct Book {
    pending: HashMap<String, Pending>,
    decided: VecDeque<Approval>,
}

/// The approvals registry; the proxy's [`Approver`].
pub struct Approvals {
    book: Mutex<Book>,
    timeout: Duration,
    changes: broadcast::Sender<Approval>,
}

impl Approvals {
    pub fn new(timeout: Duration) -> Self {
        Self { book: Mutex::default(), timeout, changes: broadcast::channel(256).0 }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pending approvals first (oldest first), then decided ones (newest first).
    pub fn list(&self, tenant: Option<&str>) -> Vec<Approval> {
        let mut book = self.book();
        expire(&mut book);
        let mine = |a: &&Approval| tenant.is_none_or(|t| a.tenant == t);
        let mut pending: Vec<Approval> = book.pending.values().map(|p| &p.approval).filter(mine).cloned().collect();
        pending.sort_by_key(|a| a.requested_at_ms);
        pending.extend(book.decided.iter().rev().filter(mine).cloned());
        pending
    }

    /// One approval, pending or decided.
    pub fn get(&self, id: &str) -> Option<Approval> {
        let book = self.book();
        book.pending.get(id).map(|p| p.approval.clone()).or_else(|| book.decided.iter().find(|a| a.id == id).cloned())
    }

    /// Decides a pending approval. `Err` with its state when it was already
    /// decided (or expired), `Err(None)` when there is no such approval.
    pub fn decide(&self, id: &str, decision: ApprovalDecision, who: &str) -> Result<Approval, Option<ApprovalState>> {
        let mut book = self.book();
        expire(&mut book);
        let Some(p) = book.pending.remove(id) else {
            return Err(book.decided.iter().find(|a| a.id == id).map(|a| a.state));
        };
        let (answer, state) = match decision {
            ApprovalDecision::AllowOnce => (ApprovalAnswer::AllowOnce, ApprovalState::AllowedOnce),
            ApprovalDecision::AllowAlways => (ApprovalAnswer::AllowAlways, ApprovalState::AllowedAlways),
            ApprovalDecision::Deny => (ApprovalAnswer::Deny, ApprovalState::Denied),
        };
        let mut a = p.approval;
        a.state = state;
        a.decided_by = Some(who.to_string());
        a.decided_at_ms = Some(now_ms());
        // The connection may have gone meanwhile; the decision stands.
        let _ = p.reply.send((answer, who.to_string()));
        remember(&mut book, a.clone());
        let _ = self.changes.send(a.clone());
        Ok(a)
    }

    /// Approvals as they are requested and decided.
    pub fn subscribe(&self) -> broadcast::Receiver<Approval> {
        self.changes.subscribe()
    }
}

impl Approver for Approvals {
    fn ask(&self, ask: ApprovalAsk) -> oneshot::Receiver<(ApprovalAnswer, String)> {
        let (tx, rx) = oneshot::channel();
        let now = now_ms();
        let approval = Approval {
            id: ids::new_id("ap"),
            tenant: ask.tenant,
            sandbox_id: ask.sandbox_id,
            execution_id: ask.execution_id,
            protocol: ask.protocol,
            name: ask.name,
            address: ask.address,
            port: ask.port,
            method: ask.method,
            path: ask.path,
            requested_at_ms: now,
            expires_at_ms: now + self.timeout.as_millis() as i64,
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at_ms: None,
        };
        tracing::info!(id = %approval.id, sandbox = %approval.sandbox_id, name = ?approval.name, port = approval.port, "egress approval requested");
        let _ = self.changes.send(approval.clone());
        let mut book = self.book();
        expire(&mut book);
        book.pending.insert(approval.id.clone(), Pending { approval, reply: tx });
        rx
    }
}

/// Moves pending approvals past their time to the decided ones.
fn expire(book: &mut Book) {
    let now = now_ms();
    let late: Vec<String> = book
        .pending
        .iter()
        .filter(|(_, p)| p.approval.expires_at_ms <= now || p.reply.is_closed())
        .map(|(id, _)| id.clone())
        .collect();
    for id in late {
        if let Some(p) = book.pending.remove(&id) {
            let mut a = p.approval;
            a.state = ApprovalState::Expired;
            a.decided_by = Some("timeout".into());
            a.decided_at_ms = Some(now);
            remember(book, a);
        }
    }
}

fn remember(book: &mut Book, a: Approval) {
    book.decided.push_back(a);
    while book.decided.len() > KEEP_DECIDED {
        book.decided.pop_front();
    }
}
