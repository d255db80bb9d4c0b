//! ASL paths: JSONPath (Jayway flavour, as Step Functions uses) and the
//! reference-path subset.
//!
//! Contract:
//! - [`JsonPath::parse`] accepts `$`/`$$` followed by `.name`, `['name']`,
//!   `[n]` (negative counts from the end), `.*`/`[*]`, `..name`/`..*`,
//!   unions `['a','b']`/`[0,2]`, slices `[a:b:c]` and filters `[?(...)]`
//!   (comparisons `== != < <= > >=` between `@...`/`$...` paths and literals,
//!   `&&`, `||`, `!`, parentheses, bare `@.x` for existence).
//! - A path is *definite* when it can only name one node (names and indices);
//!   selecting a definite path yields that node (`$.a[0].b` is the node, never a
//!   one-element list) or [`PathError::NotFound`]. An indefinite path yields the
//!   JSON array of all matches (possibly empty), as Jayway does.
//! - A *reference path* ([`JsonPath::is_reference`]) is a definite path without
//!   negative indices: the only kind allowed in `ResultPath`, `ItemsPath`, a
//!   Choice `Variable`, `SecondsPath` and so on. [`JsonPath::set`] writes at a
//!   reference path, creating missing objects on the way (ResultPath semantics).
//!
//! Hand-written rather than a crate: see the note in Cargo.toml.

use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt;

/// Which document a path reads: the state input (`$`) or the context object (`$$`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Input,
    Context,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    Wildcard,
    /// `..name` (that member at any depth) or `..*` (every descendant).
    Descend(Option<String>),
    /// `..[...]`: the current node and every descendant, then the bracket.
    DescendSelf,
    Names(Vec<String>),
    Indices(Vec<i64>),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Exists(Operand),
    Cmp(Operand, CmpOp, Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Current(Vec<Segment>),
    Root(Vec<Segment>),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    root: Root,
    segments: Vec<Segment>,
}

/// Path syntax or evaluation failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("invalid path '{path}': {reason}")]
    Syntax { path: String, reason: String },
    #[error("the path '{0}' could not be found in the input")]
    NotFound(String),
    #[error("cannot write at '{path}': {reason}")]
    NotWritable { path: String, reason: String },
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonPath {
    /// Parse a JSONPath starting with `$` or `$$`.
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let err = |reason: &str| PathError::Syntax { path: text.to_string(), reason: reason.to_string() };
        let (root, rest) = if let Some(r) = text.strip_prefix("$$") {
            (Root::Context, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (Root::Input, r)
        } else {
            return Err(err("a path must start with '$'"));
        };
        let mut p = Parser { s: rest.as_bytes(), src: rest, i: 0 };
        let segments = p.segments(false).map_err(|r| err(&r))?;
        if p.i != p.s.len() {
            return Err(err(&format!("unexpected '{}'", &rest[p.i..])));
        }
        Ok(JsonPath { text: text.to_string(), root, segments })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn root(&self) -> Root {
        self.root
    }

    /// `$` alone.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Names at most one node.
    pub fn is_definite(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Field(_) | Segment::Index(_)))
    }

    /// A reference path in the ASL sense: only names and non-negative indices.
    pub fn is_reference(&self) -> bool {
        self.segments.iter().all(|s| match s {
            Segment::Field(_) => true,
            Segment::Index(i) => *i >= 0,
            _ => false,
        })
    }

    /// Select from `doc`. Definite paths return the node or `NotFound`;
    /// indefinite paths return an array of matches.
    pub fn select(&self, doc: &Value) -> Result<Value, PathError> {
        self.select_ref(doc, doc).map(|v| match v {
            Selected::One(v) => v.clone(),
            Selected::Many(v) => Value::Array(v.into_iter().cloned().collect()),
        })
    }

    /// Like [`select`](Self::select) but without cloning a definite result.
    pub fn select_ref<'v>(&self, doc: &'v Value, root: &'v Value) -> Result<Selected<'v>, PathError> {
        if self.is_definite() {
            let mut cur = doc;
            for seg in &self.segments {
                cur = step_definite(cur, seg).ok_or_else(|| PathError::NotFound(self.text.clone()))?;
            }
            Ok(Selected::One(cur))
        } else {
            let mut out = Vec::new();
            walk(doc, &self.segments, root, &mut out);
            Ok(Selected::Many(out))
        }
    }

    /// Write `value` at this reference path inside `target` (ResultPath).
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), PathError> {
        let fail = |reason: String| PathError::NotWritable { path: self.text.clone(), reason };
        if !self.is_reference() {
            return Err(fail("not a reference path".into()));
        }
        let Some((last, init)) = self.segments.split_last() else {
            *target = value;
            return Ok(());
        };
        let mut cur = target;
        for seg in init {
            cur = match seg {
                Segment::Field(name) => match cur {
                    Value::Object(m) => m.entry(name.clone()).or_insert_with(|| Value::Object(Map::new())),
                    other => return Err(fail(format!("'{name}' is looked up in a {}", type_name(other)))),
                },
                Segment::Index(i) => {
                    let kind = type_name(cur);
                    match cur {
                        Value::Array(a) if (*i as usize) < a.len() => &mut a[*i as usize],
                        _ => return Err(fail(format!("index {i} is not in a {kind} of that length"))),
                    }
                }
                _ => return Err(fail("not a reference path".into())),
            };
        }
        match (last, cur) {
            (Segment::Field(name), Value::Object(m)) => {
                m.insert(name.clone(), value);
                Ok(())
            }
            (Segment::Index(i), Value::Array(a)) if (*i as usize) < a.len() => {
                a[*i as usize] = value;
                Ok(())
            }
            (_, other) => Err(fail(format!("the target is a {}", type_name(other)))),
        }
    }
}

/// Result of [`JsonPath::select_ref`].
#[derive(Debug)]
pub enum Selected<'v> {
    One(&'v Value),
    Many(Vec<&'v Value>),
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn step_definite<'v>(cur: &'v Value, seg: &Segment) -> Option<&'v Value> {
    match seg {
        Segment::Field(name) => cur.as_object()?.get(name),
        Segment::Index(i) => {
            let a = cur.as_array()?;
            let idx = if *i < 0 { a.len() as i64 + i } else { *i };
            if idx < 0 { None } else { a.get(idx as usize) }
        }
        _ => None,
    }
}

fn walk<'v>(cur: &'v Value, segs: &[Segment], root: &'v Value, out: &mut Vec<&'v Value>) {
    let Some((seg, rest)) = segs.split_first() else {
        out.push(cur);
        return;
    };
    match seg {
        Segment::Field(_) | Segment::Index(_) => {
            if let Some(next) = step_definite(cur, seg) {
                walk(next, rest, root, out);
            }
        }
        Segment::Wildcard => {
            for child in children(cur) {
                walk(child, rest, root, out);
            }
        }
        Segment::Names(names) => {
            if let Some(m) = cur.as_object() {
                for n in names {
                    if let Some(v) = m.get(n) {
                        walk(v, rest, root, out);
                    }
                }
            }
        }
        Segment::Indices(idx) => {
            for i in idx {
                if let Some(v) = step_definite(cur, &Segment::Index(*i)) {
                    walk(v, rest, root, out);
                }
            }
        }
        Segment::Slice(start, end, step) => {
            if let Some(a) = cur.as_array() {
                for i in slice_indices(a.len(), *start, *end, *step) {
                    walk(&a[i], rest, root, out);
                }
            }
        }
        Segment::Filter(f) => match cur {
            Value::Array(a) => {
                for item in a {
                    if eval_filter(f, item, root) {
                        walk(item, rest, root, out);
                    }
                }
            }
            Value::Object(_) if eval_filter(f, cur, root) => walk(cur, rest, root, out),
            _ => {}
        },
        Segment::Descend(name) => {
            descend(cur, name.as_deref(), rest, root, out);
        }
        Segment::DescendSelf => {
            walk(cur, rest, root, out);
            for child in children(cur) {
                walk(child, segs, root, out);
            }
        }
    }
}

fn descend<'v>(
    cur: &'v Value,
    name: Option<&str>,
    rest: &[Segment],
    root: &'v Value,
    out: &mut Vec<&'v Value>,
) {
    match name {
        Some(n) => {
            if let Some(v) = cur.as_object().and_then(|m| m.get(n)) {
                walk(v, rest, root, out);
            }
        }
        None => {
            for child in children(cur) {
                walk(child, rest, root, out);
            }
        }
    }
    for child in children(cur) {
        descend(child, name, rest, root, out);
    }
}

fn children(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(a) => Box::new(a.iter()),
        Value::Object(m) => Box::new(m.values()),
        _ => Box::new(std::iter::empty()),
    }
}

fn slice_indices(len: usize, start: Option<i64>, end: Option<i64>, step: Option<i64>) -> Vec<usize> {
    let len = len as i64;
    let step = step.unwrap_or(1);
    if step <= 0 {
        return Vec::new();
    }
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let s = norm(start.unwrap_or(0));
    let e = norm(end.unwrap_or(len));
    (s..e).step_by(step as usize).map(|i| i as usize).collect()
}

fn eval_filter(f: &Filter, cur: &Value, root: &Value) -> bool {
    match f {
        Filter::Or(a, b) => eval_filter(a, cur, root) || eval_filter(b, cur, root),
        Filter::And(a, b) => eval_filter(a, cur, root) && eval_filter(b, cur, root),
        Filter::Not(a) => !eval_filter(a, cur, root),
        Filter::Exists(op) => operand(op, cur, root).is_some(),
        Filter::Cmp(l, op, r) => {
            let (Some(l), Some(r)) = (operand(l, cur, root), operand(r, cur, root)) else {
                return false;
            };
            compare(&l, *op, &r)
        }
    }
}

fn operand<'v>(op: &'v Operand, cur: &'v Value, root: &'v Value) -> Option<std::borrow::Cow<'v, Value>> {
    let follow = |start: &'v Value, segs: &[Segment]| {
        let mut out = Vec::new();
        walk(start, segs, root, &mut out);
        let definite = segs.iter().all(|s| matches!(s, Segment::Field(_) | Segment::Index(_)));
        if definite {
            out.into_iter().next().map(std::borrow::Cow::Borrowed)
        } else {
            Some(std::borrow::Cow::Owned(Value::Array(out.into_iter().cloned().collect())))
        }
    };
    match op {
        Operand::Current(segs) => follow(cur, segs),
        Operand::Root(segs) => follow(root, segs),
        Operand::Literal(v) => Some(std::borrow::Cow::Borrowed(v)),
    }
}

fn compare(l: &Value, op: CmpOp, r: &Value) -> bool {
    let ord = match (l, r) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) => {
            if a == b {
                Some(Ordering::Equal)
            } else {
                None
            }
        }
    };
    match op {
        CmpOp::Eq => ord == Some(Ordering::Equal),
        CmpOp::Ne => ord != Some(Ordering::Equal),
        CmpOp::Lt => ord == Some(Ordering::Less),
        CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => ord == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Segments until end of input, or (inside a filter) until a character that
    /// cannot continue a path.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Segment>, String> {
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.i += 1;
                    if self.eat(b'.') {
                        if self.eat(b'*') {
                            segs.push(Segment::Descend(None));
                        } else if self.peek() == Some(b'[') {
                            segs.push(Segment::DescendSelf);
                        } else {
                            let name = self.name(in_filter)?;
                            segs.push(Segment::Descend(Some(name)));
                        }
                    } else if self.eat(b'*') {
                        segs.push(Segment::Wildcard);
                    } else {
                        let name = self.name(in_filter)?;
                        segs.push(Segment::Field(name));
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    segs.push(self.bracket()?);
                }
                None => return Ok(segs),
                Some(_) if in_filter => return Ok(segs),
                Some(c) => return Err(format!("unexpected character '{}'", c as char)),
            }
        }
    }

    fn name(&mut self, in_filter: bool) -> Result<String, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let stop = c == b'.'
                || c == b'['
                || c == b']'
                || (in_filter && matches!(c, b' ' | b')' | b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b'\t'));
            if stop {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return Err("empty field name".into());
        }
        Ok(self.src[start..self.i].to_string())
    }

    fn bracket(&mut self) -> Result<Segment, String> {
        self.skip_ws();
        let seg = match self.peek() {
            Some(b'*') => {
                self.i += 1;
                Segment::Wildcard
            }
            Some(b'?') => {
                self.i += 1;
                self.skip_ws();
                if !self.eat(b'(') {
                    return Err("expected '(' after '?'".into());
                }
                let f = self.filter_or()?;
                self.skip_ws();
                if !self.eat(b')') {
                    return Err("expected ')' closing the filter".into());
                }
                Segment::Filter(Box::new(f))
            }
            Some(b'\'' | b'"') => {
                let mut names = vec![self.quoted()?];
                self.skip_ws();
                while self.eat(b',') {
                    self.skip_ws();
                    names.push(self.quoted()?);
                    self.skip_ws();
                }
                if names.len() == 1 { Segment::Field(names.remove(0)) } else { Segment::Names(names) }
            }
            Some(b'(') => return Err("script expressions are not supported".into()),
            _ => {
                let first = self.opt_int()?;
                self.skip_ws();
                if self.peek() == Some(b':') {
                    self.i += 1;
                    let end = self.opt_int()?;
                    let step = if self.eat(b':') { self.opt_int()? } else { None };
                    Segment::Slice(first, end, step)
                } else {
                    let first = first.ok_or("expected an index, a quoted name, '*', a slice or a filter")?;
                    let mut idx = vec![first];
                    while self.eat(b',') {
                        self.skip_ws();
                        idx.push(self.opt_int()?.ok_or("expected an index after ','")?);
                        self.skip_ws();
                    }
                    if idx.len() == 1 { Segment::Index(first) } else { Segment::Indices(idx) }
                }
            }
        };
        self.skip_ws();
        if !self.eat(b']') {
            return Err("expected ']'".into());
        }
        Ok(seg)
    }

    fn opt_int(&mut self) -> Result<Option<i64>, String> {
        self.skip_ws();
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let t = &self.src[start..self.i];
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<i64>().map(Some).map_err(|_| format!("bad index '{t}'"))
    }

    fn quoted(&mut self) -> Result<String, String> {
        let q = self.peek().ok_or("expected a quote")?;
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.src[self.i..];
            let mut chars = rest.chars();
            let c = chars.next().ok_or("unterminated quoted name")?;
            self.i += c.len_utf8();
            if c as u32 == q as u32 {
                return Ok(out);
            }
            if c == '\\' {
                let n = chars.next().ok_or("unterminated quoted name")?;
                self.i += n.len_utf8();
                out.push(n);
            } else {
                out.push(c);
            }
        }
    }

    fn filter_or(&mut self) -> Result<Filter, String> {
        let mut l = self.filter_and()?;
        loop {
            self.skip_ws();
            if self.src[self.i..].starts_with("||") {
                self.i += 2;
                let r = self.filter_and()?;
                l = Filter::Or(Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn filter_and(&mut self) -> Result<Filter, String> {
        let mut l = self.filter_unary()?;
        loop {
            self.skip_ws();
            if self.src[self.i..].starts_with("&&") {
                self.i += 2;
                let r = self.filter_unary()?;
                l = Filter::And(Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn filter_unary(&mut self) -> Result<Filter, String> {
        self.skip_ws();
        if self.peek() == Some(b'!') && !self.src[self.i..].starts_with("!=") {
            self.i += 1;
            return Ok(Filter::Not(Box::new(self.filter_unary()?)));
        }
        if self.eat(b'(') {
            let f = self.filter_or()?;
            self.skip_ws();
            if !self.eat(b')') {
                return Err("expected ')'".into());
            }
            return Ok(f);
        }
        let l = self.operand()?;
        self.skip_ws();
        let rest = &self.src[self.i..];
        let op = [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ]
        .into_iter()
        .find(|(t, _)| rest.starts_with(t));
        match op {
            Some((t, op)) => {
                self.i += t.len();
                let r = self.operand()?;
                Ok(Filter::Cmp(l, op, r))
            }
            None => match l {
                Operand::Literal(_) => Err("a filter needs a comparison or a path".into()),
                path => Ok(Filter::Exists(path)),
            },
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_ws();
        match self.peek() {
            Some(b'@') => {
                self.i += 1;
                Ok(Operand::Current(self.segments(true)?))
            }
            Some(b'$') => {
                self.i += 1;
                Ok(Operand::Root(self.segments(true)?))
            }
            Some(b'\'' | b'"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            _ => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.') {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                let t = &self.src[start..self.i];
                match serde_json::from_str::<Value>(t) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Operand::Literal(v)),
                    _ => Err(format!("bad literal '{t}' in filter")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(p: &str, v: &Value) -> Result<Value, PathError> {
        JsonPath::parse(p).unwrap().select(v)
    }

    #[test]
    fn definite_paths_return_the_node() {
        let doc = json!({"X": [{"Status": "ok"}], "a": {"b c": 1}, "arr": [1, 2, 3]});
        assert_eq!(sel("$.X[0].Status", &doc).unwrap(), json!("ok"));
        assert_eq!(sel("$['a']['b c']", &doc).unwrap(), json!(1));
        assert_eq!(sel("$.arr[-1]", &doc).unwrap(), json!(3));
        assert_eq!(sel("$", &doc).unwrap(), doc);
        assert_eq!(sel("$.nope", &doc), Err(PathError::NotFound("$.nope".into())));
        assert_eq!(sel("$.arr[5]", &doc), Err(PathError::NotFound("$.arr[5]".into())));
    }

    #[test]
    fn indefinite_paths_return_lists() {
        let doc = json!({"store": {"book": [
            {"t": "a", "price": 8, "isbn": "1"},
            {"t": "b", "price": 12},
            {"t": "c", "price": 9, "isbn": "2"}
        ]}});
        assert_eq!(sel("$.store.book[*].t", &doc).unwrap(), json!(["a", "b", "c"]));
        assert_eq!(sel("$..price", &doc).unwrap(), json!([8, 12, 9]));
        assert_eq!(sel("$.store.book[?(@.price < 10)].t", &doc).unwrap(), json!(["a", "c"]));
        assert_eq!(sel("$.store.book[?(@.isbn)].t", &doc).unwrap(), json!(["a", "c"]));
        assert_eq!(sel("$.store.book[?(@.price > 8 && @.t != 'c')].t", &doc).unwrap(), json!(["b"]));
        assert_eq!(sel("$.store.book[0:2].t", &doc).unwrap(), json!(["a", "b"]));
        assert_eq!(sel("$.store.book[-1:].t", &doc).unwrap(), json!(["c"]));
        assert_eq!(sel("$.store.book[0,2].t", &doc).unwrap(), json!(["a", "c"]));
        assert_eq!(sel("$.nothing[*]", &doc).unwrap(), json!([]));
        assert_eq!(sel("$..[0].t", &doc).unwrap(), json!(["a"]));
        assert_eq!(sel("$..book[?(@.price >= 9)].t", &doc).unwrap(), json!(["b", "c"]));
    }

    #[test]
    fn reference_paths_are_recognised() {
        assert!(JsonPath::parse("$.a.b[0]").unwrap().is_reference());
        assert!(JsonPath::parse("$").unwrap().is_reference());
        assert!(!JsonPath::parse("$.a[*]").unwrap().is_reference());
        assert!(!JsonPath::parse("$..a").unwrap().is_reference());
        assert!(!JsonPath::parse("$.a[-1]").unwrap().is_reference());
        assert_eq!(JsonPath::parse("$$.Execution.Id").unwrap().root(), Root::Context);
    }

    #[test]
    fn syntax_errors_are_reported() {
        for bad in ["a.b", "$.", "$.a[", "$.a[x]", "$[(@.length-1)]", "$.a]"] {
            assert!(matches!(JsonPath::parse(bad), Err(PathError::Syntax { .. })), "{bad} should not parse");
        }
    }

    #[test]
    fn set_creates_objects_and_rejects_non_objects() {
        let mut v = json!({"a": 1});
        JsonPath::parse("$.x.y").unwrap().set(&mut v, json!(2)).unwrap();
        assert_eq!(v, json!({"a": 1, "x": {"y": 2}}));
        let mut v = json!({"a": 1});
        assert!(JsonPath::parse("$.a.b").unwrap().set(&mut v, json!(2)).is_err());
        let mut v = json!({"l": [0, 1]});
        JsonPath::parse("$.l[1]").unwrap().set(&mut v, json!("z")).unwrap();
        assert_eq!(v, json!({"l": [0, "z"]}));
        let mut v = json!("scalar");
        JsonPath::parse("$").unwrap().set(&mut v, json!({"r": 1})).unwrap();
        assert_eq!(v, json!({"r": 1}));
        let mut v = json!("scalar");
        assert!(JsonPath::parse("$.r").unwrap().set(&mut v, json!(1)).is_err());
    }
}
