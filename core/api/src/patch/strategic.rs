//! Strategic merge patch: a port of the apply half of
//! `k8s.io/apimachinery/pkg/util/strategicpatch/patch.go` (`StrategicMergeMapPatch`, i.e.
//! `mergeMap` with `MergeParallelList` and `IgnoreUnmatchedNulls`), driven by a static
//! [`PatchSchema`] instead of Go struct tags.
//!
//! Where this port deliberately differs from upstream, the function says so. The common
//! reason: upstream inserts a patch value that has no counterpart in the original as is and
//! relies on decoding into a Go struct to drop leftover directives and nulls; Bosun keeps
//! JSON, so such values are merged into an empty value instead, which drops them here.

use std::fmt;

use serde_json::{Map, Value};

use super::schema::{FieldSchema, PatchSchema, PatchStrategy};
use super::{PatchError, PatchType};

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Applies strategic merge `patch` to `original` using the patch metadata in `schema`.
///
/// Both must be JSON objects. Errors: [`PatchError::Malformed`] when the patch itself is
/// wrong (bad directive, missing merge key, `$setElementOrder` contradicting the patch
/// list), [`PatchError::Unprocessable`] when the patch does not fit the stored object
/// (lists of lists, element types that differ, stored elements without their merge key).
/// Recursion depth is bounded by the inputs' nesting, which `serde_json` caps at 128.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    schema: &PatchSchema,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(malformed(
            Path::ROOT,
            "a strategic merge patch must be a JSON object",
        ));
    };
    let Value::Object(original) = original else {
        return Err(unprocessable(
            Path::ROOT,
            "the patched value is not a JSON object",
        ));
    };
    merge_map(original.clone(), patch.clone(), schema, Path::ROOT).map(Value::Object)
}

/// Where in the document the merge is, rendered only for error messages.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: &'a str,
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        segment: "",
    };

    fn child(&'a self, segment: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment,
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parent {
            None => f.write_str("<root>"),
            Some(parent) if parent.parent.is_none() => f.write_str(self.segment),
            Some(parent) if self.segment == "[]" => write!(f, "{parent}[]"),
            Some(parent) => write!(f, "{parent}.{}", self.segment),
        }
    }
}

fn malformed(path: Path<'_>, reason: impl fmt::Display) -> PatchError {
    PatchError::Malformed {
        patch_type: PatchType::Strategic,
        reason: format!("at {path}: {reason}"),
    }
}

fn unprocessable(path: Path<'_>, reason: impl fmt::Display) -> PatchError {
    PatchError::Unprocessable {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Upstream `mergeMap`.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: &PatchSchema,
    path: Path<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.remove(DIRECTIVE_MARKER) {
        // Upstream `handleDirectiveInMergeMap`: only replace and delete are valid on a map;
        // `$patch: merge` is rejected there too (ErrBadPatchType).
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => merge_map(Map::new(), patch, schema, path),
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(malformed(
                path,
                format!("invalid value for {DIRECTIVE_MARKER} on a map: {directive}"),
            )),
        };
    }
    apply_retain_keys(&mut original, &mut patch, path)?;
    apply_set_element_order(&mut original, &mut patch, schema, path)?;

    for (key, patch_value) in patch {
        let child = path.child(&key);
        if let Some(list_name) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            let list_name = directive_field(list_name, child)?;
            delete_from_primitive_list(&mut original, list_name, patch_value, child)?;
            continue;
        }
        if key.starts_with('$') {
            // Not a directive Bosun knows. Upstream copies it into the map and the typed
            // decode drops it; dropping it here keeps directives out of stored objects.
            continue;
        }
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let field = schema.field(&key);
        let merged = match original.remove(&key) {
            None => normalize(patch_value, field, child)?,
            Some(original_value) => merge_value(original_value, patch_value, field, child)?,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// The field name after `$deleteFromPrimitiveList` or `$setElementOrder` (upstream
/// `extractKey`): the rest must be `/<name>`.
fn directive_field<'a>(rest: &'a str, path: Path<'_>) -> Result<&'a str, PatchError> {
    match rest.strip_prefix('/') {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(malformed(
            path,
            "directive key must have the form $directive/<field>",
        )),
    }
}

/// Merges a patch value into the stored value of the same field.
fn merge_value(
    original: Value,
    patch: Value,
    field: &FieldSchema,
    path: Path<'_>,
) -> Result<Value, PatchError> {
    match (original, patch) {
        (Value::Object(original), Value::Object(patch))
            if field.strategy != PatchStrategy::Replace =>
        {
            merge_map(original, patch, field.schema, path).map(Value::Object)
        }
        (Value::Array(original), Value::Array(patch)) if field.is_merging_list() => {
            merge_list(original, patch, field, path).map(Value::Array)
        }
        // Different types, replace strategy, non-merging list, scalar: the patch wins.
        (_, patch) => normalize(patch, field, path),
    }
}

/// A patch value that replaces, or has no counterpart in, the original: merged into an
/// empty value so that its directives are applied and its nulls dropped. Upstream inserts
/// it as is (see the module docs).
fn normalize(patch: Value, field: &FieldSchema, path: Path<'_>) -> Result<Value, PatchError> {
    match patch {
        Value::Object(patch) => merge_map(Map::new(), patch, field.schema, path).map(Value::Object),
        Value::Array(patch) if field.is_merging_list() => {
            merge_list(Vec::new(), patch, field, path).map(Value::Array)
        }
        Value::Array(patch) => {
            let element = FieldSchema::nested("", field.schema);
            let element_path = path.child("[]");
            patch
                .into_iter()
                .map(|item| normalize(item, &element, element_path))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        scalar => Ok(scalar),
    }
}

/// Upstream `applyRetainKeysDirective`: clears the stored keys missing from `$retainKeys`,
/// after checking that every key the patch sets is listed.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    path: Path<'_>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(malformed(path, "$retainKeys must be a list of field names"));
    };
    let retained = |key: &str| retain.iter().any(|name| name.as_str() == Some(key));
    for (key, value) in patch.iter() {
        let is_parallel_list = key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX);
        if !value.is_null() && !is_parallel_list && !retained(key) {
            return Err(malformed(
                path,
                format!("the patch sets {key:?}, which $retainKeys does not list"),
            ));
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// Upstream `mergePatchIntoOriginal`: merges each list that has a `$setElementOrder/<field>`
/// directive and orders it by the directive, then removes both from the patch.
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: &PatchSchema,
    path: Path<'_>,
) -> Result<(), PatchError> {
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|key| key.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for order_key in order_keys {
        let key_path = path.child(&order_key);
        let field_name = directive_field(&order_key[SET_ELEMENT_ORDER_PREFIX.len()..], key_path)?;
        let Some(Value::Array(order)) = patch.remove(&order_key) else {
            return Err(malformed(key_path, "$setElementOrder must be a list"));
        };
        let field = schema.field(field_name);
        let field_path = path.child(field_name);
        let original_list = match original.remove(field_name) {
            None => None,
            Some(Value::Array(list)) => Some(list),
            Some(_) => return Err(unprocessable(field_path, "$setElementOrder on a non-list")),
        };
        let patch_list = match patch.remove(field_name) {
            None => None,
            Some(Value::Array(list)) => Some(list),
            Some(_) => return Err(malformed(field_path, "$setElementOrder on a non-list")),
        };
        let merge_key = field.merge_key.filter(|_| field.is_merging_list());
        if let Some(patch_list) = &patch_list {
            validate_patch_with_order(patch_list, &order, merge_key, field_path)?;
        }
        let server_order = original_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (None, None) => continue,
            (Some(original_list), None) => original_list,
            (None, Some(patch_list)) => {
                as_list(normalize(Value::Array(patch_list), field, field_path)?)
            }
            (Some(original_list), Some(patch_list)) => as_list(merge_value(
                Value::Array(original_list),
                Value::Array(patch_list),
                field,
                field_path,
            )?),
        };
        let (patch_items, server_only) = partition(merged, &order, merge_key, field_path)?;
        let ordered = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &server_order,
            merge_key,
            field_path,
        )?;
        original.insert(field_name.to_owned(), Value::Array(ordered));
    }
    Ok(())
}

fn as_list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(list) => list,
        // merge_value and normalize map an array patch to an array.
        other => unreachable!("list merge produced a non-list: {other}"),
    }
}

/// Upstream `validatePatchWithSetOrderList`: the patch list (minus deletions) must be a
/// subsequence of the `$setElementOrder` list.
fn validate_patch_with_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
    path: Path<'_>,
) -> Result<(), PatchError> {
    let mut order_iter = order.iter();
    for item in patch_list {
        if merge_key.is_some() && !item.is_object() {
            return Err(malformed(
                path,
                "elements of a merging list must be objects",
            ));
        }
        if item.get(DIRECTIVE_MARKER).is_some() {
            continue;
        }
        let wanted =
            identity(item, merge_key).ok_or_else(|| malformed(path, no_merge_key(merge_key)))?;
        if !order_iter.any(|o| identity(o, merge_key) == Some(wanted)) {
            return Err(malformed(
                path,
                "the order in the patch list doesn't match the $setElementOrder list",
            ));
        }
    }
    Ok(())
}

fn no_merge_key(merge_key: Option<&str>) -> String {
    format!(
        "element does not contain declared merge key {:?}",
        merge_key.unwrap_or_default()
    )
}

/// Upstream `$deleteFromPrimitiveList/<field>`: removes every listed scalar from the list.
/// Since kubernetes#110472 upstream deletes whatever the field's strategy; a missing list
/// stays missing (upstream would store the deletion list instead).
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    list_name: &str,
    to_delete: Value,
    path: Path<'_>,
) -> Result<(), PatchError> {
    let Value::Array(to_delete) = to_delete else {
        return Err(malformed(path, "$deleteFromPrimitiveList must be a list"));
    };
    if to_delete.iter().any(|v| v.is_object() || v.is_array()) {
        return Err(malformed(
            path,
            "$deleteFromPrimitiveList must list scalars",
        ));
    }
    match original.get_mut(list_name) {
        None => Ok(()),
        Some(Value::Array(list)) => {
            list.retain(|item| !to_delete.contains(item));
            Ok(())
        }
        Some(_) => Err(unprocessable(path, format!("{list_name} is not a list"))),
    }
}

/// The JSON type of list elements; upstream compares Go types (`sliceElementType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind_of(value: &Value) -> Kind {
    match value {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

fn element_kind(lists: [&[Value]; 2], path: Path<'_>) -> Result<Option<Kind>, PatchError> {
    let mut kind = None;
    for item in lists.into_iter().flatten() {
        let item_kind = kind_of(item);
        if item_kind == Kind::Array {
            // Upstream ErrNoListOfLists, which the API server answers with 422.
            return Err(unprocessable(path, "lists of lists are not supported"));
        }
        match kind {
            None => kind = Some(item_kind),
            Some(kind) if kind != item_kind => {
                return Err(unprocessable(path, "list element types are not identical"));
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

/// Upstream `mergeSlice`, for a field with the merge strategy.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: &FieldSchema,
    path: Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if element_kind([&original, &patch], path)? != Some(Kind::Object) {
        let server_order = original.clone();
        let mut merged = original;
        for item in &patch {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        merged = dedup(merged);
        let (patch_items, server_only) = partition(merged, &patch, None, path)?;
        return normalize_element_order(
            patch_items,
            server_only,
            &patch,
            &server_order,
            None,
            path,
        );
    }
    let Some(key) = field.merge_key else {
        return Err(unprocessable(
            path,
            "cannot merge lists of objects without a merge key",
        ));
    };
    let (original, patch) = apply_list_directives(original, patch, key, field.schema, path)?;
    let server_order = original.clone();
    let merged = merge_elements(original, &patch, key, field.schema, path)?;
    let (patch_items, server_only) = partition(merged, &patch, Some(key), path)?;
    normalize_element_order(
        patch_items,
        server_only,
        &patch,
        &server_order,
        Some(key),
        path,
    )
}

/// Upstream `deduplicateScalars`, keeping first occurrences (the order is fixed afterwards).
fn dedup(list: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Upstream `mergeSliceWithSpecialElements`: applies `$patch: delete` elements (removing
/// every stored element with that key) and `$patch: replace` (the rest of the patch list
/// becomes the list). Returns the new original and the patch without directive elements.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    schema: &'static PatchSchema,
    path: Path<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE_MARKER) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let value = item
                    .get(key)
                    .ok_or_else(|| malformed(path, no_merge_key(Some(key))))?;
                original.retain(|stored| stored.get(key) != Some(value));
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(malformed(
                    path,
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => {
                return Err(malformed(
                    path,
                    format!("invalid value for {DIRECTIVE_MARKER} in a list: {directive}"),
                ));
            }
        }
    }
    if !replace {
        return Ok((original, plain));
    }
    let element = FieldSchema::nested("", schema);
    let element_path = path.child("[]");
    let replaced = plain
        .into_iter()
        .map(|item| normalize(item, &element, element_path))
        .collect::<Result<_, _>>()?;
    Ok((replaced, Vec::new()))
}

/// Upstream `mergeSliceWithoutSpecialElements`: merges each patch element into the stored
/// element with the same merge key value, or appends it.
fn merge_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
    schema: &PatchSchema,
    path: Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let element_path = path.child("[]");
    for item in patch {
        let Value::Object(item) = item else {
            return Err(malformed(
                path,
                "elements of a merging list must be objects",
            ));
        };
        let value = item
            .get(key)
            .ok_or_else(|| malformed(path, no_merge_key(Some(key))))?;
        let position = original
            .iter()
            .position(|stored| stored.get(key) == Some(value));
        let base = match position {
            Some(index) => match std::mem::take(&mut original[index]) {
                Value::Object(stored) => stored,
                // element_kind checked that all elements are objects.
                other => unreachable!("non-object element in a list of objects: {other}"),
            },
            None => Map::new(),
        };
        let merged = Value::Object(merge_map(base, item.clone(), schema, element_path)?);
        match position {
            Some(index) => original[index] = merged,
            None => original.push(merged),
        }
    }
    Ok(original)
}

/// What identifies a list element: its merge key value, or the element itself for scalars.
fn identity<'v>(item: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match merge_key {
        Some(key) => item.get(key),
        None => Some(item),
    }
}

fn index_in(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    let wanted = identity(item, merge_key)?;
    list.iter()
        .position(|candidate| identity(candidate, merge_key) == Some(wanted))
}

/// Upstream `partitionMapsByPresentInList` / `partitionPrimitivesByPresentInList`: splits
/// `merged` into the elements named in `by` and the server-only rest.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: Option<&str>,
    path: Path<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut named = Vec::with_capacity(merged.len());
    let mut server_only = Vec::with_capacity(merged.len());
    for item in merged {
        if identity(&item, merge_key).is_none() {
            return Err(unprocessable(path, no_merge_key(merge_key)));
        }
        if index_in(by, &item, merge_key).is_some() {
            named.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((named, server_only))
}

/// Upstream `normalizeElementOrder`: orders the patch elements by `patch_order` and the
/// server-only ones by `server_order`, then interleaves them (`mergeSortedSlice`).
///
/// Upstream's interleave takes a patch element first whenever it cannot compare the two
/// heads, so without `$setElementOrder` elements new to the list come *before* the
/// server-only ones that follow them (adding container `b` to `[a]` gives `[b, a]`).
/// Bosun keeps this so that results match kube-apiserver's exactly.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
    path: Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = sort_by_order(patch_items, patch_order, merge_key, path)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, path)?;

    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        let left_first = match (
            index_in(server_order, l, merge_key),
            index_in(server_order, r, merge_key),
        ) {
            (Some(li), Some(ri)) => li < ri,
            _ => false,
        };
        let next = if left_first {
            left.next()
        } else {
            right.next()
        };
        out.extend(next);
    }
    out.extend(left);
    out.extend(right);
    Ok(out)
}

/// Upstream `normalizeSliceOrder`: a stable sort by position in `order`, with `$patch:
/// delete` elements moved to the end. Elements absent from `order` go last, which upstream
/// leaves to the (inconsistent) comparator.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
    path: Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    if merge_key.is_some()
        && items
            .iter()
            .chain(order)
            .any(|item| identity(item, merge_key).is_none())
    {
        return Err(unprocessable(path, no_merge_key(merge_key)));
    }
    let (mut keep, deletes): (Vec<Value>, Vec<Value>) = items.into_iter().partition(|item| {
        merge_key.is_none()
            || item.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE)
    });
    keep.sort_by_cached_key(|item| index_in(order, item, merge_key).unwrap_or(usize::MAX));
    keep.extend(deletes);
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    type F = FieldSchema;

    // The test type of upstream patch_test.go (`MergeItem` and `RetainKeysMergeItem`).
    static MERGE_ITEM: PatchSchema = PatchSchema::new(&[
        F::merge_by_key("mergingList", "name", &MERGE_ITEM),
        F::nested("nonMergingList", &MERGE_ITEM),
        F::merge_scalars("mergingIntList"),
        F::merge_by_key("mergeItemPtr", "name", &MERGE_ITEM),
        F::replace("replacingItem"),
        F::nested("retainKeysMap", &RETAIN_KEYS_MERGE_ITEM).retain_keys(),
        F::merge_by_key("retainKeysMergingList", "name", &MERGE_ITEM).retain_keys(),
    ]);

    static RETAIN_KEYS_MERGE_ITEM: PatchSchema = PatchSchema::new(&[
        F::merge_scalars("mergingIntList"),
        F::merge_by_key("mergingList", "name", &MERGE_ITEM),
        F::nested("nonMergingList", &MERGE_ITEM),
    ]);

    /// Expected outcome: the merged document, or the HTTP status of the error.
    enum Want {
        Doc(Value),
        Status(u16),
    }

    /// One table row: name (with the upstream test it comes from), original, patch, want.
    type Case = (&'static str, Value, Value, Want);

    fn check(cases: Vec<Case>) {
        for (name, original, patch, want) in cases {
            let got = strategic_merge(&original, &patch, &MERGE_ITEM);
            match (got, want) {
                (Ok(got), Want::Doc(want)) => assert_eq!(got, want, "case {name:?}"),
                (Err(err), Want::Status(status)) => {
                    assert_eq!(err.http_status(), status, "case {name:?}: {err}")
                }
                (Ok(got), Want::Status(status)) => {
                    panic!("case {name:?}: want status {status}, got document {got}")
                }
                (Err(err), Want::Doc(want)) => panic!("case {name:?}: want {want}, got {err}"),
            }
        }
    }

    use Want::{Doc, Status};

    /// Cases from upstream patch_test.go `customStrategicMergePatchTestCaseData` and
    /// `customStrategicMergePatchRawTestCases` (original, twoWay, modified).
    #[test]
    fn upstream_custom_cases() {
        check(vec![
            (
                "unique scalars when merging lists",
                json!({"mergingIntList": [1, 2]}),
                json!({"mergingIntList": [2, 3]}),
                Doc(json!({"mergingIntList": [1, 2, 3]})),
            ),
            (
                "delete map from nested map",
                json!({"simpleMap": {"key1": 1, "key2": 1}}),
                json!({"simpleMap": {"$patch": "delete"}}),
                Doc(json!({"simpleMap": {}})),
            ),
            (
                "delete all items from merging list",
                json!({"mergingList": [{"name": 1}, {"name": 2}]}),
                json!({"mergingList": [{"$patch": "replace"}]}),
                Doc(json!({"mergingList": []})),
            ),
            (
                "merge empty merging lists",
                json!({"mergingList": []}),
                json!({"mergingList": []}),
                Doc(json!({"mergingList": []})),
            ),
            (
                "delete all keys from map",
                json!({"name": 1, "value": 1}),
                json!({"$patch": "replace"}),
                Doc(json!({})),
            ),
            (
                "add key and delete all keys from map",
                json!({"name": 1, "value": 1}),
                json!({"other": "a", "$patch": "replace"}),
                Doc(json!({"other": "a"})),
            ),
            (
                // Since kubernetes#38342 one delete directive removes every duplicate.
                "delete all duplicate entries in a merging list",
                json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
                Doc(json!({"mergingList": [{"name": 2, "value": "a"}]})),
            ),
            (
                "retainKeys map can add a field when no retainKeys directive present",
                json!({"retainKeysMap": {"name": "foo"}}),
                json!({"retainKeysMap": {"value": "bar"}}),
                Doc(json!({"retainKeysMap": {"name": "foo", "value": "bar"}})),
            ),
            (
                "retainKeys map can delete a field when no retainKeys directive present",
                json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
                json!({"retainKeysMap": {"value": null}}),
                Doc(json!({"retainKeysMap": {"name": "foo"}})),
            ),
            (
                "retainKeys list can change a field when no retainKeys directive present",
                json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
                json!({"retainKeysMergingList": [{"name": "foo", "value": "b"}]}),
                Doc(
                    json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "b"}]}),
                ),
            ),
            (
                "preserve the order from the patch in a merging list",
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
                Doc(
                    json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}]}),
                ),
            ),
            (
                "preserve the order from the patch in a merging list 2",
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
                Doc(
                    json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
                ),
            ),
            (
                "preserve the order from the patch in a merging int list",
                json!({"mergingIntList": [1, 2, 3]}),
                json!({"mergingIntList": [3, 1]}),
                Doc(json!({"mergingIntList": [2, 3, 1]})),
            ),
            (
                "$setElementOrder contains item that is not present in the list to be merged",
                json!({"mergingList": [{"name": 1}, {"name": 3}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                    "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
                }),
                Doc(json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]})),
            ),
            (
                "$setElementOrder contains item that is not present in the int list to be merged",
                json!({"mergingIntList": [1, 3]}),
                json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
                Doc(json!({"mergingIntList": [3, 1]})),
            ),
            (
                "should check if order in $setElementOrder and patch list match",
                json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                    "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
                }),
                Status(400),
            ),
            (
                "should check if order in $setElementOrder and patch int list match",
                json!({"mergingIntList": [1, 3, 2]}),
                json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
                Status(400),
            ),
            (
                "missing merge key should error out",
                json!({"mergingList": [{"name": 1, "value": "a"}]}),
                json!({"mergingList": [{"value": "b"}]}),
                Status(400),
            ),
        ]);
    }

    /// Three-way cases from upstream patch_test.go `createStrategicMergePatchTestCaseData`
    /// and `strategicMergePatchRawTestCases`: the threeWay patch applied to current must
    /// give result.
    #[test]
    fn upstream_three_way_cases() {
        check(vec![
            (
                "add field and delete field from map with conflict",
                json!({"name": "a", "other": "a"}),
                json!({"name": null, "value": 1}),
                Doc(json!({"value": 1, "other": "a"})),
            ),
            (
                "delete field from nested map with conflict",
                json!({"simpleMap": {"key1": "a", "key2": 1, "other": "a"}}),
                json!({"simpleMap": {"key1": 1, "key2": null}}),
                Doc(json!({"simpleMap": {"key1": 1, "other": "a"}})),
            ),
            (
                "replace list of scalars with conflict",
                json!({"nonMergingIntList": [1, 4]}),
                json!({"nonMergingIntList": [2, 3]}),
                Doc(json!({"nonMergingIntList": [2, 3]})),
            ),
            (
                "delete all maps from merging list with conflict",
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "other": "b"}]}),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "$patch": "delete"}]}),
                Doc(json!({"mergingList": []})),
            ),
            (
                "delete all maps from empty merging list",
                json!({"mergingList": []}),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "$patch": "delete"}]}),
                Doc(json!({"mergingList": []})),
            ),
            (
                "defined null values should propagate overwrite current fields (with conflict)",
                json!({"name": "a", "other": "a"}),
                json!({"name": 1, "value": 1, "other": null}),
                Doc(json!({"name": 1, "value": 1})),
            ),
            (
                "delete items in lists of scalars",
                json!({"mergingIntList": [1, 2, 3, 4]}),
                json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
                Doc(json!({"mergingIntList": [1, 2, 4]})),
            ),
            (
                "delete all duplicate items in lists of scalars",
                json!({"mergingIntList": [1, 2, 3, 3, 4]}),
                json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
                Doc(json!({"mergingIntList": [1, 2, 4]})),
            ),
            (
                "merge lists of maps",
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                    "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]
                }),
                Doc(json!({"mergingList": [
                    {"name": 4, "value": 4},
                    {"name": 1, "other": "a"},
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 3, "value": 3}
                ]})),
            ),
            (
                "merge lists of maps with conflict",
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 3, "other": "b"}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                    "mergingList": [{"name": 2, "value": 2}, {"name": 3, "value": 3}]
                }),
                Doc(json!({"mergingList": [
                    {"name": 1, "other": "a"},
                    {"name": 2, "value": 2, "other": "b"},
                    {"name": 3, "value": 3}
                ]})),
            ),
            (
                "retainKeys map nested merging int list with no change",
                json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingIntList", "name", "value"],
                    "$setElementOrder/mergingIntList": [1, 2],
                    "value": "bar"
                }}),
                Doc(
                    json!({"retainKeysMap": {"name": "foo", "value": "bar", "mergingIntList": [1, 2, 3]}}),
                ),
            ),
            (
                "retainKeys map adds an item and deletes an item in nested merging int list",
                json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3, 4]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingIntList", "name"],
                    "mergingIntList": [5],
                    "$deleteFromPrimitiveList/mergingIntList": [2],
                    "$setElementOrder/mergingIntList": [1, 3, 5]
                }}),
                Doc(json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 3, 5, 4]}})),
            ),
            (
                "retainKeys map deletes nested non-merging list with conflict",
                json!({"retainKeysMap": {"name": "foo", "nonMergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}),
                json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar", "nonMergingList": null}}),
                Doc(json!({"retainKeysMap": {"name": "foo", "value": "bar"}})),
            ),
            (
                "retainKeys map adds an item in nested merging list",
                json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingList", "name"],
                    "$setElementOrder/mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                    "mergingList": [{"name": "c"}]
                }}),
                Doc(
                    json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "x"}]}}),
                ),
            ),
            (
                "retainKeys map deletes an item in nested merging list",
                json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingList", "name"],
                    "$setElementOrder/mergingList": [{"name": "a"}],
                    "mergingList": [{"name": "b", "$patch": "delete"}]
                }}),
                Doc(
                    json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "x"}]}}),
                ),
            ),
            (
                "retainKeys list of maps clears a field",
                json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}]}),
                json!({
                    "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                    "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}]
                }),
                Doc(
                    json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
                ),
            ),
        ]);
    }

    /// Directive handling beyond the upstream tables, and the error classes.
    #[test]
    fn directives_and_errors() {
        check(vec![
            (
                // Upstream mergeSortedSlice: a new element is taken before server-only ones.
                "new element without $setElementOrder goes first",
                json!({"mergingList": [{"name": "a"}, {"name": "b"}]}),
                json!({"mergingList": [{"name": "c"}]}),
                Doc(json!({"mergingList": [{"name": "c"}, {"name": "a"}, {"name": "b"}]})),
            ),
            (
                "new scalar without $setElementOrder goes first",
                json!({"mergingIntList": [1, 2]}),
                json!({"mergingIntList": [3]}),
                Doc(json!({"mergingIntList": [3, 1, 2]})),
            ),
            (
                "replace directive on a list element keeps only the patch elements",
                json!({"mergingList": [{"name": "a", "value": 1}, {"name": "b"}]}),
                json!({"mergingList": [{"name": "c"}, {"$patch": "replace"}]}),
                Doc(json!({"mergingList": [{"name": "c"}]})),
            ),
            (
                // Upstream mergeSliceWithSpecialElements: the element carrying the
                // directive marks the whole list as replaced and is itself dropped.
                "replace directive on a list element replaces the list without it",
                json!({"mergingList": [{"name": "a", "value": 1, "other": "x"}]}),
                json!({"mergingList": [{"name": "a", "value": 2, "$patch": "replace"}]}),
                Doc(json!({"mergingList": []})),
            ),
            (
                "replace directive in a map inside a list element",
                json!({"mergingList": [{"name": "a", "simpleMap": {"k1": "v1", "k2": "v2"}}]}),
                json!({"mergingList": [{"name": "a", "simpleMap": {"$patch": "replace", "k3": "v3"}}]}),
                Doc(json!({"mergingList": [{"name": "a", "simpleMap": {"k3": "v3"}}]})),
            ),
            (
                "replace strategy field takes the patch value whole",
                json!({"replacingItem": {"a": 1, "b": 2}}),
                json!({"replacingItem": {"a": 3}}),
                Doc(json!({"replacingItem": {"a": 3}})),
            ),
            (
                "directives in values new to the original do not leak",
                json!({}),
                json!({"mergingList": [{"name": "a", "simpleMap": {"$patch": "replace", "k": "v"}}, {"name": "b", "$patch": "delete"}],
                       "simpleMap": {"x": null, "y": 1}}),
                Doc(
                    json!({"mergingList": [{"name": "a", "simpleMap": {"k": "v"}}], "simpleMap": {"y": 1}}),
                ),
            ),
            (
                "deleting from a missing primitive list leaves it missing",
                json!({"name": "x"}),
                json!({"$deleteFromPrimitiveList/mergingIntList": [1]}),
                Doc(json!({"name": "x"})),
            ),
            (
                "retainKeys clears unlisted keys",
                json!({"retainKeysMap": {"name": "foo", "value": "a", "other": "b"}}),
                json!({"retainKeysMap": {"$retainKeys": ["name"]}}),
                Doc(json!({"retainKeysMap": {"name": "foo"}})),
            ),
            (
                "type change replaces the value",
                json!({"simpleMap": {"a": 1}}),
                json!({"simpleMap": "text"}),
                Doc(json!({"simpleMap": "text"})),
            ),
            ("patch is not an object", json!({}), json!([1]), Status(400)),
            (
                "unknown map directive",
                json!({"a": {}}),
                json!({"a": {"$patch": "frobnicate"}}),
                Status(400),
            ),
            (
                "merge directive on a map",
                json!({"a": {}}),
                json!({"a": {"$patch": "merge"}}),
                Status(400),
            ),
            (
                "merge directive in a list",
                json!({"mergingList": [{"name": "a"}]}),
                json!({"mergingList": [{"name": "a", "$patch": "merge"}]}),
                Status(400),
            ),
            (
                "delete directive without merge key",
                json!({"mergingList": [{"name": "a"}]}),
                json!({"mergingList": [{"$patch": "delete"}]}),
                Status(400),
            ),
            (
                "retainKeys not a list",
                json!({"retainKeysMap": {}}),
                json!({"retainKeysMap": {"$retainKeys": "name"}}),
                Status(400),
            ),
            (
                "patch sets a key that retainKeys does not list",
                json!({"retainKeysMap": {}}),
                json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "x"}}),
                Status(400),
            ),
            (
                "setElementOrder not a list",
                json!({"mergingIntList": [1]}),
                json!({"$setElementOrder/mergingIntList": 1}),
                Status(400),
            ),
            (
                "directive key without field",
                json!({"mergingIntList": [1]}),
                json!({"$deleteFromPrimitiveList": [1]}),
                Status(400),
            ),
            (
                "deleteFromPrimitiveList not a list",
                json!({"mergingIntList": [1]}),
                json!({"$deleteFromPrimitiveList/mergingIntList": 1}),
                Status(400),
            ),
            (
                "list of lists",
                json!({"mergingIntList": [1]}),
                json!({"mergingIntList": [[2]]}),
                Status(422),
            ),
            (
                "element types differ between stored and patch list",
                json!({"mergingIntList": ["a"]}),
                json!({"mergingIntList": [1]}),
                Status(422),
            ),
            (
                "stored elements lack the merge key",
                json!({"mergingList": [{"value": 1}]}),
                json!({"mergingList": [{"name": "a"}]}),
                Status(422),
            ),
        ]);
    }

    #[test]
    fn original_is_not_modified_and_must_be_an_object() {
        let original = json!({"mergingList": [{"name": "a"}]});
        let before = original.clone();
        let merged = strategic_merge(
            &original,
            &json!({"mergingList": [{"name": "b"}]}),
            &MERGE_ITEM,
        )
        .expect("merge");
        assert_eq!(original, before);
        assert_ne!(merged, before);
        let err = strategic_merge(&json!([1]), &json!({}), &MERGE_ITEM).expect_err("array");
        assert_eq!(err.http_status(), 422);
    }

    #[test]
    fn error_messages_name_the_path() {
        let err = strategic_merge(
            &json!({"retainKeysMap": {"mergingList": []}}),
            &json!({"retainKeysMap": {"mergingList": [{"value": 1}]}}),
            &MERGE_ITEM,
        )
        .expect_err("missing merge key");
        let message = err.to_string();
        assert!(
            message.contains("retainKeysMap.mergingList"),
            "message without path: {message}"
        );
    }
}
