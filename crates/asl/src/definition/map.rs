//! The Map state: Inline mode (iterations in the execution's own history)
//! and Distributed mode (each item a child execution of the processor).
//!
//! Distributed Map fields follow "Using Map state in Distributed mode"
//! (AWS Step Functions Developer Guide,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html>):
//! `ProcessorConfig` `{"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}`,
//! `ItemsPath`, `ItemSelector`, `MaxConcurrency(Path)`,
//! `ToleratedFailurePercentage(Path)` (0-100), `ToleratedFailureCount(Path)`,
//! `Label` (at most 40 characters, no whitespace or reserved characters).
//! Refused with the feature named: `ItemReader` and `ResultWriter` (Amazon
//! S3), `ItemBatcher`, `ExecutionType: EXPRESS`. The distributed-only fields
//! are refused in Inline mode.

use super::parse::{Cx, Obj, as_secs};
use super::{Concurrency, Definition, Distributed, NumberOr, StateKind};
use serde_json::Value;
use std::sync::Arc;

/// Fields only a Distributed Map may have.
const DISTRIBUTED_ONLY: &[&str] = &[
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "Label",
];

impl Cx {
    pub(super) fn map(&mut self, o: &mut Obj<'_>, loc: &str) -> Option<StateKind> {
        let items_path = o.get("ItemsPath").and_then(|v| self.reference(v, loc, "ItemsPath"));
        let item_selector = match (o.has("ItemSelector"), o.has("Parameters")) {
            (true, true) => {
                self.err(
                    Some(loc),
                    "Parameters",
                    "ItemSelector and Parameters (its older name) are mutually exclusive",
                );
                o.get("Parameters");
                self.template(o, "ItemSelector", loc)
            }
            (true, false) => self.template(o, "ItemSelector", loc),
            (false, true) => self.template(o, "Parameters", loc),
            (false, false) => None,
        };
        let max_concurrency = match (o.get("MaxConcurrency"), o.get("MaxConcurrencyPath")) {
            (Some(_), Some(_)) => {
                self.err(
                    Some(loc),
                    "MaxConcurrencyPath",
                    "MaxConcurrency and MaxConcurrencyPath are mutually exclusive",
                );
                Concurrency::Fixed(0)
            }
            (Some(v), None) => match as_secs(v) {
                Some(n) => Concurrency::Fixed(n),
                None => {
                    self.err(Some(loc), "MaxConcurrency", format!("must be a non-negative integer, got {v}"));
                    Concurrency::Fixed(0)
                }
            },
            (None, Some(v)) => {
                self.reference(v, loc, "MaxConcurrencyPath").map_or(Concurrency::Fixed(0), Concurrency::Path)
            }
            (None, None) => Concurrency::Fixed(0),
        };
        let (field, proc_v) = match (o.get("ItemProcessor"), o.get("Iterator")) {
            (Some(p), None) => ("ItemProcessor", p),
            (None, Some(p)) => ("Iterator", p),
            (Some(_), Some(_)) => {
                self.err(
                    Some(loc),
                    "Iterator",
                    "ItemProcessor and Iterator (its older name) are mutually exclusive",
                );
                return None;
            }
            (None, None) => {
                self.err(Some(loc), "ItemProcessor", "required: the states that process each item");
                return None;
            }
        };
        let Value::Object(m) = proc_v else {
            self.err(Some(loc), field, "must be an object with StartAt and States");
            return None;
        };
        let prefix = format!("{loc}/{field}");
        let mut po = Obj::new(m);
        po.get("Comment");
        let distributed_mode = match po.get("ProcessorConfig") {
            None => false,
            Some(cfg) => self.processor_config(cfg, loc, field),
        };
        self.query_language(po.get("QueryLanguage"), Some(&prefix));
        let processor = self.scope(&mut po, Some(&prefix));
        for k in po.unknown() {
            self.err(Some(loc), format!("{field}.{k}"), "field not allowed in an item processor");
        }
        let processor = processor?;
        let distributed = if distributed_mode {
            let mut source = proc_v.clone();
            if let Value::Object(s) = &mut source {
                s.remove("ProcessorConfig");
            }
            let definition = Arc::new(Definition::processor(processor.clone(), source));
            Some(Box::new(self.distributed(o, loc, definition)))
        } else {
            for &f in DISTRIBUTED_ONLY {
                if o.get(f).is_some() {
                    self.err(
                        Some(loc),
                        f,
                        "only a Distributed Map has this field (ItemProcessor.ProcessorConfig.Mode: DISTRIBUTED)",
                    );
                }
            }
            None
        };
        Some(StateKind::Map {
            items_path,
            item_selector,
            processor: Box::new(processor),
            max_concurrency,
            distributed,
        })
    }

    /// `ProcessorConfig`: whether the Map is distributed.
    fn processor_config(&mut self, cfg: &Value, loc: &str, field: &str) -> bool {
        let Value::Object(c) = cfg else {
            self.err(Some(loc), format!("{field}.ProcessorConfig"), "must be an object");
            return false;
        };
        let mut co = Obj::new(c);
        let at = |k: &str| format!("{field}.ProcessorConfig.{k}");
        let distributed = match co.get("Mode").map(|v| (v, v.as_str())) {
            None | Some((_, Some("INLINE"))) => false,
            Some((_, Some("DISTRIBUTED"))) => true,
            Some((v, _)) => {
                self.err(Some(loc), at("Mode"), format!("must be \"INLINE\" or \"DISTRIBUTED\", got {v}"));
                false
            }
        };
        match (co.get("ExecutionType"), distributed) {
            (None, true) => self.err(
                Some(loc),
                at("ExecutionType"),
                "required in Distributed mode: \"STANDARD\" or \"EXPRESS\"",
            ),
            (Some(Value::String(t)), true) if t == "STANDARD" => {}
            (Some(Value::String(t)), true) if t == "EXPRESS" => self.err(
                Some(loc),
                at("ExecutionType"),
                "unsupported feature: EXPRESS child executions (this engine runs STANDARD ones)",
            ),
            (Some(v), true) => self.err(
                Some(loc),
                at("ExecutionType"),
                format!("must be \"STANDARD\" or \"EXPRESS\", got {v}"),
            ),
            (Some(_), false) => {
                self.err(Some(loc), at("ExecutionType"), "only allowed with Mode \"DISTRIBUTED\"")
            }
            (None, false) => {}
        }
        for k in co.unknown() {
            self.err(Some(loc), at(k), "field not allowed in ProcessorConfig");
        }
        distributed
    }

    /// The state-level fields of a Distributed Map.
    fn distributed(&mut self, o: &mut Obj<'_>, loc: &str, definition: Arc<Definition>) -> Distributed {
        for (f, what) in [
            (
                "ItemReader",
                "reading items from Amazon S3 (ItemReader); give the items in the state input (ItemsPath)",
            ),
            (
                "ResultWriter",
                "writing results to Amazon S3 (ResultWriter); the results are the state's output",
            ),
            ("ItemBatcher", "batching items (ItemBatcher)"),
        ] {
            if o.get(f).is_some() {
                self.err(Some(loc), f, format!("unsupported feature: {what}"));
            }
        }
        let label = match o.get("Label") {
            None => None,
            Some(Value::String(l)) if crate::limits::valid_label(l) => Some(l.clone()),
            Some(v) => {
                self.err(
                    Some(loc),
                    "Label",
                    format!(
                        "must be a string of 1 to {} characters without whitespace, control characters or any of <>{{}}[]?*\"#%\\^|~`$&,;:/, got {v}",
                        crate::limits::LABEL_CHARS
                    ),
                );
                None
            }
        };
        let tolerated_failure_percentage = self.number_or_path(
            o,
            loc,
            "ToleratedFailurePercentage",
            |v| v.as_f64().filter(|p| (0.0..=100.0).contains(p)),
            "a number from 0 to 100",
        );
        let tolerated_failure_count =
            self.number_or_path(o, loc, "ToleratedFailureCount", as_secs, "a non-negative integer");
        Distributed { label, tolerated_failure_percentage, tolerated_failure_count, definition }
    }

    /// `Field` or `FieldPath`, not both.
    fn number_or_path<T>(
        &mut self,
        o: &mut Obj<'_>,
        loc: &str,
        field: &'static str,
        read: impl Fn(&Value) -> Option<T>,
        what: &str,
    ) -> Option<NumberOr<T>> {
        let path_field = match field {
            "ToleratedFailurePercentage" => "ToleratedFailurePercentagePath",
            _ => "ToleratedFailureCountPath",
        };
        match (o.get(field), o.get(path_field)) {
            (Some(_), Some(_)) => {
                self.err(Some(loc), path_field, format!("{field} and {path_field} are mutually exclusive"));
                None
            }
            (Some(v), None) => match read(v) {
                Some(n) => Some(NumberOr::Fixed(n)),
                None => {
                    self.err(Some(loc), field, format!("must be {what}, got {v}"));
                    None
                }
            },
            (None, Some(v)) => self.reference(v, loc, path_field).map(NumberOr::Path),
            (None, None) => None,
        }
    }
}
