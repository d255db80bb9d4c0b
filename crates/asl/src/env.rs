//! The evaluation environment of paths, payload templates and intrinsic
//! functions: what `$` and `$$` mean while one state evaluates them.
//!
//! It sits below both [`crate::payload`] and [`crate::intrinsic`], so that a
//! template can hold intrinsic calls and an intrinsic can resolve paths
//! without either module importing the other.

use crate::path::{JsonPath, PathError, Root};
use serde_json::Value;
use std::sync::OnceLock;

/// What `$` and `$$` mean while evaluating one template or path.
pub struct Env<'a> {
    input: &'a Value,
    build_context: &'a (dyn Fn() -> Value + Sync),
    context: OnceLock<Value>,
}

impl<'a> Env<'a> {
    /// `build_context` is called at most once, and only if a `$$` path is used.
    pub fn new(input: &'a Value, build_context: &'a (dyn Fn() -> Value + Sync)) -> Self {
        Env { input, build_context, context: OnceLock::new() }
    }

    pub fn input(&self) -> &Value {
        self.input
    }

    /// Resolve a path against the input or the context object.
    pub fn resolve(&self, p: &JsonPath) -> Result<Value, PathError> {
        match p.root() {
            Root::Input => p.select(self.input),
            Root::Context => p.select(self.context.get_or_init(|| (self.build_context)())),
        }
    }
}
