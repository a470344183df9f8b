//! Field selectors (`metadata.name=x,spec.nodeName!=y`), as in k8s.io/apimachinery
//! `pkg/fields/selector.go`.
//!
//! A [`FieldSelector`] is an AND of `field=value` / `field!=value` terms. Values may
//! contain `,`, `=` and `\` only escaped with a backslash (upstream's `EscapeValue` /
//! `UnescapeValue`); field names are taken verbatim up to the first operator and are not
//! validated here (the API server checks them per kind). Whitespace is significant.
//!
//! Invariants: requirements are in upstream's order (terms sorted by their raw text
//! before parsing); a term with an empty field and an empty value is dropped, as
//! upstream's transform step drops it. An absent field compares as `""`, as upstream's
//! `fields.Set.Get` does.

use std::fmt;
use std::str::FromStr;

/// How a field's value is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOp {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    /// The field path, e.g. `spec.nodeName`.
    pub field: String,
    /// The comparison.
    pub op: FieldOp,
    /// The value, unescaped.
    pub value: String,
}

/// Why a field selector did not parse. Messages are upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    InvalidTerm {
        /// The whole selector.
        selector: String,
        /// The term that failed.
        term: String,
    },
    /// A backslash not followed by `\`, `,` or `=` (or ending the value).
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// An unescaped `,` or `=` in a value; upstream prints the character's code point.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedRune(char),
}

/// A field selector: an AND of [`FieldRequirement`]s. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// Upstream's `EscapeValue`: prefixes `\`, `,` and `=` with a backslash.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Upstream's `UnescapeValue`: the inverse of [`escape_value`], rejecting unknown escapes
/// and unescaped `,` or `=`.
pub fn unescape_value(s: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(FieldSelectorError::InvalidEscape(format!("\\{c}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(FieldSelectorError::UnescapedRune(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(FieldSelectorError::InvalidEscape("\\".to_owned()));
    }
    Ok(out)
}

/// Upstream's `splitTerms`: splits on commas that are not backslash-escaped, keeping
/// the escapes in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Upstream's `splitTerm`: the first position where `!=`, `==` or `=` starts (tried in
/// that order) splits the term; the right side is still escaped.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    const OPERATORS: [(&str, FieldOp); 3] = [
        ("!=", FieldOp::NotEquals),
        ("==", FieldOp::Equals),
        ("=", FieldOp::Equals),
    ];
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        OPERATORS
            .iter()
            .find(|(op, _)| rest.starts_with(op))
            .map(|&(op, kind)| (&term[..i], kind, &rest[op.len()..]))
    })
}

impl FieldSelector {
    /// Matches every object (upstream's `fields.Everything()`).
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// True when the selector has no requirement.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, in upstream's order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Parses upstream's syntax: comma-separated `field=value`, `field==value` or
    /// `field!=value` terms; `""` is everything.
    pub fn parse(s: &str) -> Result<Self, FieldSelectorError> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, op, raw)) = split_term(term) else {
                return Err(FieldSelectorError::InvalidTerm {
                    selector: s.to_owned(),
                    term: term.to_owned(),
                });
            };
            let value = unescape_value(raw)?;
            if field.is_empty() && value.is_empty() {
                // Upstream's Transform turns such a term into Everything and drops it.
                continue;
            }
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                op,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Matches one `field=value` term (upstream's `OneTermEqualSelector`).
    pub fn one_term_equal(field: &str, value: &str) -> Self {
        FieldSelector {
            requirements: vec![FieldRequirement {
                field: field.to_owned(),
                op: FieldOp::Equals,
                value: value.to_owned(),
            }],
        }
    }

    /// Whether every requirement holds; `get` returns a field's value, and `None`
    /// compares as `""`.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = get(&r.field).unwrap_or_default();
            match r.op {
                FieldOp::Equals => actual == r.value,
                FieldOp::NotEquals => actual != r.value,
            }
        })
    }

    /// The value of the first `=` requirement on `field` (upstream's
    /// `RequiresExactMatch`), e.g. to use an index on `spec.nodeName`.
    pub fn value_for(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.op == FieldOp::Equals && r.field == field)
            .map(|r| r.value.as_str())
    }
}

/// Upstream's string form: terms joined by `,`, values escaped, `==` printed as `=`.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.op {
                FieldOp::Equals => "=",
                FieldOp::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = FieldSelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Parses `input`; `Ok` holds the string form, `Err` the exact error message.
    fn check(input: &str, expected: Result<&str, &str>) {
        let got = FieldSelector::parse(input)
            .map(|s| s.to_string())
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map(str::to_owned).map_err(str::to_owned),
            "input {input:?}"
        );
    }

    #[test]
    fn parse() {
        // selector_test.go (pkg/fields): TestSelectorParse, with upstream's messages.
        let table: &[(&str, Result<&str, &str>)] = &[
            ("x=a,y=b,z=c", Ok("x=a,y=b,z=c")),
            ("", Ok("")),
            ("x!=a,y=b", Ok("x!=a,y=b")),
            (r"x=a||y\=b", Ok(r"x=a||y\=b")),
            (r"x=a\=\=b", Ok(r"x=a\=\=b")),
            ("x==a", Ok("x=a")),
            ("z=c,x=a", Ok("x=a,z=c")),
            (r"x=a\,b,y=c", Ok(r"x=a\,b,y=c")),
            ("x=", Ok("x=")),
            ("=", Ok("")),
            ("x=a,,", Ok("x=a")),
            (" x = a ", Ok(" x = a ")),
            ("spec.nodeName=", Ok("spec.nodeName=")),
            (
                "x=a||y=b",
                Err("invalid field selector: unescaped character in value: 61"),
            ),
            (
                "x==a==b",
                Err("invalid field selector: unescaped character in value: 61"),
            ),
            (
                "x=a,b",
                Err("invalid selector: 'x=a,b'; can't understand 'b'"),
            ),
            (
                "x in (a)",
                Err("invalid selector: 'x in (a)'; can't understand 'x in (a)'"),
            ),
            (
                "x in (a,b,c)",
                Err("invalid selector: 'x in (a,b,c)'; can't understand 'b'"),
            ),
            ("x", Err("invalid selector: 'x'; can't understand 'x'")),
            (
                r"x=a\b",
                Err(r"invalid field selector: invalid escape sequence: \b"),
            ),
            (
                r"x=a\",
                Err(r"invalid field selector: invalid escape sequence: \"),
            ),
        ];
        for (input, expected) in table {
            check(input, *expected);
        }
    }

    #[test]
    fn escaping() {
        // selector_test.go: TestEscapeValue and TestUnescapeValue.
        let table: &[(&str, &str)] = &[
            ("", ""),
            ("a", "a"),
            ("=", r"\="),
            (",", r"\,"),
            ("\\", r"\\"),
            (r"\=\,\", r"\\\=\\\,\\"),
        ];
        for &(raw, escaped) in table {
            assert_eq!(escape_value(raw), escaped);
            assert_eq!(unescape_value(escaped).as_deref(), Ok(raw));
        }
        let invalid: &[(&str, FieldSelectorError)] = &[
            (r"\", FieldSelectorError::InvalidEscape(r"\".into())),
            (r"\\\", FieldSelectorError::InvalidEscape(r"\".into())),
            (r"\a", FieldSelectorError::InvalidEscape(r"\a".into())),
            (r"\\\a", FieldSelectorError::InvalidEscape(r"\a".into())),
            ("=", FieldSelectorError::UnescapedRune('=')),
            (",", FieldSelectorError::UnescapedRune(',')),
        ];
        for (input, expected) in invalid {
            assert_eq!(unescape_value(input).as_ref(), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn matches() {
        // selector_test.go: TestSelectorMatches; absent fields compare as "".
        let fieldset: BTreeMap<String, String> =
            [("foo", "bar"), ("baz", "blah"), ("complex", r"=value\,\")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        let table: &[(&str, bool)] = &[
            ("", true),
            ("foo=bar", true),
            ("baz=blah", true),
            ("foo=bar,baz=blah", true),
            (r"foo=bar,baz=blah,complex=\=value\\\,\\", true),
            ("foo=blah", false),
            ("baz=bar", false),
            ("foo=bar,foobar=bar,baz=blah", false),
            ("foobar=", true),
            ("foobar!=", false),
            ("foo!=bar", false),
            ("foo!=baz", true),
        ];
        for &(selector, expected) in table {
            let sel = FieldSelector::parse(selector).unwrap();
            assert_eq!(
                sel.matches(|f| fieldset.get(f).cloned()),
                expected,
                "{selector}"
            );
        }
    }

    #[test]
    fn value_for() {
        // selector_test.go: TestRequiresExactMatch.
        let table: &[(&str, &str, Option<&str>)] = &[
            ("foo=bar", "foo", Some("bar")),
            ("foo=bar", "baz", None),
            ("foo!=bar", "foo", None),
            ("foo=bar,baz=quux", "baz", Some("quux")),
            (
                "spec.nodeName=n1,metadata.name=p",
                "spec.nodeName",
                Some("n1"),
            ),
        ];
        for &(selector, field, expected) in table {
            assert_eq!(
                FieldSelector::parse(selector).unwrap().value_for(field),
                expected,
                "{selector}"
            );
        }
        assert!(FieldSelector::everything().is_everything());
        assert_eq!(
            FieldSelector::one_term_equal("a", "b=c").to_string(),
            r"a=b\=c"
        );
    }
}
