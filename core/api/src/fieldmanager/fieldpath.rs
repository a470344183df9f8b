//! Field paths and sets of them, with the `FieldsV1` wire form of `managedFields` (a port
//! of `sigs.k8s.io/structured-merge-diff/fieldpath`: `PathElement`, `Set`, `serialize.go`).
//!
//! A [`Set`] is a tree: each node has *members* (paths that end there) and *children*
//! (paths that continue). `FieldsV1` writes a member as `"<pe>": {}` and a child as
//! `"<pe>": {...}`, with `".": {}` inside when the element is a member as well.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path: a field of a map, an item of an associative list (by its keys), an
/// item of a set (by its value), or a position (lists without keys; only parsed).
#[derive(Clone, Debug, PartialEq)]
pub enum PathElement {
    /// `f:<name>`.
    Field(String),
    /// `k:{"name":"c"}`: the key fields of a list item, sorted by name.
    Key(Vec<(String, Value)>),
    /// `v:"x"`: an item of a list of scalars kept as a set.
    Value(Value),
    /// `i:3`.
    Index(usize),
}

impl PathElement {
    /// Upstream's order: fields, then keys, then values, then indexes.
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element.
    pub fn to_fields_key(&self) -> String {
        match self {
            PathElement::Field(name) => {
                let mut key = String::with_capacity(2 + name.len());
                key.push_str("f:");
                key.push_str(name);
                key
            }
            PathElement::Key(fields) => {
                let map: Map<String, Value> = fields.iter().cloned().collect();
                format!("k:{}", Value::Object(map))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key (anything but `.`).
    pub fn from_fields_key(key: &str) -> Result<PathElement, FieldsError> {
        let bad = || FieldsError(format!("invalid path element {key:?}"));
        let (prefix, rest) = key.split_at_checked(2).ok_or_else(bad)?;
        match prefix {
            "f:" => Ok(PathElement::Field(rest.to_owned())),
            "v:" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|_| bad()),
            "i:" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
            "k:" => match serde_json::from_str(rest) {
                Ok(Value::Object(map)) if !map.is_empty() => {
                    let mut fields: Vec<(String, Value)> = map.into_iter().collect();
                    fields.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(PathElement::Key(fields))
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl Eq for PathElement {}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Upstream's `value.Compare`: numbers, then strings, then booleans, then lists, maps and
/// null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = compare_values(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((ik, iv), (jk, jv)) in x.iter().zip(y) {
                let c = ik.cmp(jk).then_with(|| compare_values(iv, jv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl fmt::Display for PathElement {
    /// Upstream's `PathElement.String`: `.name`, `[k1="a",k2=80]`, `[="x"]`, `[3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={value}")?;
                }
                f.write_str("]")
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object's root.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// A `managedFields` entry's `fieldsV1` that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fieldsV1: {0}")]
pub struct FieldsError(pub String);

/// A set of paths, as a tree (upstream `fieldpath.Set`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    /// Adds `path`. The empty path names nothing and is ignored, as upstream.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.child_mut(first).insert(rest),
        }
    }

    /// The set under `pe`, made empty if missing; the element is cloned only then.
    pub fn child_mut(&mut self, pe: &PathElement) -> &mut Set {
        if !self.children.contains_key(pe) {
            self.children.insert(pe.clone(), Set::new());
        }
        self.children.get_mut(pe).expect("inserted above")
    }

    /// The set under `path`, made (empty) where missing.
    pub fn node_mut(&mut self, path: &[PathElement]) -> &mut Set {
        path.iter().fold(self, |node, pe| node.child_mut(pe))
    }

    /// Adds `pe` as a member, taking it.
    pub fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Puts `child` under `pe`, merging with what is there; an empty `child` adds nothing.
    pub fn insert_child(&mut self, pe: PathElement, child: Set) {
        if child.members.is_empty() && child.children.is_empty() {
            return;
        }
        match self.children.entry(pe) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(child);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().absorb(child),
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether the set holds no path (children without members count as empty).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// Whether the two sets share a path.
    pub fn intersects(&self, other: &Set) -> bool {
        self.members.iter().any(|pe| other.members.contains(pe))
            || self
                .children
                .iter()
                .any(|(pe, c)| other.children.get(pe).is_some_and(|o| c.intersects(o)))
    }

    /// Whether `fieldsV1` JSON (left undecoded) shares a path with this set.
    pub fn intersects_fields_v1(&self, fields: &Map<String, Value>) -> bool {
        let node = |pe: &PathElement| match fields.get(&pe.to_fields_key()) {
            Some(Value::Object(inner)) => Some(inner),
            _ => None,
        };
        self.members
            .iter()
            .any(|pe| node(pe).is_some_and(|inner| inner.is_empty() || inner.contains_key(".")))
            || self
                .children
                .iter()
                .any(|(pe, c)| node(pe).is_some_and(|inner| c.intersects_fields_v1(inner)))
    }

    /// Adds every path of this set to `fieldsV1` JSON (left undecoded), in place: the
    /// JSON becomes what [`Set::to_fields_v1`] writes for the union. A path that is a
    /// member and has children keeps its `"."` marker.
    pub fn add_to_fields_v1(&self, fields: &mut Map<String, Value>) {
        fn node(fields: &mut Map<String, Value>, key: String) -> &mut Map<String, Value> {
            let v = fields
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            if !v.is_object() {
                // Not what this module writes; the node starts over.
                *v = Value::Object(Map::new());
            }
            v.as_object_mut().expect("made an object above")
        }
        for pe in &self.members {
            let inner = node(fields, pe.to_fields_key());
            if !inner.is_empty() {
                inner
                    .entry(".")
                    .or_insert_with(|| Value::Object(Map::new()));
            }
        }
        for (pe, child) in &self.children {
            let key = pe.to_fields_key();
            let was_member = matches!(fields.get(&key), Some(Value::Object(m)) if m.is_empty());
            let inner = node(fields, key);
            if was_member {
                inner.insert(".".to_owned(), Value::Object(Map::new()));
            }
            child.add_to_fields_v1(inner);
        }
    }

    /// The paths under `pe`, without `pe` itself.
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    /// Adds every path of `other`.
    pub fn union_with(&mut self, other: &Set) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            self.children
                .entry(pe.clone())
                .or_default()
                .union_with(child);
        }
    }

    /// Adds every path of `other`, taking them: [`Set::union_with`] without copying, and
    /// a plain move when this set is empty.
    pub fn absorb(&mut self, other: Set) {
        if self.members.is_empty() && self.children.is_empty() {
            *self = other;
            return;
        }
        self.members.extend(other.members);
        for (pe, child) in other.children {
            self.insert_child(pe, child);
        }
    }

    /// Removes what [`Set::recursive_difference`] removes, in place and in time
    /// proportional to `other`: its members with everything under them, and its paths.
    pub fn remove_recursive(&mut self, other: &Set) {
        for pe in &other.members {
            self.members.remove(pe);
            self.children.remove(pe);
        }
        for (pe, o) in &other.children {
            if let Some(child) = self.children.get_mut(pe) {
                child.remove_recursive(o);
                if child.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    /// Removes every path of `other`: [`Set::difference`] in place, in time proportional
    /// to `other` rather than to this set.
    pub fn subtract(&mut self, other: &Set) {
        for pe in &other.members {
            self.members.remove(pe);
        }
        for (pe, o) in &other.children {
            if let Some(child) = self.children.get_mut(pe) {
                child.subtract(o);
                if child.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// The paths of `self` that `other` does not hold (upstream `Difference`: a member of
    /// `other` removes only that path, not what lies below it).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, child)| {
                let child = match other.children.get(pe) {
                    Some(o) => child.difference(o),
                    None => child.clone(),
                };
                (pe.clone(), child)
            })
            .filter(|(_, child)| !child.is_empty())
            .collect();
        Set { members, children }
    }

    /// The paths of `self` that neither `other` nor anything under one of `other`'s members
    /// holds (upstream `RecursiveDifference`, the filter of reset fields).
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self
            .members
            .iter()
            .filter(|pe| !other.members.contains(pe))
            .cloned()
            .collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !other.members.contains(pe))
            .map(|(pe, child)| {
                let child = match other.children.get(pe) {
                    Some(o) => child.recursive_difference(o),
                    None => child.clone(),
                };
                (pe.clone(), child)
            })
            .filter(|(_, child)| !child.is_empty())
            .collect();
        Set { members, children }
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| {
                let both = child.intersection(other.children.get(pe)?);
                (!both.is_empty()).then(|| (pe.clone(), both))
            })
            .collect();
        Set { members, children }
    }

    /// This set plus every field name that leads to one of its paths (upstream
    /// `EnsureNamedFieldsAreMembers`; every map field counts as a named field here).
    pub fn with_named_fields_as_members(&self) -> Set {
        let mut members = self.members.clone();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if matches!(pe, PathElement::Field(_)) && !child.is_empty() {
                members.insert(pe.clone());
            }
            children.insert(pe.clone(), child.with_named_fields_as_members());
        }
        Set { members, children }
    }

    /// Every path in the set, members before children at each level (upstream `Iterate`).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for pe in &self.members {
            prefix.push(pe.clone());
            out.push(Path(prefix.clone()));
            prefix.pop();
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `fieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.fields_v1_contents(false))
    }

    fn fields_v1_contents(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for pe in &self.members {
            if self.children.get(pe).is_none_or(Set::is_empty) {
                out.insert(pe.to_fields_key(), Value::Object(Map::new()));
            }
        }
        for (pe, child) in &self.children {
            if child.is_empty() {
                continue;
            }
            let is_member = self.members.contains(pe);
            out.insert(
                pe.to_fields_key(),
                Value::Object(child.fields_v1_contents(is_member)),
            );
        }
        out
    }

    /// Parses `fieldsV1` JSON.
    pub fn from_fields_v1(v: &Value) -> Result<Set, FieldsError> {
        let Value::Object(map) = v else {
            return Err(FieldsError("fieldsV1 must be a JSON object".to_owned()));
        };
        let mut set = Set::new();
        for (key, child) in map {
            if key == "." {
                continue;
            }
            let pe = PathElement::from_fields_key(key)?;
            let Value::Object(inner) = child else {
                return Err(FieldsError(format!(
                    "the value of {key:?} must be an object"
                )));
            };
            if inner.is_empty() || inner.contains_key(".") {
                set.members.insert(pe.clone());
            }
            if inner.keys().any(|k| k != ".") {
                set.children.insert(pe, Set::from_fields_v1(child)?);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.to_owned())
    }

    fn key(name: &str, v: Value) -> PathElement {
        PathElement::Key(vec![(name.to_owned(), v)])
    }

    #[test]
    fn fields_v1_round_trips_upstream_examples() {
        // The shape kube-apiserver writes for `kubectl create deployment` (trimmed).
        let fields = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
                }}}
            },
            "f:metadata2": {"f:finalizers": {"v:\"a/b\"": {}}}
        });
        let set = Set::from_fields_v1(&fields).unwrap();
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(set.has(&[f("metadata"), f("labels"), f("app")]));
        assert!(!set.has(&[f("metadata")]));
        let c = [
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            key("name", json!("nginx")),
        ];
        assert!(set.has(&c));
        let port = PathElement::Key(vec![
            ("containerPort".into(), json!(80)),
            ("protocol".into(), json!("TCP")),
        ]);
        let mut p = c.to_vec();
        p.extend([f("ports"), port, f("containerPort")]);
        assert!(set.has(&p));
        assert_eq!(set.to_fields_v1(), fields);
    }

    #[test]
    fn adding_to_fields_v1_in_place_agrees_with_the_decoded_union() {
        let fields = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:name": {}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}}}}
        });
        let nginx = [f("spec"), f("containers"), key("name", json!("nginx"))];
        let additions: Vec<Vec<Vec<PathElement>>> = vec![
            // Already there: nothing changes.
            vec![vec![f("metadata"), f("labels"), f("app")], nginx.to_vec()],
            // A sibling, a new branch, a new list item.
            vec![vec![f("metadata"), f("labels"), f("tier")]],
            vec![vec![f("status"), f("phase")]],
            vec![vec![
                f("spec"),
                f("containers"),
                key("name", json!("sidecar")),
            ]],
            // A leaf member that gains children, and an inner node that becomes a member.
            vec![vec![f("metadata"), f("name"), f("x")]],
            vec![vec![f("spec")]],
            vec![
                vec![f("spec"), f("containers")],
                vec![f("metadata"), f("labels")],
            ],
        ];
        for paths in additions {
            let mut add = Set::new();
            for path in &paths {
                add.insert(path);
            }
            let mut expected = Set::from_fields_v1(&fields).unwrap();
            expected.union_with(&add);
            let mut in_place = fields.as_object().unwrap().clone();
            add.add_to_fields_v1(&mut in_place);
            let in_place = Value::Object(in_place);
            assert_eq!(in_place, expected.to_fields_v1(), "{paths:?}");
            assert_eq!(
                Set::from_fields_v1(&in_place).unwrap(),
                expected,
                "{paths:?}"
            );
        }
    }

    #[test]
    fn malformed_fields_v1_is_an_error() {
        for bad in [
            json!([]),
            json!({"x:1": {}}),
            json!({"f:a": 1}),
            json!({"k:[1]": {}}),
            json!({"i:x": {}}),
        ] {
            assert!(Set::from_fields_v1(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn set_operations_follow_upstream() {
        let mut a = Set::new();
        a.insert(&[f("spec"), f("replicas")]);
        a.insert(&[f("spec"), f("template"), f("image")]);
        let mut b = Set::new();
        b.insert(&[f("spec"), f("replicas")]);
        b.insert(&[f("spec")]);
        assert_eq!(a.intersection(&b).paths().len(), 1);
        let d = a.difference(&b);
        assert!(!d.has(&[f("spec"), f("replicas")]));
        assert!(d.has(&[f("spec"), f("template"), f("image")]));
        let mut in_place = a.clone();
        in_place.subtract(&b);
        assert_eq!(in_place, d);
        // A member of `b` removes everything under it recursively.
        assert!(a.recursive_difference(&b).is_empty());
        // The in-place and taking forms agree with the copying ones.
        let mut c = Set::new();
        c.insert(&[f("spec"), f("template"), f("image")]);
        c.insert(&[f("status")]);
        for (x, y) in [(&a, &b), (&a, &c), (&c, &a), (&b, &c), (&c, &Set::new())] {
            let mut removed = x.clone();
            removed.remove_recursive(y);
            assert_eq!(removed, x.recursive_difference(y), "{x:?} - {y:?}");
            let mut absorbed = x.clone();
            absorbed.absorb(y.clone());
            assert_eq!(absorbed, x.union(y), "{x:?} + {y:?}");
        }
        let mut empty = Set::new();
        empty.absorb(a.clone());
        assert_eq!(empty, a);
        let named = a.with_named_fields_as_members();
        assert!(named.has(&[f("spec")]));
        assert!(named.has(&[f("spec"), f("template")]));
        assert_eq!(
            Path(vec![
                f("spec"),
                key("name", json!("c")),
                PathElement::Value(json!("x"))
            ])
            .to_string(),
            r#".spec[name="c"][="x"]"#
        );
    }
}
