//! The lines printed under an error that say what to do about it: which key
//! to pass after a 401, the figures of a spent quota and when it resets, how
//! long to wait after a rate limit.

use std::time::Duration;

use superserver_client::{Client, ClientError, QuotaDetails};

use super::auth;
use super::output::{human_duration, until, utc};
use super::ClientOpts;

/// Lines to print after `error: …` (details indented, advice as `hint: …`),
/// or none when the error is not one the server explained.
pub(crate) fn hints(opts: &ClientOpts, err: &anyhow::Error, now_ms: i64) -> Vec<String> {
    let Some(client_err) = err.chain().find_map(|c| c.downcast_ref::<ClientError>()) else {
        return Vec::new();
    };
    match client_err {
        ClientError::Unauthorized { .. } => {
            let loopback = Client::new(&opts.url).is_ok_and(|c| c.is_loopback());
            match auth::resolve(opts, loopback) {
                Ok(resolved) => vec![format!("hint: {}", auth::unauthorized_hint(&resolved, &opts.url))],
                Err(_) => Vec::new(),
            }
        }
        other => explain(other, now_ms),
    }
}

/// The lines for a server answer that does not depend on the options.
fn explain(err: &ClientError, now_ms: i64) -> Vec<String> {
    match err {
        ClientError::Forbidden { .. } => {
            vec!["hint: the API key's role does not allow this; `superserver whoami` shows its role and tenant".into()]
        }
        ClientError::Api { code, .. } if code == "tenant_suspended" => {
            vec!["hint: an admin can resume the tenant with `superserver tenants resume TENANT`".into()]
        }
        ClientError::QuotaExceeded { quota, .. } => quota_lines(quota, now_ms),
        ClientError::FeatureNotInPlan { feature, .. } => {
            let what = feature.as_deref().map_or_else(|| "this feature".to_owned(), |f| format!("`{f}`"));
            vec![format!(
                "hint: the tenant's plan does not include {what}; `superserver plans` shows which plans do, \
                 and an admin can change it with `superserver tenants set-plan TENANT PLAN`"
            )]
        }
        ClientError::RateLimited { retry_after, .. } => {
            let wait = retry_after.map_or_else(|| "a moment".to_owned(), wait_text);
            vec![format!("hint: too many requests for this key; wait {wait} and try again")]
        }
        _ => Vec::new(),
    }
}

/// `  quota:  executions, 1000 of 1000 used`, `  resets: … (in …)`, and a hint.
fn quota_lines(q: &QuotaDetails, now_ms: i64) -> Vec<String> {
    let mut figures = Vec::new();
    if let Some(name) = &q.name {
        figures.push(name.clone());
    }
    match (q.used, q.limit) {
        (Some(used), Some(limit)) => figures.push(format!("{} of {limit} used", super::output::number(used))),
        (Some(used), None) => figures.push(format!("{} used", super::output::number(used))),
        (None, Some(limit)) => figures.push(format!("limit {limit}")),
        (None, None) => {}
    }
    let mut lines = Vec::new();
    if !figures.is_empty() {
        lines.push(format!("  quota:  {}", figures.join(", ")));
    }
    match (q.resets_at_ms, &q.resets_at) {
        (Some(at), _) => lines.push(format!("  resets: {} UTC ({})", utc(at), until(at, now_ms))),
        (None, Some(at)) => lines.push(format!("  resets: {at}")),
        (None, None) if q.name.as_deref() == Some("concurrent_sandboxes") => {
            lines.push("hint: a place frees up when a sandbox ends (`superserver sandbox ls`, `sandbox rm ID`)".into());
        }
        (None, None) => {}
    }
    lines.push("hint: `superserver quotas` shows every quota of the tenant".into());
    lines
}

/// `3s`, `1m30s`; sub-second waits read as `1s`.
fn wait_text(d: Duration) -> String {
    human_duration(d.max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_lines_give_figures_and_reset() {
        let q = QuotaDetails {
            name: Some("executions".into()),
            limit: Some(1000),
            used: Some(1000.0),
            resets_at: Some("1970-01-02T00:00:00Z".into()),
            resets_at_ms: Some(86_400_000),
        };
        let err = ClientError::QuotaExceeded { status: 429, message: "used up".into(), quota: q };
        let lines = explain(&err, 3_600_000);
        assert_eq!(
            lines,
            [
                "  quota:  executions, 1000 of 1000 used",
                "  resets: 1970-01-02 00:00:00 UTC (in 23h0m)",
                "hint: `superserver quotas` shows every quota of the tenant",
            ]
        );
    }

    #[test]
    fn concurrent_quota_says_how_to_free_a_place() {
        let q = QuotaDetails {
            name: Some("concurrent_sandboxes".into()),
            limit: Some(2),
            used: Some(2.0),
            ..Default::default()
        };
        let lines = quota_lines(&q, 0);
        assert_eq!(lines[0], "  quota:  concurrent_sandboxes, 2 of 2 used");
        assert!(lines[1].contains("sandbox rm"), "{lines:?}");
    }

    #[test]
    fn rate_limit_and_feature_hints() {
        let err = ClientError::RateLimited {
            status: 429,
            message: "slow".into(),
            retry_after: Some(Duration::from_secs(90)),
        };
        assert_eq!(explain(&err, 0), ["hint: too many requests for this key; wait 1m30s and try again"]);
        let err = ClientError::FeatureNotInPlan { status: 403, message: "no".into(), feature: Some("network".into()) };
        assert!(explain(&err, 0)[0].contains("does not include `network`"));
        let err = ClientError::Api { status: 404, code: "x".into(), message: "y".into() };
        assert!(explain(&err, 0).is_empty());
    }

    #[test]
    fn unauthorized_names_the_admin_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = ClientOpts {
            url: "http://127.0.0.1:7070".into(),
            api_key: None,
            api_key_file: None,
            data_dir: Some(dir.path().to_owned()),
            json: false,
        };
        let err =
            anyhow::Error::new(ClientError::Unauthorized { code: "unauthorized".into(), message: "no key".into() });
        let lines = hints(&opts, &err.context("cannot list tenants"), 0);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("hint: set SUPERSERVER_API_KEY or --api-key; the first `superserver serve`"));
        assert!(lines[0].contains(&dir.path().join("admin.key").display().to_string()), "{lines:?}");
    }
}
