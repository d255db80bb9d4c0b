//! Path processing of state input and output: `InputPath`, `ResultPath`,
//! `OutputPath`, and the time format of the context object.

use crate::definition::{IoPath, ResultPath, State};
use crate::error::{StateError, names};
use serde_json::{Value, json};
use std::borrow::Cow;
use time::OffsetDateTime;

/// Millisecond ISO-8601 in UTC, as the context object shows times.
pub fn iso_ms(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The effective input; borrowed when InputPath is absent (the common case).
pub(super) fn input_path<'v>(state: &State, raw: &'v Value) -> Result<Cow<'v, Value>, StateError> {
    match &state.input_path {
        IoPath::Default => Ok(Cow::Borrowed(raw)),
        IoPath::Null => Ok(Cow::Owned(json!({}))),
        IoPath::Path(p) => p.select(raw).map(Cow::Owned).map_err(|_| {
            StateError::runtime(format!(
                "Invalid path '{p}' : The JSONPath '{p}' specified for the field 'InputPath' could not be found in the input '{raw}' (state '{}')",
                state.name
            ))
        }),
    }
}

pub(super) fn output_path(state: &State, out: Value) -> Result<Value, StateError> {
    match &state.output_path {
        IoPath::Default => Ok(out),
        IoPath::Null => Ok(json!({})),
        IoPath::Path(p) => p.select(&out).map_err(|_| {
            StateError::runtime(format!(
                "Invalid path '{p}' : The JSONPath '{p}' specified for the field 'OutputPath' could not be found in the input '{out}' (state '{}')",
                state.name
            ))
        }),
    }
}

pub(super) fn result_path(rp: &ResultPath, raw: &Value, result: Value) -> Result<Value, StateError> {
    match rp {
        ResultPath::Default => Ok(result),
        ResultPath::Null => Ok(raw.clone()),
        ResultPath::Path(p) => {
            let mut out = raw.clone();
            p.set(&mut out, result).map_err(|e| {
                StateError::new(
                    names::RESULT_PATH_MATCH_FAILURE,
                    format!("Unable to apply ReferencePath {p} to input: {e}"),
                )
            })?;
            Ok(out)
        }
    }
}
