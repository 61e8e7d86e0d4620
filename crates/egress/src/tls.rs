//! TLS interception: a per-installation certificate authority whose
//! certificates governed sandboxes trust, leaf certificates minted for each
//! server name on first use, and the proxy's own verified TLS connections
//! to the real upstreams.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};

/// Leaf certificates kept; beyond this the cache starts over.
const LEAF_CACHE: usize = 1024;
const CA_CERT: &str = "egress-ca.pem";
const CA_KEY: &str = "egress-ca.key";

/// What can go wrong with interception.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The installation's interception authority.
pub struct Authority {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// One key for every leaf: minting is then a signature, not a key generation.
    leaf_key: KeyPair,
    leaf_signer: Arc<dyn rustls::sign::SigningKey>,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// The authority kept in `dir` (`egress-ca.pem`, `egress-ca.key`),
    /// created there on first use. A damaged file is an error naming it,
    /// never silently replaced: sandboxes and users may trust the old one.
    pub fn load_or_create(dir: &Path) -> Result<Arc<Self>, TlsError> {
        let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
        let file_err = |path: &Path, message: String| TlsError::File { path: path.to_path_buf(), message };
        let (ca_pem, key) = if key_path.exists() || cert_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path).map_err(|e| file_err(&key_path, e.to_string()))?;
            let ca_pem = std::fs::read_to_string(&cert_path).map_err(|e| file_err(&cert_path, e.to_string()))?;
            let key =
                KeyPair::from_pem(&key_pem).map_err(|e| file_err(&key_path, format!("not a private key: {e}")))?;
            (ca_pem, key)
        } else {
            let key = KeyPair::generate().map_err(|e| TlsError::Certificate(e.to_string()))?;
            let mut params = CertificateParams::new(Vec::new()).map_err(|e| TlsError::Certificate(e.to_string()))?;
            let serial: [u8; 8] = rand_bytes();
            params.distinguished_name.push(DnType::CommonName, "SuperServer egress CA");
            params.distinguished_name.push(DnType::OrganizationalUnitName, hex(&serial));
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(3650);
            let cert = params.self_signed(&key).map_err(|e| TlsError::Certificate(e.to_string()))?;
            write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
            (cert.pem(), key)
        };
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)
            .map_err(|e| file_err(&cert_path, format!("not a CA certificate: {e}")))?;
        let leaf_key = KeyPair::generate().map_err(|e| TlsError::Certificate(e.to_string()))?;
        let der =
            PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(|e| TlsError::Certificate(e.to_string()))?;
        let leaf_signer = provider().key_provider.load_private_key(der)?;
        Ok(Arc::new(Self { ca_pem, issuer, leaf_key, leaf_signer, leaves: Mutex::new(HashMap::new()) }))
    }

    /// The authority's certificate, PEM: what sandboxes trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes `system_bundle` (when readable) followed by the authority's
    /// certificate to `out`: the trust store of governed sandboxes.
    pub fn write_bundle(&self, system_bundle: &Path, out: &Path) -> Result<(), TlsError> {
        let mut bundle = std::fs::read_to_string(system_bundle).unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str(&self.ca_pem);
        write_atomic(out, bundle.as_bytes(), 0o644)
    }

    /// The certificate for `name`, minted on first use.
    pub fn leaf(&self, name: &str) -> Result<Arc<CertifiedKey>, TlsError> {
        if let Some(k) = self.leaves.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(k.clone());
        }
        let cert_err = |e: rcgen::Error| TlsError::Certificate(e.to_string());
        let mut params = CertificateParams::new(vec![name.to_string()]).map_err(cert_err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(30);
        let cert = params.signed_by(&self.leaf_key, &self.issuer).map_err(cert_err)?;
        let key = Arc::new(CertifiedKey::new(vec![cert.der().clone()], self.leaf_signer.clone()));
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        if leaves.len() >= LEAF_CACHE {
            leaves.clear();
        }
        leaves.insert(name.to_string(), key.clone());
        Ok(key)
    }

    /// How many leaf certificates are cached.
    pub fn cached_leaves(&self) -> usize {
        self.leaves.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The server side of intercepted connections: a certificate for the
    /// client's server name, HTTP/1.1 only.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(BySni(self.clone())));
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[derive(Debug)]
struct BySni(Arc<Authority>);

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        match self.0.leaf(name) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(name, error = %e, "cannot mint an interception certificate");
                None
            }
        }
    }
}

/// The client side: the proxy's own TLS to real upstreams, verified
/// against the host's trust store plus an optional extra CA file.
#[derive(Clone, Debug)]
pub struct Upstream {
    config: Arc<ClientConfig>,
}

impl Upstream {
    pub fn new(extra_ca_file: Option<&Path>) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = extra_ca_file {
            let file_err = |message: String| TlsError::File { path: path.to_path_buf(), message };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| file_err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| file_err(format!("not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(file_err("holds no certificate".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| file_err(format!("a certificate is not usable: {e}")))?;
            }
        }
        let mut cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { config: Arc::new(cfg) })
    }

    /// TLS to `name` over `io`, the certificate verified for `name`.
    pub async fn connect<IO: AsyncRead + AsyncWrite + Unpin>(
        &self,
        name: &str,
        io: IO,
    ) -> io::Result<tokio_rustls::client::TlsStream<IO>> {
        let server = ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {e}")))?;
        tokio_rustls::TlsConnector::from(self.config.clone()).connect(server, io).await
    }
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: io::Error| TlsError::File { path: path.to_path_buf(), message: e.to_string() };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(err)?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The serial only tells installations apart; any source of variety will do.
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut x = seed as u64 ^ u64::from(std::process::id()).rotate_left(32);
    for v in &mut b {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *v = x as u8;
    }
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_is_kept_and_mints_cached_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authority::load_or_create(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(CA_KEY)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = Authority::load_or_create(dir.path()).unwrap();
        assert_eq!(a.ca_pem(), again.ca_pem(), "the same authority after a restart");
        let one = a.leaf("api.example.test").unwrap();
        let two = a.leaf("api.example.test").unwrap();
        assert!(Arc::ptr_eq(&one, &two) && a.cached_leaves() == 1);
        std::fs::write(dir.path().join(CA_KEY), "garbage").unwrap();
        let err = Authority::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains(CA_KEY), "{err}");
    }
}
