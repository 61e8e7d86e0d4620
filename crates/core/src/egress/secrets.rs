//! Custody secrets: stored sealed under the installation's secrets key,
//! listed without their values, and handed to governed sandboxes as
//! placeholders that the egress proxy swaps for the values on the way to
//! each secret's hosts.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use sha2::{Digest, Sha256};
use superserver_egress::custody::{new_placeholder, BoundSecret, Custody};
use superserver_store::{SecretRecord, SecretUse};
use superserver_wire::{PutSecretRequest, Role, SecretInfo, SecretUser};

use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::Caller;

/// Shortest and longest value accepted.
const MIN_VALUE: usize = 8;
const MAX_VALUE: usize = 64 * 1024;
/// Most secrets a sandbox may hold.
const MAX_PER_SANDBOX: usize = 32;
/// Headers a secret may not be put in (framing and routing are the proxy's).
const RESERVED_HEADERS: &[&str] =
    &["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "expect"];

/// The installation's secrets key: values are sealed with it
/// (ChaCha20-Poly1305, a fresh nonce each time, bound to tenant and name).
pub(crate) struct Keyring {
    key: LessSafeKey,
    /// First bytes of the key's SHA-256 (hex): which key sealed a value.
    pub id: String,
}

impl Keyring {
    /// Reads the key file, or creates it (mode 0600) on a first start. A key
    /// file that others may read is refused.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let err =
            |what: &str, e: std::io::Error| CoreError::Config(format!("secrets key {}: {what}: {e}", path.display()));
        let bytes = match std::fs::read_to_string(path) {
            Ok(text) => {
                let mode = std::fs::metadata(path).map_err(|e| err("cannot inspect", e))?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(CoreError::Config(format!(
                        "secrets key {} is readable by others (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    )));
                }
                hex::decode(text.trim())
                    .ok()
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| CoreError::Config(format!("secrets key {}: not 64 hex digits", path.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                getrandom::getrandom(&mut key)
                    .map_err(|e| CoreError::Config(format!("no randomness for the secrets key: {e}")))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err("cannot create its directory", e))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| err("cannot create", e))?;
                writeln!(f, "{}", hex::encode(&key)).map_err(|e| err("cannot write", e))?;
                f.sync_all().map_err(|e| err("cannot sync", e))?;
                key
            }
            Err(e) => return Err(err("cannot read", e)),
        };
        let id = hex::encode(&Sha256::digest(&bytes)[..8]);
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| CoreError::Config("secrets key: unusable".into()))?;
        Ok(Self { key: LessSafeKey::new(key), id })
    }

    fn aad(tenant_id: &str, name: &str) -> Vec<u8> {
        format!("superserver-secret\0{tenant_id}\0{name}").into_bytes()
    }

    /// nonce || ciphertext || tag.
    pub fn seal(&self, tenant_id: &str, name: &str, value: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| CoreError::Internal(format!("no randomness: {e}")))?;
        let mut data = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(tenant_id, name)),
                &mut data,
            )
            .map_err(|_| CoreError::Internal("cannot seal a secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    pub fn open(&self, tenant_id: &str, name: &str, sealed: &[u8]) -> Result<String> {
        let broken = || {
            CoreError::Internal(format!(
                "secret {name} cannot be opened with this installation's secrets key (was the key file replaced?)"
            ))
        };
        if sealed.len() < NONCE_LEN {
            return Err(broken());
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| broken())?;
        let mut data = data.to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(Self::aad(tenant_id, name)), &mut data).map_err(|_| broken())?;
        String::from_utf8(plain.to_vec()).map_err(|_| broken())
    }
}

/// Whether `name` can be a secret's name (and an environment variable).
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a `PUT` body; returns it with hosts in lower case.
fn validate(name: &str, mut req: PutSecretRequest) -> Result<PutSecretRequest> {
    let bad = |why: String| Err(CoreError::InvalidRequest(format!("secret {name}: {why}")));
    if !valid_name(name) {
        return Err(CoreError::InvalidRequest(format!(
            "secret name `{name}`: use letters, digits and `_`, starting with a letter or `_` (at most 64)"
        )));
    }
    if req.value.len() < MIN_VALUE || req.value.len() > MAX_VALUE {
        return bad(format!("value must be {MIN_VALUE} bytes to {} KiB long", MAX_VALUE / 1024));
    }
    if req.value.contains('\0') {
        return bad("value must not contain NUL".into());
    }
    if req.hosts.is_empty() {
        return bad("hosts: give at least one host the value may be sent to".into());
    }
    for h in &mut req.hosts {
        *h = h.trim().to_ascii_lowercase();
        let plain = h.strip_prefix("*.").unwrap_or(h);
        if !superserver_egress::policy::is_dns_name(plain) || plain.parse::<std::net::Ipv4Addr>().is_ok() {
            return bad(format!("hosts: `{h}` is not a host name or `*.suffix`"));
        }
    }
    req.hosts.sort();
    req.hosts.dedup();
    if let Some(h) = &req.header {
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return bad(format!("header `{h}` is not a header name"));
        }
        if RESERVED_HEADERS.contains(&h.to_ascii_lowercase().as_str()) {
            return bad(format!("header `{h}` is the proxy's to set"));
        }
        if req.value.contains(['\r', '\n']) {
            return bad("a value sent in a header must not contain line breaks".into());
        }
    }
    if let Some(t) = &req.template {
        if req.header.is_none() {
            return bad("template needs header".into());
        }
        if !t.contains("{value}") {
            return bad("template must contain `{value}` where the secret goes".into());
        }
        if t.contains(['\r', '\n', '\0']) {
            return bad("template must not contain line breaks".into());
        }
    }
    Ok(req)
}

fn user(u: SecretUse) -> SecretUser {
    SecretUser { sandbox_id: u.sandbox_id, at_ms: u.at_ms, state: u.state, kind: u.kind }
}

/// A sandbox's custody secrets: the environment it sees and what the proxy
/// needs.
pub(crate) struct Held {
    pub names: Vec<String>,
    /// `NAME` → placeholder.
    pub env: Vec<(String, String)>,
    pub custody: Arc<Custody>,
}

impl Service {
    fn secret_info(&self, rec: SecretRecord, used_by: Vec<SecretUse>) -> SecretInfo {
        let tenant = self.inner.auth.tenant(&rec.tenant_id).map_or_else(|| rec.tenant_id.clone(), |t| t.name.clone());
        SecretInfo {
            name: rec.name,
            tenant,
            hosts: rec.hosts,
            header: rec.header,
            template: rec.template,
            created_at_ms: rec.created_at_ms,
            updated_at_ms: rec.updated_at_ms,
            updated_by: rec.updated_by,
            used_by: used_by.into_iter().map(user).collect(),
        }
    }

    /// `PUT /v1/secrets/{name}`: creates or replaces one of the caller's
    /// tenant's secrets. Returns it (without its value) and whether it is new.
    pub async fn put_secret(&self, caller: &Caller, name: &str, req: PutSecretRequest) -> Result<(SecretInfo, bool)> {
        caller.require(Role::Owner, "setting secrets")?;
        let req = validate(name, req)?;
        let tenant_id = caller.tenant_id().to_string();
        let keyring = &self.inner.egress.keyring;
        let now = now_ms();
        let who = caller.key_id.clone().map_or_else(|| caller.tenant.name.clone(), |k| format!("key {k}"));
        let rec = SecretRecord {
            tenant_id: tenant_id.clone(),
            name: name.to_string(),
            sealed: keyring.seal(&tenant_id, name, &req.value)?,
            key_id: keyring.id.clone(),
            hosts: req.hosts.clone(),
            header: req.header.clone(),
            template: req.template.clone(),
            created_at_ms: now,
            updated_at_ms: now,
            updated_by: Some(who),
        };
        let details = serde_json::json!({ "hosts": req.hosts, "header": req.header, "template": req.template });
        let audit = crate::admin::audit_record(Some(caller), "secret.set", name, details);
        let created = self.inner.store.put_secret(rec, audit).await?;
        self.inner.egress.forget_tenant_secrets(&tenant_id);
        let stored = self
            .inner
            .store
            .get_secret(&tenant_id, name)
            .await?
            .ok_or_else(|| CoreError::Internal(format!("secret {name} vanished after it was stored")))?;
        let uses = self.inner.store.secret_uses(&tenant_id, name, 20).await?;
        Ok((self.secret_info(stored, uses), created))
    }

    /// `GET /v1/secrets`: the caller's tenant's (every tenant's for an admin).
    pub async fn list_secrets(&self, caller: &Caller) -> Result<Vec<SecretInfo>> {
        caller.require(Role::Viewer, "listing secrets")?;
        let tenant = (!caller.is_admin()).then(|| caller.tenant_id().to_string());
        let mut out = Vec::new();
        for rec in self.inner.store.list_secrets(tenant).await? {
            let uses = self.inner.store.secret_uses(&rec.tenant_id, &rec.name, 20).await?;
            out.push(self.secret_info(rec, uses));
        }
        Ok(out)
    }

    /// `GET /v1/secrets/{name}`.
    pub async fn get_secret(&self, caller: &Caller, name: &str) -> Result<SecretInfo> {
        caller.require(Role::Viewer, "reading secrets")?;
        let tenant_id = caller.tenant_id();
        let rec = self.inner.store.get_secret(tenant_id, name).await?.ok_or_else(|| not_found(name))?;
        let uses = self.inner.store.secret_uses(tenant_id, name, 100).await?;
        Ok(self.secret_info(rec, uses))
    }

    /// `DELETE /v1/secrets/{name}`. Sandboxes holding it keep it until they end.
    pub async fn delete_secret(&self, caller: &Caller, name: &str) -> Result<()> {
        caller.require(Role::Owner, "removing secrets")?;
        let tenant_id = caller.tenant_id().to_string();
        let audit = crate::admin::audit_record(Some(caller), "secret.delete", name, serde_json::json!({}));
        if !self.inner.store.delete_secret(&tenant_id, name, audit).await? {
            return Err(not_found(name));
        }
        self.inner.egress.forget_tenant_secrets(&tenant_id);
        Ok(())
    }

    /// The custody secrets a request asks for, checked against its network
    /// and environment.
    pub(crate) async fn requested_secrets(
        &self,
        caller: &Caller,
        policy: &Option<superserver_egress::Policy>,
        names: &[String],
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<Held>> {
        if names.is_empty() {
            return Ok(None);
        }
        if policy.is_none() {
            return Err(CoreError::InvalidRequest(
                "secrets need network.mode = \"policy\": a sandbox without network has nowhere to send them".into(),
            ));
        }
        if let Some(n) = names.iter().find(|n| env.contains_key(*n)) {
            return Err(CoreError::InvalidRequest(format!(
                "env {n} and secret {n}: a secret takes its own name in the environment"
            )));
        }
        self.hold_secrets(caller.tenant_id(), names).await
    }

    /// The custody secrets a new sandbox asked for, with fresh placeholders.
    pub(crate) async fn hold_secrets(&self, tenant_id: &str, names: &[String]) -> Result<Option<Held>> {
        if names.is_empty() {
            return Ok(None);
        }
        if names.len() > MAX_PER_SANDBOX {
            return Err(CoreError::InvalidRequest(format!("secrets: at most {MAX_PER_SANDBOX} per sandbox")));
        }
        let (mut names_held, mut env, mut bound) = (Vec::new(), Vec::new(), Vec::new());
        for name in names {
            if names_held.contains(name) {
                continue;
            }
            let rec = self.inner.store.get_secret(tenant_id, name).await?.ok_or_else(|| {
                CoreError::InvalidRequest(format!(
                    "secrets: no secret named {name}; `superserver secrets ls` lists them"
                ))
            })?;
            let value = self.inner.egress.keyring.open(tenant_id, name, &rec.sealed)?;
            let placeholder = new_placeholder(name)?;
            names_held.push(name.clone());
            env.push((name.clone(), placeholder.clone()));
            bound.push(BoundSecret {
                name: name.clone(),
                value,
                placeholder,
                hosts: rec.hosts,
                header: rec.header,
                template: rec.template,
            });
        }
        Ok(Some(Held { names: names_held, env, custody: Arc::new(Custody::new(bound)?) }))
    }
}

fn not_found(name: &str) -> CoreError {
    CoreError::SecretNotFound(name.to_string())
}

impl From<superserver_egress::EgressError> for CoreError {
    fn from(e: superserver_egress::EgressError) -> Self {
        CoreError::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_tenant_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let k = Keyring::load_or_create(&path).unwrap();
        let sealed = k.seal("tn_a", "TOKEN", "value-123456").unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"value-123456"));
        assert_eq!(k.open("tn_a", "TOKEN", &sealed).unwrap(), "value-123456");
        assert!(k.open("tn_b", "TOKEN", &sealed).is_err());
        assert!(k.open("tn_a", "OTHER", &sealed).is_err());
        assert_ne!(sealed, k.seal("tn_a", "TOKEN", "value-123456").unwrap(), "a fresh nonce each time");
        let again = Keyring::load_or_create(&path).unwrap();
        assert_eq!(
            (again.id.as_str(), again.open("tn_a", "TOKEN", &sealed).unwrap().as_str()),
            (k.id.as_str(), "value-123456")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Keyring::load_or_create(&path).err().unwrap().to_string();
        assert!(e.contains("readable by others"), "{e}");
    }

    #[test]
    fn bad_secrets_are_named() {
        let ok = PutSecretRequest {
            value: "0123456789".into(),
            hosts: vec!["API.example.com".into(), "*.example.org".into()],
            header: Some("Authorization".into()),
            template: Some("Bearer {value}".into()),
        };
        let v = validate("API_TOKEN", ok.clone()).unwrap();
        assert_eq!(v.hosts, ["*.example.org", "api.example.com"]);
        let cases: Vec<(&str, PutSecretRequest, &str)> = vec![
            ("9BAD", ok.clone(), "secret name"),
            ("A", PutSecretRequest { value: "short".into(), ..ok.clone() }, "value must be"),
            ("A", PutSecretRequest { hosts: vec![], ..ok.clone() }, "at least one host"),
            ("A", PutSecretRequest { hosts: vec!["https://x.example.com".into()], ..ok.clone() }, "not a host name"),
            ("A", PutSecretRequest { hosts: vec!["10.0.0.1".into()], ..ok.clone() }, "not a host name"),
            ("A", PutSecretRequest { header: Some("Host".into()), ..ok.clone() }, "proxy's to set"),
            ("A", PutSecretRequest { header: Some("X Y".into()), ..ok.clone() }, "not a header name"),
            ("A", PutSecretRequest { template: Some("Bearer".into()), ..ok.clone() }, "{value}"),
            ("A", PutSecretRequest { header: None, ..ok.clone() }, "template needs header"),
            ("A", PutSecretRequest { value: "line\nbreak-here".into(), ..ok.clone() }, "line breaks"),
        ];
        for (name, req, want) in cases {
            let e = validate(name, req).err().unwrap().to_string();
            assert!(e.contains(want), "{e} should say {want}");
        }
    }
}
