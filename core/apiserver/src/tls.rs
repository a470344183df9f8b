//! Serving credentials: a CA and serving certificate generated on first start and kept
//! in the data directory, the bearer token, and the kubeconfig that ties them together.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// File names inside the data directory.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
pub const SERVING_CERT_FILE: &str = "apiserver.crt";
pub const SERVING_KEY_FILE: &str = "apiserver.key";
pub const TOKEN_FILE: &str = "token";
pub const KUBECONFIG_FILE: &str = "kubeconfig";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("loading {what}: {message}")]
    Load { what: &'static str, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// PEM-encoded CA certificate, serving certificate and serving key.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

fn read(dir: &Path, name: &str) -> Result<Option<String>, TlsError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Writes a file atomically (temporary file, fsync, rename) with owner-only permissions.
pub fn write_private(dir: &Path, name: &str, contents: &str) -> Result<(), TlsError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Loads the CA and serving certificate from `dir`, generating them when absent. The
/// serving certificate names `localhost`, the `kubernetes` service names, 127.0.0.1 and
/// every address in `ips`.
pub fn load_or_create(dir: &Path, ips: &[IpAddr]) -> Result<TlsMaterial, TlsError> {
    let existing = (
        read(dir, CA_CERT_FILE)?,
        read(dir, SERVING_CERT_FILE)?,
        read(dir, SERVING_KEY_FILE)?,
    );
    if let (Some(ca_pem), Some(cert_pem), Some(key_pem)) = existing {
        return Ok(TlsMaterial {
            ca_pem,
            cert_pem,
            key_pem,
        });
    }
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bosun-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let names = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ];
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "bosun-apiserver");
    let mut all_ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    all_ips.extend(ips.iter().copied().filter(|ip| !ip.is_unspecified()));
    all_ips.dedup();
    for ip in all_ips {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let material = TlsMaterial {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    write_private(dir, CA_KEY_FILE, &ca_key.serialize_pem())?;
    write_private(dir, CA_CERT_FILE, &material.ca_pem)?;
    write_private(dir, SERVING_KEY_FILE, &material.key_pem)?;
    write_private(dir, SERVING_CERT_FILE, &material.cert_pem)?;
    Ok(material)
}

/// A rustls server configuration offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(m: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Load {
            what: "serving certificate",
            message: e.to_string(),
        })?;
    let key = PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes()).map_err(|e| TlsError::Load {
        what: "serving key",
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Loads the bearer token from `dir`, generating a random one when absent.
pub fn load_or_create_token(dir: &Path) -> Result<String, TlsError> {
    if let Some(t) = read(dir, TOKEN_FILE)? {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let bytes: [u8; 24] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    write_private(dir, TOKEN_FILE, &token)?;
    Ok(token)
}

/// A kubeconfig for `server` (an https or http URL).
pub fn kubeconfig(server: &str, ca_pem: Option<&str>, token: Option<&str>) -> String {
    let mut cluster = format!("    server: {server}\n");
    if let Some(ca) = ca_pem {
        let data = base64::engine::general_purpose::STANDARD.encode(ca.as_bytes());
        cluster = format!("    certificate-authority-data: {data}\n{cluster}");
    }
    let user = match token {
        Some(t) => format!("    token: {t}\n"),
        None => "    {}\n".to_string(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n{cluster}  name: bosun\ncontexts:\n- context:\n    cluster: bosun\n    user: admin\n  name: bosun\ncurrent-context: bosun\nusers:\n- name: admin\n  user:\n{user}preferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("bosun-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = load_or_create(&dir, &[]).unwrap();
        let again = load_or_create(&dir, &[]).unwrap();
        assert_eq!(first.ca_pem, again.ca_pem);
        assert_eq!(first.cert_pem, again.cert_pem);
        server_config(&first).unwrap();
        let t1 = load_or_create_token(&dir).unwrap();
        assert_eq!(t1, load_or_create_token(&dir).unwrap());
        assert!(t1.len() >= 32);
        let kc = kubeconfig("https://127.0.0.1:6443", Some(&first.ca_pem), Some(&t1));
        assert!(kc.contains("certificate-authority-data: "));
        assert!(kc.contains(&format!("token: {t1}")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
