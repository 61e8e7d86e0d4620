//! API key rows: revocation never leaves the store without a working admin key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use superserver_store::{AuditRecord, KeyRecord, Store, StoreError, ADMIN_TENANT_ID};

fn key(id: &str, role: &str, expires_at_ms: Option<i64>) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        tenant_id: ADMIN_TENANT_ID.into(),
        prefix: format!("ssk_{id:0>12}"),
        hash: [7; 32],
        role: role.into(),
        name: None,
        created_at_ms: 1,
        expires_at_ms,
        last_used_at_ms: None,
        revoked_at_ms: None,
        created_by: None,
    }
}

fn audit() -> AuditRecord {
    AuditRecord {
        id: 0,
        at_ms: 1,
        actor_key_id: None,
        actor_tenant: None,
        remote_addr: None,
        action: "key.revoke".into(),
        target: String::new(),
        details_json: "{}".into(),
    }
}

#[tokio::test]
async fn two_concurrent_revocations_leave_one_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.insert_key(key("a", "admin", None), audit()).await.unwrap();
    store.insert_key(key("b", "admin", None), audit()).await.unwrap();
    // An expired admin key does not count as working.
    store.insert_key(key("c", "admin", Some(5)), audit()).await.unwrap();
    store.insert_key(key("m", "member", None), audit()).await.unwrap();
    let (ra, rb) = tokio::join!(store.revoke_key("a", 10, audit()), store.revoke_key("b", 10, audit()));
    let refused = [&ra, &rb].iter().filter(|r| matches!(r, Err(StoreError::LastAdminKey))).count();
    assert_eq!(refused, 1, "{ra:?} {rb:?}");
    let working =
        store.list_keys().await.unwrap().into_iter().filter(|k| k.role == "admin" && k.revoked_at_ms.is_none()).count();
    assert_eq!(working, 2, "one working admin key and the expired one");
    // Other keys, and keys already revoked, are unaffected.
    store.revoke_key("m", 10, audit()).await.unwrap();
    let again = if ra.is_ok() { "a" } else { "b" };
    assert_eq!(store.revoke_key(again, 20, audit()).await.unwrap().revoked_at_ms, Some(10));
    assert!(matches!(store.revoke_key("nope", 10, audit()).await, Err(StoreError::NotFound(_))));
}
