//! Label selectors, as in k8s.io/apimachinery `pkg/labels/selector.go` and
//! `pkg/apis/meta/v1/helpers.go` (`LabelSelectorAsSelector`).
//!
//! A [`LabelSelector`] is an AND of [`Requirement`]s, or the special selector that
//! matches nothing (upstream's `labels.Nothing()`, what a nil `*metav1.LabelSelector`
//! converts to). The string syntax is upstream's:
//!
//! ```text
//! <selector-syntax>         ::= <requirement> | <requirement> "," <selector-syntax>
//! <requirement>             ::= [!] KEY [ <set-based-restriction> | <exact-match-restriction> ]
//! <set-based-restriction>   ::= "" | <inclusion-exclusion> <value-set>
//! <inclusion-exclusion>     ::= "in" | "notin"
//! <value-set>               ::= "(" <values> ")"
//! <exact-match-restriction> ::= ["=" | "==" | "!=" | ">" | "<"] VALUE
//! ```
//!
//! Invariants: requirements are sorted by key (stably, upstream's sort is not stable but
//! agrees for distinct keys); each requirement's values are sorted; every requirement
//! passed upstream's `NewRequirement` checks (keys are qualified names, values label
//! values, value counts fit the operator). Parsing is a byte-for-byte port of upstream's
//! lexer and parser, so inputs are accepted, rejected and worded as upstream does.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

use crate::validation::{self, FieldError};

/// Labels a selector can be matched against: a map, or any other form that can look a
/// key up.
pub trait LabelSource {
    /// The value of label `key`, if set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSource for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// How a requirement relates a label's value to its values (upstream's
/// `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`.
    Equals,
    /// `key==value`.
    DoubleEquals,
    /// `key!=value`: also matches when the key is absent.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: also matches when the key is absent.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>1`: both sides parse as integers and compare.
    GreaterThan,
    /// `key<1`.
    LessThan,
}

impl Operator {
    /// Upstream's operator string (`"="`, `"in"`, `"gt"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// Upstream's `binaryOperators`, as listed in parse errors.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// Why a selector could not be built. Messages are upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The string form did not parse (`found 'x', expected: ...`,
    /// `unable to parse requirement: ...`).
    #[error("{0}")]
    Parse(String),
    /// A requirement failed `NewRequirement`'s checks (the aggregated field errors).
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `matchExpressions` operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{0:?} is not a valid label selector operator")]
    InvalidOperator(String),
}

/// One condition on one label.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label key, a qualified name.
    pub key: String,
    /// How the label's value is compared.
    pub operator: Operator,
    /// The values compared against, sorted.
    pub values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement with upstream's `NewRequirement` checks; errors are located
    /// under `path` (`key`, `values[0][key]`, ... when `path` is empty).
    pub fn new(
        key: &str,
        operator: Operator,
        mut values: Vec<String>,
        path: &str,
    ) -> Result<Requirement, SelectorError> {
        let errs = requirement_errors(key, operator, &values, path);
        if !errs.is_empty() {
            return Err(SelectorError::InvalidRequirement(
                validation::aggregate_message(&errs),
            ));
        }
        values.sort();
        Ok(Requirement {
            key: key.to_owned(),
            operator,
            values,
        })
    }

    /// Whether `labels` satisfies this requirement (upstream's `Requirement.Matches`).
    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.label(&self.key);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [bound] = self.values.as_slice() else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

/// `!key`, `key`, `key=v`, `key in (a,b)`: upstream's `Requirement.String`.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in (",
            Operator::NotIn => " notin (",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        f.write_str(&self.values.join(","))?;
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Upstream's `NewRequirement` checks, as field errors under `path`.
fn requirement_errors(key: &str, op: Operator, values: &[String], path: &str) -> Vec<FieldError> {
    let sub = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let mut errs = Vec::new();
    let key_errs = validation::is_qualified_name(key);
    if !key_errs.is_empty() {
        errs.push(FieldError::invalid(&sub("key"), key, &key_errs.join("; ")));
    }
    let values_path = sub("values");
    // Go marshals a nil []string (what an empty list becomes) as `null`.
    let values_json = if values.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(values)
    };
    match op {
        Operator::In | Operator::NotIn if values.is_empty() => {
            errs.push(FieldError::invalid_value(
                &values_path,
                values_json,
                "for 'in', 'notin' operators, values set can't be empty",
            ))
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            errs.push(FieldError::invalid_value(
                &values_path,
                values_json,
                "exact-match compatibility requires one single value",
            ))
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            errs.push(FieldError::invalid_value(
                &values_path,
                values_json,
                "values set must be empty for exists and does not exist",
            ))
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(FieldError::invalid_value(
                    &values_path,
                    values_json,
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(FieldError::invalid(
                        &format!("{values_path}[{i}]"),
                        v,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let value_errs = validation::is_valid_label_value(v);
        if !value_errs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{values_path}[{i}][{key}]"),
                v,
                &value_errs.join("; "),
            ));
        }
    }
    errs
}

/// A label selector: an AND of requirements, or nothing at all. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Upstream's `nothingSelector`: matches no label set.
    nothing: bool,
}

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// The labels of an object, or an empty map when it has none.
pub fn labels_of(meta: &metav1::ObjectMeta) -> &BTreeMap<String, String> {
    meta.labels.as_ref().unwrap_or(&EMPTY_LABELS)
}

impl LabelSelector {
    /// Matches every label set (upstream's `labels.Everything()`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Matches no label set (upstream's `labels.Nothing()`); prints as `""`.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// True for a selector that does not restrict (upstream's `Empty()`); false for
    /// [`nothing`](LabelSelector::nothing).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for [`nothing`](LabelSelector::nothing).
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key; empty for everything and for nothing.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// A selector from requirements built with [`Requirement::new`], sorted by key.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Matches exactly the given labels (upstream's `SelectorFromValidatedSet`); keys and
    /// values are not validated.
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        LabelSelector::from_requirements(requirements)
    }

    /// Parses upstream's string syntax (`a=b,c in (x,y),!d`); `""` is everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser {
            tokens: lex(s),
            position: 0,
        };
        let requirements = parser.parse()?;
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Converts an API selector like upstream's `LabelSelectorAsSelector`: `None` is
    /// nothing, an empty selector everything; `matchLabels` become `=` requirements and
    /// `matchExpressions` In, NotIn, Exists or DoesNotExist requirements.
    pub fn from_k8s(sel: Option<&metav1::LabelSelector>) -> Result<Self, SelectorError> {
        let Some(sel) = sel else {
            return Ok(LabelSelector::nothing());
        };
        let labels = sel.match_labels.iter().flatten();
        let exprs = sel.match_expressions.iter().flatten();
        let mut requirements = Vec::new();
        for (k, v) in labels {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()], "")?);
        }
        for expr in exprs {
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::InvalidOperator(other.to_owned())),
            };
            let values = expr.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(&expr.key, op, values, "")?);
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Whether `labels` satisfies every requirement (never, for nothing).
    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The single value the selector requires for `key`, if the first requirement on
    /// that key is `=`, `==`, or `in` with one value (upstream's `RequiresExactMatch`).
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

/// Upstream's canonical string: requirements joined by `,`; `""` for everything and
/// nothing alike.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

// ---- Lexer and parser: a port of upstream's, quirks included. ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream's `Lexer`: `read` yields 0 at the end, and a NUL byte ends a token too.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn read(&mut self) -> u8 {
        match self.s.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn lex(&mut self) -> (Token, &'a str) {
        let mut c = self.read();
        while is_whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            return (Token::EndOfString, "");
        }
        self.pos -= 1;
        if is_special(c) {
            self.scan_special()
        } else {
            self.scan_identifier()
        }
    }

    fn scan_identifier(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut end;
        loop {
            end = self.pos;
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special(c) || is_whitespace(c) {
                self.pos -= 1;
                break;
            }
        }
        // Token boundaries are ASCII bytes, so the slice is on char boundaries.
        let lit = self.s.get(start..end).unwrap_or("");
        (keyword(lit).unwrap_or(Token::Identifier), lit)
    }

    /// Longest run of special bytes that is still an operator (`!=`, `==`, `=`, ...).
    fn scan_special(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut last: Option<(Token, &'a str)> = None;
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if !is_special(c) {
                self.pos -= 1;
                break;
            }
            let buf = self.s.get(start..self.pos).unwrap_or("");
            match keyword(buf) {
                Some(t) => last = Some((t, buf)),
                None if last.is_some() => {
                    self.pos -= 1;
                    break;
                }
                None => {}
            }
        }
        // Every single special byte is an operator, so `last` is always set.
        last.unwrap_or((Token::EndOfString, ""))
    }
}

fn lex(s: &str) -> Vec<(Token, &str)> {
    let mut lexer = Lexer { s, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        let t = lexer.lex();
        tokens.push(t);
        if t.0 == Token::EndOfString {
            return tokens;
        }
    }
}

/// Upstream's parser contexts: in `Values`, `in` and `notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    tokens: Vec<(Token, &'a str)>,
    position: usize,
}

fn parse_err(msg: String) -> SelectorError {
    SelectorError::Parse(msg)
}

impl<'a> Parser<'a> {
    fn lookahead(&self, ctx: Context) -> (Token, &'a str) {
        // The last token is always EndOfString and is never consumed past.
        let (t, lit) = self.tokens[self.position.min(self.tokens.len() - 1)];
        match t {
            Token::In | Token::NotIn if ctx == Context::Values => (Token::Identifier, lit),
            _ => (t, lit),
        }
    }

    fn consume(&mut self, ctx: Context) -> (Token, &'a str) {
        let t = self.lookahead(ctx);
        self.position = (self.position + 1).min(self.tokens.len() - 1);
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (t, lit) = self.lookahead(Context::Values);
            match t {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| parse_err(format!("unable to parse requirement: {e}")))?;
                    requirements.push(r);
                    let (t, lit) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, lit2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(parse_err(format!(
                                    "found '{lit2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(parse_err(format!(
                                "found '{lit}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(parse_err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, unary) = self.parse_key_and_infer_operator()?;
        if let Some(op) = unary {
            return Requirement::new(key, op, Vec::new(), "");
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, op, values, "")
    }

    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(&'a str, Option<Operator>), SelectorError> {
        let mut op = None;
        let (mut t, mut lit) = self.consume(Context::Values);
        if t == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (t, lit) = self.consume(Context::Values);
        }
        if t != Token::Identifier {
            return Err(parse_err(format!("found '{lit}', expected: identifier")));
        }
        let key_errs = validation::is_qualified_name(lit);
        if !key_errs.is_empty() {
            // Upstream validates with a nil field path, which prints as "<nil>".
            let e = FieldError::invalid("<nil>", lit, &key_errs.join("; "));
            return Err(SelectorError::InvalidRequirement(e.to_string()));
        }
        let (next, _) = self.lookahead(Context::Values);
        if op.is_none() && (next == Token::EndOfString || next == Token::Comma) {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (t, lit) = self.consume(Context::KeyAndOperator);
        Ok(match t {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(parse_err(format!(
                    "found '{lit}', expected: {BINARY_OPERATORS}"
                )));
            }
        })
    }

    /// `(a,b,c)`, with upstream's treatment of empty entries: `()` and `(,)` hold `""`.
    fn parse_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let (t, lit) = self.consume(Context::Values);
        if t != Token::OpenPar {
            return Err(parse_err(format!("found '{lit}' expected: '('")));
        }
        let (t, lit) = self.lookahead(Context::Values);
        match t {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Context::Values);
                if t != Token::ClosedPar {
                    // Upstream reports the token that opened the list here.
                    return Err(parse_err(format!("found '{lit}', expected: ')'")));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(parse_err(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (t, lit) = self.consume(Context::Values);
            match t {
                Token::Identifier => {
                    set.insert(lit.to_owned());
                    let (t2, lit2) = self.lookahead(Context::Values);
                    match t2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => {
                            return Err(parse_err(format!("found '{lit2}', expected: ',' or ')'")));
                        }
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (t2, _) = self.lookahead(Context::Values);
                    if t2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set.into_iter().collect());
                    }
                    if t2 == Token::Comma {
                        self.consume(Context::Values);
                        set.insert(String::new());
                    }
                }
                _ => {
                    return Err(parse_err(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        let (t, _) = self.lookahead(Context::Values);
        if t == Token::EndOfString || t == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (t, lit) = self.consume(Context::Values);
        if t == Token::Identifier {
            Ok(vec![lit.to_owned()])
        } else {
            Err(parse_err(format!("found '{lit}', expected: identifier")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Parses `input`; `Ok` holds the canonical string, `Err` the exact error message.
    fn check(input: &str, expected: Result<&str, &str>) {
        let got = LabelSelector::parse(input)
            .map(|s| s.to_string())
            .map_err(|e| e.to_string());
        let expected = expected.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn parse() {
        // selector_test.go: TestSelectorParse and TestSetSelectorParser.
        let name_part = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        let bad_key = format!(
            "unable to parse requirement: <nil>: Invalid value: \"Key_\": name part {name_part}"
        );
        let value_msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        let bad_value = format!(
            "unable to parse requirement: values[0][x]: Invalid value: \"a_\": {value_msg}"
        );
        let bad_pipes = format!(
            "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {value_msg}"
        );
        let table: &[(&str, Result<&str, &str>)] = &[
            ("x=a,y=b,z=c", Ok("x=a,y=b,z=c")),
            ("", Ok("")),
            ("x!=a,y=b", Ok("x!=a,y=b")),
            ("!x", Ok("!x")),
            ("x>1", Ok("x>1")),
            ("x>1,z<5", Ok("x>1,z<5")),
            ("x=,z= ", Ok("x=,z=")),
            ("x= ,z= ", Ok("x=,z=")),
            ("\rx", Ok("x")),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                Ok("this-is-a-dns.domain.com/key-with-dash"),
            ),
            (
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
                Ok("this-is-another-dns.domain.com/key-with-dash in (so,what)"),
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tock.clock)",
                Ok("0.1.2.domain/99 notin (10.10.100.1,tick.tock.clock)"),
            ),
            ("foo  in\t (abc)", Ok("foo in (abc)")),
            ("x notin\n (abc)", Ok("x notin (abc)")),
            ("x  notin\t\t(abc,def)", Ok("x notin (abc,def)")),
            ("x in (abc,def)", Ok("x in (abc,def)")),
            ("x in (abc,)", Ok("x in (,abc)")),
            ("x in ()", Ok("x in ()")),
            (
                "x notin (abc,,def),bar,z in (),w",
                Ok("bar,w,x notin (,abc,def),z in ()"),
            ),
            ("x,y in (a)", Ok("x,y in (a)")),
            ("x=a", Ok("x=a")),
            ("x==a", Ok("x==a")),
            ("x<7", Ok("x<7")),
            ("x=a,y!=b,z in (h,i,j)", Ok("x=a,y!=b,z in (h,i,j)")),
            ("x notin ( )", Ok("x notin ()")),
            ("x notin (, a)", Ok("x notin (,a)")),
            ("a ", Ok("a")),
            ("a in (x,y,notin, z,in)", Ok("a in (in,notin,x,y,z)")),
            ("notin=in", Ok("notin=in")),
            ("z,y=b,x", Ok("x,y=b,z")),
            ("x=a||y=b", Err(&bad_pipes)),
            (
                "x==a==b",
                Err("found '==', expected: ',' or 'end of string'"),
            ),
            ("!x=a", Err("found '=', expected: ',' or 'end of string'")),
            (
                "x<a",
                Err(
                    "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
                ),
            ),
            ("x,,y", Err("found ',', expected: identifier after ','")),
            (
                ",x,y",
                Err("found ',', expected: !, identifier, or 'end of string'"),
            ),
            (
                "x nott in (y)",
                Err(
                    "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt",
                ),
            ),
            (
                "a in (xyz),",
                Err("found '', expected: identifier after ','"),
            ),
            (
                "a in (xyz)b notin ()",
                Err("found 'b', expected: ',' or 'end of string'"),
            ),
            (
                "a in (xyz abc)",
                Err("unable to parse requirement: found 'abc', expected: ',' or ')'"),
            ),
            (
                "a notin(",
                Err("unable to parse requirement: found '', expected: ',', ')' or identifier"),
            ),
            (
                "a (",
                Err(
                    "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
                ),
            ),
            (
                "(",
                Err("found '(', expected: !, identifier, or 'end of string'"),
            ),
            (
                "x in a",
                Err("unable to parse requirement: found 'a' expected: '('"),
            ),
            (
                "!",
                Err("unable to parse requirement: found '', expected: identifier"),
            ),
            ("Key_", Err(&bad_key)),
            ("x=a_", Err(&bad_value)),
        ];
        for (input, expected) in table {
            check(input, *expected);
        }
    }

    #[test]
    fn matches() {
        // selector_test.go: TestSelectorMatches and TestSetMatches.
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let table: &[Case] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("notin=in", &[("notin", "in")], true),
            ("x", &[("x", "z")], true),
            ("!x", &[("y", "z")], true),
            ("x>1", &[("x", "2")], true),
            ("x<1", &[("x", "0")], true),
            ("x=z", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x", &[("y", "z")], false),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "0")], false),
            ("x<1", &[("x", "2")], false),
            ("x>1", &[("x", "a")], false),
            ("x>1", &[], false),
            ("x!=y", &[], true),
            ("x notin (a)", &[], true),
            ("x in (a,b)", &[("x", "b")], true),
            ("x in (a,b)", &[], false),
            ("x in ()", &[("x", "")], true),
        ];
        for &(selector, labels, expected) in table {
            let sel = LabelSelector::parse(selector).unwrap();
            assert_eq!(
                sel.matches(&set(labels)),
                expected,
                "{selector} on {labels:?}"
            );
        }
        assert!(!LabelSelector::nothing().matches(&set(&[])));
        assert!(LabelSelector::everything().matches(&set(&[])));
        assert!(LabelSelector::everything().is_everything());
        assert!(!LabelSelector::nothing().is_everything());
    }

    #[test]
    fn requirements_to_string() {
        // selector_test.go: TestToString.
        let req = |k: &str, op, vals: &[&str]| {
            Requirement::new(k, op, vals.iter().map(|v| (*v).to_owned()).collect(), "").unwrap()
        };
        let table: Vec<(Vec<Requirement>, &str)> = vec![
            (
                vec![
                    req("x", Operator::In, &["def", "abc"]),
                    req("y", Operator::NotIn, &["jkl"]),
                    req("z", Operator::Exists, &[]),
                ],
                "x in (abc,def),y notin (jkl),z",
            ),
            (
                vec![
                    req("x", Operator::NotIn, &["abc", "def"]),
                    req("y", Operator::NotEquals, &["jkl"]),
                    req("z", Operator::DoesNotExist, &[]),
                ],
                "x notin (abc,def),y!=jkl,!z",
            ),
            (
                vec![
                    req("x", Operator::NotIn, &["abc"]),
                    req("y", Operator::In, &["jkl", "mno"]),
                    req("z", Operator::NotIn, &[""]),
                ],
                "x notin (abc),y in (jkl,mno),z notin ()",
            ),
            (
                vec![
                    req("x", Operator::Equals, &["abc"]),
                    req("y", Operator::DoubleEquals, &["jkl"]),
                    req("z", Operator::NotEquals, &["a"]),
                    req("z", Operator::Exists, &[]),
                ],
                "x=abc,y==jkl,z!=a,z",
            ),
            (
                vec![
                    req("x", Operator::GreaterThan, &["2"]),
                    req("y", Operator::LessThan, &["8"]),
                    req("z", Operator::Exists, &[]),
                ],
                "x>2,y<8,z",
            ),
        ];
        for (reqs, expected) in table {
            assert_eq!(LabelSelector::from_requirements(reqs).to_string(), expected);
        }
    }

    #[test]
    fn requirement_constructor() {
        // selector_test.go: TestRequirementConstructor (errors as aggregated messages).
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        type Case<'a> = (&'a str, Operator, &'a [&'a str], Result<(), &'a str>);
        let table: &[Case] = &[
            (
                "x1",
                Operator::In,
                &[],
                Err(
                    "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
                ),
            ),
            (
                "x2",
                Operator::NotIn,
                &[],
                Err(
                    "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
                ),
            ),
            ("x3", Operator::In, &["foo"], Ok(())),
            ("x4", Operator::NotIn, &["foo"], Ok(())),
            (
                "x5",
                Operator::Equals,
                &["foo", "bar"],
                Err(
                    "values: Invalid value: [\"foo\",\"bar\"]: exact-match compatibility requires one single value",
                ),
            ),
            ("x6", Operator::Exists, &[], Ok(())),
            ("x7", Operator::DoesNotExist, &[], Ok(())),
            (
                "x8",
                Operator::Exists,
                &["foo"],
                Err(
                    "values: Invalid value: [\"foo\"]: values set must be empty for exists and does not exist",
                ),
            ),
            ("x9", Operator::In, &["bar"], Ok(())),
            ("x10", Operator::GreaterThan, &["2"], Ok(())),
            ("x11", Operator::LessThan, &["6"], Ok(())),
            (
                "x12",
                Operator::GreaterThan,
                &["2", "3"],
                Err(
                    "values: Invalid value: [\"2\",\"3\"]: for 'Gt', 'Lt' operators, exactly one value is required",
                ),
            ),
            (
                "x13",
                Operator::GreaterThan,
                &["bar"],
                Err(
                    "values[0]: Invalid value: \"bar\": for 'Gt', 'Lt' operators, the value must be an integer",
                ),
            ),
            (
                "x14",
                Operator::LessThan,
                &["bar"],
                Err(
                    "values[0]: Invalid value: \"bar\": for 'Gt', 'Lt' operators, the value must be an integer",
                ),
            ),
            (
                "y15",
                Operator::GreaterThan,
                &["-1"],
                Err(
                    "values[0][y15]: Invalid value: \"-1\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ),
            ),
            (
                "x16",
                Operator::Equals,
                &["a", "b_"],
                Err(
                    "[values: Invalid value: [\"a\",\"b_\"]: exact-match compatibility requires one single value, values[1][x16]: Invalid value: \"b_\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]",
                ),
            ),
        ];
        for &(key, op, values, expected) in table {
            let got = Requirement::new(key, op, strings(values), "")
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_owned), "{key}");
        }
    }

    #[test]
    fn from_k8s() {
        // helpers_test.go: TestLabelSelectorAsSelector, plus operator and value errors.
        let expr =
            |key: &str, op: &str, values: Option<&[&str]>| metav1::LabelSelectorRequirement {
                key: key.to_owned(),
                operator: op.to_owned(),
                values: values.map(|v| v.iter().map(|s| (*s).to_owned()).collect()),
            };
        let sel = |labels: &[(&str, &str)], exprs: Vec<metav1::LabelSelectorRequirement>| {
            metav1::LabelSelector {
                match_labels: if labels.is_empty() {
                    None
                } else {
                    Some(set(labels))
                },
                match_expressions: if exprs.is_empty() { None } else { Some(exprs) },
            }
        };
        let table: Vec<(Option<metav1::LabelSelector>, Result<&str, &str>)> = vec![
            (Some(sel(&[], vec![])), Ok("")),
            (
                Some(sel(&[("foo", "bar")], vec![expr("baz", "Exists", None)])),
                Ok("baz,foo=bar"),
            ),
            (
                Some(sel(&[], vec![expr("a", "In", Some(&["y", "x", "x"]))])),
                Ok("a in (x,x,y)"),
            ),
            (
                Some(sel(
                    &[],
                    vec![
                        expr("a", "NotIn", Some(&["x"])),
                        expr("b", "DoesNotExist", None),
                    ],
                )),
                Ok("a notin (x),!b"),
            ),
            (
                Some(sel(
                    &[],
                    vec![expr("baz", "Exists", Some(&["qux", "norf"]))],
                )),
                Err(
                    "values: Invalid value: [\"qux\",\"norf\"]: values set must be empty for exists and does not exist",
                ),
            ),
            (
                Some(sel(&[], vec![expr("a", "In", Some(&[]))])),
                Err(
                    "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
                ),
            ),
            (
                Some(sel(&[], vec![expr("a", "Gt", Some(&["1"]))])),
                Err("\"Gt\" is not a valid label selector operator"),
            ),
        ];
        for (input, expected) in table {
            let got = LabelSelector::from_k8s(input.as_ref())
                .map(|s| s.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                expected.map(str::to_owned).map_err(str::to_owned),
                "{input:?}"
            );
        }
        let nothing = LabelSelector::from_k8s(None).unwrap();
        assert!(nothing.is_nothing() && !nothing.matches(&set(&[])));
        let everything = LabelSelector::from_k8s(Some(&sel(&[], vec![]))).unwrap();
        assert!(everything.is_everything() && everything.matches(&set(&[("a", "b")])));
    }

    #[test]
    fn exact_match_and_labels_of() {
        // selector_test.go: TestRequiresExactMatch.
        let table: &[(&str, &str, Option<&str>)] = &[
            ("foo=bar", "foo", Some("bar")),
            ("foo==bar", "foo", Some("bar")),
            ("foo in (bar)", "foo", Some("bar")),
            ("foo in (bar,baz)", "foo", None),
            ("foo!=bar", "foo", None),
            ("foo=bar", "baz", None),
            ("baz=quux,foo=bar", "baz", Some("quux")),
        ];
        for &(selector, key, expected) in table {
            assert_eq!(
                LabelSelector::parse(selector)
                    .unwrap()
                    .requires_exact_match(key),
                expected,
                "{selector}"
            );
        }
        let mut meta = metav1::ObjectMeta::default();
        assert!(labels_of(&meta).is_empty());
        meta.labels = Some(set(&[("a", "b")]));
        assert_eq!(labels_of(&meta), &set(&[("a", "b")]));
        assert_eq!(
            LabelSelector::from_set(&set(&[("b", "2"), ("a", "1")])).to_string(),
            "a=1,b=2"
        );
    }
}
