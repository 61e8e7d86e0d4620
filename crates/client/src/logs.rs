//! Logs: search, live tail (server-sent events) and templates.

use futures::StreamExt;
use reqwest::header::ACCEPT;
use reqwest::Method;
use superserver_wire::{LogLine, LogList, LogTemplateList};

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::ndjson::LineSplitter;

/// What `GET /v1/logs` asks for; every field optional.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub service: Option<String>,
    pub q: Option<String>,
    pub level: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: Option<usize>,
}

impl LogsQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut add = |k, val: Option<String>| {
            if let Some(val) = val {
                v.push((k, val));
            }
        };
        add("service", self.service.clone());
        add("q", self.q.clone());
        add("level", self.level.clone());
        add("from", self.from.map(|x| x.to_string()));
        add("to", self.to.map(|x| x.to_string()));
        add("limit", self.limit.map(|x| x.to_string()));
        v
    }
}

impl Client {
    /// `GET /v1/logs`: newest first.
    pub async fn logs(&self, q: &LogsQuery) -> Result<LogList> {
        let rb = self.request(Method::GET, &["v1", "logs"]).query(&q.pairs());
        self.call_json(rb, "GET /v1/logs").await
    }

    /// `GET /v1/logs?follow=true`: calls `on_line` for each new matching
    /// line until it returns false or the stream ends.
    pub async fn follow_logs(&self, q: &LogsQuery, mut on_line: impl FnMut(LogLine) -> bool) -> Result<()> {
        let rb = self.request(Method::GET, &["v1", "logs"]).query(&q.pairs()).query(&[("follow", "true")]);
        let resp = self.send(rb.header(ACCEPT, "text/event-stream")).await?;
        let mut body = resp.bytes_stream();
        let mut lines = LineSplitter::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ClientError::Stream(format!("the log stream broke off ({e})")))?;
            lines.push(&chunk);
            while let Some(l) = lines.next_line() {
                let Some(data) = l.strip_prefix(b"data: ") else { continue };
                let line: LogLine = serde_json::from_slice(data)
                    .map_err(|e| ClientError::Stream(format!("a log event is not a line: {e}")))?;
                if !on_line(line) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// `GET /v1/logs/templates[?service=…]`: most frequent first.
    pub async fn log_templates(&self, service: Option<&str>) -> Result<LogTemplateList> {
        let mut rb = self.request(Method::GET, &["v1", "logs", "templates"]);
        if let Some(s) = service {
            rb = rb.query(&[("service", s)]);
        }
        self.call_json(rb, "GET /v1/logs/templates").await
    }
}
