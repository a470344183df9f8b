//! Field management cases from upstream's behaviour (structured-merge-diff's merge tests
//! and kube-apiserver's `TestApply*` integration tests), on Deployments and ConfigMaps.

use serde_json::{Value, json};

use super::*;
use crate::patch::schema_for;

const NOW: &str = "2026-01-01T00:00:00Z";
const LATER: &str = "2026-01-01T00:01:00Z";

fn info<'a>(manager: &'a str, reset: &'a Set, now: &'a str) -> WriteInfo<'a> {
    WriteInfo {
        schema: schema_for("apps/v1", "Deployment"),
        api_version: "apps/v1",
        manager,
        subresource: "",
        reset,
        now,
    }
}

fn deployment(image: &str, replicas: Option<i64>) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image,
                    "ports": [{"containerPort": 80}]}]}
            }
        }
    });
    if let Some(r) = replicas {
        d["spec"]["replicas"] = json!(r);
    }
    d
}

fn fields_of(managed: &Managed, manager: &str) -> Set {
    managed
        .entries()
        .iter()
        .find(|e| e.id.manager == manager)
        .unwrap_or_else(|| panic!("no entry for {manager}: {managed:?}"))
        .fields
        .set()
}

fn reset() -> Set {
    reset_fields(true, "")
}

/// A deployment created by "creator" and then labelled (`team: a`) by "labeler": the
/// object and its stored `managedFields`.
fn created_then_labelled(r: &Set) -> (Value, Value) {
    let created = deployment("nginx:1.26", Some(2));
    let mut managed = Managed::default();
    update(&json!({}), &created, &mut managed, &info("creator", r, NOW));
    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["team"] = json!("a");
    update(&created, &labelled, &mut managed, &info("labeler", r, NOW));
    (labelled, managed.encode().unwrap())
}

/// A manager writing its own fields keeps its entry as stored JSON: nothing is decoded,
/// and rewriting a field it owns changes only the entry's time.
#[test]
fn rewriting_owned_fields_keeps_the_stored_entry() {
    let r = reset();
    let (labelled, stored) = created_then_labelled(&r);

    let mut relabelled = labelled.clone();
    relabelled["metadata"]["labels"]["team"] = json!("b");
    let mut lazy = Managed::decode_stored_owned(stored.clone()).unwrap();
    update(
        &labelled,
        &relabelled,
        &mut lazy,
        &info("labeler", &r, LATER),
    );
    assert!(
        lazy.entries()
            .iter()
            .all(|e| matches!(e.fields.0, FieldsRepr::Stored(_))),
        "no entry was decoded"
    );
    let mut expected = stored.clone();
    for e in expected.as_array_mut().unwrap() {
        if e["manager"] == "labeler" {
            e["time"] = json!(LATER);
        }
    }
    // The labeler's entry is now the latest, so it sorts last.
    expected
        .as_array_mut()
        .unwrap()
        .sort_by_key(|e| e["time"] != json!(NOW));
    assert_eq!(lazy.into_encoded(), Some(expected));

    // A new field goes into the stored JSON, which still need not be decoded.
    let mut more = relabelled.clone();
    more["metadata"]["labels"]["tier"] = json!("web");
    let mut lazy = Managed::decode_stored_owned(stored.clone()).unwrap();
    let mut eager = Managed::decode(&stored).unwrap();
    update(&relabelled, &more, &mut lazy, &info("labeler", &r, LATER));
    update(&relabelled, &more, &mut eager, &info("labeler", &r, LATER));
    let labeler = lazy
        .entries()
        .iter()
        .find(|e| e.id.manager == "labeler")
        .unwrap();
    assert!(matches!(labeler.fields.0, FieldsRepr::Stored(_)));
    assert_eq!(lazy.encode(), eager.encode());
    assert!(labeler.fields.has(&[
        PathElement::Field("metadata".into()),
        PathElement::Field("labels".into()),
        PathElement::Field("tier".into()),
    ]));
}

#[test]
fn applied_field_set_has_upstream_shape() {
    let r = reset();
    let (obj, managed) = apply(
        &json!({}),
        &deployment("nginx:1.26", Some(2)),
        &Managed::default(),
        &info("kubectl", &r, NOW),
        false,
    )
    .unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    let encoded = managed.encode().unwrap();
    assert_eq!(
        encoded,
        json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": NOW,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            }
        }])
    );
    assert_eq!(Managed::decode(&encoded).unwrap(), managed);
    assert_eq!(Managed::decode_stored(&encoded).unwrap(), managed);
}

#[test]
fn update_owns_what_it_added_with_the_item_markers() {
    let r = reset();
    let mut managed = Managed::default();
    let created = deployment("nginx:1.26", Some(2));
    update(
        &json!({}),
        &created,
        &mut managed,
        &info("kubectl-create", &r, NOW),
    );
    let fields = fields_of(&managed, "kubectl-create").to_fields_v1();
    // Maps and items an update adds are members themselves (`.`), unlike an apply's.
    assert_eq!(
        fields["f:metadata"]["f:labels"],
        json!({".": {}, "f:app": {}})
    );
    let containers = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert_eq!(containers["k:{\"name\":\"nginx\"}"]["."], json!({}));
    assert!(fields.get("f:apiVersion").is_none(), "{fields}");
    assert!(fields["f:metadata"].get("f:name").is_none(), "{fields}");

    // A later update takes only the fields it changes, and keeps its own time.
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(5);
    update(
        &created,
        &scaled,
        &mut managed,
        &info("kubectl-scale", &r, LATER),
    );
    let scaler = fields_of(&managed, "kubectl-scale");
    assert_eq!(scaler.paths().len(), 1);
    assert!(!fields_of(&managed, "kubectl-create").has(&[
        PathElement::Field("spec".into()),
        PathElement::Field("replicas".into())
    ]));
    // Status is reset on the main resource: nobody owns it through it.
    let mut with_status = scaled.clone();
    with_status["status"] = json!({"replicas": 5});
    let before = managed.clone();
    update(&scaled, &with_status, &mut managed, &info("x", &r, LATER));
    assert_eq!(managed, before);
}

#[test]
fn reapply_changes_values_and_removes_what_is_no_longer_applied() {
    let r = reset();
    let w = info("kubectl", &r, NOW);
    let (live, managed) = apply(
        &json!({}),
        &deployment("nginx:1.26", Some(2)),
        &Managed::default(),
        &w,
        false,
    )
    .unwrap();
    // Someone else adds a label.
    let mut labelled = live.clone();
    labelled["metadata"]["labels"]["team"] = json!("a");
    let mut managed2 = managed.clone();
    update(
        &live,
        &labelled,
        &mut managed2,
        &info("kubectl-label", &r, NOW),
    );

    // Re-apply without replicas and with a new image: replicas goes (nobody else owns
    // it), the other manager's label stays.
    let (new, managed3) = apply(
        &labelled,
        &deployment("nginx:1.27", None),
        &managed2,
        &w,
        false,
    )
    .unwrap();
    assert_eq!(
        new["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert!(new["spec"].get("replicas").is_none(), "{new}");
    assert_eq!(
        new["metadata"]["labels"],
        json!({"app": "web", "team": "a"})
    );
    assert!(fields_of(&managed3, "kubectl-label").has(&[
        PathElement::Field("metadata".into()),
        PathElement::Field("labels".into()),
        PathElement::Field("team".into())
    ]));
}

#[test]
fn a_field_owned_by_another_manager_survives_its_applier_dropping_it() {
    let r = reset();
    let w = info("kubectl", &r, NOW);
    let (live, managed) = apply(
        &json!({}),
        &deployment("nginx:1.26", Some(2)),
        &Managed::default(),
        &w,
        false,
    )
    .unwrap();
    // A second applier applies the same replicas: no conflict, shared ownership.
    let replicas_only = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let (live2, managed2) = apply(
        &live,
        &replicas_only,
        &managed,
        &info("hpa", &r, NOW),
        false,
    )
    .unwrap();
    assert_eq!(live2, live);
    let (new, _) = apply(
        &live2,
        &deployment("nginx:1.26", None),
        &managed2,
        &w,
        false,
    )
    .unwrap();
    assert_eq!(new["spec"]["replicas"], 2, "{new}");
}

#[test]
fn conflicts_name_the_owner_and_force_takes_over() {
    let r = reset();
    let mut managed = Managed::default();
    let created = deployment("nginx:1.26", Some(2));
    update(
        &json!({}),
        &created,
        &mut managed,
        &info("kubectl-client-side-apply", &r, NOW),
    );
    let w = info("other", &r, LATER);
    let changed = deployment("nginx:1.27", Some(3));
    let err = apply(&created, &changed, &managed, &w, false).unwrap_err();
    let ApplyError::Conflicts(conflicts) = &err else {
        panic!("{err:?}")
    };
    let paths: Vec<String> = conflicts.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(
        paths,
        [
            ".spec.replicas",
            r#".spec.template.spec.containers[name="nginx"].image"#
        ]
    );
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let one = apply(
        &created,
        &deployment("nginx:1.26", Some(3)),
        &managed,
        &w,
        false,
    )
    .unwrap_err();
    assert_eq!(
        one.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );

    let (new, forced) = apply(&created, &changed, &managed, &w, true).unwrap();
    assert_eq!(new["spec"]["replicas"], 3);
    let replicas = [
        PathElement::Field("spec".into()),
        PathElement::Field("replicas".into()),
    ];
    assert!(fields_of(&forced, "other").has(&replicas));
    assert!(!fields_of(&forced, "kubectl-client-side-apply").has(&replicas));
}

#[test]
fn kubectl_takes_over_its_client_side_configuration_without_conflicts() {
    let r = reset();
    let mut managed = Managed::default();
    let mut created = deployment("nginx:1.26", Some(2));
    let last = deployment("nginx:1.26", Some(2)).to_string();
    created["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: last});
    update(
        &json!({}),
        &created,
        &mut managed,
        &info("kubectl-client-side-apply", &r, NOW),
    );
    let changed = deployment("nginx:1.27", Some(2));
    // Another manager name gets the conflict; kubectl migrates.
    assert!(apply(&created, &changed, &managed, &info("other", &r, NOW), false).is_err());
    let (new, _) = apply(
        &created,
        &changed,
        &managed,
        &info("kubectl", &r, NOW),
        false,
    )
    .unwrap();
    assert_eq!(
        new["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let synced: Value = serde_json::from_str(
        new["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(synced, changed);
}

#[test]
fn lists_merge_by_key_in_upstream_order_and_sets_as_sets() {
    let schema = schema_for("v1", "Pod");
    let w = WriteInfo {
        schema,
        api_version: "v1",
        manager: "m",
        subresource: "",
        reset: &Set::new(),
        now: NOW,
    };
    let live = json!({"metadata": {"finalizers": ["a", "b"]},
        "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
                 "tolerations": [{"key": "k1"}]}});
    let config = json!({"metadata": {"finalizers": ["c", "a"]},
        "spec": {"containers": [{"name": "c", "image": "z"}, {"name": "a", "image": "x2"}],
                 "tolerations": [{"key": "k2"}]}});
    let (merged, _) = apply(&live, &config, &Managed::default(), &w, false).unwrap();
    assert_eq!(
        merged,
        json!({"metadata": {"finalizers": ["c", "a", "b"]},
            "spec": {"containers": [{"name": "c", "image": "z"}, {"name": "a", "image": "x2"},
                                    {"name": "b", "image": "y"}],
                     "tolerations": [{"key": "k2"}]}})
    );
}

#[test]
fn configurations_that_do_not_fit_the_list_types_are_refused() {
    let w = WriteInfo {
        schema: schema_for("v1", "Pod"),
        api_version: "v1",
        manager: "m",
        subresource: "",
        reset: &Set::new(),
        now: NOW,
    };
    for (config, want) in [
        (
            json!({"spec": {"containers": [{"image": "x"}]}}),
            "omits key field \"name\"",
        ),
        (
            json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}),
            "duplicate entries for key [name=\"a\"]",
        ),
    ] {
        let err = apply(&json!({}), &config, &Managed::default(), &w, false).unwrap_err();
        assert!(
            matches!(err, ApplyError::Shape(_)) && err.to_string().contains(want),
            "{err}"
        );
    }
}

#[test]
fn managed_fields_decoding() {
    assert!(Managed::is_reset(&json!([{}])));
    assert!(!Managed::is_reset(&json!([])));
    assert!(!Managed::is_reset(&json!([{"manager": "a"}])));
    for bad in [
        json!({}),
        json!([{"manager": "a", "operation": "Bogus", "fieldsType": "FieldsV1"}]),
        json!([{"manager": "a", "operation": "Apply", "fieldsType": "FieldsV2"}]),
        json!([{"manager": "a", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"x": {}}}]),
    ] {
        assert!(Managed::decode(&bad).is_err(), "{bad}");
    }
    assert_eq!(
        manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(
        manager_from_user_agent(&"x".repeat(300)).len(),
        MAX_FIELD_MANAGER_LEN
    );
}

#[test]
fn update_entries_are_capped_into_ancient_changes() {
    let r = reset();
    let mut managed = Managed::default();
    let mut live = deployment("nginx:1.26", Some(1));
    for i in 0..(MAX_UPDATE_MANAGERS + 3) {
        let mut new = live.clone();
        new["metadata"]["labels"][format!("l{i}")] = json!("x");
        let now = format!("2026-01-01T00:00:{i:02}Z");
        update(
            &live,
            &new,
            &mut managed,
            &info(&format!("m{i:02}"), &r, &now),
        );
        live = new;
    }
    let updates: Vec<&str> = managed
        .entries()
        .iter()
        .map(|e| e.id.manager.as_str())
        .collect();
    assert_eq!(updates.len(), MAX_UPDATE_MANAGERS, "{updates:?}");
    assert!(updates.contains(&ANCIENT_CHANGES_MANAGER), "{updates:?}");
    assert!(
        !updates.contains(&"m00") && updates.contains(&"m12"),
        "{updates:?}"
    );
    // The bucket owns what the folded managers owned.
    let bucket = fields_of(&managed, ANCIENT_CHANGES_MANAGER);
    let label = |i: usize| {
        [
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into()),
            PathElement::Field(format!("l{i}")),
        ]
    };
    assert!(bucket.has(&label(0)) && bucket.has(&label(3)));
    assert!(!bucket.has(&label(4)));
}

/// Stored entries stay undecoded until a write touches them; the outcome is the same as
/// with every entry decoded.
#[test]
fn stored_entries_decode_lazily_with_the_same_outcome() {
    let r = reset();
    let (labelled, stored) = created_then_labelled(&r);
    for (what, new) in [
        ("touches nobody's fields", {
            let mut n = labelled.clone();
            n["metadata"]["annotations"] = json!({"a": "b"});
            n
        }),
        ("takes the labeler's field", {
            let mut n = labelled.clone();
            n["metadata"]["labels"]["team"] = json!("b");
            n
        }),
        (
            "changes the creator's image",
            deployment("nginx:1.27", Some(2)),
        ),
    ] {
        for writer in ["writer", "labeler", "creator"] {
            let mut eager = Managed::decode(&stored).unwrap();
            let mut lazy = Managed::decode_stored(&stored).unwrap();
            let mut owned = Managed::decode_stored_owned(stored.clone()).unwrap();
            update(&labelled, &new, &mut eager, &info(writer, &r, LATER));
            update(&labelled, &new, &mut lazy, &info(writer, &r, LATER));
            update(&labelled, &new, &mut owned, &info(writer, &r, LATER));
            assert_eq!(eager.encode(), lazy.encode(), "{what}, by {writer}");
            assert_eq!(eager.encode(), owned.into_encoded(), "{what}, by {writer}");
        }
        let config = deployment("nginx:1.28", None);
        let a = apply(
            &labelled,
            &config,
            &Managed::decode(&stored).unwrap(),
            &info("kubectl", &r, LATER),
            true,
        );
        let b = apply(
            &labelled,
            &config,
            &Managed::decode_stored(&stored).unwrap(),
            &info("kubectl", &r, LATER),
            true,
        );
        assert_eq!(
            a.map(|(o, m)| (o, m.encode())),
            b.map(|(o, m)| (o, m.encode())),
            "{what}"
        );
    }
}

/// A create owns every field it sets, in upstream's `fieldsV1` shape, whatever the shape
/// of the values: keyed lists (a defaulted key, a duplicate item whose first copy wins),
/// sets, atomic lists, empty maps and nulls; reset fields (`status`), the stripped
/// metadata and any `managedFields` sent along stay out.
#[test]
fn a_create_owns_every_field_it_sets() {
    let r = reset();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"},
            "finalizers": ["x/y", "x/z"],
            "managedFields": [{"manager": "m", "operation": "Update", "fieldsV1": {}}]},
        "spec": {
            "containers": [
                {"name": "c", "image": "i", "args": ["-v", "-q"],
                 "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
                 "resources": {}},
                {"name": "c", "image": "duplicate"}
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "nodeSelector": null
        },
        "status": {"phase": "Pending"}
    });
    let mut managed = Managed::default();
    let w = WriteInfo {
        schema: schema_for("v1", "Pod"),
        api_version: "v1",
        ..info("creator", &r, NOW)
    };
    update(&json!({}), &pod, &mut managed, &w);
    let port = |key: &str, fields: Value| (format!("k:{key}"), fields);
    let (udp, udp_fields) = port(
        r#"{"containerPort":53,"protocol":"UDP"}"#,
        json!({".": {}, "f:containerPort": {}, "f:protocol": {}}),
    );
    let (tcp, tcp_fields) = port(
        r#"{"containerPort":80,"protocol":"TCP"}"#,
        json!({".": {}, "f:containerPort": {}}),
    );
    let expected = json!({
        "f:metadata": {
            "f:finalizers": {".": {}, "v:\"x/y\"": {}, "v:\"x/z\"": {}},
            "f:labels": {".": {}, "f:app": {}}
        },
        "f:spec": {".": {},
            "f:containers": {".": {},
                "k:{\"name\":\"c\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                    "f:ports": {".": {}, udp: udp_fields, tcp: tcp_fields},
                    "f:resources": {}}},
            "f:nodeSelector": {},
            "f:volumes": {".": {},
                "k:{\"name\":\"v\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}}}
    });
    assert_eq!(fields_of(&managed, "creator").to_fields_v1(), expected);
}
