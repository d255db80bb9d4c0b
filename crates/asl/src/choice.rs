//! Choice rules: comparison operators (and their `...Path` forms), `And`, `Or`,
//! `Not`, and the `Is...` type tests.
//!
//! Semantics (AWS): a comparison whose `Variable` (or `...Path` operand) is
//! absent raises `States.Runtime`; only `IsPresent` tolerates an absent
//! variable. A comparison between values of the wrong type is simply false.

use crate::env::Env;
use crate::error::StateError;
use crate::path::{JsonPath, PathError};
use serde_json::Value;
use std::cmp::Ordering;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test { variable: JsonPath, op: Op, operand: Operand },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    Path(JsonPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Cmp(Kind, Ordering, bool),
    StringMatches,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

/// Operator names in the order they are tried when parsing.
fn operator(name: &str) -> Option<Op> {
    use Ordering::*;
    let (kind, rest) = [
        ("String", Kind::String),
        ("Numeric", Kind::Numeric),
        ("Boolean", Kind::Boolean),
        ("Timestamp", Kind::Timestamp),
    ]
    .into_iter()
    .find_map(|(p, k)| name.strip_prefix(p).map(|r| (k, r)))
    .map_or((None, name), |(k, r)| (Some(k), r));
    if let Some(kind) = kind {
        let op = match rest {
            "Equals" => Op::Cmp(kind, Equal, false),
            "LessThan" => Op::Cmp(kind, Less, false),
            "GreaterThan" => Op::Cmp(kind, Greater, false),
            "LessThanEquals" => Op::Cmp(kind, Less, true),
            "GreaterThanEquals" => Op::Cmp(kind, Greater, true),
            "Matches" if kind == Kind::String => Op::StringMatches,
            _ => return None,
        };
        if kind == Kind::Boolean && !matches!(op, Op::Cmp(_, Equal, _)) {
            return None;
        }
        return Some(op);
    }
    Some(match name {
        "IsNull" => Op::IsNull,
        "IsPresent" => Op::IsPresent,
        "IsNumeric" => Op::IsNumeric,
        "IsString" => Op::IsString,
        "IsBoolean" => Op::IsBoolean,
        "IsTimestamp" => Op::IsTimestamp,
        _ => return None,
    })
}

/// Is this key a comparison operator (with or without `Path`)?
pub fn is_operator_key(k: &str) -> bool {
    operator(k).is_some()
        || k.strip_suffix("Path").is_some_and(|b| operator(b).is_some_and(|o| matches!(o, Op::Cmp(..))))
}

impl Rule {
    /// Parse one rule object. `top` rules carry `Next` (handled by the caller,
    /// which passes the keys it consumed in `ignore`).
    pub fn parse(v: &Value, ignore: &[&str]) -> Result<Rule, (String, String)> {
        let Value::Object(m) = v else {
            return Err((String::new(), "a choice rule must be an object".into()));
        };
        let keys: Vec<&String> =
            m.keys().filter(|k| !ignore.contains(&k.as_str()) && *k != "Comment").collect();
        let logical: Vec<&&String> =
            keys.iter().filter(|k| ["And", "Or", "Not"].contains(&k.as_str())).collect();
        if let Some(l) = logical.first() {
            if keys.len() != 1 {
                return Err((
                    (**l).clone(),
                    format!("'{l}' must be the only condition in its rule, found {keys:?}"),
                ));
            }
            let name = l.as_str();
            let inner = &m[name];
            return match name {
                "Not" => Rule::parse(inner, &[])
                    .map(|r| Rule::Not(Box::new(r)))
                    .map_err(|(f, e)| (join("Not", &f), e)),
                _ => {
                    let Value::Array(items) = inner else {
                        return Err((name.to_string(), "must be a non-empty array of rules".into()));
                    };
                    if items.is_empty() {
                        return Err((name.to_string(), "must be a non-empty array of rules".into()));
                    }
                    let rules = items
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            Rule::parse(r, &[]).map_err(|(f, e)| (join(&format!("{name}[{i}]"), &f), e))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(if name == "And" { Rule::And(rules) } else { Rule::Or(rules) })
                }
            };
        }
        let var = m
            .get("Variable")
            .ok_or_else(|| ("Variable".to_string(), "a comparison needs a Variable".to_string()))?;
        let var = var.as_str().ok_or_else(|| ("Variable".to_string(), "must be a string".to_string()))?;
        let variable = JsonPath::parse(var).map_err(|e| ("Variable".to_string(), e.to_string()))?;
        if !variable.is_reference() {
            return Err((
                "Variable".into(),
                format!("'{var}' is not a reference path (it may select more than one node)"),
            ));
        }
        let ops: Vec<&&String> = keys.iter().filter(|k| k.as_str() != "Variable").collect();
        if ops.len() != 1 {
            return Err((
                "Variable".into(),
                format!(
                    "a comparison needs exactly one operator, found {}",
                    if ops.is_empty() { "none".to_string() } else { format!("{ops:?}") }
                ),
            ));
        }
        let key = ops[0].as_str();
        let value = &m[key];
        if let Some(op) = operator(key) {
            let ok = match op {
                Op::Cmp(Kind::String, ..) | Op::StringMatches => value.is_string(),
                Op::Cmp(Kind::Numeric, ..) => value.is_number(),
                Op::Cmp(Kind::Boolean, ..) => value.is_boolean(),
                Op::Cmp(Kind::Timestamp, ..) => value.as_str().is_some_and(|s| parse_ts(s).is_some()),
                _ => value.is_boolean(),
            };
            if !ok {
                let want = match op {
                    Op::Cmp(Kind::String, ..) | Op::StringMatches => "a string",
                    Op::Cmp(Kind::Numeric, ..) => "a number",
                    Op::Cmp(Kind::Timestamp, ..) => "an RFC 3339 timestamp string",
                    _ => "a boolean",
                };
                return Err((key.to_string(), format!("must be {want}, got {value}")));
            }
            return Ok(Rule::Test { variable, op, operand: Operand::Literal(value.clone()) });
        }
        if let Some(op) = key.strip_suffix("Path").and_then(operator)
            && matches!(op, Op::Cmp(..))
        {
            let s = value.as_str().ok_or_else(|| (key.to_string(), "must be a path string".to_string()))?;
            let p = JsonPath::parse(s).map_err(|e| (key.to_string(), e.to_string()))?;
            if !p.is_reference() {
                return Err((key.to_string(), format!("'{s}' is not a reference path")));
            }
            return Ok(Rule::Test { variable, op, operand: Operand::Path(p) });
        }
        Err((key.to_string(), format!("unknown comparison operator '{key}'")))
    }

    /// Evaluate against the state's effective input.
    pub fn eval(&self, env: &Env<'_>) -> Result<bool, StateError> {
        match self {
            Rule::And(rs) => {
                for r in rs {
                    if !r.eval(env)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rs) => {
                for r in rs {
                    if r.eval(env)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(r) => Ok(!r.eval(env)?),
            Rule::Test { variable, op, operand } => {
                let var = match env.resolve(variable) {
                    Ok(v) => Some(v),
                    Err(PathError::NotFound(_)) => None,
                    Err(e) => return Err(StateError::runtime(e.to_string())),
                };
                if *op == Op::IsPresent {
                    return Ok(var.is_some() == (operand_bool(operand)));
                }
                let Some(var) = var else {
                    return Err(StateError::runtime(format!(
                        "Invalid path '{variable}': The choice state's condition path references an invalid value."
                    )));
                };
                let rhs = match operand {
                    Operand::Literal(v) => v.clone(),
                    Operand::Path(p) => env.resolve(p).map_err(|_| {
                        StateError::runtime(format!(
                            "Invalid path '{p}': The choice state's condition path references an invalid value."
                        ))
                    })?,
                };
                Ok(test(*op, &var, &rhs))
            }
        }
    }
}

fn operand_bool(o: &Operand) -> bool {
    matches!(o, Operand::Literal(Value::Bool(true)))
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() { a.to_string() } else { format!("{a}.{b}") }
}

/// Parse an ASL timestamp: RFC 3339 with an upper-case `T` and an offset or `Z`.
pub fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    if s.contains('t') || s.contains('z') {
        return None;
    }
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn test(op: Op, var: &Value, rhs: &Value) -> bool {
    let expect = rhs.as_bool() == Some(true);
    match op {
        Op::IsNull => var.is_null() == expect,
        Op::IsNumeric => var.is_number() == expect,
        Op::IsString => var.is_string() == expect,
        Op::IsBoolean => var.is_boolean() == expect,
        Op::IsTimestamp => var.as_str().and_then(parse_ts).is_some() == expect,
        Op::IsPresent => true,
        Op::StringMatches => match (var.as_str(), rhs.as_str()) {
            (Some(s), Some(p)) => wildcard_match(p, s),
            _ => false,
        },
        Op::Cmp(kind, want, or_equal) => {
            let ord = match kind {
                Kind::String => match (var.as_str(), rhs.as_str()) {
                    (Some(a), Some(b)) => Some(a.cmp(b)),
                    _ => None,
                },
                Kind::Numeric => match (var, rhs) {
                    (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
                        (Some(a), Some(b)) => Some(a.cmp(&b)),
                        _ => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
                    },
                    _ => None,
                },
                Kind::Boolean => match (var.as_bool(), rhs.as_bool()) {
                    (Some(a), Some(b)) => Some(a.cmp(&b)),
                    _ => None,
                },
                Kind::Timestamp => match (var.as_str().and_then(parse_ts), rhs.as_str().and_then(parse_ts)) {
                    (Some(a), Some(b)) => Some(a.cmp(&b)),
                    _ => None,
                },
            };
            match ord {
                Some(o) => o == want || (or_equal && o == Ordering::Equal),
                None => false,
            }
        }
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literals.
fn wildcard_match(pattern: &str, s: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Star,
        Ch(char),
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => toks.push(Tok::Ch(it.next().unwrap_or('\\'))),
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Ch(c)),
        }
    }
    let s: Vec<char> = s.chars().collect();
    // Classic greedy matcher with backtracking to the last star.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < toks.len() && toks[p] == Tok::Ch(s[i]) {
            p += 1;
            i += 1;
        } else if p < toks.len() && toks[p] == Tok::Star {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(rule: Value, input: Value) -> Result<bool, StateError> {
        let ctx = || json!({});
        Rule::parse(&rule, &["Next"]).unwrap().eval(&Env::new(&input, &ctx))
    }

    #[test]
    fn comparisons() {
        let i = json!({"s": "b", "n": 5, "f": 2.5, "t": true, "ts": "2024-01-01T00:00:00Z", "o": "2024-01-01T01:00:00+01:00"});
        assert!(eval(json!({"Variable": "$.s", "StringEquals": "b"}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.s", "StringGreaterThan": "a"}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.s", "StringLessThanEquals": "b"}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.n", "NumericEquals": 5.0}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.f", "NumericLessThan": 3}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.n", "NumericGreaterThanEquals": 5}), i.clone()).unwrap());
        assert!(!eval(json!({"Variable": "$.s", "NumericEquals": 5}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.t", "BooleanEquals": true}), i.clone()).unwrap());
        assert!(
            eval(json!({"Variable": "$.ts", "TimestampEquals": "2024-01-01T00:00:00Z"}), i.clone()).unwrap()
        );
        assert!(eval(json!({"Variable": "$.ts", "TimestampEqualsPath": "$.o"}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.n", "NumericGreaterThanPath": "$.f"}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.s", "StringEqualsPath": "$.s"}), i).unwrap());
    }

    #[test]
    fn logic_and_type_tests() {
        let i = json!({"a": null, "n": 1, "s": "x"});
        assert!(eval(json!({"And": [{"Variable": "$.n", "IsNumeric": true}, {"Not": {"Variable": "$.s", "IsNumeric": true}}]}), i.clone()).unwrap());
        assert!(
            eval(
                json!({"Or": [{"Variable": "$.n", "IsString": true}, {"Variable": "$.a", "IsNull": true}]}),
                i.clone()
            )
            .unwrap()
        );
        assert!(eval(json!({"Variable": "$.missing", "IsPresent": false}), i.clone()).unwrap());
        assert!(!eval(json!({"Variable": "$.missing", "IsPresent": true}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.s", "IsTimestamp": false}), i.clone()).unwrap());
        assert!(eval(json!({"Variable": "$.s", "IsBoolean": false}), i.clone()).unwrap());
        let e = eval(json!({"Variable": "$.missing", "StringEquals": "x"}), i).unwrap_err();
        assert_eq!(e.error, "States.Runtime");
    }

    #[test]
    fn string_matches_wildcards() {
        assert!(wildcard_match("log-*.txt", "log-2024.txt"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b", "aXXc"));
        assert!(wildcard_match("a\\*b", "a*b"));
        assert!(!wildcard_match("a\\*b", "aXb"));
    }

    #[test]
    fn parse_errors_name_the_field() {
        assert_eq!(
            Rule::parse(&json!({"Variable": "$.a", "StringEquals": 1}), &[]).unwrap_err().0,
            "StringEquals"
        );
        assert_eq!(Rule::parse(&json!({"Variable": "$.a", "Foo": 1}), &[]).unwrap_err().0, "Foo");
        assert_eq!(
            Rule::parse(&json!({"Variable": "$.a[*]", "IsNull": true}), &[]).unwrap_err().0,
            "Variable"
        );
        assert_eq!(Rule::parse(&json!({"And": []}), &[]).unwrap_err().0, "And");
        assert_eq!(Rule::parse(&json!({"Variable": "$.a"}), &[]).unwrap_err().0, "Variable");
        assert!(Rule::parse(&json!({"Variable": "$.a", "BooleanLessThan": true}), &[]).is_err());
        assert!(is_operator_key("NumericEqualsPath"));
        assert!(!is_operator_key("IsNullPath"));
    }
}
