//! Task dispatch: handlers registered by Lambda function name (or by resource
//! ARN for other integrations), and `${Name}` definition substitutions.
//!
//! Resolution of a Task state's resource, after substitutions:
//! - `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` calls the
//!   handler registered as `NAME` with the state's effective parameters; its
//!   value is the task result.
//! - `arn:aws:states:::lambda:invoke` reads `FunctionName` (a name, a partial
//!   or full ARN, optionally qualified) and `Payload` (default: the whole
//!   parameters) and calls the handler `NAME` with the payload; the task result
//!   is the Lambda API response: `{"ExecutedVersion", "Payload", "StatusCode",
//!   "SdkHttpMetadata", "SdkResponseMetadata"}`, as on AWS.
//! - any other resource calls the handler registered for that exact resource
//!   ARN with the parameters.
//!
//! A handler error surfaces with its own `error` name and `cause`; a missing
//! handler fails the task with `Lambda.ResourceNotFoundException` (Lambda) or
//! `States.TaskFailed` (other resources), so Retry/Catch still apply.

use crate::error::{AslError, TaskError};
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// The future a handler returns.
pub type TaskFuture = BoxFuture<'static, Result<Value, TaskError>>;
/// A task handler.
pub type Handler = Arc<dyn Fn(Value) -> TaskFuture + Send + Sync>;

/// The resource ARN of the optimised Lambda integration.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// Handlers by Lambda function name and by resource ARN.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    functions: HashMap<String, Handler>,
    resources: HashMap<String, Handler>,
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("resources", &self.resources.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn boxed<F, Fut>(f: F) -> Handler
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    Arc::new(move |v| Box::pin(f(v)))
}

impl TaskRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register the handler for Lambda function `name` (the part after
    /// `:function:` in the ARN, without qualifier).
    pub fn register<F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.functions.insert(name.into(), boxed(f));
        self
    }

    /// Builder form of [`register`](Self::register).
    pub fn with<F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.register(name, f);
        self
    }

    /// Register an already boxed handler for function `name`.
    pub fn register_handler(&mut self, name: impl Into<String>, h: Handler) -> &mut Self {
        self.functions.insert(name.into(), h);
        self
    }

    /// Register the handler for a non-Lambda resource ARN (e.g. `arn:aws:states:::sns:publish`).
    pub fn register_resource<F, Fut>(&mut self, resource: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.resources.insert(resource.into(), boxed(f));
        self
    }

    /// Builder form of [`register_resource`](Self::register_resource).
    pub fn with_resource<F, Fut>(mut self, resource: impl Into<String>, f: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.register_resource(resource, f);
        self
    }

    pub fn function(&self, name: &str) -> Option<&Handler> {
        self.functions.get(name)
    }

    pub fn resource(&self, arn: &str) -> Option<&Handler> {
        self.resources.get(arn)
    }

    pub fn function_names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }
}

/// What a Task resource points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `arn:aws:lambda:...:function:NAME`.
    LambdaFunction(String),
    /// `arn:aws:states:::lambda:invoke`.
    LambdaInvoke,
    /// Any other service integration.
    Other,
}

impl Target {
    pub fn of(resource: &str) -> Target {
        if resource == LAMBDA_INVOKE {
            Target::LambdaInvoke
        } else if resource.starts_with("arn:")
            && resource.contains(":lambda:")
            && resource.contains(":function:")
        {
            Target::LambdaFunction(function_name(resource).to_string())
        } else {
            Target::Other
        }
    }
}

/// The bare function name from a name, partial ARN or full ARN, without qualifier.
pub fn function_name(s: &str) -> &str {
    let after = match s.find(":function:") {
        Some(i) => &s[i + ":function:".len()..],
        None => s,
    };
    after.split(':').next().unwrap_or(after)
}

/// `(resourceType, resource)` as history events show them: `arn:aws:states:::lambda:invoke` → `("lambda", "invoke")`.
pub fn resource_type(resource: &str) -> (String, String) {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::")
        && let Some((ty, action)) = rest.split_once(':')
    {
        return (ty.to_string(), action.to_string());
    }
    let parts: Vec<&str> = resource.split(':').collect();
    (parts.get(2).copied().unwrap_or("").to_string(), resource.to_string())
}

/// `${Name}` placeholders (SAM `DefinitionSubstitutions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Substitutions(HashMap<String, String>);

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Substitutions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Substitutions(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl Substitutions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.insert(name.into(), value.into());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replace every `${Name}` in every string value (not keys) of `v`.
    /// An unknown name is an error, so a typo never reaches a run.
    pub fn apply(&self, v: &mut Value) -> Result<(), AslError> {
        match v {
            Value::String(s) if s.contains("${") => {
                *s = self.apply_str(s)?;
                Ok(())
            }
            Value::Array(a) => a.iter_mut().try_for_each(|x| self.apply(x)),
            Value::Object(m) => m.values_mut().try_for_each(|x| self.apply(x)),
            _ => Ok(()),
        }
    }

    /// Replace `${Name}` placeholders in one string.
    pub fn apply_str(&self, s: &str) -> Result<String, AslError> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[i..]);
                return Ok(out);
            };
            let name = &after[..end];
            let value = self.0.get(name).ok_or_else(|| AslError::UnresolvedSubstitution(name.to_string()))?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_and_names() {
        assert_eq!(
            Target::of("arn:aws:lambda:us-east-1:123456789012:function:fetch-status:live"),
            Target::LambdaFunction("fetch-status".into())
        );
        assert_eq!(Target::of(LAMBDA_INVOKE), Target::LambdaInvoke);
        assert_eq!(Target::of("arn:aws:states:::sns:publish"), Target::Other);
        assert_eq!(function_name("123456789012:function:share"), "share");
        assert_eq!(function_name("share:v2"), "share");
        assert_eq!(function_name("share"), "share");
        assert_eq!(resource_type(LAMBDA_INVOKE), ("lambda".into(), "invoke".into()));
        assert_eq!(resource_type("arn:aws:states:::sns:publish"), ("sns".into(), "publish".into()));
    }

    #[test]
    fn substitutions_replace_or_fail() {
        let subs: Substitutions = [("Fn", "arn:aws:lambda:us-east-1:1:function:f")].into_iter().collect();
        let mut v = json!({"Resource": "${Fn}", "x": ["a ${Fn} b"], "n": 1});
        subs.apply(&mut v).unwrap();
        assert_eq!(v["Resource"], "arn:aws:lambda:us-east-1:1:function:f");
        assert_eq!(v["x"][0], "a arn:aws:lambda:us-east-1:1:function:f b");
        let mut bad = json!({"Resource": "${Missing}"});
        assert!(matches!(subs.apply(&mut bad), Err(AslError::UnresolvedSubstitution(n)) if n == "Missing"));
    }
}
