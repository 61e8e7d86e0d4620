//! Resource-trend anomalies through the real server: a container whose
//! memory grows steadily is reported, with the metric window as evidence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::docker::Container;
use common::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_memory_growth_is_an_anomaly_with_its_window() {
    let s = Server::start_with(
        "[discovery]\ninterval_seconds = 1\n[metrics]\ninterval_seconds = 1\n\
         [anomaly]\ntrend_window_minutes = 1\ntrend_interval_seconds = 5\n",
    )
    .await;
    let c = Container::run("ss-test-leak", &[]);
    let id = format!("container:{}", c.name);
    let leak = format!("http://{}:8080/leak?mb=2", c.ip());
    let http = reqwest::Client::new();
    // Two MiB every half second, for at most two minutes, until it is seen.
    let deadline = Instant::now() + Duration::from_secs(120);
    let found = loop {
        let res = http.post(&leak).send().await.unwrap();
        assert!(res.status().is_success());
        let list = s.client.anomalies(Some(&id), Some("memory_growth"), None).await.unwrap();
        if let Some(a) = list.anomalies.into_iter().next() {
            break a;
        }
        assert!(Instant::now() < deadline, "no memory_growth anomaly for {id}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(found.evidence.series.as_deref(), Some(format!("{id}/memory.bytes").as_str()));
    assert!(found.evidence.window.len() >= 10, "{found:#?}");
    assert!(found.evidence.figures["slope_bytes_per_hour"] > 1e9, "{found:#?}");
    assert!(found.evidence.figures["r2"] >= 0.9, "{found:#?}");
    assert!(found.summary.contains("memory grows steadily"), "{found:#?}");
}
