//! Egress audit events and approvals.

use futures::StreamExt;
use reqwest::header::ACCEPT;
use reqwest::Method;
use superserver_wire::{Approval, ApprovalDecision, ApprovalList, DecideApprovalRequest, EgressEvent, EgressEventList};

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::ndjson::LineSplitter;

/// What `GET /v1/egress/events` asks for; every field optional.
#[derive(Debug, Clone, Default)]
pub struct EgressQuery {
    pub sandbox: Option<String>,
    pub execution: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub after: Option<i64>,
    pub limit: Option<usize>,
}

impl EgressQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut add = |k, val: Option<String>| {
            if let Some(val) = val {
                v.push((k, val));
            }
        };
        add("sandbox", self.sandbox.clone());
        add("execution", self.execution.clone());
        add("decision", self.decision.clone());
        add("from", self.from.map(|x| x.to_string()));
        add("to", self.to.map(|x| x.to_string()));
        add("after", self.after.map(|x| x.to_string()));
        add("limit", self.limit.map(|x| x.to_string()));
        v
    }
}

impl Client {
    /// `GET /v1/egress/events`: oldest first.
    pub async fn egress_events(&self, q: &EgressQuery) -> Result<EgressEventList> {
        let rb = self.request(Method::GET, &["v1", "egress", "events"]).query(&q.pairs());
        self.call_json(rb, "GET /v1/egress/events").await
    }

    /// `GET /v1/egress/events?format=jsonl`: the export, one event per line.
    pub async fn export_egress_events(&self, q: &EgressQuery) -> Result<String> {
        let rb = self.request(Method::GET, &["v1", "egress", "events"]).query(&q.pairs()).query(&[("format", "jsonl")]);
        self.call_text(rb, "application/x-ndjson").await
    }

    /// `GET /v1/egress/events?follow=true`: calls `on_event` for stored and
    /// then new events until it returns false or the stream ends.
    pub async fn follow_egress_events(
        &self,
        q: &EgressQuery,
        mut on_event: impl FnMut(EgressEvent) -> bool,
    ) -> Result<()> {
        let rb = self.request(Method::GET, &["v1", "egress", "events"]).query(&q.pairs()).query(&[("follow", "true")]);
        let resp = self.send(rb.header(ACCEPT, "text/event-stream")).await?;
        let mut body = resp.bytes_stream();
        let mut lines = LineSplitter::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ClientError::Stream(format!("the egress stream broke off ({e})")))?;
            lines.push(&chunk);
            while let Some(l) = lines.next_line() {
                let Some(data) = l.strip_prefix(b"data: ") else { continue };
                let event: EgressEvent = serde_json::from_slice(data)
                    .map_err(|e| ClientError::Stream(format!("an egress event does not parse: {e}")))?;
                if !on_event(event) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// `GET /v1/approvals`.
    pub async fn approvals(&self) -> Result<ApprovalList> {
        self.call_json(self.request(Method::GET, &["v1", "approvals"]), "GET /v1/approvals").await
    }

    /// `POST /v1/approvals/{id}`.
    pub async fn decide_approval(&self, id: &str, decision: ApprovalDecision) -> Result<Approval> {
        let rb = self.request(Method::POST, &["v1", "approvals", id]).json(&DecideApprovalRequest { decision });
        self.call_json(rb, "POST /v1/approvals/{id}").await
    }
}
