//! The walks server-side apply makes over an object, driven by the kind's [`PatchSchema`]:
//! its field set, the comparison of two versions, the merge of an applied configuration
//! into the live object and the removal of a set of fields (ports of
//! `structured-merge-diff/typed`: `tofieldset.go`, `compare.go`, `merge.go`, `remove.go`).
//!
//! How a value is treated ([`Shape`]) follows from its schema entry and its JSON type: maps
//! are granular unless marked atomic, merging lists are associative (keyed) lists or sets,
//! every other list and every scalar is a leaf, owned and replaced whole.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::fieldpath::{PathElement, Set};
use crate::patch::{FieldSchema, PatchSchema};

/// Where a value sits, which decides its [`Shape`].
#[derive(Clone, Copy)]
pub(crate) enum Ty {
    /// The object itself.
    Root(&'static PatchSchema),
    /// The value of a field.
    Field(&'static FieldSchema),
    /// An element of the list in this field.
    Element(&'static FieldSchema),
}

/// How server-side apply treats one value.
#[derive(Clone, Copy)]
enum Shape {
    /// Owned and replaced whole: scalars, atomic maps, untagged lists.
    Leaf,
    /// A map whose fields are owned one by one.
    Map(&'static PatchSchema),
    /// An associative list (`x-kubernetes-list-type: map`) in this field.
    Keyed(&'static FieldSchema),
    /// A list of scalars kept as a set (`x-kubernetes-list-type: set`).
    Set,
}

/// Where the items of a keyed list or set sit.
fn element_ty(sh: Shape) -> Ty {
    match sh {
        Shape::Keyed(field) => Ty::Element(field),
        _ => Ty::Element(&FieldSchema::UNKNOWN),
    }
}

impl PartialEq for Shape {
    /// Schemas are statics: the same entry is the same address.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Shape::Leaf, Shape::Leaf) | (Shape::Set, Shape::Set) => true,
            (Shape::Map(a), Shape::Map(b)) => std::ptr::eq(*a, *b),
            (Shape::Keyed(a), Shape::Keyed(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

fn shape(ty: Ty, v: &Value) -> Shape {
    match (ty, v) {
        (Ty::Root(schema), Value::Object(_)) => Shape::Map(schema),
        (Ty::Element(list), Value::Object(_)) if !list.atomic => Shape::Map(list.schema),
        (Ty::Field(field), Value::Object(_)) if !field.atomic => Shape::Map(field.schema),
        (Ty::Field(field), Value::Array(_)) if field.is_merging_list() => {
            if field.apply_list_keys().is_empty() {
                Shape::Set
            } else {
                Shape::Keyed(field)
            }
        }
        _ => Shape::Leaf,
    }
}

/// The shape two versions of a value share; versions of different shapes are leaves.
fn common_shape(ty: Ty, a: Option<&Value>, b: Option<&Value>) -> Shape {
    match (a.map(|v| shape(ty, v)), b.map(|v| shape(ty, v))) {
        (Some(x), Some(y)) if x == y => x,
        (Some(x), None) | (None, Some(x)) => x,
        _ => Shape::Leaf,
    }
}

/// The value of a key field an applied list item may omit: upstream fills key fields from
/// their schema default, and `protocol` (container and service ports) is the only defaulted
/// key among the served kinds.
fn key_default(name: &str) -> Option<Value> {
    (name == "protocol").then(|| Value::String("TCP".to_owned()))
}

/// An applied configuration that server-side apply cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ShapeError {
    pub path: String,
    pub reason: String,
}

fn path_string(path: &[PathElement]) -> String {
    super::fieldpath::Path(path.to_vec()).to_string()
}

/// The path element of item `idx` of a keyed list or set. Items of a keyed list without
/// their key fields are named by position (only stored objects can hold such items: an
/// applied configuration is checked by [`to_field_set`] with `strict`).
fn item_element(
    shape: Shape,
    item: &Value,
    idx: usize,
    path: &[PathElement],
) -> Result<PathElement, ShapeError> {
    match shape {
        Shape::Keyed(field) => {
            let keys = field.apply_list_keys();
            let mut fields = Vec::with_capacity(keys.len());
            for &key in keys {
                match item.get(key).cloned().or_else(|| key_default(key)) {
                    Some(v) => fields.push((key.to_owned(), v)),
                    None => {
                        return Err(ShapeError {
                            path: path_string(path),
                            reason: format!(
                                "associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                            ),
                        });
                    }
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        Shape::Set => Ok(PathElement::Value(item.clone())),
        _ => Ok(PathElement::Index(idx)),
    }
}

fn item_element_lenient(shape: Shape, item: &Value, idx: usize) -> PathElement {
    item_element(shape, item, idx, &[]).unwrap_or(PathElement::Index(idx))
}

/// `metadata.managedFields` is never part of a field set or a comparison.
fn skipped(path: &[PathElement], key: &str) -> bool {
    key == "managedFields" && matches!(path, [PathElement::Field(m)] if m == "metadata")
}

/// The fields of `v` (upstream `ToFieldSet`): every leaf, every list item, every empty map.
/// With `strict`, list items without their keys and duplicate items are errors.
pub(crate) fn to_field_set(v: &Value, ty: Ty, strict: bool) -> Result<Set, ShapeError> {
    let mut set = Set::new();
    let mut path = Vec::new();
    field_set_walk(v, ty, strict, &mut path, &mut set)?;
    Ok(set)
}

fn field_set_walk(
    v: &Value,
    ty: Ty,
    strict: bool,
    path: &mut Vec<PathElement>,
    set: &mut Set,
) -> Result<(), ShapeError> {
    let sh = shape(ty, v);
    match (sh, v) {
        (Shape::Map(schema), Value::Object(map)) => {
            for (key, child) in map {
                if skipped(path, key) {
                    continue;
                }
                path.push(PathElement::Field(key.clone()));
                field_set_walk(child, Ty::Field(schema.field(key)), strict, path, set)?;
                if child.as_object().is_some_and(Map::is_empty) || child.is_null() {
                    set.insert(path);
                }
                path.pop();
            }
        }
        (Shape::Keyed(_) | Shape::Set, Value::Array(items)) => {
            let mut seen = BTreeSet::new();
            for (idx, item) in items.iter().enumerate() {
                let pe = if strict {
                    item_element(sh, item, idx, path)?
                } else {
                    item_element_lenient(sh, item, idx)
                };
                if strict && !seen.insert(pe.clone()) {
                    return Err(ShapeError {
                        path: path_string(path),
                        reason: format!("duplicate entries for key {pe}"),
                    });
                }
                path.push(pe);
                if sh != Shape::Set {
                    field_set_walk(item, element_ty(sh), strict, path, set)?;
                }
                set.insert(path);
                path.pop();
            }
        }
        _ => set.insert(path),
    }
    Ok(())
}

/// What changed between two versions of an object (upstream `typed.Comparison`).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

/// Compares `old` with `new` (upstream `Compare`): leaves that differ are modified; a value
/// on one side only is added or removed, with every map, list and item under it.
pub(crate) fn compare(old: &Value, new: &Value, ty: Ty) -> Comparison {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    compare_walk(Some(old), Some(new), ty, &mut path, &mut c);
    c
}

fn compare_walk(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Ty,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) {
    // Equal subtrees hold no change: a write that touches one field walks one path.
    if let (Some(a), Some(b)) = (old, new)
        && a == b
    {
        return;
    }
    // A new subtree (all of a create) is built in place under its parent, rather than
    // inserted path by path from the root.
    if let (None, Some(v), [parent @ .., pe]) = (old, new, path.as_slice()) {
        let at_metadata =
            matches!(parent, [] if matches!(pe, PathElement::Field(m) if m == "metadata"));
        let node = c.added.node_mut(parent);
        add_subtree(v, ty, at_metadata, pe.clone(), node);
        return;
    }
    let sh = common_shape(ty, old, new);
    match sh {
        Shape::Leaf => {
            match (old, new) {
                (None, Some(_)) => c.added.insert(path),
                (Some(_), None) => c.removed.insert(path),
                (Some(a), Some(b)) if a != b => c.modified.insert(path),
                _ => {}
            }
            return;
        }
        Shape::Map(schema) => {
            let empty = Map::new();
            let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
            let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
            for (key, ov) in old_map {
                if skipped(path, key) {
                    continue;
                }
                path.push(PathElement::Field(key.clone()));
                compare_walk(
                    Some(ov),
                    new_map.get(key),
                    Ty::Field(schema.field(key)),
                    path,
                    c,
                );
                path.pop();
            }
            for (key, nv) in new_map {
                if old_map.contains_key(key) || skipped(path, key) {
                    continue;
                }
                path.push(PathElement::Field(key.clone()));
                compare_walk(None, Some(nv), Ty::Field(schema.field(key)), path, c);
                path.pop();
            }
        }
        Shape::Keyed(field) => {
            let old_items = index_items(sh, old);
            let new_items = index_items(sh, new);
            for (pe, ov) in &old_items {
                path.push(pe.clone());
                compare_walk(
                    Some(ov),
                    new_items.get(pe).copied(),
                    Ty::Element(field),
                    path,
                    c,
                );
                path.pop();
            }
            for (pe, nv) in &new_items {
                if !old_items.contains_key(pe) {
                    path.push(pe.clone());
                    compare_walk(None, Some(nv), Ty::Element(field), path, c);
                    path.pop();
                }
            }
        }
        Shape::Set => {
            let old_items = index_items(sh, old);
            let new_items = index_items(sh, new);
            for pe in old_items.keys().filter(|pe| !new_items.contains_key(pe)) {
                path.push(pe.clone());
                c.removed.insert(path);
                path.pop();
            }
            for pe in new_items.keys().filter(|pe| !old_items.contains_key(pe)) {
                path.push(pe.clone());
                c.added.insert(path);
                path.pop();
            }
        }
    }
    match (old, new) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
}

/// Adds `v`, which sits at `pe` under `node`, with everything under it: what
/// [`compare_walk`] records for a value only the new version has. `at_metadata` says that
/// `v` is the object's `metadata`, whose `managedFields` is [`skipped`].
fn add_subtree(v: &Value, ty: Ty, at_metadata: bool, pe: PathElement, node: &mut Set) {
    let sh = shape(ty, v);
    let mut child = Set::new();
    match sh {
        Shape::Leaf => {}
        Shape::Map(schema) => {
            for (key, fv) in v.as_object().into_iter().flatten() {
                if at_metadata && key == "managedFields" {
                    continue;
                }
                let fty = Ty::Field(schema.field(key));
                add_subtree(fv, fty, false, PathElement::Field(key.clone()), &mut child);
            }
        }
        Shape::Keyed(field) => {
            for (item_pe, item) in index_items(sh, Some(v)) {
                add_subtree(item, Ty::Element(field), false, item_pe, &mut child);
            }
        }
        Shape::Set => {
            for item_pe in index_items(sh, Some(v)).into_keys() {
                child.insert_member(item_pe);
            }
        }
    }
    node.insert_child(pe.clone(), child);
    node.insert_member(pe);
}

/// The items of a keyed list or set by path element (the first of duplicates wins).
fn index_items(sh: Shape, list: Option<&Value>) -> BTreeMap<PathElement, &Value> {
    let mut out = BTreeMap::new();
    for (idx, item) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.entry(item_element_lenient(sh, item, idx))
            .or_insert(item);
    }
    out
}

/// Merges an applied configuration into the live object (upstream `Merge` with
/// `ruleKeepRHS`): the configuration's leaves win, maps merge field by field, keyed lists
/// and sets item by item in upstream's order. A `null` in the configuration removes.
pub(crate) fn merge(live: &Value, config: &Value, ty: Ty) -> Value {
    merge_walk(Some(live), Some(config), ty).unwrap_or_else(|| Value::Object(Map::new()))
}

fn merge_walk(lhs: Option<&Value>, rhs: Option<&Value>, ty: Ty) -> Option<Value> {
    if rhs.is_some_and(Value::is_null) {
        return None;
    }
    let sh = common_shape(ty, lhs, rhs);
    match sh {
        Shape::Leaf => rhs.or(lhs).cloned(),
        Shape::Map(schema) => {
            let empty = Map::new();
            let l = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let r = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let mut out = Map::new();
            for (key, lv) in l {
                let merged = match r.get(key) {
                    Some(rv) => merge_walk(Some(lv), Some(rv), Ty::Field(schema.field(key))),
                    None => Some(lv.clone()),
                };
                if let Some(m) = merged {
                    out.insert(key.clone(), m);
                }
            }
            for (key, rv) in r {
                if !l.contains_key(key)
                    && let Some(m) = merge_walk(None, Some(rv), Ty::Field(schema.field(key)))
                {
                    out.insert(key.clone(), m);
                }
            }
            Some(Value::Object(out))
        }
        Shape::Keyed(_) | Shape::Set => {
            let empty = Vec::new();
            let l = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let r = rhs.and_then(Value::as_array).unwrap_or(&empty);
            Some(Value::Array(merge_list(sh, l, r, element_ty(sh))))
        }
    }
}

/// Upstream `mergingWalker.visitListItems`: live-only items keep their place, shared items
/// follow the configuration's order, new items come where the configuration puts them.
fn merge_list(sh: Shape, lhs: &[Value], rhs: &[Value], item_ty: Ty) -> Vec<Value> {
    let pes = |items: &[Value]| -> Vec<PathElement> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| item_element_lenient(sh, item, i))
            .collect()
    };
    let (lpes, rpes) = (pes(lhs), pes(rhs));
    let mut observed_l = BTreeMap::new();
    for (i, pe) in lpes.iter().enumerate() {
        observed_l.entry(pe).or_insert(i);
    }
    let mut observed_r = BTreeMap::new();
    for (i, pe) in rpes.iter().enumerate() {
        observed_r.entry(pe).or_insert(i);
    }
    let mut shared: VecDeque<&PathElement> = rpes
        .iter()
        .filter(|pe| observed_l.contains_key(pe))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_r = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let item = |l: Option<usize>, r: Option<usize>| {
        merge_walk(l.map(|i| &lhs[i]), r.map(|i| &rhs[i]), item_ty)
    };
    let (mut li, mut ri) = (0, 0);
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() && ri < rpes.len() {
            let pe = &lpes[li];
            if *pe == rpes[ri] {
                merged_r.insert(pe);
                out.extend(item(
                    observed_l.get(pe).copied(),
                    observed_r.get(pe).copied(),
                ));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_r.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let pe = &lpes[li];
            if !observed_r.contains_key(pe) {
                out.extend(item(Some(li), None));
                li += 1;
                continue;
            }
            if merged_r.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rpes.len() {
            let pe = &rpes[ri];
            merged_r.insert(pe);
            out.extend(item(
                observed_l.get(pe).copied(),
                observed_r.get(pe).copied(),
            ));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    out
}

/// `v` without the paths of `set` (upstream `RemoveItems`). A map or list left empty by the
/// removal goes too (`None`).
pub(crate) fn remove_items(v: &Value, set: &Set, ty: Ty) -> Option<Value> {
    let sh = shape(ty, v);
    match (sh, v) {
        (Shape::Map(schema), Value::Object(map)) => {
            let mut out = Map::new();
            for (key, child) in map {
                let pe = PathElement::Field(key.clone());
                if set.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                let kept = match set.with_prefix(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => remove_items(child, sub, Ty::Field(schema.field(key))),
                    None => Some(child.clone()),
                };
                if let Some(kept) = kept {
                    out.insert(key.clone(), kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (Shape::Keyed(_) | Shape::Set, Value::Array(items)) => {
            let mut out = Vec::new();
            for (idx, child) in items.iter().enumerate() {
                let pe = item_element_lenient(sh, child, idx);
                if set.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                let kept = match set.with_prefix(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => remove_items(child, sub, element_ty(sh)),
                    None => Some(child.clone()),
                };
                out.extend(kept);
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        (_, Value::Object(_) | Value::Array(_)) => None,
        _ => Some(v.clone()),
    }
}
