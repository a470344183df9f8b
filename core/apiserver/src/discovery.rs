//! API discovery: `/api`, `/apis`, group-version resource lists, aggregated discovery
//! (`apidiscovery.k8s.io/v2`) and `/version`.

use serde_json::{Value, json};

use crate::resources::{Registry, Resource};

/// The Kubernetes version Bosun's API corresponds to.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";

/// Media type of aggregated discovery responses.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Subresources served for a resource: (name, kind, group, version, verbs).
fn subresources(
    r: &Resource,
) -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
)> {
    let info = r.info();
    let mut subs = Vec::new();
    if info.has_status {
        subs.push((
            "status",
            info.kind,
            info.group,
            info.version,
            &["get", "patch", "update"][..],
        ));
    }
    if info.has_scale {
        subs.push((
            "scale",
            "Scale",
            "autoscaling",
            "v1",
            &["get", "patch", "update"][..],
        ));
    }
    if info.plural == "pods" {
        subs.push(("binding", "Binding", "", "v1", &["create"][..]));
        subs.push(("eviction", "Eviction", "policy", "v1", &["create"][..]));
    }
    subs
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0-bosun.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// `GET /api` (legacy form).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(group: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `GET /apis` (legacy form).
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry.groups().into_iter().map(group_json).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`, or `None` for an unknown group.
pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    registry.groups().contains(&group).then(|| {
        let mut g = group_json(group);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

/// `GET /api/v1` or `/apis/<group>/<version>`, or `None` when nothing is served there.
pub fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in registry.in_group_version(group, version) {
        let info = r.info();
        resources.push(json!({
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": VERBS,
            "shortNames": info.short_names,
            "categories": info.categories,
        }));
        for (sub, kind, g, v, verbs) in subresources(r) {
            let mut entry = json!({
                "name": format!("{}/{sub}", info.plural),
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if g != info.group {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn aggregated_group(registry: &Registry, group: &str) -> Value {
    let resources: Vec<Value> = registry
        .in_group_version(group, "v1")
        .map(|r| {
            let info = r.info();
            let subs: Vec<Value> = subresources(r)
                .into_iter()
                .map(|(sub, kind, g, v, verbs)| {
                    json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": verbs})
                })
                .collect();
            let mut entry = json!({
                "resource": info.plural,
                "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
                "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": info.singular,
                "verbs": VERBS,
            });
            if !info.short_names.is_empty() {
                entry["shortNames"] = json!(info.short_names);
            }
            if !info.categories.is_empty() {
                entry["categories"] = json!(info.categories);
            }
            if !subs.is_empty() {
                entry["subresources"] = json!(subs);
            }
            entry
        })
        .collect();
    json!({
        "metadata": {"name": group, "creationTimestamp": null},
        "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}],
    })
}

/// Aggregated discovery for `/api` (`legacy`) or `/apis`.
pub fn aggregated(registry: &Registry, legacy: bool) -> Value {
    let items: Vec<Value> = if legacy {
        vec![aggregated_group(registry, "")]
    } else {
        registry
            .groups()
            .into_iter()
            .map(|g| aggregated_group(registry, g))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Whether an Accept header asks for aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p = part.replace(' ', "");
        p.contains("as=APIGroupDiscoveryList")
            && p.contains("g=apidiscovery.k8s.io")
            && p.contains("v=v2")
            && !p.contains("v=v2beta1")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_cover_every_resource_and_subresource() {
        let reg = Registry::builtin();
        let core = api_resource_list(&reg, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for want in [
            "pods",
            "pods/status",
            "pods/binding",
            "nodes",
            "services",
            "namespaces",
            "configmaps",
            "events",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let apps = api_resource_list(&reg, "apps", "v1").unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
        assert!(api_resource_list(&reg, "nope", "v1").is_none());
    }

    #[test]
    fn aggregated_discovery_lists_groups() {
        let reg = Registry::builtin();
        let apis = aggregated(&reg, false);
        let groups: Vec<&str> = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(groups, reg.groups());
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }
}
