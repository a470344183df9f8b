//! Client configuration: from a kubeconfig file, from the in-cluster service
//! account, or built in code with [`Config::new`].

use crate::error::ConfigError;
use base64::Engine;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default bound on one object's response body.
pub const DEFAULT_MAX_OBJECT_BYTES: usize = 16 << 20;
/// Default bound on one list page's response body.
pub const DEFAULT_MAX_LIST_BYTES: usize = 64 << 20;
/// Default bound on one watch event (one line of the watch stream).
pub const DEFAULT_MAX_WATCH_LINE_BYTES: usize = 16 << 20;
/// Default timeout of a non-watch request (headers and body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default timeout for TCP connect plus TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const _: () = assert!(DEFAULT_MAX_OBJECT_BYTES <= DEFAULT_MAX_LIST_BYTES);

/// Everything a [`crate::Client`] needs to reach and authenticate to an API server.
#[derive(Clone, Debug)]
pub struct Config {
    /// `scheme://host:port` plus an optional path prefix, without a trailing slash.
    pub base_url: String,
    /// Sent as `Authorization: Bearer ...`.
    pub bearer_token: Option<String>,
    /// PEM bundle of the CAs to trust for https. Only these are trusted: there is
    /// no fallback to system roots.
    pub root_ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and key for mutual TLS.
    pub client_cert_pem: Option<Vec<u8>>,
    /// PEM private key for [`Config::client_cert_pem`].
    pub client_key_pem: Option<Vec<u8>>,
    /// Skip server certificate verification (kubeconfig `insecure-skip-tls-verify`).
    pub insecure_skip_tls_verify: bool,
    /// Name to verify the server certificate against, instead of the URL's host.
    pub tls_server_name: Option<String>,
    /// Namespace of the kubeconfig context, `default` otherwise.
    pub default_namespace: String,
    /// Timeout of every non-watch request. Watches bound only their headers by it.
    pub request_timeout: Duration,
    /// Timeout of TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on a single object's response body.
    pub max_object_bytes: usize,
    /// Bound on a list page's response body.
    pub max_list_bytes: usize,
    /// Bound on a single watch line.
    pub max_watch_line_bytes: usize,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Speak HTTP/2 from the first byte on `http://` URLs (h2c with prior knowledge),
    /// as a server started with plain HTTP for benchmarks accepts. Plain HTTP is
    /// HTTP/1.1 otherwise; https negotiates the protocol by ALPN either way.
    pub http2_prior_knowledge: bool,
}

impl Config {
    /// A configuration for `base_url` (`http://...` or `https://...`) with no
    /// credentials and default limits.
    pub fn new(base_url: &str) -> Result<Config, ConfigError> {
        Ok(Config {
            base_url: normalize_url(base_url)?,
            bearer_token: None,
            root_ca_pem: None,
            client_cert_pem: None,
            client_key_pem: None,
            insecure_skip_tls_verify: false,
            tls_server_name: None,
            default_namespace: "default".to_string(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_list_bytes: DEFAULT_MAX_LIST_BYTES,
            max_watch_line_bytes: DEFAULT_MAX_WATCH_LINE_BYTES,
            user_agent: concat!("bosun-client/", env!("CARGO_PKG_VERSION")).to_string(),
            http2_prior_knowledge: false,
        })
    }

    /// Sets the bearer token.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Config {
        self.bearer_token = Some(token.into());
        self
    }

    /// Sets the CA bundle (PEM) that is the only trust root for https.
    pub fn with_root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Config {
        self.root_ca_pem = Some(pem.into());
        self
    }

    /// Speaks HTTP/2 without TLS on `http://` URLs (see [`Config::http2_prior_knowledge`]).
    pub fn with_http2_prior_knowledge(mut self) -> Config {
        self.http2_prior_knowledge = true;
        self
    }

    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Config {
        self.request_timeout = timeout;
        self
    }

    /// Loads `$KUBECONFIG` (its first entry) or `~/.kube/config`, current context.
    pub fn from_default_kubeconfig() -> Result<Config, ConfigError> {
        let path = match std::env::var_os("KUBECONFIG") {
            Some(v) if !v.is_empty() => std::env::split_paths(&v)
                .next()
                .ok_or(ConfigError::Env("KUBECONFIG"))?,
            _ => {
                let home = std::env::var_os("HOME").ok_or(ConfigError::Env("HOME"))?;
                PathBuf::from(home).join(".kube").join("config")
            }
        };
        Config::from_kubeconfig(&path)
    }

    /// Loads a kubeconfig file, using its current context. Relative file paths in
    /// it are resolved against the file's directory, as client-go does.
    pub fn from_kubeconfig(path: &Path) -> Result<Config, ConfigError> {
        let text = read_file(path)?;
        let text = String::from_utf8(text)
            .map_err(|e| ConfigError::Kubeconfig(format!("not UTF-8: {e}")))?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Config::from_kubeconfig_str(&text, None, base_dir)
    }

    /// Parses kubeconfig YAML. `context` overrides `current-context`; relative
    /// paths are resolved against `base_dir`.
    pub fn from_kubeconfig_str(
        yaml: &str,
        context: Option<&str>,
        base_dir: &Path,
    ) -> Result<Config, ConfigError> {
        let kc: Kubeconfig =
            serde_yaml::from_str(yaml).map_err(|e| ConfigError::Kubeconfig(e.to_string()))?;
        let ctx_name = context
            .map(str::to_string)
            .or(kc.current_context.clone())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ConfigError::Kubeconfig("no current-context".into()))?;
        let ctx = find(&kc.contexts, &ctx_name, "context", |c| &c.name)?
            .context
            .clone();
        let cluster = &find(&kc.clusters, &ctx.cluster, "cluster", |c| &c.name)?.cluster;
        let mut config = Config::new(&cluster.server)?;
        config.insecure_skip_tls_verify = cluster.insecure_skip_tls_verify;
        config.tls_server_name = cluster.tls_server_name.clone();
        config.root_ca_pem = data_or_file(
            cluster.certificate_authority_data.as_deref(),
            cluster.certificate_authority.as_deref(),
            "certificate-authority-data",
            base_dir,
        )?;
        if let Some(ns) = ctx.namespace.filter(|n| !n.is_empty()) {
            config.default_namespace = ns;
        }
        if let Some(user_name) = ctx.user.as_deref().filter(|u| !u.is_empty()) {
            let user = &find(&kc.users, user_name, "user", |u| &u.name)?.user;
            config.apply_user(user, base_dir)?;
        }
        Ok(config)
    }

    fn apply_user(&mut self, user: &AuthInfo, base_dir: &Path) -> Result<(), ConfigError> {
        self.bearer_token = match (&user.token, &user.token_file) {
            (Some(t), _) if !t.is_empty() => Some(t.clone()),
            (_, Some(f)) if !f.is_empty() => {
                let raw = read_file(&resolve(base_dir, f))?;
                Some(String::from_utf8_lossy(&raw).trim().to_string())
            }
            _ => None,
        };
        self.client_cert_pem = data_or_file(
            user.client_certificate_data.as_deref(),
            user.client_certificate.as_deref(),
            "client-certificate-data",
            base_dir,
        )?;
        self.client_key_pem = data_or_file(
            user.client_key_data.as_deref(),
            user.client_key.as_deref(),
            "client-key-data",
            base_dir,
        )?;
        Ok(())
    }

    /// The in-cluster configuration: the service account token and CA under
    /// `/var/run/secrets/kubernetes.io/serviceaccount` and
    /// `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`.
    pub fn incluster() -> Result<Config, ConfigError> {
        const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .map_err(|_| ConfigError::Env("KUBERNETES_SERVICE_HOST"))?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT")
            .map_err(|_| ConfigError::Env("KUBERNETES_SERVICE_PORT"))?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let dir = Path::new(SA_DIR);
        let token = read_file(&dir.join("token"))?;
        let mut config = Config::new(&format!("https://{host}:{port}"))?
            .with_bearer_token(String::from_utf8_lossy(&token).trim())
            .with_root_ca_pem(read_file(&dir.join("ca.crt"))?);
        if let Ok(ns) = std::fs::read_to_string(dir.join("namespace")) {
            config.default_namespace = ns.trim().to_string();
        }
        Ok(config)
    }

    /// True when the base URL is https.
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

fn normalize_url(url: &str) -> Result<String, ConfigError> {
    let bad = |reason: &str| ConfigError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("scheme must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if uri.query().is_some() {
        return Err(bad("must not have a query"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn resolve(base_dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

fn data_or_file(
    data: Option<&str>,
    file: Option<&str>,
    field: &'static str,
    base_dir: &Path,
) -> Result<Option<Vec<u8>>, ConfigError> {
    if let Some(d) = data.filter(|d| !d.is_empty()) {
        let cleaned: String = d.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(cleaned)
            .map_err(|source| ConfigError::Base64 { field, source })?;
        return Ok(Some(bytes));
    }
    match file.filter(|f| !f.is_empty()) {
        Some(f) => Ok(Some(read_file(&resolve(base_dir, f))?)),
        None => Ok(None),
    }
}

fn find<'a, T>(
    items: &'a [T],
    name: &str,
    kind: &'static str,
    name_of: impl Fn(&T) -> &str,
) -> Result<&'a T, ConfigError> {
    items
        .iter()
        .find(|n| name_of(n) == name)
        .ok_or_else(|| ConfigError::Missing {
            kind,
            name: name.to_string(),
        })
}

/// The subset of kubeconfig (`clientcmd/api/v1`) the client understands.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    current_context: Option<String>,
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: AuthInfo,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    #[serde(default)]
    certificate_authority: Option<String>,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    #[serde(default)]
    tls_server_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct AuthInfo {
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "tokenFile")]
    token_file: Option<String>,
    #[serde(default)]
    client_certificate: Option<String>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key: Option<String>,
    #[serde(default)]
    client_key_data: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
    }

    fn load(context: Option<&str>) -> Result<Config, ConfigError> {
        let dir = testdata();
        let yaml = std::fs::read_to_string(dir.join("kubeconfig.yaml")).unwrap();
        Config::from_kubeconfig_str(&yaml, context, &dir)
    }

    /// Data-driven over the contexts of `testdata/kubeconfig.yaml`:
    /// (context, server, token, CA present, insecure, TLS name, namespace).
    #[test]
    fn kubeconfig_contexts() {
        let ca = std::fs::read(testdata().join("ca.pem")).unwrap();
        type Row = (
            Option<&'static str>,
            &'static str,
            Option<&'static str>,
            bool,
            bool,
            Option<&'static str>,
            &'static str,
        );
        let cases: &[Row] = &[
            (
                None,
                "https://127.0.0.1:6443",
                Some("secret-token"),
                true,
                false,
                None,
                "default",
            ),
            (
                Some("file-ca"),
                "https://[::1]:6443",
                Some("token-from-file"),
                true,
                false,
                Some("kubernetes.default.svc"),
                "kube-system",
            ),
            (
                Some("insecure"),
                "https://10.0.0.1:443",
                None,
                false,
                true,
                None,
                "default",
            ),
            (
                Some("plain"),
                "http://localhost:8080",
                None,
                false,
                false,
                None,
                "default",
            ),
        ];
        for &(ctx, server, token, has_ca, insecure, tls_name, ns) in cases {
            let c = load(ctx).unwrap_or_else(|e| panic!("context {ctx:?}: {e}"));
            assert_eq!(c.base_url, server, "{ctx:?}");
            assert_eq!(c.bearer_token.as_deref(), token, "{ctx:?}");
            assert_eq!(c.root_ca_pem.is_some(), has_ca, "{ctx:?}");
            if has_ca {
                assert_eq!(
                    c.root_ca_pem.as_deref(),
                    Some(&ca[..]),
                    "{ctx:?}: data and file decode alike"
                );
            }
            assert_eq!(c.insecure_skip_tls_verify, insecure, "{ctx:?}");
            assert_eq!(c.tls_server_name.as_deref(), tls_name, "{ctx:?}");
            assert_eq!(c.default_namespace, ns, "{ctx:?}");
        }
    }

    #[test]
    fn kubeconfig_errors_are_typed() {
        assert!(matches!(
            load(Some("nope")),
            Err(ConfigError::Missing {
                kind: "context",
                ..
            })
        ));
        assert!(matches!(
            load(Some("dangling")),
            Err(ConfigError::Missing {
                kind: "cluster",
                ..
            })
        ));
        let dir = testdata();
        let bad_b64 = "current-context: c\nclusters: [{name: k, cluster: {server: 'https://h', certificate-authority-data: '!!'}}]\ncontexts: [{name: c, context: {cluster: k}}]\n";
        assert!(matches!(
            Config::from_kubeconfig_str(bad_b64, None, &dir),
            Err(ConfigError::Base64 { .. })
        ));
        assert!(matches!(
            Config::from_kubeconfig_str("clusters: 3", None, &dir),
            Err(ConfigError::Kubeconfig(_))
        ));
        assert!(matches!(
            Config::new("ftp://h"),
            Err(ConfigError::Url { .. })
        ));
        assert!(matches!(
            Config::new("not a url"),
            Err(ConfigError::Url { .. })
        ));
        assert!(Config::from_kubeconfig(&dir.join("kubeconfig.yaml")).is_ok());
    }

    #[test]
    fn https_without_ca_is_refused_at_client_build() {
        let c = Config::new("https://127.0.0.1:6443").unwrap();
        assert!(matches!(
            crate::Client::new(c),
            Err(crate::Error::Config(ConfigError::Tls(_)))
        ));
        // The fixture CA is not a real certificate: refused when building TLS.
        let c = load(None).unwrap();
        assert!(crate::Client::new(c).is_err());
    }
}
