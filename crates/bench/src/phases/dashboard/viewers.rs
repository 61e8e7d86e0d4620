//! Dashboard viewers: long-lived server-sent-event streams, opened with the
//! session cookie as the pages' script opens them, and read until closed.
//! They run on a thread (and runtime) of their own, so reading them does
//! not delay the client whose latency is measured meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE};
use tokio::sync::{oneshot, watch};

/// Longest the streams may take to answer their headers.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the viewers received, counted as they read.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub bytes: AtomicU64,
    /// Messages: events and keep-alive comments (blocks ending in a blank line).
    pub messages: AtomicU64,
    /// Streams the server ended while they were to stay open.
    pub ended: AtomicU64,
}

/// Open streams, read on their own thread until [`Viewers::close`].
pub(super) struct Viewers {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub counts: Arc<Counts>,
}

impl Viewers {
    /// Opens one stream per path of `paths` (`/v1/…?follow=true` …) and
    /// returns once every one has answered `200 text/event-stream`.
    pub(super) async fn open(base: &str, cookie: &str, paths: Vec<String>) -> Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let (ready_tx, ready) = oneshot::channel::<Vec<String>>();
        let counts = Arc::new(Counts::default());
        let (base, cookie, c) = (base.to_string(), cookie.to_string(), counts.clone());
        let thread = std::thread::Builder::new().name("sse-viewers".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(view(base, cookie, paths, stopped, ready_tx, c)),
                Err(e) => {
                    let _ = ready_tx.send(vec![format!("no runtime for the viewers: {e}")]);
                }
            }
        })?;
        let viewers = Self { stop, thread: Some(thread), counts };
        let failed = tokio::time::timeout(OPEN_TIMEOUT, ready)
            .await
            .context("the event streams did not all open in time")?
            .context("the viewers' thread ended before the streams opened")?;
        if !failed.is_empty() {
            bail!("{} event streams did not open, first: {}", failed.len(), failed[0]);
        }
        Ok(viewers)
    }

    /// `(bytes, messages)` received so far.
    pub(super) fn received(&self) -> (u64, u64) {
        (self.counts.bytes.load(Ordering::Relaxed), self.counts.messages.load(Ordering::Relaxed))
    }

    /// Closes every stream and waits for the thread.
    pub(super) fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Viewers {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Opens every stream, reports which failed, then reads them all until told to stop.
async fn view(
    base: String,
    cookie: String,
    paths: Vec<String>,
    mut stopped: watch::Receiver<bool>,
    ready: oneshot::Sender<Vec<String>>,
    counts: Arc<Counts>,
) {
    let http = match reqwest::Client::builder().no_proxy().build() {
        Ok(h) => h,
        Err(e) => {
            let _ = ready.send(vec![format!("no HTTP client: {e}")]);
            return;
        }
    };
    let opening = paths.iter().map(|p| {
        let req = http.get(format!("{base}{p}")).header(COOKIE, &cookie).header(ACCEPT, "text/event-stream");
        async move { (p, req.send().await) }
    });
    let mut streams = Vec::new();
    let mut failed = Vec::new();
    for (path, res) in futures::future::join_all(opening).await {
        match res {
            Ok(r) if r.status().is_success() && is_event_stream(&r) => streams.push(r),
            Ok(r) => failed.push(format!("{path}: {}", r.status())),
            Err(e) => failed.push(format!("{path}: {e}")),
        }
    }
    let _ = ready.send(failed);
    let reading: Vec<_> = streams
        .into_iter()
        .map(|mut r| {
            let (counts, mut stopped) = (counts.clone(), stopped.clone());
            async move {
                loop {
                    tokio::select! {
                        _ = stopped.changed() => return,
                        chunk = r.chunk() => match chunk {
                            Ok(Some(b)) => {
                                counts.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                                let blocks = b.windows(2).filter(|w| w == b"\n\n").count();
                                counts.messages.fetch_add(blocks as u64, Ordering::Relaxed);
                            }
                            _ => {
                                counts.ended.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        },
                    }
                }
            }
        })
        .collect();
    tokio::select! {
        _ = futures::future::join_all(reading) => {}
        _ = stopped.changed() => {}
    }
}

fn is_event_stream(r: &reqwest::Response) -> bool {
    r.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/event-stream"))
}
