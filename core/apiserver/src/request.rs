//! Parsing a request path into what it addresses (upstream's `RequestInfoFactory`).

/// What a resource request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// A request path, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/api`, `/apis`, `/api/v1`, `/apis/<group>`, `/apis/<group>/<version>`.
    Discovery {
        group: Option<String>,
        version: Option<String>,
        legacy: bool,
    },
    Resource(ResourcePath),
    Version,
    Health(String),
    Metrics,
    OpenApiV2,
    OpenApiV3(Option<String>),
    NotFound,
}

/// Subresources of a namespace that do not start a namespaced resource path.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Classifies `path` (without the query string).
pub fn route(path: &str) -> Route {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", rest @ ..] => Route::Health(rest.join("/")),
        ["metrics"] => Route::Metrics,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3(None),
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(Some(rest.join("/"))),
        ["api"] => Route::Discovery {
            group: None,
            version: None,
            legacy: true,
        },
        ["api", v] => Route::Discovery {
            group: None,
            version: Some(v.to_string()),
            legacy: true,
        },
        ["api", v, rest @ ..] => resource_route("", v, rest),
        ["apis"] => Route::Discovery {
            group: None,
            version: None,
            legacy: false,
        },
        ["apis", g] => Route::Discovery {
            group: Some(g.to_string()),
            version: None,
            legacy: false,
        },
        ["apis", g, v] => Route::Discovery {
            group: Some(g.to_string()),
            version: Some(v.to_string()),
            legacy: false,
        },
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, parts: &[&str]) -> Route {
    let mut namespace = None;
    let mut rest = parts;
    if parts[0] == "namespaces" && parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
        namespace = Some(parts[1].to_string());
        rest = &parts[2..];
    }
    if rest.len() > 3 {
        return Route::NotFound;
    }
    Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        resource: rest[0].to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
    })
}

/// Percent-decodes a query component (`+` is a space, as in forms).
pub fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a query string into decoded key-value pairs, in order.
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode_component(k), decode_component(v)),
            None => (decode_component(kv), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        namespace: Option<&str>,
        resource: &str,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Route {
        Route::Resource(ResourcePath {
            group: group.into(),
            version: "v1".into(),
            namespace: namespace.map(Into::into),
            resource: resource.into(),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
        })
    }

    #[test]
    fn paths_classify_like_upstream() {
        let cases = [
            ("/api/v1/pods", res("", None, "pods", None, None)),
            (
                "/api/v1/namespaces/default/pods",
                res("", Some("default"), "pods", None, None),
            ),
            (
                "/api/v1/namespaces/default/pods/p",
                res("", Some("default"), "pods", Some("p"), None),
            ),
            (
                "/api/v1/namespaces/default/pods/p/binding",
                res("", Some("default"), "pods", Some("p"), Some("binding")),
            ),
            (
                "/api/v1/namespaces",
                res("", None, "namespaces", None, None),
            ),
            (
                "/api/v1/namespaces/ns1",
                res("", None, "namespaces", Some("ns1"), None),
            ),
            (
                "/api/v1/namespaces/ns1/status",
                res("", None, "namespaces", Some("ns1"), Some("status")),
            ),
            (
                "/api/v1/namespaces/ns1/finalize",
                res("", None, "namespaces", Some("ns1"), Some("finalize")),
            ),
            (
                "/api/v1/nodes/n1/status",
                res("", None, "nodes", Some("n1"), Some("status")),
            ),
            (
                "/apis/apps/v1/namespaces/d/deployments/x/scale",
                res("apps", Some("d"), "deployments", Some("x"), Some("scale")),
            ),
            (
                "/apis/apps/v1",
                Route::Discovery {
                    group: Some("apps".into()),
                    version: Some("v1".into()),
                    legacy: false,
                },
            ),
            (
                "/api",
                Route::Discovery {
                    group: None,
                    version: None,
                    legacy: true,
                },
            ),
            ("/version", Route::Version),
            ("/readyz", Route::Health(String::new())),
            ("/api/v1/namespaces/a/pods/p/x/y", Route::NotFound),
            ("/nope", Route::NotFound),
        ];
        for (path, want) in cases {
            assert_eq!(route(path), want, "{path}");
        }
    }

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&x"));
        assert_eq!(q[0], ("labelSelector".into(), "app=web,tier in (a)".into()));
        assert_eq!(q[1], ("watch".into(), "1".into()));
        assert_eq!(q[2], ("x".into(), String::new()));
        assert_eq!(decode_component("100%"), "100%");
        assert_eq!(decode_component("%zz"), "%zz");
    }
}
