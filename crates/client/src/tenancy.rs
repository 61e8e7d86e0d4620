//! Calls of the tenancy endpoints: who am I, plans, tenants, API keys,
//! usage, quotas and the audit log.

use reqwest::Method;
use superserver_wire::{
    AuditList, CreateKeyRequest, CreateTenantRequest, CreatedKey, KeyInfo, KeyList, PlanList, QuotaList, TenantInfo,
    TenantList, UpdateTenantRequest, UsageReport, WhoAmI,
};

use crate::client::Client;
use crate::error::Result;

const CSV: &str = "text/csv";

/// Which usage `GET /v1/usage` reports. Every field is optional and passed
/// through as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Start (inclusive): unix milliseconds, RFC 3339 or `YYYY-MM-DD`
    /// (default: the start of the current month).
    pub from: Option<String>,
    /// End (exclusive), in the same forms (default: now).
    pub to: Option<String>,
    /// `day`, `key`, `sandbox` or `tenant`.
    pub group_by: Option<String>,
    /// Tenant name or id (admins only; default: the caller's tenant).
    pub tenant: Option<String>,
}

impl UsageQuery {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        let fields = [("from", &self.from), ("to", &self.to), ("group_by", &self.group_by), ("tenant", &self.tenant)];
        fields.into_iter().filter_map(|(name, value)| value.as_deref().map(|v| (name, v))).collect()
    }
}

/// `(name, value)` for the options that are set.
fn present<'a>(pairs: &[(&'static str, Option<&'a str>)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().filter_map(|(name, value)| value.map(|v| (*name, v))).collect()
}

impl Client {
    /// `GET /v1/whoami`: the caller's key, role and tenant.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.call_json(self.request(Method::GET, &["v1", "whoami"]), "GET /v1/whoami").await
    }

    /// `GET /v1/plans`: every plan and what it grants.
    pub async fn plans(&self) -> Result<PlanList> {
        self.call_json(self.request(Method::GET, &["v1", "plans"]), "GET /v1/plans").await
    }

    /// `POST /v1/tenants`: creates a tenant (admins only).
    pub async fn create_tenant(&self, req: &CreateTenantRequest) -> Result<TenantInfo> {
        let rb = self.request(Method::POST, &["v1", "tenants"]).json(req);
        self.call_json(rb, "POST /v1/tenants").await
    }

    /// `GET /v1/tenants`.
    pub async fn list_tenants(&self) -> Result<TenantList> {
        self.call_json(self.request(Method::GET, &["v1", "tenants"]), "GET /v1/tenants").await
    }

    /// `GET /v1/tenants/{tenant}`, by name or id.
    pub async fn get_tenant(&self, tenant: &str) -> Result<TenantInfo> {
        let rb = self.request(Method::GET, &["v1", "tenants", tenant]);
        self.call_json(rb, "GET /v1/tenants/{tenant}").await
    }

    /// `PATCH /v1/tenants/{tenant}`: changes plan, e-mail or overrides.
    pub async fn update_tenant(&self, tenant: &str, req: &UpdateTenantRequest) -> Result<TenantInfo> {
        let rb = self.request(Method::PATCH, &["v1", "tenants", tenant]).json(req);
        self.call_json(rb, "PATCH /v1/tenants/{tenant}").await
    }

    /// `POST /v1/tenants/{tenant}/suspend`: the tenant's keys stop working.
    pub async fn suspend_tenant(&self, tenant: &str) -> Result<TenantInfo> {
        let rb = self.request(Method::POST, &["v1", "tenants", tenant, "suspend"]);
        self.call_json(rb, "POST /v1/tenants/{tenant}/suspend").await
    }

    /// `POST /v1/tenants/{tenant}/resume`.
    pub async fn resume_tenant(&self, tenant: &str) -> Result<TenantInfo> {
        let rb = self.request(Method::POST, &["v1", "tenants", tenant, "resume"]);
        self.call_json(rb, "POST /v1/tenants/{tenant}/resume").await
    }

    /// `POST /v1/keys`: creates an API key; the answer is the only time the
    /// secret is shown.
    pub async fn create_key(&self, req: &CreateKeyRequest) -> Result<CreatedKey> {
        let rb = self.request(Method::POST, &["v1", "keys"]).json(req);
        self.call_json(rb, "POST /v1/keys").await
    }

    /// `GET /v1/keys[?tenant=…]`: the keys the caller may see (never secrets).
    pub async fn list_keys(&self, tenant: Option<&str>) -> Result<KeyList> {
        let query = present(&[("tenant", tenant)]);
        let rb = self.request(Method::GET, &["v1", "keys"]).query(&query);
        self.call_json(rb, "GET /v1/keys").await
    }

    /// `DELETE /v1/keys/{id}`: revokes a key; returns its final record.
    pub async fn revoke_key(&self, id: &str) -> Result<KeyInfo> {
        let rb = self.request(Method::DELETE, &["v1", "keys", id]);
        self.call_json(rb, "DELETE /v1/keys/{id}").await
    }

    /// `GET /v1/usage?…`: usage totals, grouped.
    pub async fn usage(&self, query: &UsageQuery) -> Result<UsageReport> {
        let rb = self.request(Method::GET, &["v1", "usage"]).query(&query.pairs());
        self.call_json(rb, "GET /v1/usage").await
    }

    /// `GET /v1/usage?…&format=csv`: the same report as CSV.
    pub async fn usage_csv(&self, query: &UsageQuery) -> Result<String> {
        let mut pairs = query.pairs();
        pairs.push(("format", "csv"));
        self.call_text(self.request(Method::GET, &["v1", "usage"]).query(&pairs), CSV).await
    }

    /// `GET /v1/usage/export?…`: one CSV row per execution.
    pub async fn usage_export(&self, from: Option<&str>, to: Option<&str>, tenant: Option<&str>) -> Result<String> {
        let query = present(&[("from", from), ("to", to), ("tenant", tenant)]);
        self.call_text(self.request(Method::GET, &["v1", "usage", "export"]).query(&query), CSV).await
    }

    /// `GET /v1/quotas[?tenant=…]`: each quota's use in the current period.
    pub async fn quotas(&self, tenant: Option<&str>) -> Result<QuotaList> {
        let query = present(&[("tenant", tenant)]);
        self.call_json(self.request(Method::GET, &["v1", "quotas"]).query(&query), "GET /v1/quotas").await
    }

    /// `GET /v1/audit[?limit=…]`: the newest entries of the admin audit log.
    pub async fn audit(&self, limit: Option<u32>) -> Result<AuditList> {
        let limit = limit.map(|n| n.to_string());
        let query = present(&[("limit", limit.as_deref())]);
        self.call_json(self.request(Method::GET, &["v1", "audit"]).query(&query), "GET /v1/audit").await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use superserver_wire::Role;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::ClientError;

    /// A server on loopback that answers one request with `status` and a
    /// body, plus extra header lines; yields the request it got as text.
    async fn one_answer(
        status: &str,
        extra: &str,
        ctype: &str,
        body: &str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
            body.len()
        );
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = sock.read(&mut buf).await.expect("read");
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
                        .map_or(0, |v| v.trim().parse::<usize>().expect("length"));
                    if req.len() >= end + 4 + len || n == 0 {
                        break;
                    }
                }
                assert!(n > 0, "client closed early");
            }
            sock.write_all(answer.as_bytes()).await.expect("answer");
            sock.shutdown().await.expect("close");
            String::from_utf8_lossy(&req).into_owned()
        });
        (url, task)
    }

    const TENANT: &str = r#"{"id":"tn_1","name":"a/b","plan":"pro","limits":{"executions_per_month":1000,
        "cpu_seconds_per_month":"unlimited","gb_seconds_per_month":500,"max_memory_mb":512,
        "concurrent_sandboxes":4,"max_timeout_seconds":600,"persistent_sandboxes":true,"max_ttl_seconds":86400,
        "network":false,"dashboard":true,"requests_per_second":10.0,"request_burst":20,"priority":1},
        "suspended":true,"created_at_ms":5}"#;

    fn keyed(url: &str) -> Client {
        Client::new(url).expect("valid URL").with_api_key("ssk_secret123")
    }

    #[tokio::test]
    async fn tenant_calls_escape_the_name_and_send_the_key() {
        let (url, server) = one_answer("200 OK", "", "application/json", TENANT).await;
        let t = keyed(&url).suspend_tenant("a/b").await.expect("suspended");
        assert!(t.suspended);
        let sent = server.await.expect("server");
        assert!(sent.starts_with("POST /v1/tenants/a%2Fb/suspend HTTP/1.1\r\n"), "{sent}");
        assert!(sent.to_ascii_lowercase().contains("authorization: bearer ssk_secret123\r\n"), "{sent}");

        let (url, server) = one_answer("200 OK", "", "application/json", TENANT).await;
        let req = UpdateTenantRequest { plan: Some("pro".into()), ..Default::default() };
        keyed(&url).update_tenant("a/b", &req).await.expect("updated");
        let sent = server.await.expect("server");
        assert!(sent.starts_with("PATCH /v1/tenants/a%2Fb HTTP/1.1\r\n"), "{sent}");
        assert!(sent.ends_with("\r\n\r\n{\"plan\":\"pro\"}"), "{sent}");
    }

    #[tokio::test]
    async fn created_key_and_listing_query() {
        let body = r#"{"key":"ssk_new","id":"key_1","prefix":"ssk_ne","tenant_id":"tn_1","tenant":"acme",
            "role":"owner","created_at_ms":1}"#;
        let (url, server) = one_answer("201 Created", "", "application/json", body).await;
        let req = CreateKeyRequest {
            tenant: Some("acme".into()),
            role: Some(Role::Owner),
            expires_at_ms: Some(99),
            ..Default::default()
        };
        let created = keyed(&url).create_key(&req).await.expect("created");
        assert_eq!((created.key.as_str(), created.info.role), ("ssk_new", Role::Owner));
        let sent = server.await.expect("server");
        assert!(sent.starts_with("POST /v1/keys HTTP/1.1\r\n"), "{sent}");
        assert!(sent.ends_with(r#"{"tenant":"acme","role":"owner","expires_at_ms":99}"#), "{sent}");

        let (url, server) = one_answer("200 OK", "", "application/json", r#"{"keys":[]}"#).await;
        keyed(&url).list_keys(Some("acme corp&x")).await.expect("listed");
        let sent = server.await.expect("server");
        assert!(sent.starts_with("GET /v1/keys?tenant=acme+corp%26x HTTP/1.1\r\n"), "{sent}");

        let (url, server) = one_answer("200 OK", "", "application/json", r#"{"keys":[]}"#).await;
        Client::new(&url).expect("url").list_keys(None).await.expect("listed");
        let sent = server.await.expect("server");
        assert!(sent.starts_with("GET /v1/keys HTTP/1.1\r\n"), "{sent}");
        assert!(!sent.to_ascii_lowercase().contains("authorization"), "{sent}");
    }

    #[tokio::test]
    async fn usage_queries_pass_values_through() {
        let csv = "day,tenant,executions\n2026-11-01,acme,3\n";
        let (url, server) = one_answer("200 OK", "", "text/csv", csv).await;
        let q = UsageQuery { from: Some("2026-11-01".into()), group_by: Some("day".into()), ..Default::default() };
        assert_eq!(keyed(&url).usage_csv(&q).await.expect("csv"), csv);
        let sent = server.await.expect("server");
        assert!(sent.starts_with("GET /v1/usage?from=2026-11-01&group_by=day&format=csv HTTP/1.1\r\n"), "{sent}");
        assert!(sent.to_ascii_lowercase().contains("accept: text/csv\r\n"), "{sent}");

        let (url, server) = one_answer("200 OK", "", "text/csv", "id\n").await;
        keyed(&url).usage_export(Some("1700000000000"), None, Some("acme")).await.expect("export");
        let sent = server.await.expect("server");
        assert!(sent.starts_with("GET /v1/usage/export?from=1700000000000&tenant=acme HTTP/1.1\r\n"), "{sent}");

        let (url, server) = one_answer("200 OK", "", "application/json", r#"{"entries":[]}"#).await;
        keyed(&url).audit(Some(5)).await.expect("audit");
        let sent = server.await.expect("server");
        assert!(sent.starts_with("GET /v1/audit?limit=5 HTTP/1.1\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn rate_limit_wait_comes_from_the_header() {
        let body = r#"{"error":{"code":"rate_limited","message":"too many requests for this key"}}"#;
        let (url, _server) = one_answer("429 Too Many Requests", "retry-after: 7\r\n", "application/json", body).await;
        let err = keyed(&url).whoami().await.expect_err("limited");
        assert!(
            matches!(err, ClientError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn the_key_stays_out_of_debug_and_errors() {
        let (url, _server) = one_answer(
            "401 Unauthorized",
            "",
            "application/json",
            r#"{"error":{"code":"unauthorized","message":"unknown API key"}}"#,
        )
        .await;
        let client = keyed(&url);
        assert!(!format!("{client:?}").contains("ssk_secret123"), "{client:?}");
        let err = client.plans().await.expect_err("refused");
        assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
        assert!(!format!("{err:?} {err}").contains("ssk_secret123"));

        // Refused before any request is made.
        let client = Client::new("http://127.0.0.1:9").expect("url").with_api_key("ssk_bad\r\nx: y");
        let err = client.whoami().await.expect_err("invalid key");
        assert!(matches!(err, ClientError::InvalidApiKey { .. }), "{err:?}");
        assert!(!format!("{err:?} {err} {client:?}").contains("ssk_bad"));
    }
}
