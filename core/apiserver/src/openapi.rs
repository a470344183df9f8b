//! OpenAPI v3 as far as clients need it: the `/openapi/v3` index and one document per
//! group-version listing each resource's operations with their
//! `x-kubernetes-group-version-kind`, `x-kubernetes-action` and query parameters.
//!
//! kubectl reads these to learn that the server validates fields itself
//! (`fieldValidation` on PATCH), and then sends `fieldValidation=Strict` instead of
//! validating against schemas client-side. Schemas are not published: without a
//! strategic-merge request body, `kubectl apply` computes patches from its built-in types,
//! which carry upstream's exact merge keys.

use serde_json::{Map, Value, json};

use crate::discovery::{KUBE_MAJOR, KUBE_MINOR};
use crate::resources::{Registry, Resource};

fn hash() -> String {
    // Stable for a given build: clients cache documents by this hash.
    format!(
        "bosun{}{}{}",
        KUBE_MAJOR,
        KUBE_MINOR,
        env!("CARGO_PKG_VERSION").replace('.', "")
    )
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(&str, &str)> = vec![("", "v1")];
    gvs.extend(registry.groups().into_iter().map(|g| (g, "v1")));
    for (g, v) in gvs {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash())}),
        );
    }
    json!({"paths": paths})
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(r: &Resource, action: &str, params: &[&str]) -> Value {
    let info = r.info();
    let parameters: Vec<Value> = params.iter().map(|p| query_param(p)).collect();
    json!({
        "operationId": format!("{action}{}", info.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
    })
}

const WRITE_PARAMS: [&str; 3] = ["dryRun", "fieldManager", "fieldValidation"];

/// `GET /openapi/v3/<gv path>`, or `None` for an unknown group-version.
pub fn document(registry: &Registry, path: &str) -> Option<Value> {
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let mut paths = Map::new();
    for r in registry.in_group_version(group, version) {
        let info = r.info();
        let base = format!("/{}", gv_path(group, version));
        let collection = if info.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", info.plural)
        } else {
            format!("{base}/{}", info.plural)
        };
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(r, "list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"]),
                "post": operation(r, "post", &WRITE_PARAMS),
                "delete": operation(r, "deletecollection", &["labelSelector", "fieldSelector"]),
            }),
        );
        let item = json!({
            "get": operation(r, "get", &[]),
            "put": operation(r, "put", &WRITE_PARAMS),
            "patch": operation(r, "patch", &["dryRun", "fieldManager", "fieldValidation", "force"]),
            "delete": operation(r, "delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
        });
        paths.insert(format!("{collection}/{{name}}"), item);
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_points_at_every_group_version_document() {
        let reg = Registry::builtin();
        let idx = index(&reg);
        for (p, entry) in idx["paths"].as_object().unwrap() {
            let url = entry["serverRelativeURL"].as_str().unwrap();
            assert!(url.starts_with(&format!("/openapi/v3/{p}?hash=")));
            let doc = document(&reg, p).unwrap_or_else(|| panic!("no document for {p}"));
            assert!(!doc["paths"].as_object().unwrap().is_empty());
        }
        assert!(document(&reg, "apis/nope/v1").is_none());
    }

    #[test]
    fn patch_operations_declare_field_validation() {
        let reg = Registry::builtin();
        let doc = document(&reg, "apis/apps/v1").unwrap();
        let item =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            item["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let names: Vec<&str> = item["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"fieldValidation"));
        assert!(
            item.get("requestBody").is_none(),
            "no body: kubectl computes patches from its own types"
        );
    }
}
