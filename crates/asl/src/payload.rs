//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`),
//! evaluated in an [`Env`].
//!
//! A template is compiled once at load time: a key ending in `.$` must hold a
//! string that is a path or an intrinsic call; the `.$` is dropped from the
//! output key. Everything else is copied literally (strings that merely start
//! with `$` stay strings). A path that cannot be resolved is `States.Runtime`,
//! as on AWS.

use crate::env::Env;
use crate::error::StateError;
use crate::intrinsic::{self, Call};
use crate::path::JsonPath;
use serde_json::{Map, Value};

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Path(JsonPath),
    Call(Call),
}

impl Template {
    /// Compile; the error names the offending key (dotted) and why.
    pub fn compile(v: &Value) -> Result<Template, (String, String)> {
        if !has_dynamic(v) {
            return Ok(Template::Literal(v.clone()));
        }
        match v {
            Value::Object(m) => {
                let mut out = Vec::with_capacity(m.len());
                for (k, val) in m {
                    if let Some(name) = k.strip_suffix(".$") {
                        let Value::String(s) = val else {
                            return Err((k.clone(), "a key ending in '.$' must have a string value (a path or an intrinsic function)".into()));
                        };
                        out.push((name.to_string(), compile_dynamic(s).map_err(|e| (k.clone(), e))?));
                    } else {
                        let t = Template::compile(val).map_err(|(f, e)| (format!("{k}.{f}"), e))?;
                        out.push((k.clone(), t));
                    }
                }
                Ok(Template::Object(out))
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| Template::compile(x).map_err(|(f, e)| (format!("[{i}].{f}"), e)))
                .collect::<Result<_, _>>()
                .map(Template::Array),
            other => Ok(Template::Literal(other.clone())),
        }
    }

    /// Build the JSON value.
    pub fn render(&self, env: &Env<'_>) -> Result<Value, StateError> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Object(fields) => {
                let mut m = Map::new();
                for (k, t) in fields {
                    let v = t.render(env).map_err(|e| match t {
                        Template::Path(_) if e.error == crate::error::names::RUNTIME => StateError::runtime(format!(
                            "The JsonPath argument for the field '{k}.$' could not be found in the input '{}'",
                            env.input()
                        )),
                        Template::Call(_) => StateError::new(e.error, format!("The field '{k}.$': {}", e.cause)),
                        _ => e,
                    })?;
                    m.insert(k.clone(), v);
                }
                Ok(Value::Object(m))
            }
            Template::Array(items) => {
                items.iter().map(|t| t.render(env)).collect::<Result<_, _>>().map(Value::Array)
            }
            Template::Path(p) => env.resolve(p).map_err(|e| StateError::runtime(e.to_string())),
            Template::Call(c) => c.eval(env),
        }
    }
}

/// Compile the string value of a `.$` key (or of `ErrorPath`/`CausePath`).
pub fn compile_dynamic(s: &str) -> Result<Template, String> {
    if intrinsic::looks_like_call(s) {
        Call::parse(s).map(Template::Call)
    } else {
        JsonPath::parse(s).map(Template::Path).map_err(|e| e.to_string())
    }
}

fn has_dynamic(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k.ends_with(".$") || has_dynamic(v)),
        Value::Array(a) => a.iter().any(has_dynamic),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: Value, input: Value) -> Result<Value, StateError> {
        let ctx = || json!({"Execution": {"Id": "arn:x"}, "Map": {"Item": {"Index": 2}}});
        Template::compile(&t).unwrap().render(&Env::new(&input, &ctx))
    }

    #[test]
    fn dynamic_keys_are_resolved_and_literals_kept() {
        let out = render(
            json!({"a.$": "$.x", "lit": "$.x", "nested": {"b.$": "$$.Execution.Id", "arr": [{"c.$": "$.y[0]"}, 1]},
                   "f.$": "States.Format('{}-{}', $.x, $$.Map.Item.Index)"}),
            json!({"x": "X", "y": [true]}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"a": "X", "lit": "$.x", "nested": {"b": "arn:x", "arr": [{"c": true}, 1]}, "f": "X-2"})
        );
    }

    #[test]
    fn missing_path_is_a_runtime_error_naming_the_field() {
        let e = render(json!({"a.$": "$.missing"}), json!({})).unwrap_err();
        assert_eq!(e.error, "States.Runtime");
        assert!(e.cause.contains("'a.$'"), "{}", e.cause);
    }

    #[test]
    fn compile_errors_name_the_key() {
        assert_eq!(Template::compile(&json!({"x": {"a.$": 3}})).unwrap_err().0, "x.a.$");
        assert_eq!(Template::compile(&json!({"a.$": "nope"})).unwrap_err().0, "a.$");
    }
}
